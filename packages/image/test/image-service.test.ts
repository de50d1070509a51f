import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildBusyboxImage, tarDirectory, writeOciLayout } from '../../../test/support/busybox.js';
import type { BusyboxImage } from '../../../test/support/busybox.js';
import { describePrivileged } from '../../../test/support/privileged.js';
import { mountAll, openImageService, unmount } from '../src/index.js';
import type { ImageService } from '../src/index.js';

const run = promisify(execFile);
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** names, modes, owners, link targets and contents of a tree, one line per entry. */
async function treeOf(root: string): Promise<string[]> {
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

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describePrivileged('image service: archives, rootfs, round trips with skopeo and umoci', () => {
  let work: string;
  let image: BusyboxImage;
  let svc: ImageService;
  const mounted: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-imgsvc-'));
    image = await buildBusyboxImage({ labels: { 'org.example': 'yes' }, exposedPorts: ['80/tcp'], cmd: ['sh', '-c', 'echo hi'] });
    svc = await openImageService({ root: join(work, 'root') });
  });
  afterAll(async () => {
    for (const m of mounted.splice(0)) await unmount(m).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  });

  it('loads an OCI layout tarball, lists and inspects it like docker does', async () => {
    const layout = join(work, 'layout');
    await writeOciLayout(layout, image, 'docker.io/library/busybox:latest');
    const tar = await tarDirectory(layout);
    const result = await svc.load(Readable.from([Buffer.from(tar)]));
    expect(result.loaded).toEqual([{ id: image.config.digest, reference: 'busybox:latest' }]);
    const inspect = await svc.inspect('busybox');
    expect(inspect).toMatchObject({
      Id: image.config.digest,
      RepoTags: ['busybox:latest'],
      Os: 'linux',
      Architecture: image.config.json.architecture,
      Created: '2026-01-01T00:00:00Z',
      RootFS: { Type: 'layers', Layers: [image.diffId] },
      Config: { Cmd: ['sh', '-c', 'echo hi'], Labels: { 'org.example': 'yes' }, ExposedPorts: { '80/tcp': {} } },
    });
    expect(inspect.Size).toBeGreaterThan(1_000_000);
    expect(await svc.inspect(image.config.digest.slice(7, 19))).toMatchObject({ Id: image.config.digest });
    await expect(svc.inspect('nope:latest')).rejects.toThrow('No such image: nope:latest');
    const list = await svc.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ Id: image.config.digest, RepoTags: ['busybox:latest'], Containers: 0, Created: 1767225600 });
    const history = await svc.history('busybox');
    expect(history[0]).toMatchObject({ Id: image.config.digest, CreatedBy: 'berth test fixture: busybox from busybox-static' });
  });

  it('exposes its image store as `context`, shared rather than copied', async () => {
    expect(svc.context.root).toBe(svc.root);
    expect(svc.context.images.find('busybox')?.id).toBe(image.config.digest);
    // A tag written through the context is what the service sees: one images.json, not two.
    await svc.context.images.tag(image.config.digest, 'context-tag:1');
    expect(await svc.exists('context-tag:1')).toBe(true);
    await svc.remove('context-tag:1');
  });

  it('tags, and removes a tag without deleting the image', async () => {
    await svc.tag('busybox', 'localhost:5000/bb:1');
    expect((await svc.inspect('localhost:5000/bb:1')).RepoTags).toEqual(['busybox:latest', 'localhost:5000/bb:1']);
    expect(await svc.remove('localhost:5000/bb:1')).toEqual([{ Untagged: 'localhost:5000/bb:1' }]);
    expect(await svc.exists('busybox')).toBe(true);
  });

  it('prepares a container rootfs, mounts it, diffs and exports the container layer, commits it', async () => {
    const mounts = await svc.prepareRootfs('c1', 'busybox');
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ type: 'overlay', source: 'overlay' });
    expect(await svc.prepareRootfs('c1', 'busybox')).toEqual(mounts);
    const target = join(work, 'c1-rootfs');
    await mkdir(target);
    await mountAll(mounts, target);
    mounted.push(target);
    await writeFile(join(target, 'etc/motd'), 'welcome');
    await rm(join(target, 'etc/group'));
    await unmount(target);
    mounted.pop();
    expect(await svc.changes('c1')).toEqual([
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/group', Kind: 2 },
      { Path: '/etc/motd', Kind: 1 },
    ]);
    const layer = await collect(await svc.exportContainerLayer('c1'));
    expect(layer.toString('latin1')).toContain('etc/.wh.group');
    expect((await svc.list())[0]?.Containers).toBe(1);
    await expect(svc.remove('busybox')).rejects.toMatchObject({ category: 'conflict' });

    const exported = await collect(await svc.exportFilesystem('c1'));
    expect(exported.toString('latin1')).toContain('etc/motd');
    expect(exported.toString('latin1')).toContain('bin/busybox');

    const id = await svc.commit('c1', { reference: 'committed:1', comment: 'added motd' });
    const inspect = await svc.inspect('committed:1');
    expect(inspect.Id).toBe(id);
    expect(inspect.RootFS.Layers).toHaveLength(2);
    const mounts2 = await svc.prepareRootfs('c2', 'committed:1');
    const target2 = join(work, 'c2-rootfs');
    await mkdir(target2);
    await mountAll(mounts2, target2);
    mounted.push(target2);
    expect(await readFile(join(target2, 'etc/motd'), 'utf8')).toBe('welcome');
    await expect(lstat(join(target2, 'etc/group'))).rejects.toMatchObject({ code: 'ENOENT' });
    await unmount(target2);
    mounted.pop();
    await svc.removeRootfs('c2');
    await svc.removeRootfs('c1');
    await svc.removeRootfs('c1');
  });

  it('saves a docker archive that skopeo reads and that loads back into a fresh store', async () => {
    const archive = join(work, 'saved.tar');
    await pipeline(await svc.save(['busybox:latest', 'committed:1']), createWriteStream(archive));
    const { stdout } = await run('skopeo', ['inspect', '--raw', `docker-archive:${archive}:busybox:latest`]);
    const raw = JSON.parse(stdout) as { config: { digest: string } };
    expect(raw.config.digest).toBe(image.config.digest);
    const cfg = JSON.parse((await run('skopeo', ['inspect', '--config', `docker-archive:${archive}:committed:1`])).stdout) as { rootfs: { diff_ids: string[] } };
    expect(cfg.rootfs.diff_ids).toHaveLength(2);

    const other = await openImageService({ root: join(work, 'root2') });
    const loaded = await other.load(createReadStream(archive));
    expect(loaded.loaded.map((l) => l.reference).sort()).toEqual(['busybox:latest', 'committed:1']);
    expect((await other.inspect('committed:1')).RootFS.Layers).toHaveLength(2);
  });

  it('loads what skopeo writes: docker-archive and oci layouts', async () => {
    const layout = join(work, 'layout');
    const dockerArchive = join(work, 'skopeo-docker.tar');
    await run('skopeo', ['copy', `oci:${layout}:docker.io/library/busybox:latest`, `docker-archive:${dockerArchive}:skopeo/busybox:v1`]);
    const ociDir = join(work, 'skopeo-oci');
    await run('skopeo', ['copy', `oci:${layout}:docker.io/library/busybox:latest`, `oci:${ociDir}:v2`]);
    const fresh = await openImageService({ root: join(work, 'root3') });
    const a = await fresh.load(createReadStream(dockerArchive));
    expect(a.loaded).toEqual([{ id: expect.stringMatching(/^sha256:/), reference: 'skopeo/busybox:v1' }]);
    expect((await fresh.inspect('skopeo/busybox:v1')).RootFS.Layers).toEqual([image.diffId]);
    const b = await fresh.loadOciLayout(ociDir);
    expect(b.loaded).toHaveLength(1);
    expect(b.loaded[0]?.id).toBe(image.config.digest);
  });

  it("umoci unpacks berth's OCI layout into the same tree as berth's own snapshot", async () => {
    const out = join(work, 'berth-oci');
    await svc.saveOciLayout(['busybox:latest'], out);
    await run('skopeo', ['inspect', `oci:${out}:latest`]);
    const bundle = join(work, 'umoci-bundle');
    await run('umoci', ['unpack', '--image', `${out}:latest`, bundle]);
    const mounts = await svc.prepareRootfs('cmp', 'busybox');
    const target = join(work, 'cmp-rootfs');
    await mkdir(target);
    await mountAll(mounts, target);
    mounted.push(target);
    try {
      expect(await treeOf(join(bundle, 'rootfs'))).toEqual(await treeOf(target));
    } finally {
      await unmount(target);
      mounted.pop();
      await svc.removeRootfs('cmp');
    }
  });

  it('imports a rootfs tarball as a one-layer image', async () => {
    const id = await svc.import(Readable.from([Buffer.from(image.layerTar)]), { reference: 'imported:1', changes: { Cmd: ['/bin/sh'] } });
    const inspect = await svc.inspect('imported:1');
    expect(inspect).toMatchObject({ Id: id, RootFS: { Layers: [image.diffId] }, Config: { Cmd: ['/bin/sh'] } });
  });

  it('reports disk usage that matches du, and garbage-collects what nothing references', async () => {
    const usage = await svc.diskUsage();
    const du = Number((await run('du', ['-s', '-B1', join(work, 'root')])).stdout.split('\t')[0]);
    expect(Math.abs(usage.total - du)).toBeLessThanOrEqual(64 * 1024);
    expect(usage.images.length).toBe(3);
    // A layer snapshot and a blob that no image references any more.
    const removed = await svc.remove('imported:1');
    expect(removed).toContainEqual({ Untagged: 'imported:1' });
    expect(removed.some((r) => 'Deleted' in r)).toBe(true);
    const gc = await svc.gc();
    expect(gc.blobsRemoved).toEqual([]);
    const after = await svc.diskUsage();
    expect(after.images.length).toBe(2);
    expect(await svc.remove('committed:1')).toContainEqual({ Deleted: expect.stringMatching(/^sha256:/) });
    await svc.remove('busybox');
    expect(await svc.list()).toEqual([]);
    const final = await svc.diskUsage();
    expect(final.snapshots).toBe(0);
    expect(final.content).toBe(0);
  });
});
