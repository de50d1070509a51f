import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile, chmod, chown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS_LABEL, VolumeStore, resolveInRoot } from '@berth/runtime';
import type { Mount } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { buildBusyboxRootfs } from '../../../test/support/busybox.js';

describe('resolveInRoot', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-resolve-'));
    await mkdir(join(root, 'real/dir'), { recursive: true });
    await symlink('/etc', join(root, 'abs'));
    await symlink('../../../../etc', join(root, 'rel'));
    await symlink('real', join(root, 'inner'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  it('keeps absolute and relative link targets inside the root', async () => {
    expect(await resolveInRoot(root, '/abs/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/rel/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/../../etc')).toBe(join(root, 'etc'));
    expect(await resolveInRoot(root, '/inner/dir/x')).toBe(join(root, 'real/dir/x'));
    await expect(resolveInRoot(root, '/loop1')).rejects.toThrow(/too many levels/);
  });
});

describePrivileged('volumes: local driver, copy-up, binds, tmpfs, export/import', () => {
  let root: string;
  let image: string;
  let store: VolumeStore;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-vol-'));
    image = join(root, 'image');
    await mkdir(join(image, 'data/sub'), { recursive: true });
    await writeFile(join(image, 'data/hello.txt'), 'from the image\n');
    await writeFile(join(image, 'data/sub/deep.txt'), 'deep\n');
    await chown(join(image, 'data'), 1000, 1000);
    await chmod(join(image, 'data'), 0o750);
    await mkdir(join(image, 'etc'));
    await writeFile(join(image, 'etc/marker'), 'image etc\n');
    // A VOLUME path that is a symlink pointing "outside": must resolve inside the image.
    await symlink('../../../../../etc', join(image, 'escape'));
    store = await VolumeStore.open({ dataRoot: join(root, 'data') });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates, lists with filters, inspects and removes volumes', async () => {
    const v = await store.create({ name: 'alpha', labels: { app: 'web' } });
    expect(v).toMatchObject({ Name: 'alpha', Driver: 'local', Scope: 'local', Labels: { app: 'web' } });
    expect(v.Mountpoint).toBe(join(root, 'data/volumes/alpha/_data'));
    expect((await store.create({ name: 'alpha' })).CreatedAt).toBe(v.CreatedAt);
    await store.create({ name: 'beta' });
    expect((await store.list({ label: ['app=web'] })).map((x) => x.Name)).toEqual(['alpha']);
    expect((await store.list({ name: ['bet'] })).map((x) => x.Name)).toEqual(['beta']);
    await expect(store.create({ name: '../x' })).rejects.toThrow(/invalid characters/);
    await expect(store.inspect('nope')).rejects.toMatchObject({ code: 'VOLUME_NOT_FOUND', category: 'not-found' });
    await store.remove('beta');
    expect((await store.list()).map((x) => x.Name)).toEqual(['alpha']);
  });

  it('copies image content into an empty named volume on first use; the volume outlives the container', async () => {
    const m1 = await store.prepareMounts({ containerId: 'c1', rootfs: image, binds: ['named:/data'] });
    const data = store.dataPath('named');
    expect(m1.mounts).toEqual([{ type: 'bind', source: data, target: '/data', options: ['rbind', 'rprivate'] }]);
    expect(await readFile(join(data, 'hello.txt'), 'utf8')).toBe('from the image\n');
    expect(await readFile(join(data, 'sub/deep.txt'), 'utf8')).toBe('deep\n');
    const st = await stat(data);
    expect([st.uid, st.mode & 0o777]).toEqual([1000, 0o750]);
    await expect(store.remove('named')).rejects.toMatchObject({ code: 'VOLUME_IN_USE', category: 'conflict' });
    expect((await store.list({ dangling: ['false'] })).map((x) => x.Name)).toEqual(['named']);
    await writeFile(join(data, 'hello.txt'), 'changed by c1\n');
    await store.releaseMounts('c1', { removeAnonymous: true });
    // A second container sees c1's data; no copy-up over a non-empty volume.
    await store.prepareMounts({ containerId: 'c2', rootfs: image, binds: ['named:/data:ro'] });
    expect(await readFile(join(data, 'hello.txt'), 'utf8')).toBe('changed by c1\n');
    expect(store.mountPoints('c2')?.[0]).toMatchObject({ Type: 'volume', Name: 'named', RW: false, Mode: 'ro' });
    await store.releaseMounts('c2');
    await store.remove('named');
  });

  it('mounts a device-backed volume (tmpfs, bind) while containers use it, and never deletes through it', async () => {
    const mounted = async (path: string): Promise<string | undefined> =>
      (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === path);
    await expect(store.create({ name: 'half', driverOpts: { type: 'tmpfs' } })).rejects.toThrow(/missing required option: "device"/);
    await expect(store.create({ name: 'half', driverOpts: { device: '/srv' } })).rejects.toThrow(/missing required option: "type"/);

    // tmpfs, with its size option; copy-up lands in it.
    const t = await store.create({ name: 'ramdisk', driverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    expect(t.Options).toEqual({ type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    expect(await mounted(t.Mountpoint)).toBeUndefined();
    await store.prepareMounts({ containerId: 'd1', rootfs: image, binds: ['ramdisk:/data'] });
    expect(await mounted(t.Mountpoint)).toMatch(/ - tmpfs tmpfs .*size=1024k/);
    expect(await readFile(join(t.Mountpoint, 'hello.txt'), 'utf8')).toBe('from the image\n');
    await store.releaseMounts('d1');
    expect(await mounted(t.Mountpoint)).toBeUndefined();
    await store.remove('ramdisk');

    // A bind of a host directory: the host's files survive the volume's removal.
    const host = join(root, 'host-dir');
    await mkdir(host);
    await writeFile(join(host, 'keep.txt'), 'host data\n');
    const b = await store.create({ name: 'hostbind', driverOpts: { type: 'none', o: 'bind', device: host } });
    await store.prepareMounts({ containerId: 'd2', rootfs: image, binds: ['hostbind:/srv', 'hostbind:/again'] });
    expect(await readFile(join(b.Mountpoint, 'keep.txt'), 'utf8')).toBe('host data\n');
    await writeFile(join(b.Mountpoint, 'written.txt'), 'from the container\n');
    await store.releaseMounts('d2', { removeAnonymous: true });
    await store.remove('hostbind');
    expect((await readdir(host)).sort()).toEqual(['keep.txt', 'written.txt']);

    // A device that cannot be mounted: a clear error, nothing left mounted or recorded.
    await store.create({ name: 'broken', driverOpts: { type: 'none', o: 'bind', device: join(root, 'no-such-dir') } });
    await expect(store.prepareMounts({ containerId: 'd3', rootfs: image, binds: ['broken:/x'] })).rejects.toThrow(/failed to mount local volume/);
    expect(store.mountPoints('d3')).toBeUndefined();
    await store.remove('broken');
  });

  it('creates anonymous volumes for image VOLUMEs, resolving paths inside the root', async () => {
    const m = await store.prepareMounts({
      containerId: 'c3',
      rootfs: image,
      imageVolumes: { '/data': {}, '/escape': {}, '/../../../tmp/x': {} },
    });
    expect(m.mountPoints.map((p) => p.Destination).sort()).toEqual(['/data', '/escape', '/tmp/x']);
    const escape = m.mountPoints.find((p) => p.Destination === '/escape');
    // /escape -> ../../../etc inside the image is the image's /etc, never the host's.
    expect(await readdir(escape?.Source ?? '')).toEqual(['marker']);
    const anon = m.mountPoints.map((p) => p.Name ?? '');
    for (const name of anon) expect((await store.inspect(name)).Labels).toHaveProperty(ANONYMOUS_LABEL);
    await store.releaseMounts('c3', { removeAnonymous: true });
    for (const name of anon) await expect(store.inspect(name)).rejects.toThrow(/no such volume/);
  });

  it('binds an existing file or socket with -v as it is, creating only a missing source', async () => {
    const file = join(root, 'hosts-file');
    await writeFile(file, '127.0.0.1 here\n');
    const sockPath = join(root, 'api.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
    try {
      const missing = join(root, 'made/by/bind');
      const m = await store.prepareMounts({
        containerId: 'cfile',
        rootfs: image,
        binds: [`${file}:/etc/x`, `${sockPath}:/var/run/docker.sock`, `${missing}:/made`],
      });
      const byTarget = Object.fromEntries(m.mounts.map((x: Mount) => [x.target, x]));
      expect(byTarget['/etc/x']?.source).toBe(file);
      expect(byTarget['/var/run/docker.sock']?.source).toBe(sockPath);
      expect((await stat(file)).isFile()).toBe(true);
      expect(await readFile(file, 'utf8')).toBe('127.0.0.1 here\n');
      expect((await stat(sockPath)).isSocket()).toBe(true);
      expect((await stat(missing)).isDirectory()).toBe(true);
      await store.releaseMounts('cfile');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('turns binds, --mount and tmpfs into OCI mounts and refuses bad ones', async () => {
    const host = join(root, 'hostdir');
    const m = await store.prepareMounts({
      containerId: 'c4',
      rootfs: image,
      binds: [`${host}:/srv:ro,rshared`],
      mounts: [
        { Type: 'bind', Source: root, Target: '/mnt/root', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
        { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1048576 } },
        { Type: 'volume', Target: '/cache', VolumeOptions: { NoCopy: true } },
      ],
      tmpfs: { '/run': 'rw,size=64m,exec' },
      imageVolumes: { '/srv': {} },
    });
    const byTarget = Object.fromEntries(m.mounts.map((x: Mount) => [x.target, x]));
    expect(byTarget['/srv']).toEqual({ type: 'bind', source: host, target: '/srv', options: ['rbind', 'rshared', 'ro'] });
    expect((await stat(host)).isDirectory()).toBe(true);
    expect(byTarget['/mnt/root']?.options).toEqual(['rbind', 'rslave', 'ro']);
    expect(byTarget['/scratch']).toEqual({ type: 'tmpfs', source: 'tmpfs', target: '/scratch', options: ['noexec', 'nosuid', 'nodev', 'mode=1777', 'size=1048576'] });
    expect(byTarget['/run']?.options).toEqual(['nosuid', 'nodev', 'rw', 'size=64m', 'exec']);
    expect(m.mounts).toHaveLength(5);
    // --volumes-from copies c4's binds and volumes (not its tmpfs), read-only when asked.
    const from = await store.prepareMounts({ containerId: 'c5', rootfs: image, volumesFrom: ['c4:ro'] });
    expect(from.mountPoints.map((p) => [p.Destination, p.RW]).sort()).toEqual([['/cache', false], ['/mnt/root', false], ['/srv', false]]);
    const cache = m.mountPoints.find((p) => p.Destination === '/cache')?.Name ?? '';
    await expect(store.remove(cache)).rejects.toThrow(/in use/);
    await store.releaseMounts('c5');
    await store.releaseMounts('c4', { removeAnonymous: true });
    await expect(store.inspect(cache)).rejects.toThrow(/no such volume/);

    await expect(store.prepareMounts({ containerId: 'bad', rootfs: image, binds: ['/a:/b', 'vv:/b'] })).rejects.toThrow(/Duplicate mount point/);
    await expect(store.prepareMounts({ containerId: 'bad', rootfs: image, binds: ['/a:relative'] })).rejects.toThrow(/not an absolute path/);
    await expect(store.prepareMounts({ containerId: 'bad', rootfs: image, binds: ['/a:/'] })).rejects.toThrow(/cannot mount over/);
    await expect(
      store.prepareMounts({ containerId: 'bad', rootfs: image, mounts: [{ Type: 'bind', Source: join(root, 'missing'), Target: '/x' }] }),
    ).rejects.toThrow(/bind source path does not exist/);
    await expect(store.prepareMounts({ containerId: 'bad', rootfs: image, binds: ['/a:/b:bogus'] })).rejects.toThrow(/invalid mode/);
    expect(store.mountPoints('bad')).toBeUndefined();
  });

  it('exports a volume as a tar stream and imports it into another', async () => {
    await store.create({ name: 'src' });
    const d = store.dataPath('src');
    await mkdir(join(d, 'a/b'), { recursive: true });
    await writeFile(join(d, 'a/b/file'), 'payload\n');
    await symlink('b/file', join(d, 'a/link'));
    await chown(join(d, 'a/b/file'), 1234, 5678);
    await store.create({ name: 'dst' });
    await store.importVolume('dst', store.exportVolume('src'));
    const e = store.dataPath('dst');
    expect(await readFile(join(e, 'a/b/file'), 'utf8')).toBe('payload\n');
    expect(await readFile(join(e, 'a/link'), 'utf8')).toBe('payload\n');
    const st = await stat(join(e, 'a/b/file'));
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    await expect(store.importVolume('dst', Readable.from([Buffer.from('not a tar archive at all')]))).rejects.toThrow(/import into volume dst failed/);
    await expect(store.importVolume('nope', store.exportVolume('src'))).rejects.toThrow(/no such volume/);
  });

  it('an imported archive cannot write outside the volume', async () => {
    const outside = join(root, 'outside');
    await mkdir(outside);
    const work = join(root, 'evil');
    await mkdir(join(work, 'd1'), { recursive: true });
    await symlink(outside, join(work, 'd1/esc'));
    await mkdir(join(work, 'd2/esc'), { recursive: true });
    await writeFile(join(work, 'd2/esc/pwn'), 'pwned\n');
    const tarFile = join(work, 'evil.tar');
    // A symlink to a host directory, then a file written "through" it, then a `..` member.
    execFileSync('tar', ['-C', join(work, 'd1'), '-cf', tarFile, 'esc']);
    execFileSync('tar', ['-C', join(work, 'd2'), '-rf', tarFile, 'esc/pwn']);
    execFileSync('tar', ['-C', join(work, 'd2'), '-rf', tarFile, '--transform', 's,^esc/pwn,../../dotdot,', 'esc/pwn']);
    await store.create({ name: 'target' });
    await store.importVolume('target', createReadStream(tarFile)).catch(() => undefined);
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(join(store.root, '..'))).not.toContain('dotdot');
    expect(await readdir(root)).not.toContain('dotdot');
    await store.remove('target');
  });

  it('prunes only unused anonymous volumes unless all=true', async () => {
    const anon = await store.create({});
    const kept = await store.prepareMounts({ containerId: 'c6', rootfs: image, binds: ['/keep'] });
    const report = await store.prune();
    expect(report.VolumesDeleted).toEqual([anon.Name]);
    expect((await store.list()).map((v) => v.Name)).toContain(kept.mountPoints[0]?.Name);
    const all = await store.prune({ all: ['true'] });
    expect(all.VolumesDeleted.sort()).toEqual(['alpha', 'dst', 'src']);
    await store.releaseMounts('c6', { removeAnonymous: true });
    expect(await store.list()).toEqual([]);
  });

  it('copies up from an overlay root filesystem of several layers', async () => {
    const base = join(root, 'layers');
    const lower = join(base, 'lower');
    const upper = join(base, 'upper');
    await buildBusyboxRootfs(lower);
    await mkdir(join(upper, 'data'), { recursive: true });
    await writeFile(join(upper, 'data/top.txt'), 'top layer\n');
    await mkdir(join(lower, 'data'), { recursive: true });
    await writeFile(join(lower, 'data/bottom.txt'), 'bottom layer\n');
    const rootfs: Mount[] = [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${upper}:${lower}`, `upperdir=${join(base, 'u')}`, `workdir=${join(base, 'w')}`] }];
    await mkdir(join(base, 'u'));
    await mkdir(join(base, 'w'));
    const m = await store.prepareMounts({ containerId: 'c7', rootfs, imageVolumes: { '/data': {} } });
    const src = m.mountPoints[0]?.Source ?? '';
    expect((await readdir(src)).sort()).toEqual(['bottom.txt', 'top.txt']);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes('berth-copyup-')).toBe(false);
    await store.releaseMounts('c7', { removeAnonymous: true });
  });
});
