import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import { buildBusyboxImage, hostArchitecture, sha256, type BusyboxImage } from '../../../../test/support/busybox.js';
import { COMPAT_PASSWORD, COMPAT_USER, pushBusybox, startBerthRegistry, type TestRegistry } from '../../../../test/compat/support/registry.js';
import { inspectDistribution } from './distribution.js';

const auth = { username: COMPAT_USER, password: COMPAT_PASSWORD };

describe('inspectDistribution against @berth/registry (with basic auth)', () => {
  let registry: TestRegistry;
  let image: BusyboxImage;
  let indexDigest: string;
  let indexSize: number;

  beforeAll(async () => {
    registry = await startBerthRegistry();
    image = await pushBusybox(registry.host, 'dist/busybox', 'latest', auth, await buildBusyboxImage());
    // A two-platform index over the same manifest (the registry only checks the children exist).
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
        ],
      }),
    );
    indexDigest = sha256(index);
    indexSize = index.length;
    const client = new RegistryClient({ credentials: new StaticCredentials({ [registry.host]: auth }) });
    await client.pushManifest(`${registry.host}/dist/busybox:multi`, index, 'application/vnd.oci.image.index.v1+json', 'multi');
  }, 60_000);

  afterAll(async () => {
    await registry?.close();
  });

  it('describes an image manifest and reads its platform from the config', async () => {
    const result = await inspectDistribution(`${registry.host}/dist/busybox:latest`, { auth });
    expect(result).toEqual({
      Descriptor: { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size },
      Platforms: [{ architecture: hostArchitecture(), os: 'linux' }],
    });
    // By digest, the same answer.
    const byDigest = await inspectDistribution(`${registry.host}/dist/busybox@${image.manifest.digest}`, { auth });
    expect(byDigest.Descriptor.digest).toBe(image.manifest.digest);
  });

  it('lists every platform of an index', async () => {
    const result = await inspectDistribution(`${registry.host}/dist/busybox:multi`, { auth });
    expect(result.Descriptor).toEqual({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: indexSize });
    expect(result.Platforms).toEqual([
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ]);
  });

  it('maps registry errors to categories: unauthorized without credentials, not-found for a missing tag, invalid input', async () => {
    await expect(inspectDistribution(`${registry.host}/dist/busybox:latest`)).rejects.toMatchObject({ category: 'unauthorized', message: expect.stringContaining('unauthorized: authentication required for') });
    await expect(inspectDistribution(`${registry.host}/dist/busybox:nope`, { auth })).rejects.toMatchObject({ category: 'not-found' });
    await expect(inspectDistribution('Not/Valid:Ref!')).rejects.toMatchObject({ category: 'invalid', message: expect.stringContaining('invalid reference format') });
    await expect(inspectDistribution('a'.repeat(64))).rejects.toMatchObject({ category: 'invalid', message: 'no manifest found for full image ID' });
  });
});
