import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InvalidSpecError } from '../errors.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_DEVICE_RULES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  isNamespacedSysctl,
} from './defaults.js';
import { deviceMajor, deviceMinor, hostDevices, resolveDevices } from './devices.js';
import type { OciDevice, OciDeviceRule } from './devices.js';
import { defaultSeccompProfile, seccompFromDockerProfile } from './seccomp.js';
import type { DockerSeccompProfile, OciSeccomp } from './seccomp.js';
import type { ContainerSpec, HostConfigOptions, Mount, ThrottleDevice } from './types.js';
import type { ResolvedUser } from './users.js';

/** The OCI runtime spec (config.json) as this package writes it. */
export interface OciRuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    consoleSize?: { height: number; width: number };
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  domainname?: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: OciResources;
    sysctl?: Record<string, string>;
    seccomp?: OciSeccomp;
    maskedPaths: string[];
    readonlyPaths: string[];
    devices?: OciDevice[];
  };
}

export interface OciResources {
  devices: OciDeviceRule[];
  memory?: { limit?: number; reservation?: number; swap?: number; disableOOMKiller?: boolean; swappiness?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    throttleReadBpsDevice?: OciThrottleDevice[];
    throttleWriteBpsDevice?: OciThrottleDevice[];
    throttleReadIOPSDevice?: OciThrottleDevice[];
    throttleWriteIOPSDevice?: OciThrottleDevice[];
  };
}

export interface OciThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

/** `--device-read-bps` and the like: each path must be a block device on the host. */
function throttleDevices(list: readonly ThrottleDevice[] | undefined, flag: string): OciThrottleDevice[] {
  return (list ?? []).map(({ Path, Rate }) => {
    let st;
    try {
      st = statSync(Path, { bigint: true });
    } catch (cause) {
      throw new InvalidSpecError(`${flag}: cannot use ${Path}: ${(cause as Error).message}`, { cause });
    }
    if (!st.isBlockDevice()) throw new InvalidSpecError(`${flag}: ${Path} is not a block device`);
    return { major: deviceMajor(st.rdev), minor: deviceMinor(st.rdev), rate: Rate };
  });
}

/** The process a container runs: the image config with the run options applied (Docker's rules). */
export interface ResolvedProcessConfig {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  stopSignal: string;
  stopTimeout: number;
}

/** Everything buildRuntimeSpec needs besides the ContainerSpec: facts about this host and container. */
export interface BuildRuntimeSpecContext {
  /** Host path of the mounted root filesystem. */
  rootfsPath: string;
  /** The spec version the OCI runtime accepts. */
  ociVersion: string;
  cgroupsPath: string;
  cgroupVersion: 1 | 2;
  /** The user resolved from the image's /etc/passwd (see resolveUser). */
  user: ResolvedUser;
  /** Host files bind-mounted into the container; absent ones are not mounted. */
  files: { hosts?: string; hostname?: string; resolvConf?: string };
  /** Host hard rlimits (by OCI name `RLIMIT_NOFILE`); container limits never exceed them. */
  hostHardLimits: Record<string, number>;
  /** A static init binary for `Init` (tini-static or catatonit). */
  initPath?: string;
  /** Whether the host accounts swap (v1 memory.memsw.*, v2 memory.swap.max). */
  swapAccounting: boolean;
  /** Whether the host has a blkio/io weight knob. */
  blkioWeight: boolean;
  /**
   * The cgroup controllers containers can use (CgroupInfo.controllers). When given, a limit whose
   * controller is missing is refused with InvalidSpecError instead of failing inside the OCI
   * runtime (a v2 host that does not delegate `cpu` or `pids`, for one).
   */
  controllers?: readonly string[];
  /**
   * Namespaces of other containers to join (`PidMode`/`IpcMode` `container:<id>`), as the runtime
   * resolved them: `/proc/<pid>/ns/pid`, `/proc/<pid>/ns/ipc`, and that container's /dev/shm on the
   * host; and, for `IpcMode: shareable`, the container's own /dev/shm on the host (`ownShm`).
   */
  sharedNamespaces?: { pid?: string; ipc?: string; ipcShm?: string; ownShm?: string };
  /**
   * The capabilities this process may grant (its bounding set, see boundingCapabilities()):
   * `--privileged` and `--cap-add ALL` get those of ALL_CAPABILITIES. Default: all of them.
   */
  boundingCapabilities?: readonly string[];
  /** Where a privileged container's host devices are found (default /dev; tests use a directory of their own). */
  hostDevicesRoot?: string;
}

