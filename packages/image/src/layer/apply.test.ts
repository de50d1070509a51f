import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildBusyboxImage, makeBusyboxRootfs } from '../../../../test/support/busybox.js';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { applyLayer } from './apply.js';
import { createLayerTar, upperDirChanges } from './diff.js';
import { getXattrsRecursive } from './fs-ops.js';
import { packTar } from './tar-writer.js';
import type { TarWriteEntry } from './tar-writer.js';

const run = promisify(execFile);
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarBytes(entries: TarWriteEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c);
  return Buffer.concat(chunks);
}

const file = (path: string, data: string, extra: Partial<TarWriteEntry['header']> = {}): TarWriteEntry => ({
  header: { path, type: 'file', mode: 0o644, size: Buffer.byteLength(data), mtime: 1_600_000_000, ...extra },
  body: async function* () {
    yield Buffer.from(data);
  },
});
const dir = (path: string, extra: Partial<TarWriteEntry['header']> = {}): TarWriteEntry => ({ header: { path, type: 'directory', mode: 0o755, mtime: 1_500_000_000, ...extra } });
const symlinkEntry = (path: string, linkpath: string): TarWriteEntry => ({ header: { path, type: 'symlink', mode: 0o777, linkpath } });
const hardlinkEntry = (path: string, linkpath: string): TarWriteEntry => ({ header: { path, type: 'hardlink', mode: 0o644, linkpath } });

