import type { Readable, Writable } from 'node:stream';
import type { ContainerStatus } from '../lifecycle/state-machine.js';
import type { ContainerSpec, LogOptions } from '../spec/types.js';

export interface RuntimeOptions {
  /** Where bundles, logs, monitor files and the OCI runtime's state live (e.g. /run/berth/runtime). */
  stateDir: string;
  /** Default OCI runtime: `'runc'`, `'crun'` or a path. Default: detected (crun where it works, else runc). */
  runtime?: string;
  /** Parent cgroup for containers (default `berth`). */
  cgroupParent?: string;
  /** Default log rotation for containers that do not set their own. */
  logs?: LogOptions;
  /** Path of the conmon binary (default: found on PATH). */
  conmon?: string;
}

/** The OCI runtime binary chosen, and why. */
export interface OciRuntimeInfo {
  name: string;
  path: string;
  version: string;
  /** The runtime-spec version the binary declares (`spec: 1.0.2-dev`). */
  specVersion: string;
  /** Why this one was chosen (and why others were refused, e.g. crun's hybrid-cgroup error). */
  reason: string;
}

export interface ExitStatus {
  /** 0-255; 128+n when killed by signal n. */
  exitCode: number;
  oomKilled: boolean;
  finishedAt: Date;
}

export interface ContainerInfo {
  id: string;
  name?: string;
  status: ContainerStatus;
  /** The container's pid 1 on the host while created/running/paused, else 0. */
  pid: number;
  /** The monitor's (conmon's) pid, 0 once it is gone. */
  monitorPid: number;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  exitCode?: number;
  oomKilled: boolean;
  bundle: string;
  /** The current log file (k8s-file format). */
  logPath: string;
  runtime: string;
  spec: ContainerSpec;
}

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** Nanoseconds since the epoch. */
  time: bigint;
  data: Buffer;
  /** False when the line was cut by the monitor (no trailing newline in `data`). */
  complete: boolean;
}

export interface LogReadOptions {
  stdout?: boolean;
  stderr?: boolean;
  /** Keep reading until the container has stopped (or the signal aborts). */
  follow?: boolean;
  /** Nanoseconds since the epoch, or a Date: entries at or after. */
  since?: bigint | Date;
  /** Entries strictly before. */
  until?: bigint | Date;
  /** The last n entries only. */
  tail?: number;
  signal?: AbortSignal;
}

export interface AttachOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

/**
 * A live attachment. Ending `stdin` half-closes the container's stdin (when it was created with
 * `openStdin` and `stdinOnce`). With a TTY, everything comes on `stdout`.
 */
export interface AttachSession {
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  /** Detach; the container keeps running. */
  close(): void;
  /** Resolves when the monitor closes the stream (the container's output ended). */
  closed: Promise<void>;
}

export interface ExecOptions {
  cmd: string[];
  env?: string[];
  /** `name`, `uid`, `uid:gid`, `name:group`; default the container's user. */
  user?: string;
  workingDir?: string;
  tty?: boolean;
  /** Provide `stdin` (otherwise the process reads /dev/null). */
  stdin?: boolean;
  privileged?: boolean;
}

export interface ExecSession {
  /** Null unless `stdin` was asked for. */
  stdin: Writable | null;
  stdout: Readable;
  /** With a TTY, stderr is merged into stdout and this stream stays empty. */
  stderr: Readable;
  /**
   * Settles once the process runs (resolves) or the OCI runtime could not start it (rejects with
   * ExecStartError carrying the runtime's message). Until then nothing of stderr is passed on, so
   * the runtime's own error never reaches the stream as if the process had written it.
   */
  started: Promise<void>;
  /** The exit code of the process (128+n when killed by signal n); rejects as `started` does. */
  wait(): Promise<number>;
  resize(size: { rows: number; cols: number }): Promise<void>;
  /** Host pid of the runtime's exec process while it runs. */
  readonly pid: number;
}

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

export interface ContainerStats {
  read: Date;
  cpu: { usageNs: bigint; userNs: bigint; systemNs: bigint; onlineCpus: number; systemUsageNs: bigint };
  memory: { usage: number; limit: number; maxUsage: number; cache: number; oomKills: number };
  pids: { current: number; limit: number };
  network: Record<string, { rxBytes: number; rxPackets: number; rxErrors: number; rxDropped: number; txBytes: number; txPackets: number; txErrors: number; txDropped: number }>;
  blkio: { readBytes: number; writeBytes: number };
}

/** Limits that can change on a running container (`docker update`). */
export interface ResourceUpdate {
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  PidsLimit?: number;
  BlkioWeight?: number;
}

export interface StopOptions {
  /** Seconds before SIGKILL; default the container's StopTimeout or 10. */
  timeout?: number;
  /** Default the container's stop signal (image StopSignal or SIGTERM). */
  signal?: string | number;
}

export interface Runtime {
  readonly stateDir: string;
  readonly ociRuntime: OciRuntimeInfo;
  /** The host's cgroup version (1: v1 or hybrid, 2: unified). */
  readonly cgroupVersion: 1 | 2;
  /** What the stale-state sweep at open removed (mounts, cgroups, runtime state, files). */
  readonly cleanedUp: string[];
  /**
   * Writes the bundle, mounts the rootfs and has the monitor run `<runtime> create`. Status `created`.
   * `options.network` is the container's networking while it is still being prepared (a network
   * namespace takes a few processes to set up): the root filesystem is mounted and the user
   * resolved meanwhile, and its fields override the spec's. When it rejects, the create fails
   * with its error and leaves nothing behind.
   */
  create(spec: ContainerSpec, options?: { network?: Promise<Pick<ContainerSpec, 'netns' | 'hosts' | 'resolvConf' | 'hostname'>> }): Promise<ContainerInfo>;
  start(id: string): Promise<void>;
  /** Sends a signal (name like `SIGHUP`/`HUP` or number) to pid 1. */
  kill(id: string, signal?: string | number): Promise<void>;
  /** Stop signal, wait `timeout` seconds, then SIGKILL; resolves with the exit status. Idempotent on stopped containers. */
  stop(id: string, options?: StopOptions): Promise<ExitStatus>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  /** Resolves when the container has stopped (immediately if it has). */
  wait(id: string, options?: { signal?: AbortSignal }): Promise<ExitStatus>;
  /** Removes runtime state, cgroups, the rootfs mount, logs and the bundle. `force` kills a live container first. */
  /**
   * Removes the container. `keepLogs` keeps its log (with rotated files) for the next container
   * created with the same id — as `docker restart` keeps a container's logs across runs.
   */
  delete(id: string, options?: { force?: boolean; keepLogs?: boolean }): Promise<void>;
  state(id: string): Promise<ContainerInfo>;
  list(): Promise<ContainerInfo[]>;
  logs(id: string, options?: LogReadOptions): AsyncIterable<LogEntry>;
  attach(id: string, options?: AttachOptions): Promise<AttachSession>;
  /** Resizes the container's TTY. */
  resize(id: string, size: { rows: number; cols: number }): Promise<void>;
  exec(id: string, options: ExecOptions): Promise<ExecSession>;
  top(id: string, psArgs?: string): Promise<TopResult>;
  stats(id: string): Promise<ContainerStats>;
  update(id: string, resources: ResourceUpdate): Promise<void>;
  /** Rotates now the logs that reached their size (also done every second while open). */
  rotateLogs(): Promise<void>;
  /** Stops watching; containers keep running under their monitors. */
  close(): Promise<void>;
}
