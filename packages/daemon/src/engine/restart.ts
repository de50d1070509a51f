import type { Logger } from '../logger.js';
import type { ContainerRecord } from '../state/container-store.js';

const INITIAL_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run this long resets the back-off (moby restartmanager's backoffThreshold). */
const RESET_AFTER_MS = 10_000;

/** Whether a policy restarts a container that exited with `exitCode` (moby restartmanager.ShouldRestart). */
export function shouldRestart(record: ContainerRecord, exitCode: number): boolean {
  const policy = record.HostConfig.RestartPolicy?.Name ?? 'no';
  switch (policy) {
    case 'always':
    case 'unless-stopped':
      return !record.HasBeenManuallyStopped;
    case 'on-failure': {
      const max = record.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0;
      return exitCode !== 0 && (max === 0 || record.RestartCount < max);
    }
    default:
      return false;
  }
}

/** Docker's doubling back-off: 100 ms, then ×2 per quick exit, at most a minute; reset after a 10 s run. */
export function nextDelay(previous: number, ranForMs: number): number {
  if (ranForMs >= RESET_AFTER_MS || previous === 0) return INITIAL_DELAY_MS;
  return Math.min(previous * 2, MAX_DELAY_MS);
}

/** Schedules restarts by policy; one pending timer per container. */
export class RestartPolicyManager {
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #delays = new Map<string, number>();
  readonly #restart: (record: ContainerRecord) => Promise<void>;
  readonly #log: Logger;

  constructor(restart: (record: ContainerRecord) => Promise<void>, log: Logger) {
    this.#restart = restart;
    this.#log = log;
  }

  /** Returns true when a restart was scheduled. */
  schedule(record: ContainerRecord, exitCode: number, ranForMs: number): boolean {
    if (!shouldRestart(record, exitCode)) {
      this.#delays.delete(record.Id);
      return false;
    }
    const delay = nextDelay(this.#delays.get(record.Id) ?? 0, ranForMs);
    this.#delays.set(record.Id, delay);
    this.cancel(record.Id, false);
    this.#log.info(`restarting container ${record.Id.slice(0, 12)} in ${delay} ms (policy ${record.HostConfig.RestartPolicy?.Name ?? 'no'})`);
    const timer = setTimeout(() => {
      this.#timers.delete(record.Id);
      void this.#restart(record);
    }, delay);
    timer.unref();
    this.#timers.set(record.Id, timer);
    return true;
  }

  cancel(id: string, resetDelay = true): void {
    const timer = this.#timers.get(id);
    if (timer) clearTimeout(timer);
    this.#timers.delete(id);
    if (resetDelay) this.#delays.delete(id);
  }

  cancelAll(): void {
    for (const id of [...this.#timers.keys()]) this.cancel(id);
  }
}
