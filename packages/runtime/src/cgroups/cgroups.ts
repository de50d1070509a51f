import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * cgroup v1 (one hierarchy per controller, possibly with a v2 `unified` mount beside them —
 * "hybrid") and v2 (one hierarchy). runc/crun create and configure a container's cgroup from
 * config.json — on v2 they translate the v1-style OCI resources themselves (memory+swap → swap
 * alone, shares → weight, blkio weight → io weight); this module reads stats and limits from the
 * cgroup, detects OOM kills and removes stale ones.
 *
 * Every function takes the CgroupInfo that `detectCgroups(root)` returned, and touches files under
 * `info.root` only: a temporary directory laid out like a cgroup filesystem stands in for
 * /sys/fs/cgroup in unit tests.
 */
export interface CgroupInfo {
  version: 1 | 2;
  /** v1 with a v2 hierarchy at <root>/unified (crun 1.8 refuses these hosts). */
  hybrid: boolean;
  root: string;
  /**
   * Controllers a container can be limited by: on v2 the root's `cgroup.controllers` (what runc can
   * enable below it); on v1 the mounted hierarchies.
   */
  controllers: string[];
  /** Whether a swap limit can be set (v1 memory.memsw.*, v2 memory.swap.max). */
  swapAccounting: boolean;
  /** Whether a block I/O weight can be set (v1 blkio.weight or blkio.bfq.weight, v2 io.weight or io.bfq.weight). */
  blkioWeight: boolean;
}

export interface DetectCgroupsOptions {
  /**
   * This process's cgroup membership (default /proc/self/cgroup). Its cgroups are where per-cgroup
   * files (memory.swap.max, io.weight) are looked for: a root cgroup never has them.
   */
  procSelfCgroup?: string;
}

const ROOT = '/sys/fs/cgroup';

const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc', 'systemd', 'unified'];
/** The v1 hierarchies that limit resources (systemd's and the unified mount do not). */
const V1_RESOURCE_CONTROLLERS = V1_CONTROLLERS.filter((c) => c !== 'systemd' && c !== 'unified');

function readSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Non-root cgroups of a hierarchy to look at for per-cgroup files: this process's own (from
 * /proc/self/cgroup), then the first-level children of the root.
 */
function sampleCgroups(hierarchy: string, selfPath: string | undefined): string[] {
  const out: string[] = [];
  if (selfPath && selfPath !== '/') out.push(path.join(hierarchy, selfPath));
  try {
    for (const e of readdirSync(hierarchy, { withFileTypes: true })) if (e.isDirectory()) out.push(path.join(hierarchy, e.name));
  } catch {
    // no hierarchy
  }
  return out;
}

/**
 * Whether a knob exists where the controller is active: the first sample cgroup that has `marker`
 * (a file the controller always creates) decides by having one of `files`; when no sample has the
 * controller active, `fallback` (the controller being available at all) decides.
 */
function knob(samples: string[], marker: string, files: string[], fallback: boolean): boolean {
  for (const dir of samples) {
    if (existsSync(path.join(dir, marker))) return files.some((f) => existsSync(path.join(dir, f)));
  }
  return fallback;
}

/** This process's path in a hierarchy: v2 is the `0::` line, v1 the line naming the controller. */
function selfCgroupPath(text: string | undefined, controller: string | undefined): string | undefined {
  for (const line of (text ?? '').split('\n')) {
    const [id, ctls, p] = line.split(':', 3) as [string, string | undefined, string | undefined];
    if (p === undefined || ctls === undefined) continue;
    if (controller === undefined ? id === '0' && ctls === '' : ctls.split(',').includes(controller)) return p.trim();
  }
  return undefined;
}

/**
 * The cgroup layout under `root`: v2 when `root` is a cgroup2 mount (it has cgroup.controllers),
 * else v1 with one directory per controller. Reads only; never throws.
 */