/** Docker's merge of image config and create-request config. */
export function resolveProcessConfig(spec: ContainerSpec): ResolvedProcessConfig {
  const image = spec.image ?? {};
  const cfg = spec.config ?? {};
  const entrypoint = cfg.Entrypoint !== undefined ? (cfg.Entrypoint ?? []) : (image.Entrypoint ?? []);
  let cmd: string[];
  if (cfg.Cmd !== undefined && cfg.Cmd !== null) cmd = cfg.Cmd;
  else if (cfg.Entrypoint !== undefined) cmd = [];
  else cmd = image.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidSpecError(`no command specified for container ${spec.id}`);
  const env = new Map<string, string>();
  for (const e of [...(image.Env ?? []), ...(cfg.Env ?? [])]) {
    const i = e.indexOf('=');
    const key = i < 0 ? e : e.slice(0, i);
    if (key === '') throw new InvalidSpecError(`invalid environment variable: ${e}`);
    if (i < 0) continue; // `FOO` alone: Docker takes it from the client's env; nothing here
    env.set(key, e);
  }
  const cwd = cfg.WorkingDir || image.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw new InvalidSpecError(`working directory must be absolute: ${cwd}`);
  if (/^\/proc\/(self|thread-self|\d+)\/fd(\/|$)/.test(cwd)) {
    throw new InvalidSpecError(`working directory under /proc/self/fd is refused: ${cwd}`);
  }
  return {
    args,
    env: [...env.values()],
    cwd,
    user: cfg.User ?? image.User ?? '',
    stopSignal: cfg.StopSignal || image.StopSignal || 'SIGTERM',
    stopTimeout: cfg.StopTimeout ?? 10,
  };
}

function normaliseCap(c: string): string {
  const u = c.trim().toUpperCase();
  const name = u.startsWith('CAP_') ? u : `CAP_${u}`;
  if (name !== 'CAP_ALL' && !ALL_CAPABILITIES.includes(name)) throw new InvalidSpecError(`unknown capability: ${c}`);
  return name;
}

