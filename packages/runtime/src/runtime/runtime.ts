import { validateRuntimeSpec } from '@berth/oci-spec';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, hostname as hostnameOfHost, tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { cgroupPids, detectCgroups, isFrozen, oomKillCount, readCgroupStats, removeCgroup } from '../cgroups/cgroups.js';
import type { CgroupInfo } from '../cgroups/cgroups.js';
import { ContainerExistsError, ExecStartError, InvalidSpecError, InvalidStateError, NoSuchContainerError, RuntimeCommandError } from '../errors.js';
import { isAllowed } from '../lifecycle/state-machine.js';
import type { ContainerStatus, LifecycleOperation } from '../lifecycle/state-machine.js';
import { readLogs, rotateLog } from '../logs/k8s-file.js';
import { conmonHasNoSyncLog, launchMonitor, sendControl } from '../monitor/conmon.js';
import { ensureHelper } from '../monitor/helper.js';
import { HelperServer } from '../monitor/helper-server.js';
import { DEFAULT_SHM_SIZE } from '../spec/defaults.js';
import { boundingCapabilities, buildResources, buildRuntimeSpec, resolveCapabilities, resolveProcessConfig } from '../spec/generate.js';
import type { OciRuntimeSpec } from '../spec/generate.js';
import { resolveInRoot } from '../spec/paths.js';
import type { ContainerSpec, HostConfigOptions } from '../spec/types.js';
import { resolveUser } from '../spec/users.js';
import { OciRuntimeBinary, detectOciRuntime } from './oci.js';
import { runCommand } from './process.js';
import { parseSignal } from './signals.js';
import type {
  AttachOptions,
  AttachSession,
  ContainerInfo,
  ContainerStats,
  ExecOptions,
  ExecSession,
  ExitStatus,
  LogEntry,
  LogReadOptions,
  OciRuntimeInfo,
  ResourceUpdate,
  Runtime,
  RuntimeOptions,
  StopOptions,
  TopResult,
} from './types.js';

export { detectOciRuntime };

const ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024;
const DEFAULT_LOG_MAX_FILES = 3;

/** What is kept on disk per container (`<stateDir>/containers/<id>/container.json`). */
interface ContainerRecord {
  /** `creating` until the monitor reported the container's pid; anything else found then is stale. */
  phase: 'creating' | 'created';
  spec: ContainerSpec;
  runtime: OciRuntimeInfo;
  cgroupsPath: string;
  /** True when the rootfs is our mount (at `<dir>/rootfs`) and must be unmounted. */
  mountedRootfs: boolean;
  rootfsPath: string;
  createdAt: string;
  startedAt?: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat at create: tells the container's pid 1 from a recycled pid. */
  pidStartTime?: string;
  monitorPid: number;
  logMaxSize: number;
  logMaxFiles: number;
  stopSignal: string;
  stopTimeout: number;
  /** The process part of config.json, reused by exec. */
  process: { env: string[]; cwd: string; user: string; caps: string[]; noNewPrivileges: boolean };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function writeAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, file);
}

/** The last error an OCI runtime wrote to its JSON log (`--log-format json`), if any. */
async function runtimeError(logFile: string): Promise<string | undefined> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  let message: string | undefined;
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === 'error' || entry.level === 'fatal') && entry.msg) message = entry.msg;
    } catch {
      // not JSON: a runtime that logs text
    }
  }
  return message;
}

async function hostHardLimits(): Promise<Record<string, number>> {
  const names: Record<string, string> = {
    'Max open files': 'RLIMIT_NOFILE', 'Max processes': 'RLIMIT_NPROC', 'Max core file size': 'RLIMIT_CORE',
    'Max locked memory': 'RLIMIT_MEMLOCK', 'Max stack size': 'RLIMIT_STACK', 'Max file size': 'RLIMIT_FSIZE',
    'Max cpu time': 'RLIMIT_CPU', 'Max data size': 'RLIMIT_DATA', 'Max address space': 'RLIMIT_AS',
    'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING', 'Max msgqueue size': 'RLIMIT_MSGQUEUE',
    'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO', 'Max realtime timeout': 'RLIMIT_RTTIME',
    'Max resident set': 'RLIMIT_RSS',
  };
  const out: Record<string, number> = {};
  const text = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    for (const [label, name] of Object.entries(names)) {
      if (line.startsWith(label)) {
        const hard = line.slice(label.length).trim().split(/\s+/)[1];
        if (hard && hard !== 'unlimited') out[name] = Number(hard);
      }
    }
  }
  return out;
}

async function defaultResolvConf(): Promise<string> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1\b|0\.0\.0\.0)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return `${lines.filter((l, i, a) => l !== '' || i < a.length - 1).join('\n').trim()}\n`;
}

function defaultHosts(hostname: string): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...(hostname ? [`127.0.1.1\t${hostname}`] : []),
    '',
  ].join('\n');
}

async function processStartTime(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // comm (field 2) may contain spaces and parentheses: count from the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
}

/** The process still exists as itself: same start time, and not a zombie waiting to be reaped. */
async function isLive(pid: number, startTime: string | undefined): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text || startTime === undefined) return false;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields[19] === startTime && fields[0] !== 'Z' && fields[0] !== 'X';
}

function mountOptions(m: { options: string[] }): string {
  return m.options.join(',');
}

async function isMounted(target: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text.split('\n').some((l) => l.split(' ')[4] === target);
}

async function unmount(target: string): Promise<boolean> {
  let did = false;
  for (let i = 0; i < 10 && (await isMounted(target)); i++) {
    const r = await runCommand('umount', [target]);
    if (r.code !== 0) await runCommand('umount', ['-l', target]);
    did = true;
  }
  return did;
}

class BerthRuntime implements Runtime {
  readonly cleanedUp: string[] = [];
  private readonly binaries = new Map<string, OciRuntimeBinary>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private rotateTimer: NodeJS.Timeout | undefined;
  private helperPath: Promise<string> | undefined;
  private helperReady: string | undefined;
  private server: HelperServer | undefined;
  private readonly discarding = new Set<Promise<void>>();

  constructor(
    readonly stateDir: string,
    readonly ociRuntime: OciRuntimeInfo,
    private readonly options: RuntimeOptions,
    private readonly cgroups: CgroupInfo,
    private readonly conmonPath: string,
    private readonly conmonNoSyncLog: boolean,
  ) {}