export function detectCgroups(root = ROOT, options: DetectCgroupsOptions = {}): CgroupInfo {
  const self = readSync(options.procSelfCgroup ?? '/proc/self/cgroup');
  const controllersFile = readSync(path.join(root, 'cgroup.controllers'));
  if (controllersFile !== undefined) {
    const controllers = controllersFile.trim().split(/\s+/).filter(Boolean);
    const samples = sampleCgroups(root, selfCgroupPath(self, undefined));
    return {
      version: 2,
      hybrid: false,
      root,
      controllers,
      // Swap accounting can be off (swapaccount=0, no CONFIG_MEMCG_SWAP): memory.swap.max is then
      // missing beside memory.max. With no cgroup to look at, Docker's assumption: it is on.
      swapAccounting: controllers.includes('memory') && knob(samples, 'memory.max', ['memory.swap.max'], true),
      // io.weight needs blk-iocost, io.bfq.weight the BFQ scheduler; runc writes whichever exists.
      blkioWeight: controllers.includes('io') && knob(samples, 'io.stat', ['io.bfq.weight', 'io.weight'], true),
    };
  }
  const controllers = V1_RESOURCE_CONTROLLERS.filter((c) => existsSync(path.join(root, c, 'cgroup.procs')));
  const memory = path.join(root, 'memory');
  const blkio = path.join(root, 'blkio');
  const blkioSamples = [blkio, ...sampleCgroups(blkio, selfCgroupPath(self, 'blkio'))];
  return {
    version: 1,
    hybrid: existsSync(path.join(root, 'unified', 'cgroup.procs')),
    root,
    controllers,
    // v1 has memsw files in the root cgroup too.
    swapAccounting: existsSync(path.join(memory, 'memory.memsw.limit_in_bytes')),
    // blkio.weight (CFQ) is in the root; blkio.bfq.weight only in child cgroups.
    blkioWeight: controllers.includes('blkio') && blkioSamples.some((d) => existsSync(path.join(d, 'blkio.weight')) || existsSync(path.join(d, 'blkio.bfq.weight'))),
  };
}

/** Directories of one cgroup path (`/berth/<id>`), existing or not. */
export function cgroupDirs(info: CgroupInfo, cgroupPath: string): string[] {
  if (info.version === 2) return [path.join(info.root, cgroupPath)];
  return V1_CONTROLLERS.map((c) => path.join(info.root, c, cgroupPath));
}