/** How a container's PID, IPC and UTS namespaces are set up (Docker's PidMode, IpcMode, UTSMode). */
export function namespaceModes(host: HostConfigOptions): { pid: 'private' | 'host' | 'container'; ipc: 'private' | 'shareable' | 'none' | 'host' | 'container'; uts: 'private' | 'host' } {
  const pidMode = host.PidMode ?? '';
  const ipcMode = host.IpcMode ?? '';
  const utsMode = host.UTSMode ?? '';
  const other = (mode: string): boolean => /^container:[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(mode);
  let pid: 'private' | 'host' | 'container';
  if (pidMode === '') pid = 'private';
  else if (pidMode === 'host') pid = 'host';
  else if (other(pidMode)) pid = 'container';
  else throw new InvalidSpecError(`invalid PID mode: ${pidMode}`);
  let ipc: 'private' | 'shareable' | 'none' | 'host' | 'container';
  if (ipcMode === '' || ipcMode === 'private') ipc = 'private';
  else if (ipcMode === 'shareable' || ipcMode === 'none' || ipcMode === 'host') ipc = ipcMode;
  else if (other(ipcMode)) ipc = 'container';
  else throw new InvalidSpecError(`invalid IPC mode: ${ipcMode}`);
  if (utsMode !== '' && utsMode !== 'host') throw new InvalidSpecError(`invalid UTS mode: ${utsMode}`);
  const cgroupnsMode = host.CgroupnsMode ?? '';
  if (cgroupnsMode !== '' && cgroupnsMode !== 'private' && cgroupnsMode !== 'host') throw new InvalidSpecError(`invalid cgroup namespace mode: ${cgroupnsMode}`);
  return { pid, ipc, uts: utsMode === 'host' ? 'host' : 'private' };
}

/**
 * The capabilities in this process's bounding set (`CapBnd` of /proc/self/status), by name; all
 * of ALL_CAPABILITIES when it cannot be read. Capabilities above the kernel's last one are not
 * listed.
 */
export async function boundingCapabilities(status = '/proc/self/status'): Promise<string[]> {
  const text = await readFile(status, 'utf8').catch(() => '');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(text);
  if (!m) return [...ALL_CAPABILITIES];
  const mask = BigInt(`0x${m[1]}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** Docker's TweakCapabilities: drop ALL first, then add; add ALL wins. */
export function resolveCapabilities(host: HostConfigOptions, available: readonly string[] = ALL_CAPABILITIES): string[] {
  // "All" is what this environment can grant (moby's GetAllCapabilities): a runtime asked for a
  // capability outside its own bounding set fails ("unable to apply caps"), so a privileged
  // container would not start at all where the engine itself runs with fewer capabilities.
  const all = ALL_CAPABILITIES.filter((c) => available.includes(c));
  if (host.Privileged) return all;
  const add = (host.CapAdd ?? []).map(normaliseCap);
  const drop = (host.CapDrop ?? []).map(normaliseCap);
  if (add.includes('CAP_ALL')) return all.filter((c) => !drop.includes(c));
  const base = drop.includes('CAP_ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c));
  const out = [...base];
  for (const c of add) if (!out.includes(c)) out.push(c);
  return out;
}

interface SecurityOptions {
  seccomp: 'default' | 'unconfined' | DockerSeccompProfile;
  noNewPrivileges: boolean;
}

async function parseSecurityOpt(opts: readonly string[]): Promise<SecurityOptions> {
  const out: SecurityOptions = { seccomp: 'default', noNewPrivileges: false };
  for (const opt of opts) {
    const sep = opt.includes('=') ? '=' : ':';
    const i = opt.indexOf(sep);
    const key = i < 0 ? opt : opt.slice(0, i);
    const value = i < 0 ? '' : opt.slice(i + 1);
    if (key === 'no-new-privileges') {
      if (value === '' || value === 'true') out.noNewPrivileges = true;
      else if (value === 'false') out.noNewPrivileges = false;
      else throw new InvalidSpecError(`invalid --security-opt: ${opt}`);
    } else if (key === 'seccomp') {
      if (value === 'unconfined') out.seccomp = 'unconfined';
      else if (value === 'builtin' || value === 'default') out.seccomp = 'default';
      else if (value.trimStart().startsWith('{')) out.seccomp = parseProfile(value, opt);
      else if (value !== '') {
        let text: string;
        try {
          text = await readFile(value, 'utf8');
        } catch (cause) {
          throw new InvalidSpecError(`cannot read seccomp profile: ${value}`, { cause });
        }
        out.seccomp = parseProfile(text, value);
      } else throw new InvalidSpecError(`invalid --security-opt: ${opt}`);
    } else if (key === 'apparmor' || key === 'label') {
      // No AppArmor/SELinux on this layer: accepted and ignored, as Docker does where unsupported.
    } else {
      throw new InvalidSpecError(`invalid --security-opt: ${opt}`);
    }
  }
  return out;
}

function parseProfile(text: string, where: string): DockerSeccompProfile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new InvalidSpecError(`seccomp profile is not JSON: ${where}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { defaultAction?: unknown }).defaultAction !== 'string') {
    throw new InvalidSpecError(`seccomp profile has no defaultAction: ${where}`);
  }
  return parsed as DockerSeccompProfile;
}

