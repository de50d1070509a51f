import { mkdtemp, mkdir, copyFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, expect, it, onTestFinished } from 'vitest';
import {
  parseReference, formatReference, familiarString, registryHost, digestOf, isDigest,
  validateImageManifest, ValidationError, MediaType,
} from '@berth/oci-spec';
import { serveRegistry, RegistryClient, StaticCredentials } from '@berth/registry';
import { openImageService, createDirectoryTar, openContentStore, writeBlob, mountAll, unmount } from '@berth/image';
import { openRuntime, runTestContainer } from '@berth/runtime';

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

it('oci-spec', () => {
  const ref = parseReference('busybox');
  expect(ref).toMatchObject({ domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
  expect(formatReference(ref)).toBe('docker.io/library/busybox:latest');
  expect(familiarString(parseReference('localhost:5000/tools/busybox:1'))).toBe('localhost:5000/tools/busybox:1');
  expect(registryHost('docker.io')).toBe('registry-1.docker.io');
  const d = digestOf('hello');
  expect(d).toBe('sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  expect(isDigest(d)).toBe(true);
  let err: unknown;
  try { validateImageManifest({ schemaVersion: 2, config: {}, layers: [] }); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(ValidationError);
  console.log((err as ValidationError).message, (err as ValidationError).issues[0]?.path);
  expect(MediaType.OciManifest).toBe('application/vnd.oci.image.manifest.v1+json');
});

it('registry server + client, image service, runtime', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-docs-'));
  dirs.push(dir);
  const registry = await serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'registry'), log: false, gc: false });
  onTestFinished(() => registry.close());
  const host = new URL(registry.url).host;

  // image: a one-file rootfs imported like `docker import`
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  const images = await openImageService({ root: join(dir, 'image') });
  const id = await images.import(createDirectoryTar(rootfs), { reference: `${host}/tools/busybox:1`, changes: { Cmd: ['/bin/busybox', 'echo', 'hello'] } as never });
  console.log('imported', id);
  const pushed = await images.push(`${host}/tools/busybox:1`);
  console.log('pushed', pushed);

  const client = new RegistryClient({ credentials: new StaticCredentials({}) as never });
  console.log(await client.listTags(`${host}/tools/busybox`));
  const { manifest, descriptor } = await client.getImageManifest(`${host}/tools/busybox:1`);
  console.log(descriptor.digest, manifest.mediaType);

  const images2 = await openImageService({ root: join(dir, 'image2') });
  const pulled = await images2.pull(`${host}/tools/busybox:1`, { onProgress: (e) => console.log(JSON.stringify(e)) });
  console.log(pulled);
  const inspect = await images2.inspect(`${host}/tools/busybox:1`);
  console.log(inspect.Config.Cmd, inspect.RootFS);

  const runtime = await openRuntime({ stateDir: join(dir, 'state'), cgroupParent: `berth-docs-${process.pid}` });
  onTestFinished(() => runtime.close());
  const cid = `docs-${process.pid}`;
  onTestFinished(() => images2.removeRootfs(cid));
  const c = await runTestContainer(runtime, {
    id: cid, rootfs: { mounts: await images2.prepareRootfs(cid, `${host}/tools/busybox:1`) }, image: inspect.Config,
    config: { Cmd: ['/bin/busybox', 'sh', '-c', 'echo hello from $(/bin/busybox hostname); exit 3'] },
  }, { cleanup: onTestFinished });
  const r = await c.result();
  console.log(r);
  expect(r.exitCode).toBe(3);

  const store = await openContentStore(join(dir, 'content'));
  const info = await writeBlob(store, Buffer.from('hello'));
  console.log(info);
  void mountAll; void unmount; void Readable; void writeFile;
});