/** The directory of `cgroupPath` that holds `controller`'s files (v2: the one directory). */
function dirOf(info: CgroupInfo, controller: string, cgroupPath: string): string {
  return info.version === 2 ? path.join(info.root, cgroupPath) : path.join(info.root, controller, cgroupPath);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

function keyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** A v1 limit at or above this is the kernel's "unlimited" (PAGE_COUNTER_MAX pages, LLONG_MAX). */
const V1_UNLIMITED = 2 ** 62;

/** A number from a cgroup file; `max` (v2) and v1's huge "unlimited" values read as MAX_SAFE_INTEGER. */
async function readNum(file: string): Promise<number | undefined> {
  const t = (await readText(file))?.trim();
  if (t === undefined || t === '') return undefined;
  if (t === 'max') return Number.MAX_SAFE_INTEGER;
  const n = Number(t);
  if (!Number.isFinite(n)) return undefined;
  return n >= V1_UNLIMITED ? Number.MAX_SAFE_INTEGER : n;
}

/** OOM kills recorded in the container's memory cgroup (0 when it is gone). */
export async function oomKillCount(info: CgroupInfo, cgroupPath: string): Promise<number> {
  // v2 memory.events is hierarchical (counts the container's sub-cgroups too); v1's oom_control
  // has oom_kill since Linux 4.13.
  const file = info.version === 2 ? 'memory.events' : 'memory.oom_control';
  return keyed(await readText(path.join(dirOf(info, 'memory', cgroupPath), file))).get('oom_kill') ?? 0;
}

export interface CgroupStats {
  cpu: { usageNs: bigint; userNs: bigint; systemNs: bigint };
  /** `limit` is MAX_SAFE_INTEGER when unlimited (v2 `max`, v1's LLONG_MAX alike). */
  memory: { usage: number; limit: number; maxUsage: number; cache: number; oomKills: number };
  /** `limit` is MAX_SAFE_INTEGER when unlimited, 0 when the pids controller is not there. */
  pids: { current: number; limit: number };
  blkio: { readBytes: number; writeBytes: number };
}

const USER_HZ_NS = 10_000_000n;

export async function readCgroupStats(info: CgroupInfo, cgroupPath: string): Promise<CgroupStats> {
  if (info.version === 2) {
    const dir = path.join(info.root, cgroupPath);
    // cpu.stat's usage/user/system exist even where the cpu controller is not enabled.
    const cpu = keyed(await readText(path.join(dir, 'cpu.stat')));
    const mem = keyed(await readText(path.join(dir, 'memory.stat')));
    let readBytes = 0;
    let writeBytes = 0;
    for (const line of ((await readText(path.join(dir, 'io.stat'))) ?? '').split('\n')) {
      readBytes += Number(/\brbytes=(\d+)/.exec(line)?.[1] ?? 0);
      writeBytes += Number(/\bwbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return {
      cpu: {
        usageNs: BigInt(cpu.get('usage_usec') ?? 0) * 1000n,
        userNs: BigInt(cpu.get('user_usec') ?? 0) * 1000n,
        systemNs: BigInt(cpu.get('system_usec') ?? 0) * 1000n,
      },
      memory: {
        usage: (await readNum(path.join(dir, 'memory.current'))) ?? 0,
        limit: (await readNum(path.join(dir, 'memory.max'))) ?? Number.MAX_SAFE_INTEGER,
        // memory.peak: Linux 5.19+
        maxUsage: (await readNum(path.join(dir, 'memory.peak'))) ?? 0,
        cache: mem.get('file') ?? 0,
        oomKills: await oomKillCount(info, cgroupPath),
      },
      pids: { current: (await readNum(path.join(dir, 'pids.current'))) ?? 0, limit: (await readNum(path.join(dir, 'pids.max'))) ?? 0 },
      blkio: { readBytes, writeBytes },
    };
  }
  const c = (ctl: string, file: string): string => path.join(info.root, ctl, cgroupPath, file);
  const acct = keyed(await readText(c('cpuacct', 'cpuacct.stat')));
  const mem = keyed(await readText(c('memory', 'memory.stat')));
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of ((await readText(c('blkio', 'blkio.throttle.io_service_bytes_recursive'))) ?? '').split('\n')) {
    const [, op, v] = line.split(' ');
    if (op === 'Read') readBytes += Number(v);
    if (op === 'Write') writeBytes += Number(v);
  }
  return {
    cpu: {
      usageNs: BigInt(((await readText(c('cpuacct', 'cpuacct.usage'))) ?? '0').trim() || '0'),
      userNs: BigInt(acct.get('user') ?? 0) * USER_HZ_NS,
      systemNs: BigInt(acct.get('system') ?? 0) * USER_HZ_NS,
    },
    memory: {
      usage: (await readNum(c('memory', 'memory.usage_in_bytes'))) ?? 0,
      limit: (await readNum(c('memory', 'memory.limit_in_bytes'))) ?? Number.MAX_SAFE_INTEGER,
      maxUsage: (await readNum(c('memory', 'memory.max_usage_in_bytes'))) ?? 0,
      cache: mem.get('total_cache') ?? mem.get('cache') ?? 0,
      oomKills: await oomKillCount(info, cgroupPath),
    },
    pids: { current: (await readNum(c('pids', 'pids.current'))) ?? 0, limit: (await readNum(c('pids', 'pids.max'))) ?? 0 },
    blkio: { readBytes, writeBytes },
  };
}

/**
 * Pids in the container's cgroup and the cgroups below it (a container may make its own, e.g. an
 * init system in it on v2), for top. Empty when the cgroup is gone.
 */
export async function cgroupPids(info: CgroupInfo, cgroupPath: string): Promise<number[]> {
  const pids: number[] = [];
  const collect = async (dir: string): Promise<void> => {
    const text = await readText(path.join(dir, 'cgroup.procs'));
    if (text === undefined) return;
    pids.push(...text.split('\n').filter(Boolean).map(Number));
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await collect(path.join(dir, e.name));
    }
  };
  await collect(dirOf(info, 'pids', cgroupPath));
  return pids;
}

/** Whether the container's cgroup is frozen or freezing (paused); false when it is gone. */
export async function isFrozen(info: CgroupInfo, cgroupPath: string): Promise<boolean> {
  if (info.version === 2) {
    // cgroup.freeze is what was asked, cgroup.events' `frozen` what the kernel reached.
    const asked = (await readText(path.join(info.root, cgroupPath, 'cgroup.freeze')))?.trim();
    return asked === '1' || keyed(await readText(path.join(info.root, cgroupPath, 'cgroup.events'))).get('frozen') === 1;
  }
  const state = (await readText(path.join(info.root, 'freezer', cgroupPath, 'freezer.state')))?.trim();
  return state === 'FROZEN' || state === 'FREEZING';
}

/**
 * Removes a cgroup left behind (empty; children first). Returns the directories removed.
 * A cgroup that still has processes is left alone (rmdir fails with EBUSY).
 */
export async function removeCgroup(info: CgroupInfo, cgroupPath: string, options: { recursive?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (dir: string): Promise<void> => {
    if (!existsSync(dir)) return;
    if (options.recursive !== false) {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await remove(path.join(dir, e.name));
      }
    }
    try {
      await rmdir(dir);
      removed.push(dir);
    } catch {
      // busy or gone
    }
  };
  for (const dir of cgroupDirs(info, cgroupPath)) await remove(dir);
  return removed;
}

/** Writes a v1/v2 freezer state directly; used only to thaw a cgroup before removing it. */
export async function thaw(info: CgroupInfo, cgroupPath: string): Promise<void> {
  const file = info.version === 2 ? path.join(info.root, cgroupPath, 'cgroup.freeze') : path.join(info.root, 'freezer', cgroupPath, 'freezer.state');
  await writeFile(file, info.version === 2 ? '0' : 'THAWED').catch(() => undefined);
}

// ── limits ─────────────────────────────────────────────────────────────────────────────────

/**
 * cpu.weight for Docker's --cpu-shares, as runc and crun compute it on v2 (linear from 2..262144 to
 * 1..10000; 1024 → 39). 0 means "not set".
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** io.weight for --blkio-weight (10..1000 → 1..10000), as runc computes it on v2. 0 means "not set". */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * memory.swap.max for Docker's --memory-swap (memory + swap together, the OCI spec's `swap`), as
 * runc computes it on v2: the swap alone, `-1` for unlimited; 0 means "not set".
 */
