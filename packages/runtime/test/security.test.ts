import { afterAll, beforeAll, expect, it } from 'vitest';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '@berth/runtime';
import type { ContainerSpec } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { createHarness, runToExit } from './harness.js';
import type { Harness } from './harness.js';

function capMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) mask |= 1n << BigInt(ALL_CAPABILITIES.indexOf(c));
  return mask.toString(16).padStart(16, '0');
}

describePrivileged('runtime: security defaults inside a real container', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const run = (cmd: string, extra: Partial<ContainerSpec> = {}): ReturnType<typeof runToExit> => runToExit(h, cmd, extra);

  it("has exactly Docker's capability sets in /proc/1/status", async () => {
    const r = await run('grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/1/status');
    expect(r.exitCode).toBe(0);
    const caps = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/) as [string, string]));
    expect(capMask(DEFAULT_CAPABILITIES)).toBe('00000000a80425fb'); // Docker's well-known default set
    expect(caps).toEqual({ CapInh: '0000000000000000', CapPrm: '00000000a80425fb', CapEff: '00000000a80425fb', CapBnd: '00000000a80425fb', CapAmb: '0000000000000000' });
  });

  it('has seccomp in filter mode: unshare fails with EPERM; unconfined lets the kernel decide', async () => {
    const r = await run('grep Seccomp: /proc/1/status; unshare -n true; echo "rc=$?"');
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
    expect(r.stdout).toContain('rc=1');
    expect(r.stderr).toMatch(/Operation not permitted/);
    // Without seccomp, unshare still fails (no CAP_SYS_ADMIN) but the filter is off.
    const u = await run('grep Seccomp: /proc/1/status', { hostConfig: { SecurityOpt: ['seccomp=unconfined'] } });
    expect(u.stdout).toMatch(/Seccomp:\s+0/);
  });

  it('masks and read-only-mounts the sensitive paths', async () => {
    const r = await run('echo "kcore=$(cat /proc/kcore | wc -c)"; echo "firmware=$(ls -A /sys/firmware | wc -l)"; echo "keys=$(cat /proc/keys | wc -c)"; echo 1 > /proc/sys/kernel/panic 2>/dev/null; echo "sys=$?"; mkdir /sys/fs/cgroup/memory/x 2>/dev/null; echo "cgroup=$?"');
    expect(r.stdout.trim().split('\n')).toEqual(['kcore=0', 'firmware=0', 'keys=0', 'sys=1', 'cgroup=1']);
  });

  it('leaks no file descriptor into the container: pid 1 has only 0, 1, 2', async () => {
    const spec = await h.spec(['sleep', '60']);
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      const e = await h.runtime.exec(spec.id, { cmd: ['ls', '/proc/1/fd'] });
      let out = '';
      e.stdout.on('data', (d: Buffer) => (out += d.toString()));
      expect(await e.wait()).toBe(0);
      expect(out.trim().split(/\s+/).sort()).toEqual(['0', '1', '2']);
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });

  it('applies cap-drop ALL, no-new-privileges, read-only rootfs, tmpfs, user and hostname', async () => {
    const r = await run(
      'grep -E "^(CapEff|NoNewPrivs)" /proc/1/status; touch /x 2>/dev/null; echo "ro=$?"; touch /scratch/y && echo tmpfs-ok; id -u; id -g; hostname; cat /etc/hostname; pwd; cat /proc/self/limits | grep "open files"; grep -c box1 /etc/hosts; cat /etc/resolv.conf; ls /sys/class/net',
      {
        hostname: 'box1',
        resolvConf: 'nameserver 192.0.2.53\n',
        netns: 'none',
        config: { User: 'berth', WorkingDir: '/srv/app' },
        hostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], ReadonlyRootfs: true, Tmpfs: { '/scratch': 'mode=1777' }, Ulimits: [{ Name: 'nofile', Soft: 512, Hard: 1024 }] },
      },
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/CapEff:\s+0000000000000000/);
    expect(lines[1]).toMatch(/NoNewPrivs:\s+1/);
    expect(lines.slice(2, 9)).toEqual(['ro=1', 'tmpfs-ok', '1000', '1000', 'box1', 'box1', '/srv/app']);
    expect(lines[9]).toMatch(/Max open files\s+512\s+1024/);
    expect(lines.slice(10)).toEqual(['1', 'nameserver 192.0.2.53', 'lo']); // hosts names the hostname; only lo
  });

  it('runs an init as pid 1 with --init and reaps zombies', async () => {
    const r = await run('cat /proc/1/cmdline | tr "\\0" " "; echo', { hostConfig: { Init: true } });
    expect(r.stdout).toMatch(/^\/sbin\/docker-init -- sh -c/);
  });
});
