import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { RegistryClient, serveRegistry } from '@berth/registry';
import type { RunningRegistry } from '@berth/registry';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildBusyboxImage, hostArchitecture, writeOciLayout, tarDirectory } from '../../../test/support/busybox.js';
import { describePrivileged } from '../../../test/support/privileged.js';
import { mountAll, openImageService, unmount } from '../src/index.js';
import type { PullProgress } from '../src/index.js';
import { fileEntry, makeImage, pushTestImage, randomLayer, sha, startProxy, tarOf } from './support/registry-fixtures.js';

const run = promisify(execFile);

describePrivileged('pull and push against a real registry server', () => {
  let work: string;
  let registry: RunningRegistry;
  let host: string;
  const mounted: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-pull-'));
    registry = await serveRegistry({ addr: '127.0.0.1:0', root: join(work, 'registry'), log: false, gc: false });
    host = `127.0.0.1:${registry.port}`;
    const bb = await buildBusyboxImage();
    await pushTestImage(host, 'library/busybox:1', {
      layers: [{ mediaType: bb.layer.mediaType, digest: bb.layer.digest, size: bb.layer.size, bytes: Buffer.from(bb.layer.bytes) }],
      diffIds: [bb.diffId],
      config: { ...bb.config, bytes: Buffer.from(bb.config.bytes) },
      manifest: { ...bb.manifest, bytes: Buffer.from(bb.manifest.bytes) },
    });
  });
  afterAll(async () => {
    for (const m of mounted.splice(0)) await unmount(m).catch(() => undefined);
    await registry?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('pulls an image, reporting per-layer progress, and reports "up to date" the second time', async () => {
    const svc = await openImageService({ root: join(work, 'p1') });
    const events: PullProgress[] = [];
    const result = await svc.pull(`${host}/library/busybox:1`, { onProgress: (e) => events.push(e) });
    expect(result.upToDate).toBe(false);
    expect(result.reference).toBe(`${host}/library/busybox:1`);
    const phases = events.filter((e) => e.type === 'layer').map((e) => (e as { phase: string }).phase);
    expect(phases[0]).toBe('waiting');
    expect(phases).toContain('downloading');
    expect(phases[phases.length - 1]).toBe('pull-complete');
    const inspect = await svc.inspect(`${host}/library/busybox:1`);
    expect(inspect.RepoDigests).toEqual([`${host}/library/busybox@${result.digest}`]);
    const again = await svc.pull(`${host}/library/busybox:1`);
    expect(again.upToDate).toBe(true);
  });

  it('serves two concurrent pulls of the same image with one download per blob', async () => {
    const img = makeImage([await randomLayer('a', 2 * 1024 * 1024), await randomLayer('b', 1024 * 1024)]);
    await pushTestImage(host, 'twice/img:1', img);
    const proxy = await startProxy(registry.url);
    try {
      const svc = await openImageService({ root: join(work, 'p10') });
      const [a, b] = await Promise.all([svc.pull(`${proxy.host}/twice/img:1`), svc.pull(`${proxy.host}/twice/img:1`)]);
      expect(a.id).toBe(img.config.digest);
      expect(b.id).toBe(img.config.digest);
      for (const l of img.layers) {
        expect(proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${l.digest}`))).toHaveLength(1);
      }
      expect(await svc.list()).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('pulls the host platform out of a Docker manifest list', async () => {
    const mine = makeImage([await tarOf([fileEntry('which', 'host')])]);
    const other = makeImage([await tarOf([fileEntry('which', 'other')])]);
    await pushTestImage(host, 'multi/arch:tmp-a', mine);
    await pushTestImage(host, 'multi/arch:tmp-b', other);
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          { mediaType: other.manifest.mediaType, digest: other.manifest.digest, size: other.manifest.size, platform: { architecture: 's390x', os: 'linux' } },
          { mediaType: mine.manifest.mediaType, digest: mine.manifest.digest, size: mine.manifest.size, platform: { architecture: hostArchitecture(), os: 'linux' } },
        ],
      }),
    );
    await new RegistryClient({}).pushManifest(`${host}/multi/arch`, list, 'application/vnd.docker.distribution.manifest.list.v2+json', 'v1');
    const svc = await openImageService({ root: join(work, 'p8') });
    const result = await svc.pull(`${host}/multi/arch:v1`);
    expect(result.id).toBe(mine.config.digest);
    expect(result.digest).toBe(sha(list));
    expect((await svc.inspect(`${host}/multi/arch:v1`)).RepoDigests).toEqual([`${host}/multi/arch@${sha(list)}`]);
    await expect(svc.pull(`${host}/multi/arch:v1`, { platform: 'linux/riscv64' })).rejects.toThrow(/no matching manifest for linux\/riscv64/);
  });

  it('pulls a 6-layer image: parallel downloads, in-order unpacking, whiteouts across layers', async () => {
    const tars = [
      await tarOf([fileEntry('etc/base', 'base'), fileEntry('etc/gone', 'x'), fileEntry('data/keep', 'k')]),
      await tarOf([fileEntry('etc/.wh.gone', ''), fileEntry('one', '1')]),
      await tarOf([fileEntry('data/.wh..wh..opq', ''), fileEntry('data/new', 'n')]),
      await randomLayer('big3', 3 * 1024 * 1024),
      await randomLayer('big4', 2 * 1024 * 1024),
      await tarOf([fileEntry('one', 'one again')]),
    ];
    const img = makeImage(tars);
    await pushTestImage(host, 'stack/six:1', img);
    const svc = await openImageService({ root: join(work, 'p2') });
    const events: PullProgress[] = [];
    await svc.pull(`${host}/stack/six:1`, { onProgress: (e) => events.push(e) });
    // Layer 0 unpacks while it downloads: "extracting" comes before its "download-complete".
    const l0 = events.filter((e) => e.type === 'layer' && e.digest === img.layers[0]!.digest).map((e) => (e as { phase: string }).phase);
    expect(l0.indexOf('extracting')).toBeLessThan(l0.indexOf('download-complete'));
    // Children never complete before their parents.
    const completes = events.filter((e) => e.type === 'layer' && e.phase === 'pull-complete').map((e) => (e as { digest: string }).digest);
    expect(completes).toEqual(img.layers.map((l) => l.digest));
    const mounts = await svc.prepareRootfs('six', `${host}/stack/six:1`);
    const target = join(work, 'six-rootfs');
    await mkdir(target);
    await mountAll(mounts, target);
    mounted.push(target);
    expect((await readdir(target)).sort()).toEqual(['big3', 'big4', 'data', 'etc', 'one']);
    expect(await readdir(join(target, 'etc'))).toEqual(['base']);
    expect(await readdir(join(target, 'data'))).toEqual(['new']);
    expect(await readFile(join(target, 'one'), 'utf8')).toBe('one again');
    await unmount(target);
    mounted.pop();
    await svc.removeRootfs('six');
  });

  it('never commits bytes that do not match their digest (a corrupting proxy)', async () => {
    const proxy = await startProxy(registry.url);
    try {
      const img = makeImage([await randomLayer('r', 300_000)]);
      await pushTestImage(host, 'corrupt/one:1', img);
      const svc = await openImageService({ root: join(work, 'p7') });
      proxy.setCorrupt(true);
      await expect(svc.pull(`${proxy.host}/corrupt/one:1`)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await svc.list()).toEqual([]);
      const blobs = await readdir(join(work, 'p7', 'content', 'blobs', 'sha256'));
      expect(blobs).not.toContain(img.layers[0]!.digest.slice(7));
      expect(blobs).not.toContain(img.config.digest.slice(7));
      expect(await readdir(join(work, 'p7', 'content', 'ingest'))).toEqual([]);
      proxy.setCorrupt(false);
      await svc.pull(`${proxy.host}/corrupt/one:1`);
      expect(await svc.exists(`${proxy.host}/corrupt/one:1`)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a hostile layer met while downloading it, without hanging the download', async () => {
    const hostile = await tarOf([fileEntry('../../escaped', 'x'), fileEntry('filler', (await randomLayer('x', 8 * 1024 * 1024)).subarray(0, 8 * 1024 * 1024))]);
    const img = makeImage([hostile]);
    await pushTestImage(host, 'hostile/one:1', img);
    const svc = await openImageService({ root: join(work, 'p9') });
    await expect(svc.pull(`${host}/hostile/one:1`)).rejects.toMatchObject({ code: 'UNSAFE_LAYER_ENTRY' });
    expect(await svc.list()).toEqual([]);
    expect(await readdir(join(work, 'p9', 'snapshots'))).toEqual(['metadata.json']);
    await expect(stat(join(work, 'escaped'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lists nothing when a layer does not match its diffID, and keeps no snapshot of it', async () => {
    const proxy = await startProxy(registry.url);
    try {
      const good = makeImage([await tarOf([fileEntry('x', 'x')])]);
      // A config that says the layer has another diffID: the unpack must refuse it.
      const lying = makeImage([await tarOf([fileEntry('y', 'y')])]);
      const bad = { ...lying, config: good.config, diffIds: good.diffIds };
      const manifest = JSON.parse(lying.manifest.bytes.toString()) as { config: unknown };
      manifest.config = { mediaType: good.config.mediaType, digest: good.config.digest, size: good.config.size };
      const mbytes = Buffer.from(JSON.stringify(manifest));
      bad.manifest = { mediaType: lying.manifest.mediaType, bytes: mbytes, size: mbytes.length, digest: `sha256:${createHash('sha256').update(mbytes).digest('hex')}` };
      await pushTestImage(host, 'bad/diffid:1', bad);
      const svc = await openImageService({ root: join(work, 'p3') });
      await expect(svc.pull(`${proxy.host}/bad/diffid:1`)).rejects.toThrow(/hashes to .* the config says/);
      expect(await svc.list()).toEqual([]);
      expect(await readdir(join(work, 'p3', 'snapshots'))).toEqual(['metadata.json']);
      expect(await svc.exists(`${proxy.host}/bad/diffid:1`)).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('pushes an image that skopeo reads and another store pulls back', async () => {
    const svc = await openImageService({ root: join(work, 'p4') });
    const layout = join(work, 'bb-layout');
    const bb = await buildBusyboxImage({ cmd: ['echo', 'pushed'] });
    await writeOciLayout(layout, bb, 'docker.io/library/pushme:latest');
    await svc.load(Readable.from([Buffer.from(await tarDirectory(layout))]));
    await svc.tag('pushme', `${host}/pushed/bb:7`);
    const result = await svc.push(`${host}/pushed/bb:7`);
    expect(result).toMatchObject({ tag: '7', digest: bb.manifest.digest });
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${host}/pushed/bb:7`]);
    expect(JSON.parse(stdout)).toMatchObject({ Digest: bb.manifest.digest, Layers: [bb.layer.digest] });
    const other = await openImageService({ root: join(work, 'p5') });
    await other.pull(`${host}/pushed/bb:7`);
    expect((await other.inspect(`${host}/pushed/bb:7`)).Config.Cmd).toEqual(['echo', 'pushed']);
  });

  it('resumes a pull killed with SIGKILL half-way, fetching only the missing bytes', async () => {
    const size = 24 * 1024 * 1024;
    const img = makeImage([await randomLayer('payload.bin', size)]);
    await pushTestImage(host, 'big/one:1', img);
    const layer = img.layers[0]!;
    const proxy = await startProxy(registry.url);
    const root = join(work, 'p6');
    try {
      proxy.setRate(6 * 1024 * 1024);
      const child = spawnPull(root, `${proxy.host}/big/one:1`);
      const ingest = join(root, 'content', 'ingest');
      // Wait until a good part, but not all, of the layer is on disk, then kill -9.
      let partial = 0;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        partial = await ingestBytes(ingest);
        if (partial > layer.size / 3) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      partial = await ingestBytes(ingest);
      expect(partial).toBeGreaterThan(0);
      expect(partial).toBeLessThan(layer.size);
      const svc = await openImageService({ root });
      expect(await svc.list()).toEqual([]);

      proxy.setRate(undefined);
      proxy.log.length = 0;
      await svc.pull(`${proxy.host}/big/one:1`);
      const fetches = proxy.log.filter((l) => l.path.includes(`/blobs/${layer.digest}`) && l.method === 'GET');
      expect(fetches).toHaveLength(1);
      expect(fetches[0]!.range).toBe(`bytes=${partial}-`);
      expect(fetches[0]!.bytes).toBe(layer.size - partial);
      expect((await svc.list()).map((i) => i.RepoTags)).toEqual([[`${proxy.host}/big/one:1`]]);
      // Every blob in the store hashes to its name.
      const blobs = join(root, 'content', 'blobs', 'sha256');
      for (const name of await readdir(blobs)) {
        const h = createHash('sha256');
        for await (const c of createReadStream(join(blobs, name))) h.update(c as Buffer);
        expect(h.digest('hex')).toBe(name);
      }
      expect(await readdir(ingest)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

async function ingestBytes(dir: string): Promise<number> {
  let total = 0;
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    total += (await stat(join(dir, n, 'data')).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function spawnPull(root: string, ref: string): ReturnType<typeof spawn> {
  const pkg = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', join(pkg, 'test/support/pull-child.ts'), root, ref], {
    cwd: pkg,
    env: { ...process.env, TSX_TSCONFIG_PATH: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}