export function memorySwapToSwapMax(memorySwap: number, memory: number): number {
  if (memory === -1 && memorySwap === 0) return -1;
  if (memorySwap === -1 || memorySwap === 0) return memorySwap;
  if (memory <= 0) return memorySwap;
  return memorySwap - memory;
}

/**
 * The limits in effect on a container's cgroup, in Docker's units (what `docker update` and
 * `--memory`/`--cpus`... ask for), read back from whichever hierarchy the host has. Absent fields
 * are unlimited or not set. On v2, `memorySwap` is memory.max + memory.swap.max (the inverse of
 * the runtime's conversion); the CPU and I/O weights are reported as the kernel holds them
 * (`cpuShares` on v1, `cpuWeight` on v2 — compare with cpuSharesToWeight).
 */
export interface CgroupLimits {
  memory?: number;
  /** -1: swap unlimited. Absent when the host does not account swap. */
  memorySwap?: number;
  memoryReservation?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpuWeight?: number;
  cpusetCpus?: string;
  pids?: number;
  blkioWeight?: number;
  ioWeight?: number;
}

const limited = (n: number | undefined): number | undefined => (n === undefined || n === Number.MAX_SAFE_INTEGER ? undefined : n);

/** The `default N` line of io.weight / io.bfq.weight (v2) or the plain number (v1 bfq). */
async function readWeight(file: string): Promise<number | undefined> {
  const text = await readText(file);
  if (text === undefined) return undefined;
  const m = /^(?:default\s+)?(\d+)\s*$/m.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

export async function readCgroupLimits(info: CgroupInfo, cgroupPath: string): Promise<CgroupLimits> {
  const out: CgroupLimits = {};
  const set = <K extends keyof CgroupLimits>(k: K, v: CgroupLimits[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  if (info.version === 2) {
    const dir = path.join(info.root, cgroupPath);
    const memory = limited(await readNum(path.join(dir, 'memory.max')));
    set('memory', memory);
    const swapText = (await readText(path.join(dir, 'memory.swap.max')))?.trim();
    if (swapText === 'max') out.memorySwap = -1;
    else if (swapText !== undefined && swapText !== '') set('memorySwap', memory === undefined ? Number(swapText) : memory + Number(swapText));
    const low = await readNum(path.join(dir, 'memory.low'));
    if (low) out.memoryReservation = low;
    const [quota, period] = ((await readText(path.join(dir, 'cpu.max'))) ?? '').trim().split(/\s+/);
    if (quota && quota !== 'max') out.cpuQuota = Number(quota);
    if (period) out.cpuPeriod = Number(period);
    set('cpuWeight', await readNum(path.join(dir, 'cpu.weight')));
    const cpus = (await readText(path.join(dir, 'cpuset.cpus')))?.trim();
    if (cpus) out.cpusetCpus = cpus;
    set('pids', limited(await readNum(path.join(dir, 'pids.max'))));
    set('ioWeight', (await readWeight(path.join(dir, 'io.bfq.weight'))) ?? (await readWeight(path.join(dir, 'io.weight'))));
    return out;
  }
  const f = (ctl: string, file: string): string => path.join(info.root, ctl, cgroupPath, file);
  const memory = limited(await readNum(f('memory', 'memory.limit_in_bytes')));
  set('memory', memory);
  const memsw = await readNum(f('memory', 'memory.memsw.limit_in_bytes'));
  if (memsw !== undefined) out.memorySwap = memsw === Number.MAX_SAFE_INTEGER ? -1 : memsw;
  set('memoryReservation', limited(await readNum(f('memory', 'memory.soft_limit_in_bytes'))));
  const quota = await readNum(f('cpu', 'cpu.cfs_quota_us'));
  if (quota !== undefined && quota > 0) out.cpuQuota = quota;
  set('cpuPeriod', await readNum(f('cpu', 'cpu.cfs_period_us')));
  set('cpuShares', await readNum(f('cpu', 'cpu.shares')));
  const cpus = (await readText(f('cpuset', 'cpuset.cpus')))?.trim();
  if (cpus) out.cpusetCpus = cpus;
  set('pids', limited(await readNum(f('pids', 'pids.max'))));
  set('blkioWeight', (await readWeight(f('blkio', 'blkio.weight'))) ?? (await readWeight(f('blkio', 'blkio.bfq.weight'))));
  return out;
}
