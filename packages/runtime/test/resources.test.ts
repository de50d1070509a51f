import { existsSync, readdirSync, statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ContainerSpec } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { deviceMajor, deviceMinor } from '../src/spec/devices.js';
import { collect, createHarness } from './harness.js';
import type { Harness } from './harness.js';

describePrivileged('runtime: resource limits through cgroups', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function run(cmd: string, hostConfig: ContainerSpec['hostConfig']) {
    const spec = await h.spec(['sh', '-c', cmd], { hostConfig });
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      const exit = await h.runtime.wait(spec.id);
      const info = await h.runtime.state(spec.id);
      return { ...exit, info, ...(await collect(h.runtime.logs(spec.id))) };
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  }

  it('enforces a memory limit and reports the OOM kill (137, OOMKilled)', async () => {
    const r = await run('cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; exec tail /dev/zero', { Memory: 16 * 1024 * 1024 });
    expect(r.stdout.trim()).toBe(String(16 * 1024 * 1024));
    expect(r.exitCode).toBe(137);
    expect(r.oomKilled).toBe(true);
    expect(r.info.oomKilled).toBe(true);
  });

  it('applies block I/O throttles (--device-read-bps, --device-write-iops) and swappiness', async () => {
    // The block device the root filesystem is on: a real one on any host that runs containers.
    const rootDev = statSync('/', { bigint: true }).dev;
    const [major, minor] = [deviceMajor(rootDev), deviceMinor(rootDev)];
    const path = readdirSync('/dev')
      .map((n) => `/dev/${n}`)
      .find((p) => {
        try {
          const st = statSync(p, { bigint: true });
          return st.isBlockDevice() && st.rdev === rootDev;
        } catch {
          return false;
        }
      });
    if (!path) {
      console.warn('skipping the block I/O throttle check: the root filesystem is not on a block device in /dev');
      return;
    }
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const script = v2 ? 'cat /sys/fs/cgroup/io.max' : 'cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device /sys/fs/cgroup/memory/memory.swappiness';
    const r = await run(script, { BlkioDeviceReadBps: [{ Path: path, Rate: 1048576 }], BlkioDeviceWriteIOps: [{ Path: path, Rate: 100 }], MemorySwappiness: 7 });
    expect(r.exitCode, r.stderr).toBe(0);
    if (v2) expect(r.stdout).toContain(`${major}:${minor} rbps=1048576 wbps=max riops=max wiops=100`);
    else expect(r.stdout.trim().split('\n')).toEqual([`${major}:${minor} 1048576`, `${major}:${minor} 100`, '7']);
  });

  it('does not report OOM for a plain SIGKILL', async () => {
    const spec = await h.spec(['sleep', '60'], { hostConfig: { Memory: 32 * 1024 * 1024 } });
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      await h.runtime.kill(spec.id, 'KILL');
      const exit = await h.runtime.wait(spec.id);
      expect(exit).toMatchObject({ exitCode: 137, oomKilled: false });
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });

  it('enforces a pids limit', async () => {
    const spec = await h.spec(['sleep', '60'], { hostConfig: { PidsLimit: 10 } });
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      const e = await h.runtime.exec(spec.id, { cmd: ['sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 1 30); do sleep 5 & done'] });
      let out = '';
      let err = '';
      e.stdout.on('data', (d: Buffer) => (out += d.toString()));
      e.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await e.wait();
      expect(out.trim()).toBe('10');
      expect(err).toMatch(/can't fork|Resource temporarily unavailable/);
      const stats = await h.runtime.stats(spec.id);
      expect(stats.pids.limit).toBe(10);
      expect(stats.pids.current).toBeLessThanOrEqual(10);
      expect(stats.pids.current).toBeGreaterThan(5);
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });

  it('enforces a CPU quota (--cpus 0.5): a busy loop never gets more than half a CPU', async () => {
    const r = await run(
      'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; read u0 _ < /proc/uptime; timeout 2 sh -c "while :; do :; done"; read u1 _ < /proc/uptime; echo "$u0 $u1"; cat /sys/fs/cgroup/cpuacct/cpuacct.usage; grep nr_throttled /sys/fs/cgroup/cpu/cpu.stat',
      { NanoCpus: 0.5e9, CpuShares: 512 },
    );
    const [quota, period, wall, usage, throttled] = r.stdout.trim().split('\n');
    expect([quota, period]).toEqual(['50000', '100000']);
    const [u0, u1] = (wall ?? '').split(' ').map(Number);
    const wallNs = ((u1 ?? 0) - (u0 ?? 0)) * 1e9;
    const usageNs = Number(usage);
    expect(usageNs).toBeGreaterThan(0);
    // Never above the quota (10% slack for the last period and the shell around the loop)...
    expect(usageNs).toBeLessThan(0.55 * wallNs + 0.1e9);
    // ...and when the loop got close to it (an idle enough machine), the kernel throttled it.
    if (usageNs > 0.4 * wallNs) expect(Number(throttled?.split(' ')[1])).toBeGreaterThan(0);
  });

  it('updates limits of a running container and reports stats', async () => {
    const spec = await h.spec(['sleep', '60'], { hostConfig: { Memory: 64 * 1024 * 1024, PidsLimit: 20 } });
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      await h.runtime.update(spec.id, { Memory: 48 * 1024 * 1024, MemorySwap: 96 * 1024 * 1024, PidsLimit: 30, CpuShares: 256 });
      const e = await h.runtime.exec(spec.id, { cmd: ['cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/cpu/cpu.shares'] });
      let out = '';
      e.stdout.on('data', (d: Buffer) => (out += d.toString()));
      expect(await e.wait()).toBe(0);
      expect(out.trim().split('\n')).toEqual([String(48 * 1024 * 1024), '30', '256']);
      const stats = await h.runtime.stats(spec.id);
      expect(stats.memory.limit).toBe(48 * 1024 * 1024);
      expect(stats.memory.usage).toBeGreaterThan(0);
      expect(stats.pids).toEqual({ current: 1, limit: 30 });
      expect(stats.cpu.usageNs).toBeGreaterThan(0n);
      expect(Object.keys(stats.network)).toContain('lo');
      const top = await h.runtime.top(spec.id);
      expect(top.Titles).toContain('PID');
      expect(top.Processes.map((p) => p.at(-1))).toEqual(['sleep 60']);
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });
});
