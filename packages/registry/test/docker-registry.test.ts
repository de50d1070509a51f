/**
 * berth's client against an independent server: Docker's reference registry (distribution 2.8,
 * `/usr/bin/docker-registry`) on loopback with a temp storage directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Digester } from '@berth/oci-spec';
import { ManifestUnknownError, RegistryClient, StaticCredentials } from '@berth/registry';
import { buildBusyboxImage, type BusyboxImage } from '../../../test/support/busybox.js';
import { startDockerRegistry, type DockerRegistry } from './support/docker-registry.js';
import { blobOf, descriptor, randomImage } from './support/layout.js';

const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const source = (bytes: Uint8Array) => (offset: number) => Readable.from([Buffer.from(bytes).subarray(offset)]);
async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let ref: DockerRegistry;
let client: RegistryClient;
let busybox: BusyboxImage;

beforeAll(async () => {
  ref = await startDockerRegistry();
  client = new RegistryClient({ credentials: new StaticCredentials() });
  busybox = await buildBusyboxImage();
});
afterAll(async () => {
  await ref?.stop();
});

describe('RegistryClient ↔ Docker reference registry (distribution 2.8)', () => {
  it('pushes busybox (OCI) monolithically and pulls it back verified', async () => {
    const repo = `${ref.host}/berth/busybox`;
    for (const b of [busybox.layer, busybox.config]) expect((await client.pushBlob(repo, b, source(b.bytes))).outcome).toBe('uploaded');
    expect(await client.pushManifest(`${repo}:v1`, busybox.manifest.bytes, busybox.manifest.mediaType)).toBe(busybox.manifest.digest);
    const desc = await client.resolve(`${repo}:v1`);
    expect(desc.digest).toBe(busybox.manifest.digest);
    const got = await client.getManifest(`${repo}:v1`);
    expect(Buffer.from(got.bytes).equals(Buffer.from(busybox.manifest.bytes))).toBe(true);
    expect(sha256(await readAll(await client.fetchBlob(repo, busybox.layer)))).toBe(busybox.layer.digest);
    expect((await client.pushBlob(repo, busybox.layer, source(busybox.layer.bytes))).outcome).toBe('exists');
  });

  it('pushes in chunks, resumes a ranged download, mounts across repositories', async () => {
    const repo = `${ref.host}/berth/chunked`;
    const data = randomBytes(2_500_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    expect((await client.pushBlob(repo, desc, source(data), { chunkSize: 1_000_000 })).outcome).toBe('uploaded');
    const digester = new Digester().update(data.subarray(0, 1_000_000));
    const rest = await readAll(await client.fetchBlob(repo, desc, { offset: 1_000_000, digester }));
    expect(rest.length).toBe(1_500_000);
    expect(
      (await client.pushBlob(`${ref.host}/berth/mounted`, desc, () => Readable.from([]), { mountFrom: 'berth/chunked' })).outcome,
    ).toBe('mounted');
    expect(await client.blobExists(`${ref.host}/berth/mounted`, desc.digest)).toBe(true);
  });

  it('Docker schema2 manifest list with platform selection; tags and catalog pagination', async () => {
    const repo = `${ref.host}/berth/multi`;
    const amd = randomImage({ architecture: 'amd64', docker: true });
    const arm = randomImage({ architecture: 'arm64', docker: true });
    for (const img of [amd, arm]) {
      for (const b of [img.layer, img.config]) await client.pushBlob(repo, b, source(b.bytes));
      await client.pushManifest(repo, img.manifest.bytes, img.manifest.mediaType, img.manifest.digest);
    }
    const list = blobOf(
      'application/vnd.docker.distribution.manifest.list.v2+json',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          descriptor(amd.manifest, { platform: { os: 'linux', architecture: 'amd64' } }),
          descriptor(arm.manifest, { platform: { os: 'linux', architecture: 'arm64' } }),
        ],
      }),
    );
    for (const tag of ['latest', 'a', 'b', 'c']) await client.pushManifest(`${repo}:${tag}`, list.bytes, list.mediaType);
    expect((await client.getImageManifest(`${repo}:latest`, { platform: 'linux/arm64' })).descriptor.digest).toBe(arm.manifest.digest);
    expect((await client.getImageManifest(`${repo}:latest`, { platform: 'linux/amd64' })).descriptor.digest).toBe(amd.manifest.digest);
    // distribution 2.8 returns tags unsorted and ignores `n` on tags (it paginates the catalog).
    expect((await client.listTags(repo)).sort()).toEqual(['a', 'b', 'c', 'latest']);
    const everything = await client.catalog(ref.host);
    expect(everything).toEqual(expect.arrayContaining(['berth/busybox', 'berth/multi']));
    const first = await client.catalog(ref.host, { n: 1 });
    expect(first).toEqual([everything[0]]);
    expect(await client.catalog(ref.host, { n: 100, last: first[0]! })).toEqual(everything.slice(1));
  });

  it('referrers through the tag-schema fallback (distribution 2.8 has no referrers API)', async () => {
    const repo = `${ref.host}/berth/referrers`;
    for (const b of [busybox.layer, busybox.config]) await client.pushBlob(repo, b, source(b.bytes));
    await client.pushManifest(`${repo}:v1`, busybox.manifest.bytes, busybox.manifest.mediaType);
    const empty = blobOf('application/vnd.oci.empty.v1+json', '{}');
    await client.pushBlob(repo, empty, source(empty.bytes));
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.sig',
        config: descriptor(empty),
        layers: [descriptor(empty)],
        subject: { mediaType: busybox.manifest.mediaType, digest: busybox.manifest.digest, size: busybox.manifest.size },
      }),
    );
    await client.pushManifest(repo, sig, 'application/vnd.oci.image.manifest.v1+json');
    const found = await client.referrers(repo, busybox.manifest.digest);
    expect(found.map((d) => d.digest)).toEqual([sha256(sig)]);
    expect(found[0]?.artifactType).toBe('application/vnd.example.sig');
    expect(await client.referrers(repo, busybox.manifest.digest, { artifactType: 'other/type' })).toEqual([]);
    expect(await client.listTags(repo)).toContain(`sha256-${busybox.manifest.digest.slice(7)}`);
  });

  it('deletes a manifest; fetching it is then MANIFEST_UNKNOWN', async () => {
    const repo = `${ref.host}/berth/busybox`;
    await client.deleteManifest(repo, busybox.manifest.digest);
    await expect(client.getManifest(`${repo}@${busybox.manifest.digest}`)).rejects.toBeInstanceOf(ManifestUnknownError);
  });
});