  get cgroupVersion(): 1 | 2 {
    return this.cgroups.version;
  }

  private dir(id: string): string {
    return path.join(this.stateDir, 'containers', id);
  }

  private binary(info: OciRuntimeInfo): OciRuntimeBinary {
    let b = this.binaries.get(info.path);
    if (!b) {
      b = new OciRuntimeBinary(info, path.join(this.stateDir, 'oci', info.name));
      this.binaries.set(info.path, b);
    }
    return b;
  }

  private helper(): Promise<string> {
    if (!this.helperPath) {
      const p = ensureHelper(path.join(this.stateDir, 'bin'));
      this.helperPath = p;
      p.then(
        (file) => (this.helperReady = file),
        () => {
          if (this.helperPath === p) this.helperPath = undefined;
        },
      );
    }
    return this.helperPath;
  }

  /**
   * The helper server once the helper is built: mounts, unmounts and monitor launches go through
   * it rather than through forks of this (large) process. The first container of a state directory
   * starts the build and does without.
   */
  private helperServer(): HelperServer | undefined {
    if (this.helperReady === undefined) {
      this.helper().catch(() => undefined);
      return undefined;
    }
    this.server ??= new HelperServer(this.helperReady);
    return this.server;
  }

  /** Mounts one of the snapshot's mounts at `target` (bind or a filesystem such as overlay). */
  private async mountRootfsPart(id: string, m: { type: string; source: string; options: string[] }, target: string): Promise<void> {
    const server = this.helperServer();
    const viaServer = await server?.request(['mount', m.type, m.source, target, m.options.join(',')]).catch(() => undefined);
    let r: { code: number; stderr: string };
    if (viaServer) {
      r = { code: viaServer.code, stderr: viaServer.text };
    } else {
      const args = m.type === 'bind' ? ['--bind', m.source, target] : ['-t', m.type, m.source, target];
      const opts = m.options.filter((o) => !['bind', 'rbind'].includes(o));
      if (m.options.includes('rbind')) args[0] = '--rbind';
      if (opts.length > 0) args.unshift('-o', mountOptions({ options: opts }));
      r = await runCommand('mount', args);
    }
    if (r.code !== 0) throw new RuntimeCommandError(`mounting the root filesystem of ${id} failed: ${r.stderr.trim()}`);
  }

  /** Unmounts everything at `target`; true when something was. Throws when it stays mounted. */
  private async unmountAll(target: string): Promise<boolean> {
    const r = await this.helperServer()?.request(['umount', target]).catch(() => undefined);
    if (r?.code === 0) return Number(r.text.trim()) > 0;
    const did = await unmount(target);
    if (await isMounted(target)) throw new RuntimeCommandError(`cannot unmount ${target}${r ? `: ${r.text.trim()}` : ''}`);
    return did;
  }

  /** Serialises operations on one container (create/start/stop/delete race otherwise). */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await next;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  private async record(id: string): Promise<ContainerRecord> {
    if (!ID.test(id)) throw new NoSuchContainerError(id);
    try {
      return JSON.parse(await readFile(path.join(this.dir(id), 'container.json'), 'utf8')) as ContainerRecord;
    } catch (cause) {
      throw new NoSuchContainerError(id, { cause });
    }
  }

  private async saveRecord(id: string, rec: ContainerRecord): Promise<void> {
    await writeAtomic(path.join(this.dir(id), 'container.json'), JSON.stringify(rec));
  }