async function snapshotTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const st = await lstat(p);
      const r = `${rel}/${name}`;
      let detail = '';
      if (st.isSymbolicLink()) detail = `-> ${await readlink(p)}`;
      else if (st.isFile()) detail = sha(await readFile(p));
      out.push(`${r} ${(st.mode & 0o177777).toString(8)} ${st.uid}:${st.gid} ${detail}`);
      if (st.isDirectory()) await walk(p, r);
    }
  };
  await walk(root, '');
  return out;
}

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-layer-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('applyLayer', () => {
  it('reports the disk usage du reports, without walking the tree', async () => {
    const image = await buildBusyboxImage();
    const root = join(work, 'du');
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const extra = await tarBytes([
      dir('data'),
      { header: { path: 'data/big', type: 'file', mode: 0o600, size: big.length, mtime: 1 }, body: async function* () { yield big; } },
      file('data/small', 'x'.repeat(5000)),
      hardlinkEntry('data/small-link', 'data/small'),
      symlinkEntry('data/long-link', 'x'.repeat(200)),
    ]);
    await applyLayer(root, [Buffer.from(image.layer.bytes)]);
    const result = await applyLayer(root, [gzipSync(extra)]);
    const du = Number((await run('du', ['-s', '-B1', root])).stdout.split('\t')[0]);
    expect(result.usage).toBeGreaterThan(big.length);
    // The second apply went over the first one's tree: its own entries plus the directories.
    const first = join(work, 'du-first');
    const r1 = await applyLayer(first, [Buffer.from(image.layer.bytes)]);
    expect(r1.usage).toBe(Number((await run('du', ['-s', '-B1', first])).stdout.split('\t')[0]));
    expect(result.usage).toBeLessThanOrEqual(du);
  });

  it('hands every lent chunk back exactly once, after it was used (gzip through igzip and plain tar)', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const tar = await tarBytes([{ header: { path: 'blob', type: 'file', mode: 0o644, size: payload.length, mtime: 1 }, body: async function* () { yield payload; } }, file('note', 'hello')]);
    for (const [name, bytes] of [['gz', gzipSync(tar, { level: 1 })], ['plain', tar]] as const) {
      // Chunks cut from buffers that are scribbled over once released: a chunk used after its
      // release would corrupt the result.
      const released = new Set<Buffer>();
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += 100_000) chunks.push(Buffer.from(bytes.subarray(i, i + 100_000)));
      const root = join(work, `lent-${name}`);
      const result = await applyLayer(root, chunks, {
        release: (c) => {
          expect(released.has(c)).toBe(false);
          released.add(c);
          c.fill(0xee);
        },
      });
      expect(released.size).toBe(chunks.length);
      expect(result.diffId).toBe(sha(tar));
      expect(sha(await readFile(join(root, 'blob')))).toBe(sha(payload));
      expect(await readFile(join(root, 'note'), 'utf8')).toBe('hello');
    }
  });

  it('unpacks the busybox layer (gzip) and computes its diffID while streaming', async () => {
    const image = await buildBusyboxImage();
    const root = join(work, 'root');
    const result = await applyLayer(root, [Buffer.from(image.layer.bytes)]);
    expect(result.diffId).toBe(image.diffId);
    expect(result.size).toBe(image.layerTar.byteLength);
    expect((await stat(join(root, 'bin/busybox'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(root, 'bin/sh'))).toBe('busybox');
    expect((await stat(join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toContain('berth:x:1000');
  });

  it('copies a hardlink target up from a lower layer', async () => {
    const lower = join(work, 'lower');
    await applyLayer(lower, [await tarBytes([dir('bin'), file('bin/tool', 'binary', { mode: 0o755 })])]);
    const upper = join(work, 'upper');
    await applyLayer(upper, [await tarBytes([hardlinkEntry('bin/alias', 'bin/tool')])], { lowers: [lower] });
    expect(await readFile(join(upper, 'bin/alias'), 'utf8')).toBe('binary');
    expect((await stat(join(upper, 'bin/alias'))).ino).toBe((await stat(join(upper, 'bin/tool'))).ino);
  });

  it('accepts zstd layers', async () => {
    const { execFileSync } = await import('node:child_process');
    const tar = await tarBytes([file('hello', 'zstd world')]);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tar });
    const result = await applyLayer(join(work, 'z'), [zst]);
    expect(result.diffId).toBe(sha(tar));
    expect(await readFile(join(work, 'z/hello'), 'utf8')).toBe('zstd world');
  });

  it('produces the same layer tar twice from the same directory (reproducible)', async () => {
    const rootfs = await makeBusyboxRootfs();
    try {
      const a = await readAllStream(createLayerTar(rootfs));
      const b = await readAllStream(createLayerTar(rootfs));
      expect(sha(a)).toBe(sha(b));
      const out = join(work, 'copy');
      const res = await applyLayer(out, [a]);
      expect(res.diffId).toBe(sha(a));
      expect(await snapshotTree(out)).toEqual(await snapshotTree(rootfs));
    } finally {
      await rm(rootfs, { recursive: true, force: true });
    }
  });
});

describePrivileged('applyLayer as root: owners, device nodes, overlay whiteouts (trusted.* xattrs)', () => {
  it('keeps ownership, modes, mtimes, hardlinks, xattrs, fifos and device nodes', async () => {
    const tar = await tarBytes([
      dir('d', { uid: 1000, gid: 1001, mode: 0o750 }),
      file('d/f', 'hello', { uid: 33, gid: 34, mode: 0o4755, xattrs: new Map([['user.note', Buffer.from([0, 1, 2, 255])]]) }),
      hardlinkEntry('d/h', 'd/f'),
      symlinkEntry('d/l', '../etc/nowhere'),
      { header: { path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 } },
      { header: { path: 'p', type: 'fifo', mode: 0o600 } },
    ]);
    const root = join(work, 'root');
    const zstdOrPlain = tar;
    await applyLayer(root, [zstdOrPlain]);
    const d = await stat(join(root, 'd'));
    expect([d.uid, d.gid, d.mode & 0o7777, d.mtimeMs / 1000]).toEqual([1000, 1001, 0o750, 1_500_000_000]);
    const f = await stat(join(root, 'd/f'));
    expect([f.uid, f.gid, f.mode & 0o7777, f.mtimeMs / 1000, f.nlink]).toEqual([33, 34, 0o4755, 1_600_000_000, 2]);
    expect((await stat(join(root, 'd/h'))).ino).toBe(f.ino);
    expect(await readlink(join(root, 'd/l'))).toBe('../etc/nowhere');
    const dev = await lstat(join(root, 'dev/null'));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe(0x103);
    expect((await lstat(join(root, 'p'))).isFIFO()).toBe(true);
    const x = await getXattrsRecursive(root);
    expect(x.get(join(root, 'd/f'))?.get('user.note')).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('turns whiteouts into overlay whiteouts and opaque markers, copying parent metadata from lowers', async () => {
    const lower = join(work, 'lower');
    await applyLayer(lower, [await tarBytes([dir('etc', { mode: 0o711, uid: 5, gid: 6 }), file('etc/a', 'a'), file('etc/b', 'b'), dir('var'), file('var/x', 'x')])]);
    const upper = join(work, 'upper');
    await applyLayer(upper, [await tarBytes([file('etc/.wh.a', ''), dir('var'), file('var/.wh..wh..opq', ''), file('var/y', 'y')])], { lowers: [lower] });
    const wh = await lstat(join(upper, 'etc/a'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    const etc = await stat(join(upper, 'etc'));
    expect([etc.mode & 0o7777, etc.uid, etc.gid]).toEqual([0o711, 5, 6]);
    const x = await getXattrsRecursive(upper);
    expect(x.get(join(upper, 'var'))?.get('trusted.overlay.opaque')?.toString()).toBe('y');
    expect(await readFile(join(upper, 'var/y'), 'utf8')).toBe('y');
    // and back: the upper dir's tar carries OCI whiteouts again
    const changes = await upperDirChanges(upper, [lower]);
    expect(changes).toEqual([
      { path: '/etc', kind: 'modified' },
      { path: '/etc/a', kind: 'deleted' },
      { path: '/var', kind: 'modified' },
      { path: '/var/y', kind: 'added' },
    ]);
    const names: string[] = [];
    const roundTrip = join(work, 'again');
    const tar = await readAllStream(createLayerTar(upper));
    await applyLayer(roundTrip, [tar], { lowers: [lower] });
    for (const line of await snapshotTree(roundTrip)) names.push(line.split(' ')[0] as string);
    expect(names).toEqual(['/etc', '/etc/a', '/var', '/var/y']);
    expect((await getXattrsRecursive(roundTrip)).get(join(roundTrip, 'var'))?.get('trusted.overlay.opaque')?.toString()).toBe('y');
  });

});

async function readAllStream(r: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('applyLayer against hostile layers', () => {
  // Each case runs against a fresh root beside a canary directory; the canary must not change.
  const cases: { name: string; entries: () => TarWriteEntry[]; error: RegExp; lowers?: TarWriteEntry[] }[] = [
    { name: 'a ".." path', entries: () => [file('../canary/pwned', 'x')], error: /contains "\.\."/ },
    { name: 'a deep ".." path', entries: () => [dir('a'), file('a/../../canary/pwned', 'x')], error: /contains "\.\."/ },
    { name: 'an absolute path', entries: () => [file('/tmp/pwned', 'x')], error: /absolute path/ },
    { name: 'a file written through a symlink to the canary', entries: () => [symlinkEntry('link', '../canary'), file('link/pwned', 'x')], error: /through the symlink link/ },
    { name: 'a file written through an absolute symlink', entries: () => [symlinkEntry('link', '/'), file('link/tmp/pwned', 'x')], error: /through the symlink link/ },
    { name: 'a chain of symlinks', entries: () => [symlinkEntry('a', 'b'), symlinkEntry('b', '../canary'), file('a/pwned', 'x')], error: /through the symlink a/ },
    { name: 'a directory entry through a symlink', entries: () => [symlinkEntry('link', '../canary'), dir('link/sub')], error: /through the symlink link/ },
    { name: 'a hardlink to a file outside', entries: () => [hardlinkEntry('h', '../canary/secret')], error: /contains "\.\."/ },
    { name: 'a hardlink through a symlink', entries: () => [symlinkEntry('link', '../canary'), hardlinkEntry('h', 'link/secret')], error: /through the symlink link/ },
    { name: 'a hardlink to a symlink pointing outside', entries: () => [symlinkEntry('s', '../../canary/secret'), hardlinkEntry('h', 's')], error: /points outside/ },
    { name: 'a whiteout of ".."', entries: () => [file('.wh...', '')], error: /whiteout names no valid file/ },
    { name: 'a whiteout through a symlink', entries: () => [symlinkEntry('link', '../canary'), file('link/.wh.secret', '')], error: /through the symlink link/ },
    { name: 'a whiteout of the root', entries: () => [file('.wh.', '')], error: /whiteout names no valid file/ },
    { name: 'a device node where devices are refused', entries: () => [{ header: { path: 'sda', type: 'block', mode: 0o600, devmajor: 8, devminor: 0 } }], error: /device nodes are not permitted/ },
    { name: 'a write through a symlink in a lower layer', lowers: [symlinkEntry('etc', '../canary')], entries: () => [file('etc/pwned', 'x')], error: /symlink etc \(in a lower layer\)/ },
  ];

  async function canaryState(canary: string): Promise<string[]> {
    return snapshotTree(canary);
  }

  for (const c of cases) {
    it(`refuses ${c.name}, leaving the canary untouched`, async () => {
      const canary = join(work, 'canary');
      await mkdir(canary);
      await writeFile(join(canary, 'secret'), 'keep me');
      const before = await canaryState(canary);
      const lowers: string[] = [];
      if (c.lowers) {
        const lower = join(work, 'lower');
        await applyLayer(lower, [await tarBytes(c.lowers)]);
        lowers.push(lower);
      }
      const root = join(work, 'root');
      await mkdir(root);
      await expect(applyLayer(root, [await tarBytes(c.entries())], { lowers, devices: 'refuse' })).rejects.toThrow(c.error);
      expect(await canaryState(canary)).toEqual(before);
      expect(await readdir(work)).toEqual(expect.arrayContaining(['canary', 'root']));
      await expect(stat('/tmp/pwned')).rejects.toMatchObject({ code: 'ENOENT' });
    });
  }

  it('refuses a decompression bomb once it passes the size limit', async () => {
    // 64 MiB of zeros compresses to ~64 KiB; the limit is 1 MiB.
    const big = Buffer.alloc(64 * 1024 * 1024);
    const tar = await tarBytes([{ header: { path: 'bomb', type: 'file', mode: 0o644, size: big.length }, body: async function* () { yield big; } }]);
    const gz = gzipSync(tar, { level: 9 });
    expect(gz.length).toBeLessThan(200_000);
    const root = join(work, 'root');
    await expect(applyLayer(root, [gz], { maxSize: 1024 * 1024 })).rejects.toThrow(/decompression bomb/);
    const left = await stat(join(root, 'bomb')).then((s) => s.size, () => 0);
    expect(left).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it('refuses a truncated or corrupt gzip stream with a clear error', async () => {
    const gz = gzipSync(await tarBytes([file('a', 'x'.repeat(100_000)), file('b', 'y'.repeat(100_000))]));
    await expect(applyLayer(join(work, 'trunc'), [gz.subarray(0, gz.length - 100)])).rejects.toMatchObject({ code: 'INVALID_LAYER' });
    const bad = Buffer.from(gz);
    bad.fill(0x55, 20, 200);
    await expect(applyLayer(join(work, 'bad'), [bad])).rejects.toMatchObject({ code: 'INVALID_LAYER' });
  });

  it('refuses a malformed archive with a clear error', async () => {
    await expect(applyLayer(join(work, 'root'), [Buffer.alloc(512, 7)])).rejects.toThrow(/checksum|not a tar/);
  });
});
