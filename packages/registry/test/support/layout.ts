import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Uint8Array;
}

export function blobOf(mediaType: string, bytes: Uint8Array | string): Blob {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return { mediaType, digest: `sha256:${createHash('sha256').update(b).digest('hex')}`, size: b.byteLength, bytes: b };
}

export function descriptor(blob: Blob, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size, ...extra };
}

/**
 * Writes an OCI image layout (the format `skopeo copy oci:DIR:NAME` reads): every blob under
 * blobs/sha256, and index.json naming `refs` (name → top-level descriptor).
 */
export async function writeOciLayout(dir: string, blobs: Blob[], refs: Record<string, Blob & { platform?: unknown }>): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const blob of blobs) {
    await writeFile(join(dir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)), blob.bytes);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: Object.entries(refs).map(([name, blob]) =>
      descriptor(blob, { annotations: { 'org.opencontainers.image.ref.name': name } }),
    ),
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

export async function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(join(dir, 'blobs', ...digest.split(':')));
}

export async function readLayoutIndex(dir: string): Promise<{ manifests: Array<{ digest: string; mediaType: string; annotations?: Record<string, string> }> }> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; mediaType: string; annotations?: Record<string, string> }>;
  };
}

/** A single-layer image of random bytes (a gzip of a one-file tar is not needed by registries). */
export function randomImage(options: { layerBytes?: number; architecture?: string; docker?: boolean } = {}): {
  layer: Blob;
  config: Blob;
  manifest: Blob;
} {
  const docker = options.docker === true;
  const layer = blobOf(
    docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip',
    gzipSync(randomBytes(options.layerBytes ?? 4096)),
  );
  const config = blobOf(
    docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
    JSON.stringify({
      architecture: options.architecture ?? 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(randomBytes(8)).digest('hex')}`] },
    }),
  );
  const manifest = blobOf(
    docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
    JSON.stringify({
      schemaVersion: 2,
      mediaType: docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
      config: descriptor(config),
      layers: [descriptor(layer)],
    }),
  );
  return { layer, config, manifest };
}

/** Writes skopeo's `dir:` transport layout: manifest.json, one file per blob named by hex. */
export async function writeDirImage(dir: string, blobs: Blob[], manifest: Blob): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const blob of blobs) await writeFile(join(dir, blob.digest.slice('sha256:'.length)), blob.bytes);
  await writeFile(join(dir, 'manifest.json'), manifest.bytes);
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
}
