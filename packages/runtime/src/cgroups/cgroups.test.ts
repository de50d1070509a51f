import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blkioWeightToIoWeight,
  cgroupPids,
  cpuSharesToWeight,
  detectCgroups,
  isFrozen,
  memorySwapToSwapMax,
  oomKillCount,
  readCgroupLimits,
  readCgroupStats,
  removeCgroup,
  thaw,
} from './cgroups.js';

/**
 * A temporary directory laid out like the cgroup filesystems the kernel shows (file names and
 * formats from Documentation/admin-guide/cgroup-v2.rst and the v1 docs) stands in for
 * /sys/fs/cgroup. test/cgroups-v2.test.ts checks the same functions against the real hierarchies.
 */
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-cgfs-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tree(base: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(base, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

const MiB = 1024 * 1024;

/** A pure v2 host with the usual controllers delegated, and one container cgroup /berth/c1. */
async function v2Host(options: { controllers?: string; sliceFiles?: Record<string, string>; container?: Record<string, string> } = {}): Promise<void> {
  await tree(root, {
    'cgroup.controllers': `${options.controllers ?? 'cpuset cpu io memory hugetlb pids rdma misc'}\n`,
    'cgroup.subtree_control': 'cpu io memory pids\n',
    'cgroup.procs': '1\n',
    'cpu.stat': 'usage_usec 99\nuser_usec 66\nsystem_usec 33\n',
    ...Object.fromEntries(
      Object.entries(options.sliceFiles ?? { 'memory.max': 'max\n', 'memory.swap.max': 'max\n', 'io.stat': '', 'io.weight': 'default 100\n' }).map(([k, v]) => [`system.slice/${k}`, v]),
    ),
    'berth/cgroup.subtree_control': 'cpu io memory pids\n',
    ...Object.fromEntries(
      Object.entries(
        options.container ?? {
          'cgroup.procs': '101\n102\n',
          'cgroup.freeze': '0\n',
          'cgroup.events': 'populated 1\nfrozen 0\n',
          'memory.max': `${64 * MiB}\n`,
          'memory.swap.max': `${64 * MiB}\n`,
          'memory.low': `${32 * MiB}\n`,
          'memory.current': '5242880\n',
          'memory.peak': '7340032\n',
          'memory.events': 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n',
          'memory.stat': 'anon 1048576\nfile 4096\nkernel 8192\n',
          'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n',
          'cpu.max': '50000 100000\n',
          'cpu.weight': '20\n',
          'cpuset.cpus': '0-1\n',
          'pids.current': '3\n',
          'pids.max': '50\n',
          'io.stat': '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
          'io.weight': 'default 4950\n8:0 200\n',
          'sub/cgroup.procs': '103\n',
        },
      ).map(([k, v]) => [`berth/c1/${k}`, v]),
    ),
  });
}

describe('detectCgroups', () => {
  it('finds a v2 host, its controllers, and swap and io weight from a cgroup where they are active', async () => {
    await v2Host();
    const info = detectCgroups(root, { procSelfCgroup: path.join(root, 'no-such-file') });
    expect(info).toEqual({ version: 2, hybrid: false, root, controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'], swapAccounting: true, blkioWeight: true });
  });

  it('sees swap accounting off (memory.max without memory.swap.max) and no io weight knob', async () => {
    await v2Host({ sliceFiles: { 'memory.max': 'max\n', 'io.stat': '' } });
    const info = detectCgroups(root, { procSelfCgroup: path.join(root, 'no-such-file') });
    expect([info.swapAccounting, info.blkioWeight]).toEqual([false, false]);
  });

  it("looks at this process's own cgroup first (the 0:: line of /proc/self/cgroup)", async () => {
    await v2Host();
    await tree(root, { 'user.slice/me/memory.max': 'max\n', 'user.slice/me/io.stat': '', 'user.slice/me/io.bfq.weight': 'default 100\n', self: '0::/user.slice/me\n' });
    // user.slice/me has no memory.swap.max: it decides before system.slice (which has one)
    const info = detectCgroups(root, { procSelfCgroup: path.join(root, 'self') });
    expect([info.swapAccounting, info.blkioWeight]).toEqual([false, true]);
  });

  it('says no swap and no io weight when those controllers are not available at all', async () => {
    await v2Host({ controllers: 'cpu pids' });
    const info = detectCgroups(root);
    expect(info).toMatchObject({ version: 2, controllers: ['cpu', 'pids'], swapAccounting: false, blkioWeight: false });
  });

  it('finds a v1 (hybrid) host with its mounted controllers, memsw and a BFQ weight in a child cgroup', async () => {
    await tree(root, {
      'memory/cgroup.procs': '',
      'memory/memory.memsw.limit_in_bytes': '9223372036854771712\n',
      'cpu/cgroup.procs': '',
      'pids/cgroup.procs': '',
      'blkio/cgroup.procs': '',
      'blkio/docker/blkio.bfq.weight': '100\n',
      'systemd/cgroup.procs': '',
      'unified/cgroup.procs': '',
      'unified/cgroup.controllers': '',
    });
    expect(detectCgroups(root)).toEqual({ version: 1, hybrid: true, root, controllers: ['memory', 'cpu', 'pids', 'blkio'], swapAccounting: true, blkioWeight: true });
    await rm(path.join(root, 'blkio', 'docker'), { recursive: true });
    await rm(path.join(root, 'unified'), { recursive: true });
    expect(detectCgroups(root)).toMatchObject({ hybrid: false, blkioWeight: false });
  });
});

describe('reading a v2 container cgroup', () => {
  it('reads stats from cpu.stat, memory.*, pids.* and io.stat', async () => {
    await v2Host();
    const info = detectCgroups(root);
    expect(await readCgroupStats(info, '/berth/c1')).toEqual({
      cpu: { usageNs: 1_500_000n, userNs: 1_000_000n, systemNs: 500_000n },
      memory: { usage: 5242880, limit: 64 * MiB, maxUsage: 7340032, cache: 4096, oomKills: 1 },
      pids: { current: 3, limit: 50 },
      blkio: { readBytes: 4196, writeBytes: 8192 },
    });
  });

  it('reads "max" as unlimited and missing controllers as absent', async () => {
    await v2Host({ container: { 'cgroup.procs': '7\n', 'cpu.stat': 'usage_usec 10\nuser_usec 4\nsystem_usec 6\n', 'memory.max': 'max\n', 'pids.max': 'max\n', 'pids.current': '1\n' } });
    const stats = await readCgroupStats(detectCgroups(root), '/berth/c1');
    expect(stats.memory).toEqual({ usage: 0, limit: Number.MAX_SAFE_INTEGER, maxUsage: 0, cache: 0, oomKills: 0 });
    expect(stats.pids).toEqual({ current: 1, limit: Number.MAX_SAFE_INTEGER });
    expect(stats.cpu.usageNs).toBe(10_000n);
    expect(await readCgroupLimits(detectCgroups(root), '/berth/c1')).toEqual({});
  });

  it('counts OOM kills from memory.events, 0 for a cgroup that is gone', async () => {
    await v2Host();
    const info = detectCgroups(root);
    expect(await oomKillCount(info, '/berth/c1')).toBe(1);
    expect(await oomKillCount(info, '/berth/gone')).toBe(0);
  });

  it('lists the pids of the cgroup and of the cgroups below it', async () => {
    await v2Host();
    expect((await cgroupPids(detectCgroups(root), '/berth/c1')).sort()).toEqual([101, 102, 103]);
    expect(await cgroupPids(detectCgroups(root), '/berth/gone')).toEqual([]);
  });

  it('tells frozen from running by cgroup.freeze / cgroup.events, and thaws through cgroup.freeze', async () => {
    await v2Host();
    const info = detectCgroups(root);
    expect(await isFrozen(info, '/berth/c1')).toBe(false);
    await writeFile(path.join(root, 'berth/c1/cgroup.freeze'), '1\n');
    expect(await isFrozen(info, '/berth/c1')).toBe(true);
    await thaw(info, '/berth/c1');
    expect(await readFile(path.join(root, 'berth/c1/cgroup.freeze'), 'utf8')).toBe('0');
    await writeFile(path.join(root, 'berth/c1/cgroup.events'), 'populated 1\nfrozen 1\n');
    expect(await isFrozen(info, '/berth/c1')).toBe(true);
    expect(await isFrozen(info, '/berth/gone')).toBe(false);
  });

  it('reads the limits back in Docker units: memory-swap is memory.max + memory.swap.max', async () => {
    await v2Host();
    expect(await readCgroupLimits(detectCgroups(root), '/berth/c1')).toEqual({
      memory: 64 * MiB,
      memorySwap: 128 * MiB,
      memoryReservation: 32 * MiB,
      cpuQuota: 50000,
      cpuPeriod: 100000,
      cpuWeight: 20,
      cpusetCpus: '0-1',
      pids: 50,
      ioWeight: 4950,
    });
    await writeFile(path.join(root, 'berth/c1/memory.swap.max'), 'max\n');
    await writeFile(path.join(root, 'berth/c1/cpu.max'), 'max 100000\n');
    const l = await readCgroupLimits(detectCgroups(root), '/berth/c1');
    expect([l.memorySwap, l.cpuQuota, l.cpuPeriod]).toEqual([-1, undefined, 100000]);
  });

  it('removes a cgroup tree children first; the v2 path is the one directory', async () => {
    await mkdir(path.join(root, 'berth', 'c2', 'sub', 'deeper'), { recursive: true });
    await writeFile(path.join(root, 'cgroup.controllers'), 'memory\n');
    const info = detectCgroups(root);
    const removed = await removeCgroup(info, '/berth/c2');
    expect(removed).toEqual([path.join(root, 'berth/c2/sub/deeper'), path.join(root, 'berth/c2/sub'), path.join(root, 'berth/c2')]);
    expect(existsSync(path.join(root, 'berth'))).toBe(true);
    expect(await removeCgroup(info, '/berth', { recursive: false })).toEqual([path.join(root, 'berth')]);
  });
});

describe('reading a v1 container cgroup', () => {
  it('reads stats and limits from the per-controller directories, LLONG_MAX meaning unlimited', async () => {
    await tree(root, {
      'memory/cgroup.procs': '',
      'memory/memory.memsw.limit_in_bytes': '9223372036854771712\n',
      'memory/berth/c1/memory.limit_in_bytes': `${48 * MiB}\n`,
      'memory/berth/c1/memory.memsw.limit_in_bytes': `${96 * MiB}\n`,
      'memory/berth/c1/memory.soft_limit_in_bytes': '9223372036854771712\n',
      'memory/berth/c1/memory.usage_in_bytes': '1000\n',
      'memory/berth/c1/memory.max_usage_in_bytes': '2000\n',
      'memory/berth/c1/memory.stat': 'cache 10\ntotal_cache 20\n',
      'memory/berth/c1/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
      'cpu/berth/c1/cpu.cfs_quota_us': '-1\n',
      'cpu/berth/c1/cpu.cfs_period_us': '100000\n',
      'cpu/berth/c1/cpu.shares': '256\n',
      'cpuacct/berth/c1/cpuacct.usage': '123456789\n',
      'cpuacct/berth/c1/cpuacct.stat': 'user 7\nsystem 3\n',
      'pids/berth/c1/cgroup.procs': '11\n',
      'pids/berth/c1/pids.current': '1\n',
      'pids/berth/c1/pids.max': 'max\n',
      'blkio/berth/c1/blkio.bfq.weight': '300\n',
      'blkio/berth/c1/blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n',
      'freezer/berth/c1/freezer.state': 'FROZEN\n',
    });
    const info = detectCgroups(root);
    expect(info.version).toBe(1);
    expect(await readCgroupStats(info, '/berth/c1')).toEqual({
      cpu: { usageNs: 123456789n, userNs: 70_000_000n, systemNs: 30_000_000n },
      memory: { usage: 1000, limit: 48 * MiB, maxUsage: 2000, cache: 20, oomKills: 2 },
      pids: { current: 1, limit: Number.MAX_SAFE_INTEGER },
      blkio: { readBytes: 4096, writeBytes: 512 },
    });
    expect(await readCgroupLimits(info, '/berth/c1')).toEqual({ memory: 48 * MiB, memorySwap: 96 * MiB, cpuPeriod: 100000, cpuShares: 256, blkioWeight: 300 });
    expect(await isFrozen(info, '/berth/c1')).toBe(true);
    expect(await cgroupPids(info, '/berth/c1')).toEqual([11]);
  });
});

describe('v1 → v2 conversions (what runc and crun write on a v2 host)', () => {
  it('converts cpu shares to cpu.weight linearly from 2..262144 to 1..10000', () => {
    expect([0, 2, 512, 1024, 262144].map(cpuSharesToWeight)).toEqual([0, 1, 20, 39, 10000]);
  });
  it('converts the blkio weight 10..1000 to io.weight 1..10000', () => {
    expect([0, 10, 500, 1000].map(blkioWeightToIoWeight)).toEqual([0, 1, 4950, 10000]);
  });
  it('turns memory+swap into the swap alone', () => {
    expect(memorySwapToSwapMax(128 * MiB, 64 * MiB)).toBe(64 * MiB);
    expect(memorySwapToSwapMax(64 * MiB, 64 * MiB)).toBe(0);
    expect(memorySwapToSwapMax(-1, 64 * MiB)).toBe(-1);
    expect(memorySwapToSwapMax(0, -1)).toBe(-1);
    expect(memorySwapToSwapMax(0, 64 * MiB)).toBe(0);
  });
});