const RLIMITS = new Set(['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)b?$/i.exec(s.trim());
  if (!m) throw new InvalidSpecError(`invalid size: ${s}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * A ContainerSpec → config.json, with Docker's defaults (docs/security.md). Reads only the
 * seccomp profile file named in SecurityOpt. Throws InvalidSpecError naming the bad input.
 */
export async function buildRuntimeSpec(spec: ContainerSpec, ctx: BuildRuntimeSpecContext): Promise<OciRuntimeSpec> {
  const host = spec.hostConfig ?? {};
  const proc = resolveProcessConfig(spec);
  const privileged = host.Privileged === true;
  const caps = resolveCapabilities(host, ctx.boundingCapabilities);
  const security = await parseSecurityOpt(host.SecurityOpt ?? []);
  const netns = spec.netns ?? 'none';
  const hostNetwork = netns === 'host';
  const modes = namespaceModes(host);
  const shared = (kind: 'pid' | 'ipc'): string => {
    const path = ctx.sharedNamespaces?.[kind];
    if (!path) throw new InvalidSpecError(`${kind === 'pid' ? 'PID' : 'IPC'} mode ${kind === 'pid' ? host.PidMode : host.IpcMode}: the other container's namespace was not resolved`);
    return path;
  };
  // With the host's UTS namespace the container has the host's name and may not set its own.
  const hostname = modes.uts === 'host' ? '' : (spec.hostname ?? (hostNetwork ? '' : spec.id.slice(0, 12)));

  const env = [...proc.env];
  const has = (k: string): boolean => env.some((e) => e.startsWith(`${k}=`));
  if (!has('PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!has('HOSTNAME') && hostname) env.push(`HOSTNAME=${hostname}`);
  if (!has('TERM') && spec.tty) env.push('TERM=xterm');
  if (!has('HOME')) env.push(`HOME=${ctx.user.home}`);

  let args = proc.args;
  const mounts: OciRuntimeSpec['mounts'] = [];
  if (host.Init) {
    if (!ctx.initPath) throw new InvalidSpecError('--init needs tini-static or catatonit on the host');
    mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: ctx.initPath, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    args = ['/sbin/docker-init', '--', ...args];
  }

  // rlimits: nofile 1024 soft, host hard; user ulimits never above the host's hard limits.
  const rlimits = new Map<string, { type: string; hard: number; soft: number }>();
  const hostNofile = ctx.hostHardLimits.RLIMIT_NOFILE ?? 1024;
  rlimits.set('RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', soft: Math.min(1024, hostNofile), hard: hostNofile });
  for (const u of host.Ulimits ?? []) {
    const name = u.Name.toLowerCase().replace(/^rlimit_/, '');
    if (!RLIMITS.has(name)) throw new InvalidSpecError(`invalid ulimit: ${u.Name}`);
    const type = `RLIMIT_${name.toUpperCase()}`;
    const hard = u.Hard < 0 ? Number.MAX_SAFE_INTEGER : u.Hard;
    const soft = u.Soft < 0 ? Number.MAX_SAFE_INTEGER : u.Soft;
    if (soft > hard) throw new InvalidSpecError(`ulimit ${u.Name}: soft limit ${u.Soft} is above the hard limit ${u.Hard}`);
    const hostHard = ctx.hostHardLimits[type];
    if (hostHard !== undefined && hard > hostHard) {
      throw new InvalidSpecError(`ulimit ${u.Name}: hard limit ${u.Hard} is above the host's ${hostHard}`);
    }
    rlimits.set(type, { type, soft, hard });
  }

  // Default mounts (moby DefaultLinuxSpec), then the container's files, tmpfs and extra mounts.
  const shmSize = host.ShmSize && host.ShmSize > 0 ? host.ShmSize : DEFAULT_SHM_SIZE;
  const sysOpts = privileged ? ['nosuid', 'noexec', 'nodev'] : ['nosuid', 'noexec', 'nodev', 'ro'];
  const defaultMounts: OciRuntimeSpec['mounts'] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOpts },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: privileged ? ['nosuid', 'noexec', 'nodev', 'relatime'] : ['ro', 'nosuid', 'noexec', 'nodev', 'relatime'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`] },
  ];
  // /dev/shm follows the IPC namespace (moby): the host's, the other container's, or none at all.
  const shmAt = defaultMounts.findIndex((m) => m.destination === '/dev/shm');
  if (modes.ipc === 'none') defaultMounts.splice(shmAt, 1);
  else if (modes.ipc === 'host') defaultMounts[shmAt] = { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] };
  else if (modes.ipc === 'container') defaultMounts[shmAt] = { destination: '/dev/shm', type: 'bind', source: ctx.sharedNamespaces?.ipcShm ?? shared('ipc'), options: ['rbind', 'rprivate'] };
  else if (modes.ipc === 'shareable') {
    // Its /dev/shm is a tmpfs the runtime mounted on the host, so that others can join it.
    const own = ctx.sharedNamespaces?.ownShm;
    if (!own) throw new InvalidSpecError('IPC mode shareable: the runtime did not mount the container\'s /dev/shm');
    defaultMounts[shmAt] = { destination: '/dev/shm', type: 'bind', source: own, options: ['rbind', 'rprivate'] };
  }
  const userTargets = new Set([...(spec.mounts ?? []).map((m) => m.target), ...Object.keys(host.Tmpfs ?? {})]);
  mounts.unshift(...defaultMounts.filter((m) => !userTargets.has(m.destination)));
  const fileMount = (source: string | undefined, destination: string): void => {
    if (source && !userTargets.has(destination)) {
      mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', ...(host.ReadonlyRootfs ? ['ro'] : [])] });
    }
  };
  fileMount(ctx.files.resolvConf, '/etc/resolv.conf');
  fileMount(ctx.files.hostname, '/etc/hostname');
  fileMount(ctx.files.hosts, '/etc/hosts');
  for (const [target, opts] of Object.entries(host.Tmpfs ?? {})) {
    if (!target.startsWith('/')) throw new InvalidSpecError(`tmpfs target must be absolute: ${target}`);
    const extra = opts.split(',').map((o) => o.trim()).filter(Boolean);
    mounts.push({ destination: target, type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', ...extra] });
  }
  for (const m of spec.mounts ?? []) mounts.push(ociMount(m));

  // Sysctls: only namespaced ones (Docker's ValidateSysctl).
  const sysctl: Record<string, string> = {};
  for (const [k, v] of Object.entries(host.Sysctls ?? {})) {
    if (!isNamespacedSysctl(k, hostNetwork, modes.ipc === 'host' || modes.ipc === 'container')) {
      throw new InvalidSpecError(`sysctl ${k} is not namespaced and is refused${modes.ipc === 'host' || modes.ipc === 'container' ? ' (the container shares another IPC namespace)' : ''}`);
    }
    sysctl[k] = v;
  }

  const namespaces: OciRuntimeSpec['linux']['namespaces'] = [];
  if (modes.pid === 'private') namespaces.push({ type: 'pid' });
  else if (modes.pid === 'container') namespaces.push({ type: 'pid', path: shared('pid') });
  if (modes.ipc === 'private' || modes.ipc === 'shareable' || modes.ipc === 'none') namespaces.push({ type: 'ipc' });
  else if (modes.ipc === 'container') namespaces.push({ type: 'ipc', path: shared('ipc') });
  if (modes.uts === 'private') namespaces.push({ type: 'uts' });
  namespaces.push({ type: 'mount' });
  if (netns === 'none') namespaces.push({ type: 'network' });
  else if (netns !== 'host') namespaces.push({ type: 'network', path: netns.path });
  if ((host.CgroupnsMode || (ctx.cgroupVersion === 2 ? 'private' : 'host')) === 'private') namespaces.push({ type: 'cgroup' });

  let seccomp: OciSeccomp | undefined;
  if (!privileged && security.seccomp !== 'unconfined') {
    seccomp = seccompFromDockerProfile(security.seccomp === 'default' ? defaultSeccompProfile() : security.seccomp, caps);
  }

  const out: OciRuntimeSpec = {
    ociVersion: ctx.ociVersion,
    process: {
      terminal: spec.tty === true,
      ...(spec.tty === true && spec.consoleSize && spec.consoleSize.height > 0 && spec.consoleSize.width > 0
        ? { consoleSize: { height: spec.consoleSize.height, width: spec.consoleSize.width } }
        : {}),
      user: { uid: ctx.user.uid, gid: ctx.user.gid, ...(ctx.user.additionalGids.length > 0 ? { additionalGids: ctx.user.additionalGids } : {}) },
      args,
      env,
      cwd: proc.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [...rlimits.values()],
      noNewPrivileges: security.noNewPrivileges,
      ...(host.OomScoreAdj ? { oomScoreAdj: host.OomScoreAdj } : {}),
    },
    root: { path: ctx.rootfsPath, readonly: host.ReadonlyRootfs === true },
    hostname,
    ...(spec.domainname ? { domainname: spec.domainname } : {}),
    mounts,
    ...(spec.annotations ? { annotations: { ...spec.annotations } } : {}),
    linux: {
      namespaces,
      cgroupsPath: ctx.cgroupsPath,
      resources: buildResources(host, ctx),
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: privileged ? [] : [...DEFAULT_MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...DEFAULT_READONLY_PATHS],
    },
  };
  // --device and --device-cgroup-rule: nodes created by the OCI runtime, rules after the defaults
  // (a privileged container already has every device allowed). A privileged container also gets
  // every device node of the host's /dev (moby WithDevices), a --device mapping winning over a host
  // node at the same container path. The standard nodes (/dev/null…) are the OCI runtime's own; it
  // adds one only when the spec has no node at that path, so none is listed twice.
  const userDevices = await resolveDevices(host.Devices ?? [], host.DeviceCgroupRules ?? []);
  const devices = new Map<string, OciDevice>();
  if (privileged) for (const d of await hostDevices(ctx.hostDevicesRoot)) devices.set(d.path, d);
  for (const d of userDevices.devices) {
    devices.delete(d.path);
    devices.set(d.path, d);
  }
  if (devices.size > 0) out.linux.devices = [...devices.values()];
  if (!privileged) out.linux.resources.devices.push(...userDevices.rules);
  return out;
}

function ociMount(m: Mount): OciRuntimeSpec['mounts'][number] {
  if (!m.target || !m.target.startsWith('/')) throw new InvalidSpecError(`mount target must be an absolute path: ${m.target ?? '(none)'}`);
  return { destination: m.target, type: m.type, source: m.source, options: [...m.options] };
}

/**
 * HostConfig resources → OCI linux.resources (Docker's rules for swap and --cpus). The values keep
 * the OCI (cgroup v1) meaning on every host — `swap` is memory + swap, `shares` are v1 shares —
 * because runc and crun translate them on cgroup v2 (swap.max = swap − limit, cpu.weight =
 * 1 + (shares − 2) × 9999 / 262142, io.weight from the blkio weight); translating here would
 * translate twice. Only `disableOOMKiller`, which v2 has no knob for, is dropped there (as Docker does).
 */
export function buildResources(
  host: Omit<HostConfigOptions, 'Privileged'> & { Privileged?: boolean },
  ctx: Pick<BuildRuntimeSpecContext, 'swapAccounting' | 'blkioWeight' | 'controllers'> & { cgroupVersion?: 1 | 2 },
): OciResources {
  const need = (controller: string, what: string): void => {
    if (ctx.controllers && !ctx.controllers.includes(controller)) {
      throw new InvalidSpecError(`${what} needs the ${controller} cgroup controller, which this host does not make available to containers`);
    }
  };
  if (host.Memory || (host.MemorySwap !== undefined && host.MemorySwap > 0) || host.MemoryReservation || host.OomKillDisable) need('memory', '--memory');
  if (host.NanoCpus || host.CpuQuota || host.CpuPeriod || host.CpuShares) need('cpu', host.CpuShares ? '--cpu-shares' : '--cpus');
  if (host.CpusetCpus || host.CpusetMems) need('cpuset', '--cpuset-cpus');
  if (host.PidsLimit !== undefined && host.PidsLimit !== null && host.PidsLimit > 0) need('pids', '--pids-limit');
  const r: OciResources = {
    devices: host.Privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((d) => ({ ...d })),
  };
  const memory: NonNullable<OciResources['memory']> = {};
  if (host.Memory !== undefined && host.Memory !== 0) {
    if (host.Memory < 6 * 1024 * 1024) throw new InvalidSpecError(`minimum memory limit allowed is 6MB: ${host.Memory}`);
    memory.limit = host.Memory;
    if (ctx.swapAccounting) {
      const swap = host.MemorySwap === undefined || host.MemorySwap === 0 ? host.Memory * 2 : host.MemorySwap;
      if (swap > 0 && swap < host.Memory) throw new InvalidSpecError(`memory-swap ${swap} must be at least the memory limit ${host.Memory}`);
      memory.swap = swap;
    }
  } else if (host.MemorySwap !== undefined && host.MemorySwap > 0) {
    throw new InvalidSpecError('memory-swap needs a memory limit');
  }
  if (host.MemoryReservation) memory.reservation = host.MemoryReservation;
  if (host.OomKillDisable && ctx.cgroupVersion !== 2) memory.disableOOMKiller = true;
  if (host.MemorySwappiness !== undefined && host.MemorySwappiness !== null && host.MemorySwappiness !== -1) {
    if (host.MemorySwappiness < 0 || host.MemorySwappiness > 100) throw new InvalidSpecError(`invalid value: ${host.MemorySwappiness}, valid memory swappiness range is 0-100`);
    // cgroup v2 has no swappiness knob (Docker drops it there too).
    if (ctx.cgroupVersion !== 2) memory.swappiness = host.MemorySwappiness;
  }
  if (Object.keys(memory).length > 0) r.memory = memory;

  const cpu: NonNullable<OciResources['cpu']> = {};
  if (host.NanoCpus) {
    if (host.CpuQuota || host.CpuPeriod) throw new InvalidSpecError('--cpus conflicts with --cpu-quota/--cpu-period');
    cpu.period = 100_000;
    cpu.quota = Math.round((host.NanoCpus * 100_000) / 1e9);
    if (cpu.quota < 1000) throw new InvalidSpecError(`--cpus is too small: ${host.NanoCpus / 1e9}`);
  }
  if (host.CpuQuota) cpu.quota = host.CpuQuota;
  if (host.CpuPeriod) cpu.period = host.CpuPeriod;
  if (host.CpuShares) cpu.shares = host.CpuShares;
  if (host.CpusetCpus) cpu.cpus = host.CpusetCpus;
  if (host.CpusetMems) cpu.mems = host.CpusetMems;
  if (Object.keys(cpu).length > 0) r.cpu = cpu;

  if (host.PidsLimit !== undefined && host.PidsLimit !== null && host.PidsLimit > 0) r.pids = { limit: host.PidsLimit };
  const blockIO: NonNullable<OciResources['blockIO']> = {};
  if (host.BlkioWeight) {
    if (host.BlkioWeight < 10 || host.BlkioWeight > 1000) throw new InvalidSpecError(`blkio weight must be 10..1000: ${host.BlkioWeight}`);
    if (ctx.blkioWeight) blockIO.weight = host.BlkioWeight;
  }
  const throttles = [
    ['throttleReadBpsDevice', host.BlkioDeviceReadBps, '--device-read-bps'],
    ['throttleWriteBpsDevice', host.BlkioDeviceWriteBps, '--device-write-bps'],
    ['throttleReadIOPSDevice', host.BlkioDeviceReadIOps, '--device-read-iops'],
    ['throttleWriteIOPSDevice', host.BlkioDeviceWriteIOps, '--device-write-iops'],
  ] as const;
  for (const [key, list, flag] of throttles) {
    const devices = throttleDevices(list, flag);
    if (devices.length > 0) blockIO[key] = devices;
  }
  if (Object.keys(blockIO).length > 0) r.blockIO = blockIO;
  return r;
}

export { parseSize };
