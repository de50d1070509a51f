/**
 * Compatibility with an independent client: skopeo (containers/image) pushes to and pulls from
 * berth's registry running in its own process, with basic auth, for an OCI image, a Docker
 * schema2 image and a multi-arch index.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import { buildBusyboxImage, type BusyboxImage } from '../../../test/support/busybox.js';
import { blobOf, descriptor, randomImage, readLayoutBlob, readLayoutIndex, writeDirImage, writeOciLayout } from './support/layout.js';
import { startRegistryProcess, type RegistryProcess } from './support/process.js';

const run = promisify(execFile);
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const USER = 'skopeo-user';
const PASS = 'skopeo-pass-1';

let dir: string;
let server: RegistryProcess;
let busybox: BusyboxImage;
let client: RegistryClient;

async function skopeo(...args: string[]): Promise<string> {
  const started = Date.now();
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024 });
  if (process.env.BERTH_TEST_TIMING) console.log(`skopeo ${args[0]} took ${Date.now() - started} ms`);
  return stdout;
}
const creds = (): string[] => ['--dest-tls-verify=false', `--dest-creds=${USER}:${PASS}`];
const srcCreds = (): string[] => ['--src-tls-verify=false', `--src-creds=${USER}:${PASS}`];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-skopeo-'));
  await writeFile(join(dir, 'htpasswd'), `${USER}:${bcrypt.hashSync(PASS, 8)}\n`);
  server = await startRegistryProcess({ root: join(dir, 'root'), htpasswd: join(dir, 'htpasswd') });
  busybox = await buildBusyboxImage();
  client = new RegistryClient({ credentials: new StaticCredentials({ [server.host]: { username: USER, password: PASS } }) });
});

afterAll(async () => {
  await server?.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
});

describe('skopeo ↔ berth registry (separate process, basic auth)', () => {
  it('refuses skopeo without credentials', async () => {
    const layout = join(dir, 'noauth');
    const img = randomImage();
    await writeOciLayout(layout, [img.layer, img.config, img.manifest], { v1: img.manifest });
    await expect(skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${server.host}/skopeo/noauth:v1`)).rejects.toThrow(
      /unauthorized|authentication required/i,
    );
  });

  it('pushes and pulls an OCI image (busybox) unchanged', async () => {
    const src = join(dir, 'oci-src');
    const layer = blobOf(busybox.layer.mediaType, busybox.layer.bytes);
    const config = blobOf(busybox.config.mediaType, busybox.config.bytes);
    const manifest = blobOf(busybox.manifest.mediaType, busybox.manifest.bytes);
    await writeOciLayout(src, [layer, config, manifest], { v1: manifest });
    await skopeo('copy', ...creds(), `oci:${src}:v1`, `docker://${server.host}/skopeo/busybox:oci`);

    const t0 = Date.now();
    const got = await client.getManifest(`${server.host}/skopeo/busybox:oci`);
    if (process.env.BERTH_TEST_TIMING) console.log(`getManifest took ${Date.now() - t0} ms`);
    expect(got.descriptor.digest).toBe(busybox.manifest.digest);
    expect(got.descriptor.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');

    const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', `--creds=${USER}:${PASS}`, `docker://${server.host}/skopeo/busybox:oci`)) as {
      Digest: string;
      Layers: string[];
    };
    expect(inspect.Digest).toBe(busybox.manifest.digest);
    expect(inspect.Layers).toEqual([busybox.layer.digest]);

    const dst = join(dir, 'oci-dst');
    await skopeo('copy', ...srcCreds(), `docker://${server.host}/skopeo/busybox:oci`, `oci:${dst}:pulled`);
    const index = await readLayoutIndex(dst);
    expect(index.manifests[0]?.digest).toBe(busybox.manifest.digest);
    expect(sha256Hex(await readLayoutBlob(dst, busybox.layer.digest))).toBe(sha256Hex(busybox.layer.bytes));
  });

  it('pushes and pulls a Docker schema2 image', async () => {
    const img = await buildBusyboxImage({ format: 'docker' });
    const src = join(dir, 'docker-src');
    const blobs = [blobOf(img.layer.mediaType, img.layer.bytes), blobOf(img.config.mediaType, img.config.bytes)];
    const manifest = blobOf(img.manifest.mediaType, img.manifest.bytes);
    await writeDirImage(src, blobs, manifest);
    await skopeo('copy', ...creds(), `dir:${src}`, `docker://${server.host}/skopeo/docker:v2s2`);
    const got = await client.getManifest(`${server.host}/skopeo/docker:v2s2`);
    expect(got.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect((got.manifest as { layers: Array<{ digest: string }> }).layers[0]?.digest).toBe(img.layer.digest);

    const dst = join(dir, 'docker-dst');
    await skopeo('copy', ...srcCreds(), `docker://${server.host}/skopeo/docker:v2s2`, `dir:${dst}`);
    const { readFile } = await import('node:fs/promises');
    const pulled = JSON.parse(await readFile(join(dst, 'manifest.json'), 'utf8')) as { mediaType: string; config: { digest: string } };
    expect(pulled.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(pulled.config.digest).toBe(img.config.digest);
    expect(sha256Hex(await readFile(join(dst, img.layer.digest.slice(7))))).toBe(sha256Hex(img.layer.bytes));
  });

  it('pushes and pulls a multi-arch index with --all; berth selects a platform from it', async () => {
    const amd = randomImage({ architecture: 'amd64' });
    const arm = randomImage({ architecture: 'arm64' });
    const index = blobOf(
      'application/vnd.oci.image.index.v1+json',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          descriptor(amd.manifest, { platform: { os: 'linux', architecture: 'amd64' } }),
          descriptor(arm.manifest, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
        ],
      }),
    );
    const src = join(dir, 'multi-src');
    await writeOciLayout(src, [amd.layer, amd.config, amd.manifest, arm.layer, arm.config, arm.manifest, index], { multi: index });
    await skopeo('copy', '--all', ...creds(), `oci:${src}:multi`, `docker://${server.host}/skopeo/multi:latest`);

    const top = await client.getManifest(`${server.host}/skopeo/multi:latest`);
    expect(top.descriptor.digest).toBe(index.digest);
    const arm64 = await client.getImageManifest(`${server.host}/skopeo/multi:latest`, { platform: 'linux/arm64' });
    expect(arm64.descriptor.digest).toBe(arm.manifest.digest);
    expect(arm64.index?.descriptor.digest).toBe(index.digest);

    const dst = join(dir, 'multi-dst');
    await skopeo('copy', '--all', ...srcCreds(), `docker://${server.host}/skopeo/multi:latest`, `oci:${dst}:multi`);
    expect((await readLayoutIndex(dst)).manifests[0]?.digest).toBe(index.digest);
    expect(sha256Hex(await readLayoutBlob(dst, arm.layer.digest))).toBe(sha256Hex(arm.layer.bytes));
    expect(sha256Hex(await readLayoutBlob(dst, amd.layer.digest))).toBe(sha256Hex(amd.layer.bytes));
  });

  it('copies between two repositories of the registry (skopeo mounts or re-uploads) and lists tags', async () => {
    await skopeo('copy', ...srcCreds(), ...creds(), `docker://${server.host}/skopeo/busybox:oci`, `docker://${server.host}/skopeo/copy:again`);
    expect(await client.listTags(`${server.host}/skopeo/copy`)).toEqual(['again']);
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `--creds=${USER}:${PASS}`, `docker://${server.host}/skopeo/busybox`)) as {
      Tags: string[];
    };
    expect(tags.Tags).toEqual(['oci']);
  });
});
