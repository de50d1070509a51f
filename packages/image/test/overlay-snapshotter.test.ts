import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { applyLayer } from '../src/layer/apply.js';
import { createLayerTar, upperDirChanges } from '../src/layer/diff.js';
import { packTar } from '../src/layer/tar-writer.js';
import type { TarWriteEntry } from '../src/layer/tar-writer.js';
import { mountAll, openOverlaySnapshotter, unmount } from '../src/snapshot/overlay.js';

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c);
  return Buffer.concat(chunks);
}
const file = (path: string, data: string): TarWriteEntry => ({
  header: { path, type: 'file', mode: 0o644, size: Buffer.byteLength(data), mtime: 1 },
  body: async function* () {
    yield Buffer.from(data);
  },
});
const chain = (parent: string | undefined, diffId: string): string =>
  parent === undefined ? diffId : `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`;

describePrivileged('OverlaySnapshotter with real overlay mounts', () => {
  let work: string;
  const mounted: string[] = [];
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-snap-'));
  });
  afterEach(async () => {
    for (const m of mounted.splice(0)) await unmount(m).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  });

  async function commitLayer(snap: Awaited<ReturnType<typeof openOverlaySnapshotter>>, parent: string | undefined, entries: TarWriteEntry[]): Promise<string> {
    const key = `extract-${Math.random()}`;
    await snap.prepare(key, parent);
    const res = await applyLayer(await snap.upperDir(key), [await tarOf(entries)], { lowers: await snap.lowerDirs(key) });
    const id = chain(parent, res.diffId);
    await snap.commit(id, key);
    return id;
  }

  it('stacks committed layers, mounts a writable container layer over them, and diffs it', async () => {
    const snap = await openOverlaySnapshotter(join(work, 'snapshots'));
    const l1 = await commitLayer(snap, undefined, [file('etc/a', 'one'), file('etc/b', 'bee'), file('keep', 'k')]);
    const l2 = await commitLayer(snap, l1, [file('etc/.wh.b', ''), file('etc/a', 'two')]);
    const mounts = await snap.prepare('ctr', l2, { labels: { container: 'yes' } });
    expect(mounts[0]?.type).toBe('overlay');
    const target = join(work, 'rootfs');
    await mkdir(target);
    await mountAll(mounts, target);
    mounted.push(target);
    expect(await readFile(join(target, 'etc/a'), 'utf8')).toBe('two');
    expect((await readdir(join(target, 'etc'))).sort()).toEqual(['a']);
    await writeFile(join(target, 'new'), 'fresh');
    await unlink(join(target, 'keep'));
    await unmount(target);
    mounted.pop();
    const changes = await upperDirChanges(await snap.upperDir('ctr'), await snap.lowerDirs('ctr'));
    expect(changes).toEqual([
      { path: '/keep', kind: 'deleted' },
      { path: '/new', kind: 'added' },
    ]);
    const chunks: Buffer[] = [];
    for await (const c of createLayerTar(await snap.upperDir('ctr'))) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('latin1');
    expect(text).toContain('.wh.keep');
    await expect(snap.remove(l1)).rejects.toMatchObject({ code: 'SNAPSHOT_STATE' });
    await snap.remove('ctr');
    await snap.remove(l2);
    await snap.remove(l1);
    expect(await readdir(join(work, 'snapshots'))).toEqual(['metadata.json']);
  });

  it('shares a layer between images: the same chainID is stored once', async () => {
    const snap = await openOverlaySnapshotter(join(work, 'snapshots'));
    const base = await commitLayer(snap, undefined, [file('base', 'b')]);
    await expect(commitLayer(snap, undefined, [file('base', 'b')])).rejects.toMatchObject({ code: 'SNAPSHOT_EXISTS' });
    const a = await commitLayer(snap, base, [file('a', 'a')]);
    const b = await commitLayer(snap, base, [file('b', 'b')]);
    expect(new Set([a, b]).size).toBe(2);
    const keys: string[] = [];
    await snap.walk((i) => {
      if (i.kind === 'committed') keys.push(i.key);
    });
    expect(keys.sort()).toEqual([base, a, b].sort());
  });

  it('mounts an image of 150 layers (lowerdir longer than a page)', async () => {
    const snap = await openOverlaySnapshotter(join(work, 'a-rather-long-directory-name-for-snapshots', 'snapshots'));
    let parent: string | undefined;
    for (let i = 0; i < 150; i++) parent = await commitLayer(snap, parent, [file(`layer-${i}`, String(i))]);
    const mounts = await snap.view('many', parent);
    expect(mounts[0]!.options.join(',').length).toBeGreaterThan(4096);
    const target = join(work, 'rootfs');
    await mkdir(target);
    await mountAll(mounts, target);
    mounted.push(target);
    const names = await readdir(target);
    expect(names.length).toBe(150);
    expect(await readFile(join(target, 'layer-0'), 'utf8')).toBe('0');
    expect(await readFile(join(target, 'layer-149'), 'utf8')).toBe('149');
  });
});
