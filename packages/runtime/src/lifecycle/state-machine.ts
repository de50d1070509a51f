/**
 * The container lifecycle, as runc and youki define it:
 *
 *   (none) ──create──► created ──start──► running ──pause──► paused
 *                         │                 │  ▲              │
 *                         │                 │  └──unpause─────┘
 *                         │               exit/kill/stop       │ kill/stop
 *                         └──kill/stop────► stopped ◄──────────┘
 *
 * `stopped` is terminal: a stopped container is only deleted (this layer has no restart; the
 * daemon creates a new one). `delete` is allowed from `created` and `stopped`, and from any state
 * with force. Every operation asks a guard first; a refused guard is an `InvalidStateError`.
 */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

export type LifecycleOperation = 'start' | 'kill' | 'stop' | 'pause' | 'unpause' | 'delete' | 'exec' | 'attach' | 'update' | 'resize';

export const canStart = (s: ContainerStatus): boolean => s === 'created';
export const canPause = (s: ContainerStatus): boolean => s === 'running';
export const canUnpause = (s: ContainerStatus): boolean => s === 'paused';
/** kill and stop reach every live state; on a stopped container they are no-ops, not errors, for stop. */
export const canKill = (s: ContainerStatus): boolean => s === 'created' || s === 'running' || s === 'paused';
export const canStop = (_s: ContainerStatus): boolean => true;
export const canDelete = (s: ContainerStatus, force = false): boolean => force || s === 'created' || s === 'stopped';
export const canExec = (s: ContainerStatus): boolean => s === 'running';
export const canAttach = (s: ContainerStatus): boolean => s === 'created' || s === 'running' || s === 'paused';
export const canUpdate = (s: ContainerStatus): boolean => s === 'created' || s === 'running' || s === 'paused';
export const canResize = (s: ContainerStatus): boolean => s === 'running' || s === 'created' || s === 'paused';

const guards: Record<LifecycleOperation, (s: ContainerStatus, force?: boolean) => boolean> = {
  start: canStart,
  kill: canKill,
  stop: canStop,
  pause: canPause,
  unpause: canUnpause,
  delete: canDelete,
  exec: canExec,
  attach: canAttach,
  update: canUpdate,
  resize: canResize,
};

/** Whether `operation` is allowed in state `status`. */
export function isAllowed(operation: LifecycleOperation, status: ContainerStatus, force = false): boolean {
  return guards[operation](status, force);
}

/**
 * The state an operation leads to when it succeeds (what the caller should observe next), or
 * undefined when the operation does not change state. `delete` leads out of the machine (null).
 */
export function nextStatus(operation: LifecycleOperation, status: ContainerStatus): ContainerStatus | null | undefined {
  switch (operation) {
    case 'start':
      return 'running';
    case 'pause':
      return 'paused';
    case 'unpause':
      return 'running';
    case 'stop':
      return 'stopped';
    case 'delete':
      return null;
    case 'kill':
      return status === 'stopped' ? 'stopped' : undefined; // depends on the signal
    default:
      return undefined;
  }
}
