import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, formatReference, parseDigest, parseReference, platformMatches } from '@berth/oci-spec';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '@berth/oci-spec';
import { BuildError } from './errors.js';

/** One layer of a base image, bottom first. `open` streams the blob as stored (compressed). */
export interface SourceLayer {
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
  open(): Promise<Readable>;
}

/** A base image for FROM (or a COPY --from image, or a --cache-from image). */
export interface SourceImage {
  /** Image ID: the config digest. */
  id: string;
  config: ImageConfig;
  layers: SourceLayer[];
}

/**
 * Where FROM images come from. The daemon adapts its image store (pulling when missing); tests
 * and library users can use `ociLayoutImageSource` or `staticImageSource`.
 * Throws a BuildError with category 'not-found' for an unknown reference.
 */
export interface BuildImageSource {
  resolveImage(ref: string, options: { platform: Platform; signal?: AbortSignal }): Promise<SourceImage>;
}

export class BaseImageNotFoundError extends BuildError {
  constructor(ref: string, options?: { cause?: unknown }) {
    super('BASE_IMAGE_NOT_FOUND', 'not-found', `no such image: ${ref}`, options);
  }
}

/** Normalised name for matching (`busybox` → `docker.io/library/busybox:latest`). */
function normalise(ref: string): string {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return ref;
  }
}

/** Images held in memory, addressed by reference (normalised) or ID. */
export function staticImageSource(images: Record<string, SourceImage>): BuildImageSource {
  const byName = new Map<string, SourceImage>();
  for (const [name, image] of Object.entries(images)) {
    byName.set(normalise(name), image);
    byName.set(image.id, image);
  }
  return {
    async resolveImage(ref) {
      const image = byName.get(ref) ?? byName.get(normalise(ref));
      if (!image) throw new BaseImageNotFoundError(ref);
      return image;
    },
  };
}

/**
 * Images of an OCI image layout directory, addressed by their `org.opencontainers.image.ref.name`
 * annotation (a tag such as `latest` or a full reference) or by image ID. Multi-platform indexes
 * are resolved for the requested platform.
 */
export function ociLayoutImageSource(dir: string): BuildImageSource {
  const blobPath = (digest: string): string => {
    const { algorithm, encoded } = parseDigest(digest);
    return join(dir, 'blobs', algorithm, encoded);
  };
  const readJson = async <T>(digest: string): Promise<T> => {
    const bytes = await readFile(blobPath(digest));
    if (digestOf(bytes) !== digest) throw new BuildError('INVALID_LAYOUT', 'invalid', `blob ${digest} in ${dir} does not match its digest`);
    return JSON.parse(bytes.toString('utf8')) as T;
  };
  const toImage = async (desc: Descriptor, platform: Platform): Promise<SourceImage | undefined> => {
    if (desc.mediaType.includes('index') || desc.mediaType.includes('manifest.list')) {
      const index = await readJson<ImageIndex>(desc.digest);
      for (const m of index.manifests) {
        if (m.platform && !platformMatches(platform, m.platform)) continue;
        const image = await toImage(m, platform);
        if (image) return image;
      }
      return undefined;
    }
    const manifest = await readJson<ImageManifest>(desc.digest);
    const config = await readJson<ImageConfig>(manifest.config.digest);
    return {
      id: manifest.config.digest,
      config,
      layers: manifest.layers.map((l, i) => ({
        digest: l.digest,
        diffId: config.rootfs.diff_ids[i] ?? '',
        mediaType: l.mediaType,
        size: l.size,
        open: async () => createReadStream(blobPath(l.digest)),
      })),
    };
  };
  return {
    async resolveImage(ref, { platform }) {
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
      const wanted = normalise(ref);
      for (const desc of index.manifests) {
        const name = desc.annotations?.['org.opencontainers.image.ref.name'];
        const full = desc.annotations?.['io.containerd.image.name'];
        const matches =
          name === ref ||
          (name !== undefined && normalise(name) === wanted) ||
          (full !== undefined && normalise(full) === wanted) ||
          desc.digest === ref;
        if (!matches) continue;
        const image = await toImage(desc, platform);
        if (image) return image;
      }
      for (const desc of index.manifests) {
        const image = await toImage(desc, platform).catch(() => undefined);
        if (image && image.id === ref) return image;
      }
      throw new BaseImageNotFoundError(ref);
    },
  };
}

/** An in-memory layer (tests, small fixtures). */
export function bytesLayer(bytes: Uint8Array, diffId: string, mediaType: string): SourceLayer {
  return {
    digest: digestOf(bytes),
    diffId,
    mediaType,
    size: bytes.length,
    open: async () => Readable.from([Buffer.from(bytes)]),
  };
}