  private async exitFile(id: string): Promise<{ exitCode: number; finishedAt: Date } | undefined> {
    const file = path.join(this.dir(id), 'exit');
    try {
      const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      const n = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) return undefined;
      return { exitCode: n, finishedAt: st.mtime };
    } catch {
      return undefined;
    }
  }

  /**
   * Wakes a waiter when conmon writes the container's exit file: inotify on its directory, with a
   * timer as the fallback (a missed event, no inotify, or a monitor that died without writing it).
   */
  private exitWatch(id: string): { tick(ms: number, signal?: AbortSignal): Promise<void>; close(): void } {
    let wake: (() => void) | undefined;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.dir(id), (_event, name) => {
        if (name === 'exit' || name === null) wake?.();
      });
      watcher.on('error', () => undefined);
    } catch {
      watcher = undefined;
    }
    return {
      tick: (ms, signal) =>
        new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, ms);
          wake = done;
          signal?.addEventListener('abort', done, { once: true });
        }),
      close: () => watcher?.close(),
    };
  }

  /** The exit file once it appears, or undefined after `ms`. */
  private async exitSoon(id: string, ms: number): Promise<{ exitCode: number; finishedAt: Date } | undefined> {
    const exits = this.exitWatch(id);
    const deadline = Date.now() + ms;
    try {
      for (;;) {
        const e = await this.exitFile(id);
        const left = deadline - Date.now();
        if (e || left <= 0) return e;
        await exits.tick(Math.min(left, 50));
      }
    } finally {
      exits.close();
    }
  }

  private async oomKilled(id: string, rec: ContainerRecord): Promise<boolean> {
    if (existsSync(path.join(this.dir(id), 'oom'))) return true;
    const recorded = await readFile(path.join(this.dir(id), 'oom-kills'), 'utf8').catch(() => '');
    if (Number(recorded) > 0) return true;
    return (await oomKillCount(this.cgroups, rec.cgroupsPath)) > 0;
  }

  /**
   * The container's state from files alone when possible (the exit file, /proc/<pid> with its start
   * time, the freezer), asking the OCI runtime only when the files cannot tell: before a start was
   * recorded, or when the process is gone and no exit file has appeared.
   */
  private async status(id: string, rec: ContainerRecord): Promise<{ status: ContainerStatus; pid: number; exit?: { exitCode: number; finishedAt: Date } }> {
    const exit = await this.exitFile(id);
    if (exit) return { status: 'stopped', pid: 0, exit };
    const startTime = rec.pid > 0 && rec.pidStartTime ? await processStartTime(rec.pid) : undefined;
    if (startTime !== undefined && startTime !== rec.pidStartTime) {
      // Recycled pid: ours is gone.
    } else if (startTime === undefined && rec.pid > 0 && rec.pidStartTime && rec.monitorPid > 0 && existsSync(`/proc/${rec.monitorPid}`)) {
      // pid 1 is gone and its monitor lives: the monitor is writing the exit file right now.
      const e = await this.exitSoon(id, 2000);
      if (e) return { status: 'stopped', pid: 0, exit: e };
    }
    if (startTime !== undefined && startTime === rec.pidStartTime) {
      // Until `start`, pid 1 is the runtime's init waiting on its exec fifo (runc: "runc:[2:INIT]");
      // just after a start it may still carry that name for a moment before its execve.
      const comm = (await readFile(`/proc/${rec.pid}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'runc:[2:INIT]' && !rec.startedAt) return { status: 'created', pid: rec.pid };
      if (rec.startedAt || rec.runtime.name === 'runc') {
        return { status: (await isFrozen(this.cgroups, rec.cgroupsPath)) ? 'paused' : 'running', pid: rec.pid };
      }
    }
    const s = await this.binary(rec.runtime).state(id);
    if (!s || s.status === 'stopped') {
      // The monitor writes the exit file right after the process is reaped; give it a moment.
      const e = await this.exitSoon(id, 500);
      if (e) return { status: 'stopped', pid: 0, exit: e };
      return { status: 'stopped', pid: 0, exit: { exitCode: 255, finishedAt: new Date() } };
    }
    if (s.status === 'creating') return { status: 'created', pid: s.pid };
    return { status: s.status, pid: s.pid };
  }

  private async info(id: string, rec: ContainerRecord): Promise<ContainerInfo> {
    const st = await this.status(id, rec);
    const monitorAlive = rec.monitorPid > 0 && existsSync(`/proc/${rec.monitorPid}`);
    return {
      id,
      ...(rec.spec.name ? { name: rec.spec.name } : {}),
      status: st.status,
      pid: st.pid,
      monitorPid: monitorAlive ? rec.monitorPid : 0,
      createdAt: new Date(rec.createdAt),
      ...(rec.startedAt ? { startedAt: new Date(rec.startedAt) } : {}),
      ...(st.exit ? { finishedAt: st.exit.finishedAt, exitCode: st.exit.exitCode } : {}),
      oomKilled: st.status === 'stopped' ? await this.oomKilled(id, rec) : false,
      bundle: this.dir(id),
      logPath: path.join(this.dir(id), 'ctr.log'),
      runtime: rec.runtime.name,
      spec: rec.spec,
    };
  }

  private async guard(id: string, op: LifecycleOperation, force = false): Promise<{ rec: ContainerRecord; status: ContainerStatus; pid: number }> {
    const rec = await this.record(id);
    if (rec.phase !== 'created') throw new InvalidStateError(id, op, 'being created');
    const st = await this.status(id, rec);
    if (!isAllowed(op, st.status, force)) throw new InvalidStateError(id, op, st.status);
    return { rec, status: st.status, pid: st.pid };
  }

  /** The namespaces of the running containers that `PidMode`/`IpcMode` `container:<id>` name. */
  private async sharedNamespaces(host: HostConfigOptions, ownShm: string | undefined): Promise<{ pid?: string; ipc?: string; ipcShm?: string; ownShm?: string }> {
    const out: { pid?: string; ipc?: string; ipcShm?: string; ownShm?: string } = ownShm ? { ownShm } : {};
    for (const [kind, mode] of [['pid', host.PidMode], ['ipc', host.IpcMode]] as const) {
      if (!mode?.startsWith('container:')) continue;
      const other = mode.slice('container:'.length);
      let pid = 0;
      try {
        const st = await this.guard(other, 'exec');
        pid = st.pid;
      } catch (cause) {
        throw new InvalidSpecError(`cannot join the ${kind === 'pid' ? 'PID' : 'IPC'} namespace of container ${other}: ${(cause as Error).message}`, { cause });
      }
      out[kind] = `/proc/${pid}/ns/${kind}`;
      if (kind === 'ipc') {
        // Only a container that keeps its /dev/shm on the host (IpcMode shareable) can lend it.
        const shm = path.join(this.dir(other), 'shm');
        if (!(await isMounted(shm))) {
          throw new InvalidSpecError(`can't join IPC of container ${other}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
        }
        out.ipcShm = shm;
      }
    }
    return out;
  }

  // ── create ────────────────────────────────────────────────────────────────────────────────

  async create(spec: ContainerSpec, options: { network?: Promise<Pick<ContainerSpec, 'netns' | 'hosts' | 'resolvConf' | 'hostname'>> } = {}): Promise<ContainerInfo> {
    // A create that fails before it needs the network must not leave its rejection unhandled.
    options.network?.catch(() => undefined);
    if (!ID.test(spec.id)) throw new InvalidSpecError(`invalid container id: ${spec.id}`);
    resolveProcessConfig(spec); // fail early on a bad config, before anything is on disk
    return this.locked(spec.id, async () => {
      const dir = this.dir(spec.id);
      await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
      try {
        await mkdir(dir, { mode: 0o700 });
      } catch (cause) {
        throw new ContainerExistsError(spec.id, { cause });
      }
      try {
        // Logs kept by `delete(id, { keepLogs: true })`: the new run appends to them.
        const kept = this.keptLogsDir(spec.id);
        if (existsSync(kept)) {
          await this.moveLogs(kept, dir);
          await rm(kept, { recursive: true, force: true });
        }
        return await this.createIn(spec, dir, options.network);
      } catch (error) {
        await this.removeEverything(spec.id).catch(() => undefined);
        throw error;
      }
    });
  }

  private async createIn(
    requested: ContainerSpec,
    dir: string,
    network: Promise<Pick<ContainerSpec, 'netns' | 'hosts' | 'resolvConf' | 'hostname'>> | undefined,
  ): Promise<ContainerInfo> {
    let spec = requested;
    const runtime = spec.runtime ? await detectOciRuntime({ preferred: spec.runtime, workDir: path.join(this.stateDir, 'probe') }) : this.ociRuntime;
    const proc = resolveProcessConfig(spec);
    const cgroupsPath = `/${(this.options.cgroupParent ?? 'berth').replace(/^\/+|\/+$/g, '')}/${spec.id}`;
    const rec: ContainerRecord = {
      phase: 'creating',
      spec,
      runtime,
      cgroupsPath,
      mountedRootfs: 'mounts' in spec.rootfs,
      rootfsPath: 'mounts' in spec.rootfs ? path.join(dir, 'rootfs') : path.resolve(spec.rootfs.path),
      createdAt: new Date().toISOString(),
      pid: 0,
      monitorPid: 0,
      logMaxSize: spec.logs?.maxSize ?? this.options.logs?.maxSize ?? DEFAULT_LOG_MAX_SIZE,
      logMaxFiles: Math.max(1, spec.logs?.maxFiles ?? this.options.logs?.maxFiles ?? DEFAULT_LOG_MAX_FILES),
      stopSignal: proc.stopSignal,
      stopTimeout: proc.stopTimeout,
      process: { env: [], cwd: proc.cwd, user: proc.user, caps: resolveCapabilities(spec.hostConfig ?? {}), noNewPrivileges: false },
    };
    parseSignal(rec.stopSignal);
    await this.saveRecord(spec.id, rec);

    // Root filesystem: mount the snapshot's mounts (overlay or bind) at <dir>/rootfs.
    if ('mounts' in spec.rootfs) {
      await mkdir(rec.rootfsPath, { mode: 0o755 });
      for (const m of spec.rootfs.mounts) {
        const target = m.target ? await resolveInRoot(rec.rootfsPath, m.target) : rec.rootfsPath;
        await this.mountRootfsPart(spec.id, m, target);
      }
    } else if (!existsSync(rec.rootfsPath)) {
      throw new InvalidSpecError(`root filesystem does not exist: ${rec.rootfsPath}`);
    }

    const host = spec.hostConfig ?? {};
    // IpcMode shareable: /dev/shm is a tmpfs on the host (<dir>/shm), which others can join.
    let ownShm: string | undefined;
    if (host.IpcMode === 'shareable') {
      ownShm = path.join(dir, 'shm');
      await mkdir(ownShm, { mode: 0o700 });
      const size = host.ShmSize && host.ShmSize > 0 ? host.ShmSize : DEFAULT_SHM_SIZE;
      await this.mountRootfsPart(spec.id, { type: 'tmpfs', source: 'shm', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${size}`] }, ownShm);
    }
    const user = await resolveUser(rec.rootfsPath, proc.user, host.GroupAdd);
    // Working directory: created if missing (owned by root, as Docker does).
    const cwd = await resolveInRoot(rec.rootfsPath, proc.cwd);
    if (!existsSync(cwd)) await mkdir(cwd, { recursive: true, mode: 0o755 });

    if (network) {
      spec = { ...spec, ...(await network) };
      rec.spec = spec;
    }
    const netns = spec.netns ?? 'none';
    // The host's UTS namespace (or network) means the host's name in /etc/hostname.
    const hostname = host.UTSMode === 'host' ? hostnameOfHost() : (spec.hostname ?? (netns === 'host' ? '' : spec.id.slice(0, 12)));
    const files = {
      hosts: path.join(dir, 'hosts'),
      hostname: path.join(dir, 'hostname'),
      resolvConf: path.join(dir, 'resolv.conf'),
    };
    await Promise.all([
      writeFile(files.hosts, spec.hosts ?? defaultHosts(hostname), { mode: 0o644 }),
      writeFile(files.hostname, `${hostname}\n`, { mode: 0o644 }),
      (spec.resolvConf !== undefined ? Promise.resolve(spec.resolvConf) : defaultResolvConf()).then((text) => writeFile(files.resolvConf, text, { mode: 0o644 })),
    ]);
    const initPath = ['/usr/bin/tini-static', '/usr/bin/catatonit', '/usr/bin/docker-init'].find((p) => existsSync(p));
    const oci = await buildRuntimeSpec(spec, {
      rootfsPath: rec.rootfsPath,
      ociVersion: runtime.specVersion,
      cgroupsPath,
      cgroupVersion: this.cgroups.version,
      user,
      files,
      hostHardLimits: await hostHardLimits(),
      boundingCapabilities: await boundingCapabilities(),
      sharedNamespaces: await this.sharedNamespaces(host, ownShm),
      ...(initPath ? { initPath } : {}),
      swapAccounting: this.cgroups.swapAccounting,
      blkioWeight: this.cgroups.blkioWeight,
      controllers: this.cgroups.controllers,
    });
    try {
      validateRuntimeSpec(oci);
    } catch (cause) {
      throw new InvalidSpecError(`the bundle generated for ${spec.id} is not a valid OCI runtime spec: ${(cause as Error).message}`, { cause });
    }
    await writeAtomic(path.join(dir, 'config.json'), JSON.stringify(oci, null, 2));
    rec.process = {
      env: oci.process.env,
      cwd: oci.process.cwd,
      user: proc.user,
      caps: oci.process.capabilities.bounding,
      noNewPrivileges: oci.process.noNewPrivileges,
    };

    const { pid, monitorPid } = await launchMonitor({
      id: spec.id,
      bundle: dir,
      runtimePath: runtime.path,
      runtimeRoot: this.binary(runtime).root,
      logPath: path.join(dir, 'ctr.log'),
      // No size cap in conmon: its cap truncates (and counts bytes across our reopens), losing
      // recent lines. Rotation is done by the runtime while a process has it open.
      logSizeMax: -1,
      exitDir: path.join(dir, 'exits'),
      persistDir: dir,
      pidFile: path.join(dir, 'pidfile'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      monitorLog: path.join(dir, 'monitor.log'),
      terminal: spec.tty === true,
      stdin: spec.openStdin === true,
      leaveStdinOpen: spec.stdinOnce !== true,
      conmonPath: this.conmonPath,
      noSyncLog: this.conmonNoSyncLog,
    }, this.helperServer());
    rec.pid = pid;
    const startTime = await processStartTime(pid);
    if (startTime) rec.pidStartTime = startTime;
    rec.monitorPid = monitorPid;
    rec.phase = 'created';
    await this.saveRecord(spec.id, rec);
    return this.info(spec.id, rec);
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────

  async start(id: string): Promise<void> {
    await this.locked(id, async () => {
      const { rec } = await this.guard(id, 'start');
      await this.binary(rec.runtime).start(id, () => isLive(rec.pid, rec.pidStartTime));
      rec.startedAt = new Date().toISOString();
      await this.saveRecord(id, rec);
    });
  }

  async kill(id: string, signal: string | number = 'SIGKILL'): Promise<void> {
    const sig = parseSignal(signal);
    const { rec } = await this.guard(id, 'kill');
    await this.binary(rec.runtime).run(['kill', id, String(sig)], `kill ${id}`).catch(async (error: unknown) => {
      // It may have exited between the guard and the kill: that is not an error.
      if ((await this.status(id, rec)).status !== 'stopped') throw error;
    });
  }

  async stop(id: string, options: StopOptions = {}): Promise<ExitStatus> {
    const rec = await this.record(id);
    const st = await this.status(id, rec);
    if (st.status === 'stopped') return this.wait(id);
    const timeout = options.timeout ?? rec.stopTimeout;
    const runtime = this.binary(rec.runtime);
    if (st.status === 'paused') await runtime.run(['resume', id], `unpause ${id}`).catch(() => undefined);
    if (timeout > 0 || timeout < 0) {
      await this.kill(id, options.signal ?? rec.stopSignal).catch(() => undefined);
      const ac = new AbortController();
      const timer = timeout > 0 ? setTimeout(() => ac.abort(), timeout * 1000) : undefined;
      try {
        return await this.wait(id, { signal: ac.signal });
      } catch {
        // timed out: fall through to SIGKILL
      } finally {
        if (timer) clearTimeout(timer);
      }
    }
    await this.kill(id, 'SIGKILL').catch(() => undefined);
    return this.wait(id);
  }

  async pause(id: string): Promise<void> {
    await this.locked(id, async () => {
      const { rec } = await this.guard(id, 'pause');
      await this.binary(rec.runtime).run(['pause', id], `pause ${id}`);
    });
  }

  async unpause(id: string): Promise<void> {
    await this.locked(id, async () => {
      const { rec } = await this.guard(id, 'unpause');
      await this.binary(rec.runtime).run(['resume', id], `unpause ${id}`);
    });
  }

  async wait(id: string, options: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    const rec = await this.record(id);
    // conmon writes <dir>/exit when the container is reaped: inotify wakes us at once, the
    // timer is the fallback (and checks for a monitor that died without writing it).
    const exits = this.exitWatch(id);
    try {
      for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
        const exit = await this.exitFile(id);
        if (exit) {
          const oomKilled = await this.oomKilled(id, rec);
          return { exitCode: exit.exitCode, oomKilled, finishedAt: exit.finishedAt };
        }
        if (options.signal?.aborted) throw new RuntimeCommandError(`waiting for ${id} was aborted`, { cause: options.signal.reason });
        // A monitor that died without an exit file: ask the runtime.
        if (rec.phase === 'created' && rec.monitorPid > 0 && !existsSync(`/proc/${rec.monitorPid}`)) {
          const st = await this.status(id, rec);
          if (st.status === 'stopped') return { exitCode: st.exit?.exitCode ?? 255, oomKilled: await this.oomKilled(id, rec), finishedAt: st.exit?.finishedAt ?? new Date() };
        }
        await exits.tick(delay, options.signal);
      }
    } finally {
      exits.close();
    }
  }

  async delete(id: string, options: { force?: boolean; keepLogs?: boolean } = {}): Promise<void> {
    await this.locked(id, async () => {
      const kept = this.keptLogsDir(id);
      // Without keepLogs, logs an earlier delete kept go too (even when the container is gone).
      if (options.keepLogs !== true) await rm(kept, { recursive: true, force: true });
      const rec = await this.record(id);
      if (rec.phase === 'created') {
        const st = await this.status(id, rec);
        if (!isAllowed('delete', st.status, options.force === true)) throw new InvalidStateError(id, 'delete', st.status);
        if (st.status !== 'stopped' && st.status !== 'created') {
          const runtime = this.binary(rec.runtime);
          if (st.status === 'paused') await runtime.run(['resume', id], `unpause ${id}`).catch(() => undefined);
          await runtime.run(['kill', id, '9'], `kill ${id}`).catch(() => undefined);
          const ac = new AbortController();
          const t = setTimeout(() => ac.abort(), 10_000);
          await this.wait(id, { signal: ac.signal }).catch(() => undefined);
          clearTimeout(t);
        }
      }
      if (options.keepLogs === true) {
        await rm(kept, { recursive: true, force: true });
        await this.moveLogs(this.dir(id), kept);
      }
      await this.removeEverything(id);
    });
  }

  /** Where `delete(id, { keepLogs: true })` leaves a container's logs for its next create. */
  private keptLogsDir(id: string): string {
    return path.join(this.stateDir, 'kept-logs', id);
  }

  /** Moves `ctr.log` and its rotated files from one directory to another (same filesystem). */
  private async moveLogs(from: string, to: string): Promise<void> {
    const names = (await readdir(from).catch(() => [] as string[])).filter((n) => n === 'ctr.log' || /^ctr\.log\.\d+$/.test(n));
    if (names.length === 0) return;
    await mkdir(to, { recursive: true, mode: 0o700 });
    for (const n of names) await rename(path.join(from, n), path.join(to, n));
  }

  /**
   * Removes a directory of ours at the cost of one rename: it moves to `<stateDir>/trash` and is
   * deleted from there in the background (`close()` waits for that; `sweep()` empties the trash a
   * crash left). Callers unmount what was mounted inside first.
   */
  private async discard(dir: string): Promise<void> {
    const trash = path.join(this.stateDir, 'trash');
    const target = path.join(trash, `${path.basename(dir)}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, target);
    } catch {
      await mkdir(trash, { recursive: true, mode: 0o700 }).catch(() => undefined);
      try {
        await rename(dir, target);
      } catch {
        await rm(dir, { recursive: true, force: true }); // another filesystem, or gone
        return;
      }
    }
    const job: Promise<void> = rm(target, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(() => this.discarding.delete(job));
    this.discarding.add(job);
  }

  /** Idempotent teardown: runtime state, monitor, cgroups, rootfs mount, directory. */
  private async removeEverything(id: string): Promise<string[]> {
    const removed: string[] = [];
    const dir = this.dir(id);
    let rec: ContainerRecord | undefined;
    try {
      rec = JSON.parse(await readFile(path.join(dir, 'container.json'), 'utf8')) as ContainerRecord;
    } catch {
      rec = undefined;
    }
    const runtimes = rec?.runtime?.path ? [this.binary(rec.runtime)] : [...new Set([...this.binaries.values(), this.binary(this.ociRuntime)])];
    const reaped = existsSync(path.join(dir, 'exit')); // conmon reaped pid 1: nothing of it runs
    for (const rt of runtimes) {
      const state = path.join(rt.root, id);
      if (!existsSync(state)) continue;
      if (reaped && rt.info.name === 'runc') {
        // What `runc delete` does for a stopped container (its cgroup goes below), without
        // starting another Go binary: the state directory is runc's record of the container.
        await this.discard(state);
        removed.push(`runtime state ${id}`);
        continue;
      }
      const r = await runCommand(rt.info.path, ['--root', rt.root, 'delete', '--force', id]);
      if (r.code === 0) removed.push(`runtime state ${id}`);
    }
    const monitorPid = rec?.monitorPid ?? Number((await readFile(path.join(dir, 'conmon.pid'), 'utf8').catch(() => '0')).trim());
    if (monitorPid > 0 && existsSync(`/proc/${monitorPid}`)) {
      const cmdline = await readFile(`/proc/${monitorPid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(dir)) {
        // conmon exits by itself once the container is gone; wait a little, then make sure.
        for (let waited = 0, d = 2; waited < 1000 && existsSync(`/proc/${monitorPid}`); waited += d, d = Math.min(d * 2, 25)) await sleep(d);
        try {
          process.kill(monitorPid, 'SIGKILL');
          removed.push(`monitor ${monitorPid}`);
        } catch {
          // gone
        }
      }
    }
    const cgroupsPath = rec?.cgroupsPath ?? `/${(this.options.cgroupParent ?? 'berth').replace(/^\/+|\/+$/g, '')}/${id}`;
    // The cgroup and the directory (after its rootfs mount) are independent: both at once.
    const [cgroups] = await Promise.all([
      removeCgroup(this.cgroups, cgroupsPath),
      (async () => {
        const rootfs = path.join(dir, 'rootfs');
        const shm = path.join(dir, 'shm');
        // Never delete through a mount: a bind-mounted rootfs would take its source with it.
        try {
          if (existsSync(shm) && (await this.unmountAll(shm))) removed.push(`mount ${shm}`);
          if (existsSync(rootfs) && (await this.unmountAll(rootfs))) removed.push(`mount ${rootfs}`);
        } catch (cause) {
          throw new RuntimeCommandError(`cannot unmount the root filesystem of ${id} at ${rootfs}; leaving ${dir} in place`, { cause });
        }
        if (existsSync(dir)) {
          await this.discard(dir);
          removed.push(dir);
        }
      })(),
    ]);
    removed.push(...cgroups);
    return removed;
  }

  // ── queries ───────────────────────────────────────────────────────────────────────────────

  async state(id: string): Promise<ContainerInfo> {
    const rec = await this.record(id);
    if (rec.phase !== 'created') throw new NoSuchContainerError(id);
    return this.info(id, rec);
  }

  async list(): Promise<ContainerInfo[]> {
    const ids = await readdir(path.join(this.stateDir, 'containers')).catch(() => [] as string[]);
    const out: ContainerInfo[] = [];
    for (const id of ids) {
      try {
        out.push(await this.state(id));
      } catch {
        // being created or removed
      }
    }
    return out;
  }

  async *logs(id: string, options: LogReadOptions = {}): AsyncGenerator<LogEntry> {
    const rec = await this.record(id);
    const logPath = path.join(this.dir(id), 'ctr.log');
    yield* readLogs(logPath, rec.logMaxFiles, options, async () => (await this.exitFile(id)) !== undefined || !existsSync(this.dir(id)));
  }

  /** Rotates the logs of live containers past their size (conmon reopens on "2 0 0"). */
  private async rotateAll(): Promise<void> {
    const ids = await readdir(path.join(this.stateDir, 'containers')).catch(() => [] as string[]);
    for (const id of ids) {
      const dir = this.dir(id);
      const logPath = path.join(dir, 'ctr.log');
      try {
        const st = await stat(logPath);
        const rec = await this.record(id);
        if (rec.logMaxSize > 0 && st.size >= rec.logMaxSize) {
          await rotateLog(logPath, rec.logMaxFiles);
          if (!(await sendControl(dir, '2 0 0\n'))) {
            // No monitor listening (the container has exited): nothing writes the old file any more.
          }
        }
      } catch {
        // gone meanwhile
      }
    }
  }

  startRotation(intervalMs = 1000): void {
    const tick = (): void => {
      this.rotateTimer = setTimeout(() => {
        this.rotateAll().finally(tick).catch(() => undefined);
      }, intervalMs);
      this.rotateTimer.unref();
    };
    tick();
  }

  /** Rotates now (tests, and callers that write a lot and want rotation without waiting). */
  async rotateLogs(): Promise<void> {
    await this.rotateAll();
  }

  // ── attach, exec, resize ──────────────────────────────────────────────────────────────────

  async attach(id: string, options: AttachOptions = {}): Promise<AttachSession> {
    const { rec } = await this.guard(id, 'attach');
    const wantStdin = options.stdin === true && rec.spec.openStdin === true;
    const helper = await this.helper();
    const child = spawn(helper, ['attach', ...(wantStdin ? ['-i'] : []), this.dir(id), 'attach'], {
      stdio: [wantStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    for (const s of child.stdio) (s as NodeJS.EventEmitter | null)?.on('error', () => undefined);
    const ready = child.stdio[3] as Readable;
    await new Promise<void>((resolve, reject) => {
      let errText = '';
      child.stderr?.on('data', (d: Buffer) => (errText += d.toString()));
      ready.once('data', () => resolve());
      child.once('exit', (code) => reject(new RuntimeCommandError(`attach to ${id} failed (${code}): ${errText.trim()}`)));
      child.once('error', reject);
    });
    ready.destroy();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    if (options.stdout !== false) child.stdout?.pipe(stdout);
    else child.stdout?.resume().on('end', () => stdout.end());
    const helperErr = child.stderr as Readable;
    if (options.stderr !== false) helperErr.pipe(stderr);
    else helperErr.resume().on('end', () => stderr.end());
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    return {
      stdin: wantStdin ? (child.stdin as Writable) : null,
      stdout,
      stderr,
      close: () => {
        try {
          child.kill('SIGTERM');
        } catch {
          // gone
        }
      },
      closed,
    };
  }

  async resize(id: string, size: { rows: number; cols: number }): Promise<void> {
    const { rec } = await this.guard(id, 'resize');
    if (!rec.spec.tty) throw new InvalidStateError(id, 'resize', 'not using a TTY');
    const ok = await sendControl(this.dir(id), `1 ${Math.trunc(size.rows)} ${Math.trunc(size.cols)}\n`);
    if (!ok) throw new RuntimeCommandError(`resize of ${id} failed: its monitor is not listening`);
  }

  async exec(id: string, options: ExecOptions): Promise<ExecSession> {
    const { rec } = await this.guard(id, 'exec');
    if (options.cmd.length === 0) throw new InvalidSpecError(`exec in ${id}: no command`);
    const user = await resolveUser(rec.rootfsPath, options.user ?? rec.process.user, options.user ? [] : rec.spec.hostConfig?.GroupAdd);
    const env = new Map<string, string>();
    for (const e of [...rec.process.env, ...(options.env ?? [])]) {
      const i = e.indexOf('=');
      if (i > 0) env.set(e.slice(0, i), e);
    }
    if (options.tty && !env.has('TERM')) env.set('TERM', 'TERM=xterm');
    const caps = options.privileged ? resolveCapabilities({ Privileged: true }, await boundingCapabilities()) : rec.process.caps;
    const processSpec: OciRuntimeSpec['process'] = {
      terminal: options.tty === true,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args: options.cmd,
      env: [...env.values()],
      cwd: options.workingDir ?? rec.process.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [],
      noNewPrivileges: rec.process.noNewPrivileges,
    };
    const execId = randomBytes(6).toString('hex');
    const specFile = path.join(this.dir(id), `exec-${execId}.json`);
    await writeFile(specFile, JSON.stringify(processSpec), { mode: 0o600 });
    const runtime = this.binary(rec.runtime);
    const dir = this.dir(id);
    const pidName = `exec-${execId}.pid`;
    const pidFile = path.join(dir, pidName);
    const logFile = path.join(dir, `exec-${execId}.log`);
    // The runtime's own errors go to a log of their own (JSON), so that a process that could not
    // be started is told apart from one that ran and failed.
    const runtimeArgs = ['--root', runtime.root, '--log', logFile, '--log-format', 'json', 'exec', '--process', specFile, '--pid-file', pidFile];
    let child;
    if (options.tty) {
      const sock = path.join(tmpdir(), `berth-exec-${execId}.sock`);
      const helper = await this.helper();
      // runc hands a pty only to a detached process; the helper is its subreaper and reports its exit.
      child = spawn(helper, ['console', sock, pidFile, '--', runtime.info.path, ...runtimeArgs, '--detach', '--console-socket', sock, id], {
        stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
      });
    } else {
      child = spawn(runtime.info.path, [...runtimeArgs, id], { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    }
    // The exit code is final at 'exit'; 'close' waits for the stdio pipes, which a background
    // process left in the container may hold open. Give the output a moment to drain, no more.
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      const code = (c: number | null, signal: NodeJS.Signals | null): number => c ?? 128 + (signal ? parseSignal(signal) : 1);
      child.once('close', (c, signal) => resolve(code(c, signal)));
      child.once('exit', (c, signal) => setTimeout(() => resolve(code(c, signal)), 200).unref());
    });
    // Started once the runtime wrote the pid file; not started when it exited with an error in its
    // log and no pid file.
    const started = new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        watcher?.close();
        if (error) reject(error);
        else resolve();
      };
      let watcher: FSWatcher | undefined;
      try {
        watcher = watch(dir, (_event, name) => {
          if (name === pidName) settle();
        });
        watcher.on('error', () => undefined);
      } catch {
        // no watch: the exit decides
      }
      if (existsSync(pidFile)) settle();
      exited.then(
        async (code) => {
          if (code === 0 || settled) return settle();
          const message = await runtimeError(logFile);
          settle(message !== undefined && !existsSync(pidFile) ? new ExecStartError(message) : undefined);
        },
        (error: Error) => settle(error),
      );
    });
    started.catch(() => undefined);
    const waited = Promise.all([exited, started])
      .then(([code]) => code)
      .finally(() => Promise.all([rm(specFile, { force: true }), rm(pidFile, { force: true }), rm(logFile, { force: true })]).catch(() => undefined));
    waited.catch(() => undefined);
    for (const s of child.stdio) (s as NodeJS.EventEmitter | null)?.on('error', () => undefined);
    // stderr is held until the process runs: before that, all it could carry is the runtime's error.
    const stderr = new PassThrough();
    started.then(
      () => (child.stderr as Readable).pipe(stderr),
      () => {
        (child.stderr as Readable).resume();
        stderr.end();
      },
    );
    const ctl = options.tty ? (child.stdio[3] as Writable) : undefined;
    return {
      stdin: options.stdin ? (child.stdin as Writable) : null,
      stdout: child.stdout as Readable,
      stderr,
      started,
      wait: () => waited,
      resize: async (size) => {
        if (!ctl) throw new InvalidStateError(id, 'resize exec', 'not using a TTY');
        ctl.write(`${Math.trunc(size.rows)} ${Math.trunc(size.cols)}\n`);
      },
      pid: child.pid ?? 0,
    };
  }

  // ── top, stats, update ────────────────────────────────────────────────────────────────────

  async top(id: string, psArgs = '-ef'): Promise<TopResult> {
    const { rec, status } = await this.guard(id, 'exec', true);
    if (status !== 'running' && status !== 'paused') throw new InvalidStateError(id, 'top', status);
    const pids = new Set(await cgroupPids(this.cgroups, rec.cgroupsPath));
    const r = await runCommand('ps', psArgs.split(/\s+/).filter(Boolean));
    if (r.code !== 0) throw new RuntimeCommandError(`ps ${psArgs} failed: ${r.stderr.trim()}`);
    const lines = r.stdout.split('\n').filter(Boolean);
    const header = lines.shift() ?? '';
    const titles = header.trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw new InvalidSpecError(`ps ${psArgs} has no PID column`);
    const processes: string[][] = [];
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      if (!pids.has(Number(fields[pidCol]))) continue;
      const head = fields.slice(0, titles.length - 1);
      processes.push([...head, fields.slice(titles.length - 1).join(' ')]);
    }
    return { Titles: titles, Processes: processes };
  }

  async stats(id: string): Promise<ContainerStats> {
    const rec = await this.record(id);
    const st = await this.status(id, rec);
    const cg = await readCgroupStats(this.cgroups, rec.cgroupsPath);
    const network: ContainerStats['network'] = {};
    if (st.pid > 0 && (rec.spec.netns ?? 'none') !== 'host') {
      const dev = await readFile(`/proc/${st.pid}/net/dev`, 'utf8').catch(() => '');
      for (const line of dev.split('\n').slice(2)) {
        const [name, rest] = line.split(':');
        if (!name || !rest) continue;
        const f = rest.trim().split(/\s+/).map(Number);
        network[name.trim()] = {
          rxBytes: f[0] ?? 0, rxPackets: f[1] ?? 0, rxErrors: f[2] ?? 0, rxDropped: f[3] ?? 0,
          txBytes: f[8] ?? 0, txPackets: f[9] ?? 0, txErrors: f[10] ?? 0, txDropped: f[11] ?? 0,
        };
      }
    }
    const procStat = await readFile('/proc/stat', 'utf8').catch(() => '');
    const cpuLine = procStat.split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const systemUsageNs = BigInt(cpuLine.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0)) * 10_000_000n;
    return {
      read: new Date(),
      cpu: { ...cg.cpu, onlineCpus: cpus().length, systemUsageNs },
      memory: cg.memory,
      pids: cg.pids,
      network,
      blkio: cg.blkio,
    };
  }

  async update(id: string, resources: ResourceUpdate): Promise<void> {
    await this.locked(id, async () => {
      const { rec } = await this.guard(id, 'update');
      const merged = { ...(rec.spec.hostConfig ?? {}), ...resources };
      const res = buildResources(merged, { swapAccounting: this.cgroups.swapAccounting, blkioWeight: this.cgroups.blkioWeight, controllers: this.cgroups.controllers, cgroupVersion: this.cgroups.version });
      const { devices: _devices, ...rest } = res;
      // Memory going down below memsw needs memsw lowered first; runc orders this itself.
      await this.binary(rec.runtime).run(['update', '--resources', '-', id], `update ${id}`, JSON.stringify(rest));
      rec.spec = { ...rec.spec, hostConfig: merged };
      await this.saveRecord(id, rec);
    });
  }

  async close(): Promise<void> {
    if (this.rotateTimer) clearTimeout(this.rotateTimer);
    this.rotateTimer = undefined;
    await Promise.all([...this.locks.values()]).catch(() => undefined);
    // A helper build started by a create: let the compiler finish rather than leave it running.
    await this.helperPath?.catch(() => undefined);
    await Promise.all([...this.discarding]);
    this.server?.close();
    this.server = undefined;
    // The parent cgroup goes when no container uses it any more (rmdir refuses a busy one).
    await removeCgroup(this.cgroups, `/${(this.options.cgroupParent ?? 'berth').replace(/^\/+|\/+$/g, '')}`, { recursive: false });
  }

  // ── crash recovery ────────────────────────────────────────────────────────────────────────

  /**
   * Removes what a crash left: containers whose create never finished (mounts, cgroups, runtime
   * state, directories), runtime state without a container directory, leftover temp files.
   * Containers that were created stay, running or exited, with their logs and exit codes.
   */
  async sweep(): Promise<void> {
    await rm(path.join(this.stateDir, 'trash'), { recursive: true, force: true });
    const containersDir = path.join(this.stateDir, 'containers');
    for (const id of await readdir(containersDir).catch(() => [] as string[])) {
      const dir = this.dir(id);
      if (id.endsWith('.tmp')) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      let rec: ContainerRecord | undefined;
      try {
        rec = JSON.parse(await readFile(path.join(dir, 'container.json'), 'utf8')) as ContainerRecord;
      } catch {
        rec = undefined;
      }
      if (!rec || rec.phase !== 'created') {
        this.cleanedUp.push(...(await this.removeEverything(id)));
      } else {
        // Half-written records only: exec files may belong to a live exec of another process.
        for (const f of readdirSync(dir).filter((n) => n.endsWith('.tmp'))) {
          await rm(path.join(dir, f), { force: true });
          this.cleanedUp.push(path.join(dir, f));
        }
      }
    }
    const ociRoot = path.join(this.stateDir, 'oci');
    for (const name of await readdir(ociRoot).catch(() => [] as string[])) {
      const bin = [...this.binaries.values()].find((b) => b.info.name === name) ?? (name === this.ociRuntime.name ? this.binary(this.ociRuntime) : undefined);
      if (!bin) continue;
      for (const id of await bin.list()) {
        if (!existsSync(this.dir(id))) {
          await runCommand(bin.info.path, ['--root', bin.root, 'delete', '--force', id]);
          this.cleanedUp.push(`runtime state ${id}`);
          this.cleanedUp.push(...(await removeCgroup(this.cgroups, `/${(this.options.cgroupParent ?? 'berth').replace(/^\/+|\/+$/g, '')}/${id}`)));
        }
      }
    }
  }
}

/**
 * Opens (or creates) a runtime on `stateDir`: detects the cgroup layout and the OCI runtime, sweeps
 * what a crash left behind, and finds every container created before — running or exited — with
 * its logs and exit code. Several runtimes may share a host; each owns its state directory.
 */
export async function openRuntime(options: RuntimeOptions): Promise<Runtime> {
  const stateDir = path.resolve(options.stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  await mkdir(path.join(stateDir, 'containers'), { recursive: true, mode: 0o700 });
  const cgroups = detectCgroups();
  const ociRuntime = await detectOciRuntime({ ...(options.runtime ? { preferred: options.runtime } : {}), workDir: path.join(stateDir, 'probe') });
  const conmonPath = options.conmon ?? ['/usr/bin/conmon', '/usr/libexec/podman/conmon', '/usr/local/bin/conmon'].find((p) => existsSync(p));
  if (!conmonPath) throw new RuntimeCommandError('conmon is not installed (Debian package conmon)');
  const rt = new BerthRuntime(stateDir, ociRuntime, options, cgroups, conmonPath, await conmonHasNoSyncLog(conmonPath));
  await rt.sweep();
  rt.startRotation();
  return rt;
}
