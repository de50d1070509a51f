import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeCommandError } from '../errors.js';
import type { HelperServer } from './helper-server.js';

/**
 * The per-container monitor is Debian's conmon (the one Podman uses): it runs `<runtime> create`,
 * holds the container's stdio (pipes, or the pty master it gets on its console socket), writes the
 * k8s-file log, serves the attach socket (`<bundle>/attach`, SOCK_SEQPACKET) and the control fifo
 * (`<bundle>/ctl`: "1 <rows> <cols>" resizes, "2 0 0" reopens the log), and writes the exit code to
 * `<exit dir>/<id>` and `<persist dir>/exit`. It double-forks and setsid()s, so it outlives the
 * process that started it.
 */
export interface MonitorLaunch {
  id: string;
  bundle: string;
  runtimePath: string;
  runtimeRoot: string;
  logPath: string;
  /** conmon truncates the log beyond this (a backstop when nobody rotates). */
  logSizeMax: number;
  exitDir: string;
  persistDir: string;
  pidFile: string;
  conmonPidFile: string;
  monitorLog: string;
  terminal: boolean;
  stdin: boolean;
  /** Keep the container's stdin open when an attached client closes its side. */
  leaveStdinOpen: boolean;
  conmonPath: string;
  /**
   * conmon knows `--no-sync-log` (2.1+): no fsync of the log between the container's exit and
   * conmon's own, which a removal waits for. Docker does not fsync container logs either.
   */
  noSyncLog?: boolean;
}

/** Whether the conmon binary knows `--no-sync-log` (its option table is in the binary). */
export async function conmonHasNoSyncLog(conmonPath: string): Promise<boolean> {
  const bin = await readFile(conmonPath).catch(() => Buffer.alloc(0));
  return bin.includes('no-sync-log');
}

/**
 * conmon's environment: a PATH for the runtime, the sync pipe, and two settings that keep the
 * idle monitor small. conmon forks its long-lived process after starting up: with lazy binding,
 * that child resolves symbols on its first calls, faulting in pages of ld.so and of the libraries'
 * symbol tables that then stay mapped for the container's life (~0.4 MiB of RSS each); binding
 * everything before the fork (LD_BIND_NOW) leaves those pages to the short-lived parent. glib's
 * slice allocator keeps magazines of its own; plain malloc (G_SLICE) is smaller for one loop.
 */
function monitorEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    _OCI_SYNCPIPE: '3',
    LD_BIND_NOW: '1',
    G_SLICE: 'always-malloc',
  };
}

function monitorArgs(o: MonitorLaunch): string[] {
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.id,
    '-n', o.id,
    '-r', o.runtimePath,
    '-b', o.bundle,
    '-p', o.pidFile,
    '-P', o.conmonPidFile,
    '-l', `k8s-file:${o.logPath}`,
    '--exit-dir', o.exitDir,
    '-0', o.persistDir,
    '--full-attach',
    '--socket-dir-path', o.bundle,
    '--runtime-arg', `--root=${o.runtimeRoot}`,
    '--log-level', 'error',
  ];
  if (o.logSizeMax > 0) args.push('--log-size-max', String(o.logSizeMax));
  if (o.terminal) args.push('-t');
  if (o.stdin) args.push('-i');
  if (o.leaveStdinOpen) args.push('--leave-stdin-open');
  if (o.noSyncLog) args.push('--no-sync-log');
  return args;
}

/** Runs conmon as Node's own child; resolves with the first line conmon writes on its sync pipe. */
async function spawnMonitor(o: MonitorLaunch, args: string[]): Promise<string> {
  const errFd = openSync(o.monitorLog, 'a', 0o600);
  try {
    const child = spawn(o.conmonPath, args, {
      stdio: ['ignore', 'ignore', errFd, 'pipe'],
      detached: true,
      env: monitorEnv(),
      cwd: o.bundle,
    });
    child.unref();
    const sync = child.stdio[3] as NodeJS.ReadableStream | null;
    if (!sync) throw new RuntimeCommandError('conmon: no sync pipe');
    const message = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const done = (): void => resolve(buf);
      sync.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        if (buf.includes('\n')) done();
      });
      sync.on('end', done);
      sync.on('error', reject);
      child.on('error', reject);
    });
    (sync as unknown as { destroy(): void }).destroy();
    return message.split('\n')[0] ?? '';
  } finally {
    closeSync(errFd);
  }
}

/**
 * Starts conmon, which runs `<runtime> create`; resolves with the container's pid. With a
 * `launcher` (the helper server), conmon is started by the helper instead of by forking Node.
 */
export async function launchMonitor(o: MonitorLaunch, launcher?: HelperServer): Promise<{ pid: number; monitorPid: number }> {
  const args = monitorArgs(o);
  let message: string;
  if (launcher) {
    const env = Object.entries(monitorEnv()).map(([k, v]) => `${k}=${v}`);
    const r = await launcher.request(['launch', o.bundle, o.monitorLog, String(env.length), ...env, o.conmonPath, ...args]);
    message = r.code === 0 ? r.text : '';
  } else {
    message = await spawnMonitor(o, args);
  }
  let parsed: { data?: number; message?: string } = {};
  try {
    parsed = JSON.parse(message) as { data?: number; message?: string };
  } catch {
    parsed = {};
  }
  if (typeof parsed.data !== 'number' || parsed.data <= 0) {
    const log = await readFile(o.monitorLog, 'utf8').catch(() => '');
    const why = parsed.message ?? log.trim().split('\n').slice(-3).join('; ') ?? 'no message';
    throw new RuntimeCommandError(`creating container ${o.id} failed: ${why || 'conmon exited without a pid'}`);
  }
  const monitorPid = Number((await readFile(o.conmonPidFile, 'utf8').catch(() => '0')).trim()) || 0;
  return { pid: parsed.data, monitorPid };
}

/** Writes one control message to conmon's `ctl` fifo; fails fast (ENXIO) when conmon is gone. */
export async function sendControl(bundle: string, message: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path.join(bundle, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    await fh.write(message);
    return true;
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}
