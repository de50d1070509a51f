import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateRuntimeSpec } from '@berth/oci-spec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './defaults.js';
import { buildRuntimeSpec, resolveCapabilities, resolveProcessConfig } from './generate.js';
import type { BuildRuntimeSpecContext } from './generate.js';
import type { ContainerSpec } from './types.js';

const ctx: BuildRuntimeSpecContext = {
  rootfsPath: '/tmp/rootfs',
  ociVersion: '1.0.2-dev',
  cgroupsPath: '/berth/abc',
  cgroupVersion: 1,
  user: { uid: 0, gid: 0, additionalGids: [], home: '/root' },
  files: { hosts: '/x/hosts', hostname: '/x/hostname', resolvConf: '/x/resolv.conf' },
  hostHardLimits: { RLIMIT_NOFILE: 20000, RLIMIT_NPROC: 5000 },
  initPath: '/usr/bin/tini-static',
  swapAccounting: true,
  blkioWeight: false,
};
const base: ContainerSpec = { id: 'abc', rootfs: { path: '/tmp/rootfs' }, image: { Cmd: ['sh'], Env: ['PATH=/bin', 'A=1'] } };

describe('buildRuntimeSpec', () => {
  it("applies Docker's defaults and passes the OCI runtime-spec schema", async () => {
    const spec = await buildRuntimeSpec(base, ctx);
    expect(validateRuntimeSpec(spec)).toBeTruthy();
    expect(spec.process.capabilities.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(spec.process.capabilities.effective).toHaveLength(14);
    expect(spec.process.capabilities.inheritable).toEqual([]);
    expect(spec.process.capabilities.ambient).toEqual([]);
    expect(spec.linux.maskedPaths).toEqual([...DEFAULT_MASKED_PATHS]);
    expect(spec.linux.readonlyPaths).toEqual([...DEFAULT_READONLY_PATHS]);
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.mounts.find((m) => m.destination === '/dev/shm')?.options).toContain(`size=${64 * 1024 * 1024}`);
    expect(spec.mounts.find((m) => m.destination === '/sys')?.options).toContain('ro');
    expect(spec.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux.resources.devices.some((d) => d.major === 10 && d.minor === 229)).toBe(false); // no /dev/fuse
    expect(spec.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 20000 }]);
    expect(spec.process.noNewPrivileges).toBe(false);
    expect(spec.process.env).toEqual(['PATH=/bin', 'A=1', 'HOSTNAME=abc', 'HOME=/root']);
    expect(spec.hostname).toBe('abc');
    expect(spec.ociVersion).toBe('1.0.2-dev');
    const sc = spec.linux.seccomp;
    expect(sc?.defaultAction).toBe('SCMP_ACT_ERRNO');
    const allowed = new Set(sc?.syscalls?.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));
    for (const denied of ['mount', 'umount2', 'unshare', 'setns', 'bpf', 'perf_event_open', 'keyctl', 'add_key', 'request_key', 'userfaultfd', 'io_uring_setup', 'kexec_load', 'init_module', 'reboot', 'swapon', 'pivot_root']) {
      expect(allowed.has(denied), denied).toBe(false);
    }
    expect(sc?.syscalls?.find((s) => s.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(sc?.syscalls?.find((s) => s.names.includes('clone'))?.args?.[0]).toMatchObject({ op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000 });
  });

  it('gives a tty its console size from the start (stty size reads it before any resize)', async () => {
    const tty = await buildRuntimeSpec({ ...base, tty: true, consoleSize: { height: 40, width: 120 } }, ctx);
    expect(tty.process.terminal).toBe(true);
    expect(tty.process.consoleSize).toEqual({ height: 40, width: 120 });
    expect(validateRuntimeSpec(tty)).toBeTruthy();
    expect((await buildRuntimeSpec({ ...base, consoleSize: { height: 40, width: 120 } }, ctx)).process.consoleSize).toBeUndefined();
    expect((await buildRuntimeSpec({ ...base, tty: true, consoleSize: { height: 0, width: 0 } }, ctx)).process.consoleSize).toBeUndefined();
  });

  it('merges image config and run options as Docker does', () => {
    expect(resolveProcessConfig({ ...base, image: { Entrypoint: ['/e'], Cmd: ['a'] } }).args).toEqual(['/e', 'a']);
    expect(resolveProcessConfig({ ...base, image: { Entrypoint: ['/e'], Cmd: ['a'] }, config: { Cmd: ['b'] } }).args).toEqual(['/e', 'b']);
    expect(resolveProcessConfig({ ...base, image: { Entrypoint: ['/e'], Cmd: ['a'] }, config: { Entrypoint: ['/f'] } }).args).toEqual(['/f']);
    expect(resolveProcessConfig({ ...base, config: { Env: ['A=2', 'B=3'] } }).env).toEqual(['PATH=/bin', 'A=2', 'B=3']);
    expect(() => resolveProcessConfig({ ...base, image: {} })).toThrow(/no command/);
    expect(() => resolveProcessConfig({ ...base, config: { WorkingDir: '/proc/self/fd/3' } })).toThrow(/proc\/self\/fd/);
  });

  it('handles cap-add/cap-drop/privileged', async () => {
    expect(resolveCapabilities({ CapDrop: ['ALL'], CapAdd: ['net_admin'] })).toEqual(['CAP_NET_ADMIN']);
    expect(resolveCapabilities({ CapDrop: ['CHOWN'] })).not.toContain('CAP_CHOWN');
    expect(resolveCapabilities({ CapAdd: ['ALL'] }).length).toBeGreaterThan(38);
    expect(() => resolveCapabilities({ CapAdd: ['CAP_NOPE'] })).toThrow(/unknown capability/);
    const p = await buildRuntimeSpec({ ...base, hostConfig: { Privileged: true } }, ctx);
    expect(p.linux.seccomp).toBeUndefined();
    expect(p.linux.maskedPaths).toEqual([]);
    expect(p.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
    // SYS_ADMIN brings mount/unshare and the unrestricted clone
    const admin = await buildRuntimeSpec({ ...base, hostConfig: { CapAdd: ['SYS_ADMIN'] } }, ctx);
    expect(admin.linux.seccomp?.syscalls?.some((s) => s.names.includes('unshare') && s.action === 'SCMP_ACT_ALLOW')).toBe(true);
    expect(admin.linux.seccomp?.syscalls?.some((s) => s.names.includes('clone3') && s.action === 'SCMP_ACT_ERRNO')).toBe(false);
  });

  describe('security options, ulimits, resources, mounts', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-spec-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('accepts seccomp=unconfined, a profile file and no-new-privileges', async () => {
      const file = path.join(dir, 'profile.json');
      await writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO' }] }));
      const s = await buildRuntimeSpec({ ...base, hostConfig: { SecurityOpt: [`seccomp=${file}`, 'no-new-privileges'] } }, ctx);
      expect(s.linux.seccomp).toMatchObject({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO' }] });
      expect(s.process.noNewPrivileges).toBe(true);
      const u = await buildRuntimeSpec({ ...base, hostConfig: { SecurityOpt: ['seccomp=unconfined'] } }, ctx);
      expect(u.linux.seccomp).toBeUndefined();
      await expect(buildRuntimeSpec({ ...base, hostConfig: { SecurityOpt: ['seccomp=/nonexistent.json'] } }, ctx)).rejects.toThrow(/nonexistent/);
      await expect(buildRuntimeSpec({ ...base, hostConfig: { SecurityOpt: ['bogus'] } }, ctx)).rejects.toThrow(/bogus/);
    });

    it('never goes above the host hard limits', async () => {
      const s = await buildRuntimeSpec({ ...base, hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }, { Name: 'nproc', Soft: 10, Hard: 20 }] } }, ctx);
      expect(s.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }, { type: 'RLIMIT_NPROC', soft: 10, hard: 20 }]);
      await expect(buildRuntimeSpec({ ...base, hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1, Hard: 1_000_000 }] } }, ctx)).rejects.toThrow(/above the host's 20000/);
      await expect(buildRuntimeSpec({ ...base, hostConfig: { Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] } }, ctx)).rejects.toThrow(/bogus/);
      const low = await buildRuntimeSpec(base, { ...ctx, hostHardLimits: { RLIMIT_NOFILE: 512 } });
      expect(low.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 512, hard: 512 }]);
    });

    it('maps resources like Docker', async () => {
      const s = await buildRuntimeSpec({ ...base, hostConfig: { Memory: 64 << 20, MemoryReservation: 32 << 20, NanoCpus: 1.5e9, CpuShares: 512, CpusetCpus: '0', PidsLimit: 50, BlkioWeight: 300 } }, ctx);
      expect(s.linux.resources.memory).toEqual({ limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 });
      expect(s.linux.resources.cpu).toEqual({ period: 100000, quota: 150000, shares: 512, cpus: '0' });
      expect(s.linux.resources.pids).toEqual({ limit: 50 });
      expect(s.linux.resources.blockIO).toBeUndefined(); // no weight knob on this (context's) host
      const swapless = await buildRuntimeSpec({ ...base, hostConfig: { Memory: 64 << 20, MemorySwap: -1 } }, ctx);
      expect(swapless.linux.resources.memory).toEqual({ limit: 64 << 20, swap: -1 });
      await expect(buildRuntimeSpec({ ...base, hostConfig: { Memory: 1024 } }, ctx)).rejects.toThrow(/6MB/);
      expect(validateRuntimeSpec(s)).toBeTruthy();
    });

    it('adds tmpfs, sysctls, init, shm size, read-only root and extra mounts', async () => {
      const s = await buildRuntimeSpec(
        {
          ...base,
          tty: true,
          hostConfig: { Tmpfs: { '/run': 'size=1m' }, Sysctls: { 'net.ipv4.ip_forward': '1' }, Init: true, ShmSize: 1 << 20, ReadonlyRootfs: true },
          mounts: [{ type: 'bind', source: '/srv', target: '/data', options: ['rbind', 'ro'] }],
        },
        ctx,
      );
      expect(s.root.readonly).toBe(true);
      expect(s.process.args).toEqual(['/sbin/docker-init', '--', 'sh']);
      expect(s.process.env).toContain('TERM=xterm');
      expect(s.mounts.find((m) => m.destination === '/run')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=1m'] });
      expect(s.mounts.find((m) => m.destination === '/data')?.source).toBe('/srv');
      expect(s.mounts.find((m) => m.destination === '/dev/shm')?.options).toContain('size=1048576');
      expect(s.linux.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
      await expect(buildRuntimeSpec({ ...base, hostConfig: { Sysctls: { 'kernel.panic': '1' } } }, ctx)).rejects.toThrow(/kernel.panic/);
      await expect(buildRuntimeSpec({ ...base, netns: 'host', hostConfig: { Sysctls: { 'net.ipv4.ip_forward': '1' } } }, ctx)).rejects.toThrow(/not namespaced/);
      const hostNet = await buildRuntimeSpec({ ...base, netns: 'host' }, ctx);
      expect(hostNet.linux.namespaces.some((n) => n.type === 'network')).toBe(false);
      const joined = await buildRuntimeSpec({ ...base, netns: { path: '/run/netns/x' } }, ctx);
      expect(joined.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/x' });
    });
  });
});
