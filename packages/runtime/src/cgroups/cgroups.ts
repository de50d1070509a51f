import { existsSync } from 'node:fs';
import { readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * cgroup v1 (one hierarchy per controller, possibly with a v2 `unified` mount beside them —
 * "hybrid") and v2 (one hierarchy). runc/crun create and configure a container's cgroup from
 * config.json; this module reads stats from it, detects OOM kills and removes stale ones.
 */
export interface CgroupInfo {
  version: 1 | 2;
  /** v1 with a v2 hierarchy at /sys/fs/cgroup/unified (crun 1.8 refuses these hosts). */
  hybrid: boolean;
  root: string;
  swapAccounting: boolean;
  blkioWeight: boolean;
}

const ROOT = '/sys/fs/cgroup';

export function detectCgroups(root = ROOT): CgroupInfo {
  const v2 = existsSync(path.join(root, 'cgroup.controllers'));
  if (v2) {
    return { version: 2, hybrid: false, root, swapAccounting: true, blkioWeight: true };
  }
  return {
    version: 1,
    hybrid: existsSync(path.join(root, 'unified')),
    root,
    swapAccounting: existsSync(path.join(root, 'memory', 'memory.memsw.limit_in_bytes')),
    blkioWeight: existsSync(path.join(root, 'blkio', 'blkio.weight')) || existsSync(path.join(root, 'blkio', 'blkio.bfq.weight')),
  };
}

const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc', 'systemd', 'unified'];

/** Directories of one cgroup path (`/berth/<id>`), existing or not. */
export function cgroupDirs(info: CgroupInfo, cgroupPath: string): string[] {
  if (info.version === 2) return [path.join(info.root, cgroupPath)];
  return V1_CONTROLLERS.map((c) => path.join(info.root, c, cgroupPath));
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

async function readNum(file: string): Promise<number | undefined> {
  const t = (await readText(file))?.trim();
  if (t === undefined || t === '') return undefined;
  if (t === 'max') return Number.MAX_SAFE_INTEGER;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** OOM kills recorded in the container's memory cgroup (0 when it is gone). */
export async function oomKillCount(info: CgroupInfo, cgroupPath: string): Promise<number> {
  if (info.version === 2) return keyed(await readText(path.join(info.root, cgroupPath, 'memory.events'))).get('oom_kill') ?? 0;
  return keyed(await readText(path.join(info.root, 'memory', cgroupPath, 'memory.oom_control'))).get('oom_kill') ?? 0;
}

export interface CgroupStats {
  cpu: { usageNs: bigint; userNs: bigint; systemNs: bigint };
  memory: { usage: number; limit: number; maxUsage: number; cache: number; oomKills: number };
  pids: { current: number; limit: number };
  blkio: { readBytes: number; writeBytes: number };
}

const USER_HZ_NS = 10_000_000n;

export async function readCgroupStats(info: CgroupInfo, cgroupPath: string): Promise<CgroupStats> {
  if (info.version === 2) {
    const dir = path.join(info.root, cgroupPath);
    const cpu = keyed(await readText(path.join(dir, 'cpu.stat')));
    const mem = keyed(await readText(path.join(dir, 'memory.stat')));
    let readBytes = 0;
    let writeBytes = 0;
    for (const line of ((await readText(path.join(dir, 'io.stat'))) ?? '').split('\n')) {
      readBytes += Number(/rbytes=(\d+)/.exec(line)?.[1] ?? 0);
      writeBytes += Number(/wbytes=(\d+)/.exec(line)?.[1] ?? 0);
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

/** Pids in the container's cgroup (any state), for top. */
export async function cgroupPids(info: CgroupInfo, cgroupPath: string): Promise<number[]> {
  const file = info.version === 2 ? path.join(info.root, cgroupPath, 'cgroup.procs') : path.join(info.root, 'pids', cgroupPath, 'cgroup.procs');
  return ((await readText(file)) ?? '').split('\n').filter(Boolean).map(Number);
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
