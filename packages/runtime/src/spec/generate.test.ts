import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateRuntimeSpec } from '@berth/oci-spec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { deviceMajor, deviceMinor, hostDevices, parseDeviceCgroupRule } from './devices.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './defaults.js';
import { boundingCapabilities, buildResources, buildRuntimeSpec, namespaceModes, resolveCapabilities, resolveProcessConfig } from './generate.js';
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

  it('sets up PID, IPC and UTS namespaces by PidMode, IpcMode and UTSMode', async () => {
    const kinds = (spec: Awaited<ReturnType<typeof buildRuntimeSpec>>): string[] => spec.linux.namespaces.map((n) => (n.path ? `${n.type}=${n.path}` : n.type));
    const shm = (spec: Awaited<ReturnType<typeof buildRuntimeSpec>>) => spec.mounts.find((m) => m.destination === '/dev/shm');
    const plain = await buildRuntimeSpec(base, ctx);
    expect(kinds(plain)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network']);
    expect(shm(plain)?.type).toBe('tmpfs');
    const hostAll = await buildRuntimeSpec({ ...base, hostConfig: { PidMode: 'host', IpcMode: 'host', UTSMode: 'host' } }, ctx);
    expect(kinds(hostAll)).toEqual(['mount', 'network']);
    expect(shm(hostAll)).toMatchObject({ type: 'bind', source: '/dev/shm' });
    expect(hostAll.hostname).toBe('');
    const joined = await buildRuntimeSpec(
      { ...base, hostConfig: { PidMode: 'container:abc', IpcMode: 'container:abc' } },
      { ...ctx, sharedNamespaces: { pid: '/proc/42/ns/pid', ipc: '/proc/42/ns/ipc', ipcShm: '/run/c/abc/shm' } },
    );
    expect(kinds(joined)).toEqual(['pid=/proc/42/ns/pid', 'ipc=/proc/42/ns/ipc', 'uts', 'mount', 'network']);
    expect(shm(joined)).toMatchObject({ type: 'bind', source: '/run/c/abc/shm' });
    const none = await buildRuntimeSpec({ ...base, hostConfig: { IpcMode: 'none' } }, ctx);
    expect(shm(none)).toBeUndefined();
    const shareable = await buildRuntimeSpec({ ...base, hostConfig: { IpcMode: 'shareable' } }, { ...ctx, sharedNamespaces: { ownShm: '/run/c/me/shm' } });
    expect(shm(shareable)).toMatchObject({ type: 'bind', source: '/run/c/me/shm' });
    await expect(buildRuntimeSpec({ ...base, hostConfig: { PidMode: 'container:abc' } }, ctx)).rejects.toThrow(/not resolved/);
    // An IPC sysctl would change the namespace it shares: refused, as Docker does.
    await expect(buildRuntimeSpec({ ...base, hostConfig: { IpcMode: 'host', Sysctls: { 'kernel.shmmax': '1' } } }, ctx)).rejects.toThrow(/kernel\.shmmax .*shares another IPC namespace/);
    expect((await buildRuntimeSpec({ ...base, hostConfig: { Sysctls: { 'kernel.shmmax': '1' } } }, ctx)).linux.sysctl).toEqual({ 'kernel.shmmax': '1' });
    // The cgroup namespace: Docker's default by cgroup version, or as asked.
    expect(kinds(await buildRuntimeSpec({ ...base, hostConfig: { CgroupnsMode: 'private' } }, ctx))).toContain('cgroup');
    expect(kinds(await buildRuntimeSpec(base, { ...ctx, cgroupVersion: 2 }))).toContain('cgroup');
    expect(kinds(await buildRuntimeSpec({ ...base, hostConfig: { CgroupnsMode: 'host' } }, { ...ctx, cgroupVersion: 2 }))).not.toContain('cgroup');
    expect(() => namespaceModes({ CgroupnsMode: 'bogus' })).toThrow(/invalid cgroup namespace mode: bogus/);
    expect(() => namespaceModes({ PidMode: 'bogus' })).toThrow(/invalid PID mode: bogus/);
    expect(() => namespaceModes({ IpcMode: 'container:' })).toThrow(/invalid IPC mode/);
    expect(() => namespaceModes({ UTSMode: 'private' })).toThrow(/invalid UTS mode/);
  });

  it('turns --device-*-bps/iops into block I/O throttles and checks the paths; swappiness on v1 only', () => {
    const opts = { swapAccounting: true, blkioWeight: true };
    expect(() => buildResources({ BlkioDeviceReadBps: [{ Path: '/dev/null', Rate: 1 }] }, opts)).toThrow(/--device-read-bps: \/dev\/null is not a block device/);
    expect(() => buildResources({ BlkioDeviceWriteIOps: [{ Path: '/nonexistent', Rate: 1 }] }, opts)).toThrow(/--device-write-iops: cannot use \/nonexistent/);
    expect(buildResources({ MemorySwappiness: 10 }, opts).memory?.swappiness).toBe(10);
    expect(buildResources({ MemorySwappiness: 10 }, { ...opts, cgroupVersion: 2 }).memory).toBeUndefined();
    expect(buildResources({ MemorySwappiness: -1 }, opts).memory).toBeUndefined();
    expect(() => buildResources({ MemorySwappiness: 101 }, opts)).toThrow(/valid memory swappiness range is 0-100/);
  });

  it('reads the bounding set from /proc/self/status', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-capbnd-'));
    try {
      const status = path.join(dir, 'status');
      // bits 0 (CHOWN), 12 (NET_ADMIN), 21 (SYS_ADMIN); bit 24 (SYS_RESOURCE) missing
      await writeFile(status, `Name:\tnode\nCapBnd:\t${((1n << 0n) | (1n << 12n) | (1n << 21n)).toString(16).padStart(16, '0')}\nSeccomp:\t0\n`);
      expect(await boundingCapabilities(status)).toEqual(['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
      await writeFile(status, 'Name:\tnode\n');
      expect(await boundingCapabilities(status)).toEqual([...ALL_CAPABILITIES]);
      expect(await boundingCapabilities(path.join(dir, 'missing'))).toEqual([...ALL_CAPABILITIES]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('handles cap-add/cap-drop/privileged', async () => {
    expect(resolveCapabilities({ CapDrop: ['ALL'], CapAdd: ['net_admin'] })).toEqual(['CAP_NET_ADMIN']);
    expect(resolveCapabilities({ CapDrop: ['CHOWN'] })).not.toContain('CAP_CHOWN');
    expect(resolveCapabilities({ CapAdd: ['ALL'] }).length).toBeGreaterThan(38);
    expect(() => resolveCapabilities({ CapAdd: ['CAP_NOPE'] })).toThrow(/unknown capability/);
    // "All" is what the engine may grant (its bounding set); a named --cap-add is passed as asked.
    const some = ['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'];
    expect(resolveCapabilities({ Privileged: true }, some)).toEqual(some);
    expect(resolveCapabilities({ CapAdd: ['ALL'], CapDrop: ['CHOWN'] }, some)).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
    expect(resolveCapabilities({ CapAdd: ['SYS_RESOURCE'] }, some)).toContain('CAP_SYS_RESOURCE');
    const limited = await buildRuntimeSpec({ ...base, hostConfig: { Privileged: true } }, { ...ctx, boundingCapabilities: some });
    expect(limited.process.capabilities.bounding).toEqual(some);
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

describe('--device and --device-cgroup-rule', () => {
  const defaults = (spec: Awaited<ReturnType<typeof buildRuntimeSpec>>) => spec.linux.resources.devices.slice(0, 12);

  it('splits a dev_t like glibc (old 8:8 and large 12:20 encodings)', () => {
    expect([deviceMajor(0x0103n), deviceMinor(0x0103n)]).toEqual([1, 3]);
    // makedev(259, 1048575): minor bits above 8 live at 12..31, major bits above 12 at 32..
    const big = (0xfffffn & 0xffn) | ((0xfffffn & ~0xffn) << 12n) | ((259n & 0xfffn) << 8n) | ((259n & ~0xfffn) << 32n);
    expect([deviceMajor(big), deviceMinor(big)]).toEqual([259, 0xfffff]);
    const huge = (5n & 0xffn) | ((4096n + 7n) << 8n & 0xfff00n) | ((4096n + 7n) & ~0xfffn) << 32n;
    expect([deviceMajor(huge), deviceMinor(huge)]).toEqual([4096 + 7, 5]);
  });

  it('adds a host character device as a node and a cgroup rule with its permissions', async () => {
    const s = await buildRuntimeSpec({ ...base, hostConfig: { Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/berth-null', CgroupPermissions: 'r' }] } }, ctx);
    expect(s.linux.devices).toHaveLength(1);
    expect(s.linux.devices?.[0]).toMatchObject({ path: '/dev/berth-null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 });
    expect(s.linux.resources.devices.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'r' });
    // the defaults stay first: deny all, then the standard devices
    expect(defaults(s)).toEqual(defaults(await buildRuntimeSpec(base, ctx)));
    expect(validateRuntimeSpec(s)).toBeTruthy();
  });

  it('defaults the container path to the host path and the permissions to rwm', async () => {
    const s = await buildRuntimeSpec({ ...base, hostConfig: { Devices: [{ PathOnHost: '/dev/zero' }, { PathOnHost: '/dev/full', PathInContainer: '', CgroupPermissions: '' }] } }, ctx);
    expect(s.linux.devices?.map((d) => [d.path, d.major, d.minor])).toEqual([['/dev/zero', 1, 5], ['/dev/full', 1, 7]]);
    expect(s.linux.resources.devices.slice(-2).map((r) => r.access)).toEqual(['rwm', 'rwm']);
  });

  it('adds the cgroup rules of --device-cgroup-rule after the defaults, * meaning any', async () => {
    const s = await buildRuntimeSpec({ ...base, hostConfig: { DeviceCgroupRules: ['c 1:3 rwm', 'c *:* m', 'b 8:* r', 'a *:* rw'] } }, ctx);
    expect(s.linux.devices).toBeUndefined();
    expect(s.linux.resources.devices.slice(-4)).toEqual([
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', access: 'm' },
      { allow: true, type: 'b', major: 8, access: 'r' },
      { allow: true, type: 'a', access: 'rw' },
    ]);
    expect(validateRuntimeSpec(s)).toBeTruthy();
    for (const bad of ['c 1:3', 'x 1:3 rwm', 'c 1:3 rwx', 'c 1:3 rr', 'c a:b rwm', '']) {
      expect(() => parseDeviceCgroupRule(bad), bad).toThrow(/invalid device cgroup rule/);
    }
  });

  it('refuses a missing path, a non-device, bad permissions and a relative path, naming them', async () => {
    const dev = (d: { PathOnHost: string; PathInContainer?: string; CgroupPermissions?: string }) => buildRuntimeSpec({ ...base, hostConfig: { Devices: [d] } }, ctx);
    await expect(dev({ PathOnHost: '/dev/berth-does-not-exist' })).rejects.toThrow('no such device on the host: /dev/berth-does-not-exist');
    await expect(dev({ PathOnHost: '/etc/hostname' })).rejects.toThrow('not a device: /etc/hostname');
    await expect(dev({ PathOnHost: '/dev/null', CgroupPermissions: 'rwx' })).rejects.toThrow(/invalid device permissions "rwx" for \/dev\/null/);
    await expect(dev({ PathOnHost: 'dev/null' })).rejects.toThrow(/must be absolute: "dev\/null"/);
    await expect(dev({ PathOnHost: '/dev/null', PathInContainer: 'null' })).rejects.toThrow(/in the container must be an absolute file path: "null"/);
    await expect(dev({ PathOnHost: '/dev/null' })).resolves.toBeTruthy();
    await expect(dev({ PathOnHost: '/dev/null', CgroupPermissions: 'x' })).rejects.toMatchObject({ code: 'INVALID_SPEC', category: 'invalid' });
  });

  it('lets a privileged container have the node without narrowing its allow-all rule', async () => {
    const s = await buildRuntimeSpec({ ...base, hostConfig: { Privileged: true, Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n2' }] } }, ctx);
    // the host's devices first, then the mapping
    expect(s.linux.devices?.map((d) => d.path)).toEqual([...(await hostDevices()).map((d) => d.path), '/dev/n2']);
    expect(s.linux.devices?.at(-1)).toMatchObject({ path: '/dev/n2', type: 'c', major: 1, minor: 3 });
    expect(s.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
  });

  describePrivileged('device directories (mknod needs root)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-devdir-'));
      await mkdir(path.join(dir, 'devs', 'sub'), { recursive: true });
      execFileSync('mknod', ['-m', '0640', path.join(dir, 'devs', 'a-null'), 'c', '1', '3']);
      execFileSync('mknod', ['-m', '0600', path.join(dir, 'devs', 'sub', 'loop9'), 'b', '7', '9']);
      execFileSync('chown', ['12:34', path.join(dir, 'devs', 'sub', 'loop9')]);
      await writeFile(path.join(dir, 'devs', 'not-a-device'), 'x');
      await symlink('/dev/zero', path.join(dir, 'devs', 'link-to-zero'));
      await symlink(path.join(dir, 'devs', 'a-null'), path.join(dir, 'null-link'));
      await mkdir(path.join(dir, 'empty'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('adds every device under a directory (not files, not symlinks), keeping relative paths', async () => {
      const s = await buildRuntimeSpec({ ...base, hostConfig: { Devices: [{ PathOnHost: path.join(dir, 'devs'), PathInContainer: '/dev/mine', CgroupPermissions: 'rw' }] } }, ctx);
      expect(s.linux.devices).toEqual([
        { path: '/dev/mine/a-null', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 0, gid: 0 },
        { path: '/dev/mine/sub/loop9', type: 'b', major: 7, minor: 9, fileMode: 0o600, uid: 12, gid: 34 },
      ]);
      expect(s.linux.resources.devices.slice(-2)).toEqual([
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' },
        { allow: true, type: 'b', major: 7, minor: 9, access: 'rw' },
      ]);
      expect(validateRuntimeSpec(s)).toBeTruthy();
    });

    it('follows a symlink given as the host path; refuses a directory without devices', async () => {
      const s = await buildRuntimeSpec({ ...base, hostConfig: { Devices: [{ PathOnHost: path.join(dir, 'null-link'), PathInContainer: '/dev/x' }] } }, ctx);
      expect(s.linux.devices).toEqual([{ path: '/dev/x', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 0, gid: 0 }]);
      await expect(buildRuntimeSpec({ ...base, hostConfig: { Devices: [{ PathOnHost: path.join(dir, 'empty') }] } }, ctx)).rejects.toThrow(`not a device: ${path.join(dir, 'empty')} is a directory with no device nodes`);
    });
  });
});

describe('the host devices of a privileged container', () => {
  it("lists this host's /dev as runc does: devices with their numbers, not console, nothing under pts or shm", async () => {
    const devices = await hostDevices();
    const nul = devices.find((d) => d.path === '/dev/null');
    const st = await lstat('/dev/null', { bigint: true });
    expect(nul).toEqual({ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
    expect(devices.some((d) => d.path === '/dev/console')).toBe(false);
    expect(devices.filter((d) => /^\/dev\/(pts|shm|mqueue|fd)\//.test(d.path))).toEqual([]);
    expect(new Set(devices.map((d) => d.path)).size).toBe(devices.length);
  });

  it('says which directory it could not list', async () => {
    await expect(hostDevices('/nonexistent-berth-dev')).rejects.toThrow(/cannot list the host's devices in \/nonexistent-berth-dev/);
  });

  it('gives a container that is not privileged none of them', async () => {
    const s = await buildRuntimeSpec(base, ctx);
    expect(s.linux.devices).toBeUndefined();
  });

  describePrivileged('on a /dev of our own (mknod needs root)', () => {
    let dir: string;
    let dev: string;
    const node = (rel: string, mode: string, type: 'c' | 'b', major: number, minor: number): void => {
      execFileSync('mknod', ['-m', mode, path.join(dev, rel), type, String(major), String(minor)]);
    };
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-hostdev-'));
      dev = path.join(dir, 'dev');
      for (const sub of ['pts', 'shm', 'mqueue', 'fd', '.lxc', '.lxd-mounts', '.udev', 'net', 'deep/pts', 'empty']) await mkdir(path.join(dev, sub), { recursive: true });
      node('null', '0666', 'c', 1, 3);
      node('kmsg', '0644', 'c', 1, 11);
      node('loop7', '0660', 'b', 7, 7);
      execFileSync('chown', ['0:6', path.join(dev, 'loop7')]);
      node('net/tun', '0666', 'c', 10, 200);
      node('weird', '0755', 'c', 250, 1048575);
      execFileSync('chown', ['12:34', path.join(dev, 'weird')]);
      execFileSync('chmod', ['4755', path.join(dev, 'weird')]); // after chown, which clears set-user-ID
      node('console', '0600', 'c', 5, 1);
      // in directories that are skipped, wherever they are
      node('pts/0', '0620', 'c', 136, 0);
      node('deep/pts/1', '0620', 'c', 136, 1);
      for (const sub of ['shm', 'mqueue', 'fd', '.lxc', '.lxd-mounts', '.udev']) node(`${sub}/x`, '0600', 'c', 1, 5);
      // not devices
      await writeFile(path.join(dev, 'regular'), 'x');
      execFileSync('mkfifo', [path.join(dev, 'initctl')]);
      await symlink('null', path.join(dev, 'link-to-null'));
      await symlink('net', path.join(dev, 'link-to-net'));
      await symlink('/proc/self/fd/0', path.join(dev, 'stdin'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('finds every device with type, numbers, mode and owner, in name order, and nothing else', async () => {
      expect(await hostDevices(dev)).toEqual([
        { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 },
        { path: '/dev/loop7', type: 'b', major: 7, minor: 7, fileMode: 0o660, uid: 0, gid: 6 },
        { path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 },
        { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
        { path: '/dev/weird', type: 'c', major: 250, minor: 1048575, fileMode: 0o4755, uid: 12, gid: 34 },
      ]);
      expect(await hostDevices(path.join(dev, 'empty'))).toEqual([]);
    });

    it('puts them in the spec of a privileged container only, a --device mapping winning at the same path', async () => {
      execFileSync('mknod', ['-m', '0600', path.join(dir, 'zero'), 'c', '1', '5']);
      const devCtx = { ...ctx, hostDevicesRoot: dev };
      const s = await buildRuntimeSpec(
        { ...base, hostConfig: { Privileged: true, Devices: [{ PathOnHost: path.join(dir, 'zero'), PathInContainer: '/dev/null', CgroupPermissions: 'r' }, { PathOnHost: path.join(dir, 'zero'), PathInContainer: '/dev/zero2' }] } },
        devCtx,
      );
      expect(s.linux.devices?.map((d) => `${d.path} ${d.type} ${d.major}:${d.minor} ${d.fileMode.toString(8)}`)).toEqual([
        '/dev/kmsg c 1:11 644',
        '/dev/loop7 b 7:7 660',
        '/dev/net/tun c 10:200 666',
        '/dev/weird c 250:1048575 4755',
        '/dev/null c 1:5 600',
        '/dev/zero2 c 1:5 600',
      ]);
      expect(s.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
      expect(validateRuntimeSpec(s)).toBeTruthy();
      const plain = await buildRuntimeSpec(base, devCtx);
      expect(plain.linux.devices).toBeUndefined();
      expect(plain.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    });
  });
});

describe('resources on a cgroup v2 host', () => {
  const v2: BuildRuntimeSpecContext = { ...ctx, cgroupVersion: 2, blkioWeight: true, controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] };

  it('keeps the OCI (v1) meaning of swap and shares: runc and crun translate them on v2', async () => {
    const s = await buildRuntimeSpec({ ...base, hostConfig: { Memory: 64 << 20, MemorySwap: 96 << 20, CpuShares: 512, BlkioWeight: 500, PidsLimit: 20 } }, v2);
    // memory+swap, not the 32 MiB of swap that memory.swap.max will get: translating here would translate twice
    expect(s.linux.resources.memory).toEqual({ limit: 64 << 20, swap: 96 << 20 });
    expect(s.linux.resources.cpu).toEqual({ shares: 512 });
    expect(s.linux.resources.blockIO).toEqual({ weight: 500 });
    expect(s.linux.resources.pids).toEqual({ limit: 20 });
    // a cgroup namespace, as Docker gives on v2; the cgroup path is the same cgroupfs path as on v1
    expect(s.linux.namespaces).toContainEqual({ type: 'cgroup' });
    expect(s.linux.cgroupsPath).toBe('/berth/abc');
    expect(s.mounts.find((m) => m.destination === '/sys/fs/cgroup')).toMatchObject({ type: 'cgroup', options: expect.arrayContaining(['ro']) });
    expect(validateRuntimeSpec(s)).toBeTruthy();
  });

  it('drops --oom-kill-disable on v2 (no such knob), keeps it on v1', () => {
    expect(buildResources({ Memory: 64 << 20, OomKillDisable: true }, { ...v2, swapAccounting: false }).memory).toEqual({ limit: 64 << 20 });
    expect(buildResources({ Memory: 64 << 20, OomKillDisable: true }, { ...ctx, swapAccounting: false }).memory).toEqual({ limit: 64 << 20, disableOOMKiller: true });
  });

  it('refuses a limit whose controller the host does not make available, naming the option and the controller', () => {
    const bare = { ...v2, controllers: ['memory'] };
    expect(() => buildResources({ PidsLimit: 10 }, bare)).toThrow('--pids-limit needs the pids cgroup controller');
    expect(() => buildResources({ NanoCpus: 1e9 }, bare)).toThrow('--cpus needs the cpu cgroup controller');
    expect(() => buildResources({ CpuShares: 100 }, bare)).toThrow('--cpu-shares needs the cpu cgroup controller');
    expect(() => buildResources({ CpusetCpus: '0' }, bare)).toThrow('--cpuset-cpus needs the cpuset cgroup controller');
    expect(() => buildResources({ Memory: 64 << 20 }, { ...v2, controllers: [] })).toThrow('--memory needs the memory cgroup controller');
    expect(buildResources({ Memory: 64 << 20 }, bare).memory?.limit).toBe(64 << 20);
    // without the list (callers that do not know), nothing is refused
    expect(buildResources({ PidsLimit: 10 }, { swapAccounting: true, blkioWeight: true }).pids).toEqual({ limit: 10 });
  });

  it('leaves the swap out when the host does not account it', () => {
    expect(buildResources({ Memory: 64 << 20, MemorySwap: 96 << 20 }, { ...v2, swapAccounting: false }).memory).toEqual({ limit: 64 << 20 });
  });
});
