import { formatReference, parseReference } from '@berth/oci-spec';
import type { Descriptor, ImageConfig } from '@berth/oci-spec';
import { writeBlob } from '../content/local-store.js';
import { readJson, recordFor, unpackLayer } from '../store/context.js';
import type { ImageContext } from '../store/context.js';
import { BaseImageNotFoundError } from './image-source.js';
import type { BuildImageSource, SourceImage } from './image-source.js';
import type { BuildImageStore, BuiltImage } from './output.js';

export interface ImageContextBuildOptions {
  /**
   * Called when FROM names an image the store does not have (e.g. the daemon pulls it);
   * resolution is retried once afterwards. Without it, a missing image is a not-found error.
   */
  pull?: (ref: string, platform: string) => Promise<void>;
}

/**
 * Connects the builder to an image store (`openImageContext`): FROM images are read from it
 * (pulled first through `pull` when missing) and `{ type: 'store' }` outputs are written into
 * it — blobs into the content store, layers unpacked into committed snapshots, then the record
 * and every tag, so a built image is immediately runnable and listed like a pulled one.
 */
export function imageContextForBuilds(ctx: ImageContext, options: ImageContextBuildOptions = {}): {
  source: BuildImageSource;
  store: BuildImageStore;
} {
  const load = async (ref: string): Promise<SourceImage | undefined> => {
    const record = ctx.images.find(ref);
    if (!record) return undefined;
    const config = await readJson<ImageConfig>(ctx, record.config.digest);
    return {
      id: record.id,
      config,
      layers: record.layers.map((l) => ({
        digest: l.digest,
        diffId: l.diffId,
        mediaType: l.mediaType,
        size: l.size,
        open: () => ctx.content.reader(l.digest),
      })),
    };
  };
  const source: BuildImageSource = {
    async resolveImage(ref, { platform }) {
      const found = await load(ref);
      if (found) return found;
      if (options.pull) {
        await options.pull(ref, `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`);
        const pulled = await load(ref);
        if (pulled) return pulled;
      }
      throw new BaseImageNotFoundError(ref);
    },
  };
  const store: BuildImageStore = {
    async putImage(image: BuiltImage, tags: string[]): Promise<void> {
      const names = tags.map((t) => formatReference(parseReference(t)));
      if (!ctx.images.get(image.configDigest)) {
        for (const layer of image.layers) {
          if (await ctx.content.has(layer.descriptor.digest)) continue;
          await writeBlob(ctx.content, await layer.open(), { expected: { digest: layer.descriptor.digest, size: layer.descriptor.size } });
        }
        await writeBlob(ctx.content, image.configBytes, { expected: { digest: image.configDigest, size: image.configBytes.length } });
        await writeBlob(ctx.content, image.manifestBytes, { expected: { digest: image.manifestDigest, size: image.manifestBytes.length } });
        const manifestDesc: Descriptor = {
          mediaType: image.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
          digest: image.manifestDigest,
          size: image.manifestBytes.length,
        };
        const { record } = await recordFor(ctx, manifestDesc, manifestDesc, names[0] ?? image.configDigest);
        for (let i = 0; i < record.layers.length; i++) await unpackLayer(ctx, record.layers, i);
        await ctx.images.put(record, names);
        return;
      }
      for (const name of names) await ctx.images.tag(image.configDigest, name);
    },
  };
  return { source, store };
}
