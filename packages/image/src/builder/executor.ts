import type { Mount } from '../snapshot/types.js';

/**
 * How the builder runs a RUN step. The builder does not know about containers: it prepares the
 * root filesystem (as mounts), the process and the extra mounts, and an executor — the daemon
 * composes one from @berth/runtime — runs it in a container and reports the exit code.
 *
 * Contract:
 * - `rootfs` are mounts that together make the container's `/` (today one overlay whose
 *   upperdir collects the step's changes; the builder turns that directory into the layer).
 *   The executor mounts them at the bundle's rootfs and unmounts them before `run` settles.
 * - `mounts` come from `RUN --mount` (bind sources and cache directories on the host, tmpfs,
 *   secret files); targets are absolute container paths. The builder has already checked that
 *   no target resolves through a symlink out of the root (CVE-2024-23651/23652).
 * - `process.user` is numeric (`uid`, `gid`, `additionalGids`); the builder resolves names
 *   from the image's /etc/passwd and /etc/group, as Docker does.
 * - Output is streamed through `onOutput` as it arrives; the executor must not buffer it all,
 *   and stops reading it while `outputReady()` returns a promise.
 * - `run` resolves with the exit code when the process exited (any code); it rejects only
 *   when the container could not be run at all. `signal` aborts the step (kill and clean up).
 * - Nothing of the container (bundle, state, cgroup, netns) survives `run`.
 */
export interface BuildExecutor {
  run(request: BuildRunRequest): Promise<BuildRunResult>;
}

export type BuildNetworkMode = 'default' | 'none' | 'host';

export interface BuildProcess {
  /** argv, already composed from SHELL and the command (shell form) or the exec form. */
  args: string[];
  /** `KEY=value`, in order; PATH is always present. */
  env: string[];
  /** Absolute working directory inside the container (it exists in the rootfs). */
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  /** Hostname inside the build container. */
  hostname: string;
}

export interface BuildRunRequest {
  /** Unique per step run, usable as a container id (`[a-z0-9]`, ≤ 64 characters). */
  id: string;
  rootfs: Mount[];
  process: BuildProcess;
  /** Extra mounts (RUN --mount), in OCI runtime spec form with `target` set. */
  mounts: Mount[];
  network: BuildNetworkMode;
  /** `RUN --security=insecure`: all capabilities, no seccomp (only if the caller allowed it). */
  insecure: boolean;
  /** Called for each chunk the process writes, in order per stream. */
  onOutput(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /**
   * Asked after each chunk: a promise while whoever reads the build's output is behind. The
   * executor stops reading the process's output until it settles, so the process blocks on its
   * pipe instead of the output piling up in memory.
   */
  outputReady?(): Promise<void> | undefined;
  signal?: AbortSignal;
}

export interface BuildRunResult {
  exitCode: number;
}
