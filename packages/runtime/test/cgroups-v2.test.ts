import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { buildBusyboxRootfs } from '../../../test/support/busybox.js';
import {
  blkioWeightToIoWeight,
  cgroupPids,
  cpuSharesToWeight,
  detectCgroups,
  isFrozen,
  oomKillCount,
  readCgroupLimits,
  readCgroupStats,
  removeCgroup,
  thaw,
} from '../src/cgroups/cgroups.js';
import type { CgroupInfo } from '../src/cgroups/cgroups.js';
import { runCommand } from '../src/runtime/process.js';
import { buildRuntimeSpec } from '../src/spec/generate.js';
import { createHarness } from './harness.js';
import type { Harness } from './harness.js';

/** Where the host mounts the whole cgroup2 hierarchy: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid). */
function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const f = pre?.split(' ') ?? [];
    if (post?.startsWith('cgroup2 ') && f[3] === '/') return f[4];
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describePrivileged('cgroup v2: runc with a bundle generated for a v2 host, on the real cgroup2 hierarchy', () => {
  const mount = cgroup2Mount();
  if (!mount) console.warn('skipping the cgroup v2 tests: this host has no cgroup2 mount (pure cgroup v1)');

  describe.skipIf(!mount)(`cgroup2 at ${mount ?? '(none)'}`, () => {
    let dir: string;
    let info: CgroupInfo;
    const parent = `/berth-v2test-${randomBytes(4).toString('hex')}`;
    const id = `v2-${randomBytes(4).toString('hex')}`;
    const cgroupPath = `${parent}/${id}`;
    let pid = 0;
    let misc: { allowed: number; other: number };

    /**
     * runc decides "unified mode" by /sys/fs/cgroup being a cgroup2 mount. On a hybrid host it is a
     * tmpfs of v1 mounts, so every runc call runs in a private mount namespace with the (single,
     * host-wide) cgroup2 hierarchy mounted there: runc then drives the container's cgroup the v2
     * way — one directory, cgroup.procs, cgroup.freeze, eBPF device filter — in the hierarchy we
     * see at `mount`.
     */
    const runcV2 = (args: string, redirect = ''): Promise<{ code: number; stdout: string; stderr: string }> =>
      runCommand('unshare', [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 99; exec runc --root ${dir}/state ${args} ${redirect}`,
      ], { timeoutMs: 60_000 });

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-cgv2-'));
      info = detectCgroups(mount);
      // Not tun (10:200): runc 1.1 appends it, rwm, to every container's device rules.
      const byName = new Map(
        (await readFile('/proc/misc', 'utf8'))
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .map((f) => [f[1] ?? '', Number(f[0])] as const),
      );
      const found = ['fuse', 'loop-control', 'autofs'].filter((n) => byName.has(n)).map((n) => byName.get(n) ?? 0);
      if (found.length < 2) throw new Error('this test needs two of fuse, loop-control and autofs in /proc/misc');
      misc = { allowed: found[0] ?? 0, other: found[1] ?? 0 };
      await mkdir(path.join(dir, 'rootfs'));
      await runCommand('mknod', ['-m', '0660', path.join(dir, 'misc-allowed'), 'c', '10', String(misc.allowed)]);
      await buildBusyboxRootfs(path.join(dir, 'rootfs'));
    });

    afterAll(async () => {
      if (dir) {
        await runcV2(`kill ${id} KILL`);
        await runcV2(`delete --force ${id}`);
      }
      if (info) {
        await thaw(info, cgroupPath);
        for (let i = 0; i < 40 && (await cgroupPids(info, cgroupPath)).length > 0; i++) await sleep(50);
        await removeCgroup(info, parent);
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('detects the hierarchy as v2 with its delegated controllers', () => {
      expect(info.version).toBe(2);
      expect(info.controllers).toEqual(readFileSync(path.join(mount ?? '', 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
    });

    it('runs the generated bundle: own cgroup namespace, eBPF device rules, stats, freeze, pids, removal', async () => {
      const script = [
        'cat /proc/self/cgroup',
        'stat -fc %t /sys/fs/cgroup',
        "stat -c '%t:%T' /dev/berth-null",
        'echo hi > /dev/berth-null && echo null-write-ok',
        'true < /dev/berth-misc && echo misc-read-ok',
        'true > /dev/berth-misc || echo misc-write-denied',
        `mknod /dev/unlisted c 10 ${misc.other} && echo mknod-ok`,
        'true < /dev/unlisted || echo unlisted-denied',
        'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo busy-done',
        'exec sleep 120',
      ].join('; ');
      // On a pure v2 host with controllers, limits too (runc translates them; read back below).
      const limits = ['memory', 'cpu', 'pids'].every((c) => info.controllers.includes(c));
      const spec = await buildRuntimeSpec(
        {
          id,
          rootfs: { path: path.join(dir, 'rootfs') },
          config: { Cmd: ['sh', '-c', script] },
          hostConfig: {
            Devices: [
              { PathOnHost: '/dev/null', PathInContainer: '/dev/berth-null' },
              { PathOnHost: path.join(dir, 'misc-allowed'), PathInContainer: '/dev/berth-misc', CgroupPermissions: 'r' },
            ],
            ...(limits ? { Memory: 64 << 20, ...(info.swapAccounting ? { MemorySwap: 96 << 20 } : {}), CpuShares: 512, NanoCpus: 0.5e9, PidsLimit: 20 } : {}),
          },
        },
        {
          rootfsPath: path.join(dir, 'rootfs'),
          ociVersion: '1.0.2-dev',
          cgroupsPath: cgroupPath,
          cgroupVersion: 2,
          user: { uid: 0, gid: 0, additionalGids: [], home: '/root' },
          files: {},
          hostHardLimits: {},
          swapAccounting: info.swapAccounting,
          blkioWeight: info.blkioWeight,
          controllers: info.controllers,
        },
      );
      await writeFile(path.join(dir, 'config.json'), JSON.stringify(spec));
      const out = path.join(dir, 'out');
      const r = await runcV2(`run --detach --pid-file ${dir}/pid --bundle ${dir} ${id}`, `>${out} 2>&1 </dev/null`);
      expect(r.code, `${r.stderr}${existsSync(out) ? await readFile(out, 'utf8') : ''}`).toBe(0);
      pid = Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim());
      for (let i = 0; i < 100 && !(await readFile(out, 'utf8')).includes('busy-done'); i++) await sleep(50);

      // On a hybrid host the kernel also lists the v1 hierarchies (the container stays in ours there).
      const lines = (await readFile(out, 'utf8')).trim().split('\n').filter((l) => !/^[1-9]\d*:[^:]+:/.test(l));
      expect(lines).toEqual([
        '0::/', // a private cgroup namespace: the container sees its cgroup as the root
        '63677270', // CGROUP2_SUPER_MAGIC: /sys/fs/cgroup is cgroup2 inside
        '1:3',
        'null-write-ok',
        'misc-read-ok',
        expect.stringMatching(/berth-misc.*Operation not permitted/),
        'misc-write-denied',
        'mknod-ok',
        expect.stringMatching(/unlisted.*Operation not permitted/),
        'unlisted-denied',
        'busy-done',
      ]);

      // The host's view of the same cgroup, through our reader.
      const dirOnHost = path.join(mount ?? '', cgroupPath);
      expect(readFileSync('/proc/' + pid + '/cgroup', 'utf8')).toContain(`0::${cgroupPath}\n`);
      expect(await cgroupPids(info, cgroupPath)).toEqual([pid]);
      const stats = await readCgroupStats(info, cgroupPath);
      expect(stats.cpu.usageNs).toBeGreaterThan(1_000_000n); // the busy loop, in cpu.stat's usage_usec
      expect(stats.cpu.userNs + stats.cpu.systemNs).toBeGreaterThan(0n);
      expect(await oomKillCount(info, cgroupPath)).toBe(0);
      if (limits) {
        expect(stats.memory.limit).toBe(64 << 20);
        expect(stats.pids).toMatchObject({ current: 1, limit: 20 });
        const l = await readCgroupLimits(info, cgroupPath);
        expect(l).toMatchObject({ memory: 64 << 20, cpuQuota: 50000, cpuPeriod: 100000, cpuWeight: cpuSharesToWeight(512), pids: 20 });
        if (info.swapAccounting) expect(l.memorySwap).toBe(96 << 20);
      } else {
        // No controller delegated here: the files of the limits are not there to read.
        expect(existsSync(path.join(dirOnHost, 'memory.max'))).toBe(false);
        expect(stats.memory.limit).toBe(Number.MAX_SAFE_INTEGER);
      }

      // runc pauses with cgroup.freeze; we see it, and thaw it ourselves.
      expect(await isFrozen(info, cgroupPath)).toBe(false);
      const paused = await runcV2(`pause ${id}`);
      expect(paused.code, paused.stderr).toBe(0);
      expect(await isFrozen(info, cgroupPath)).toBe(true);
      expect(readFileSync(path.join(dirOnHost, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
      await thaw(info, cgroupPath);
      for (let i = 0; i < 40 && /^frozen 1$/m.test(readFileSync(path.join(dirOnHost, 'cgroup.events'), 'utf8')); i++) await sleep(25);
      expect(await isFrozen(info, cgroupPath)).toBe(false);
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).not.toMatch(/^State:\s+D/m);

      // A busy cgroup stays; once runc has killed and deleted the container, everything goes.
      expect(await removeCgroup(info, parent)).toEqual([]);
      expect(existsSync(dirOnHost)).toBe(true);
      expect((await runcV2(`kill ${id} KILL`)).code).toBe(0);
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(20);
      expect((await runcV2(`delete --force ${id}`)).code).toBe(0);
      await removeCgroup(info, parent);
      expect(existsSync(path.join(mount ?? '', parent))).toBe(false);
    });
  });
});

describePrivileged("cgroups: limits read back from this host's hierarchy after create and update", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reads what the runtime set, in Docker units (v1 files here; memory.max + memory.swap.max on v2)', async () => {
    const info = detectCgroups();
    const spec = await h.spec(['sleep', '60'], { hostConfig: { Memory: 64 << 20, NanoCpus: 0.5e9, CpuShares: 512, PidsLimit: 20, BlkioWeight: 300 } });
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      const cgroupPath = `/${h.cgroupParent}/${spec.id}`;
      const weights = info.version === 2 ? { cpuWeight: cpuSharesToWeight(512) } : { cpuShares: 512 };
      // runc writes the BFQ weight as given (v1 blkio.bfq.weight, v2 io.bfq.weight), else the
      // CFQ blkio.weight (v1) or the converted io.weight (v2); detectCgroups said whether any exists.
      const bfq = existsSync(path.join(info.root, info.version === 2 ? '' : 'blkio', cgroupPath, info.version === 2 ? 'io.bfq.weight' : 'blkio.bfq.weight'));
      const io = !info.blkioWeight ? {} : info.version === 1 ? { blkioWeight: 300 } : { ioWeight: bfq ? 300 : blkioWeightToIoWeight(300) };
      expect(await readCgroupLimits(info, cgroupPath)).toMatchObject({
        memory: 64 << 20,
        ...(info.swapAccounting ? { memorySwap: 128 << 20 } : {}),
        cpuQuota: 50000,
        cpuPeriod: 100000,
        ...weights,
        ...io,
        pids: 20,
      });
      await h.runtime.update(spec.id, { Memory: 48 << 20, MemorySwap: 96 << 20, PidsLimit: 30, CpuShares: 256 });
      expect(await readCgroupLimits(info, cgroupPath)).toMatchObject({
        memory: 48 << 20,
        ...(info.swapAccounting ? { memorySwap: 96 << 20 } : {}),
        ...(info.version === 2 ? { cpuWeight: cpuSharesToWeight(256) } : { cpuShares: 256 }),
        pids: 30,
      });
      const pid = (await h.runtime.state(spec.id)).pid;
      expect(await cgroupPids(info, cgroupPath)).toEqual([pid]);
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });
});
