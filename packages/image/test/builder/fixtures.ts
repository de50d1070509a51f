import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesLayer, ociLayoutImageSource, openBuilder, staticImageSource } from '@berth/image';
import type { Builder, BuildEvent, BuildImageSource, SourceImage } from '@berth/image';
import type { ImageConfig } from '@berth/oci-spec';
import { buildBusyboxImage } from '../../../../test/support/busybox.js';
import { createRuncExecutor } from './runc-executor.js';

export async function busyboxSourceImage(): Promise<SourceImage> {
  const image = await buildBusyboxImage();
  return {
    id: image.config.digest,
    config: image.config.json as unknown as ImageConfig,
    layers: [bytesLayer(image.layer.bytes, image.diffId, image.layer.mediaType)],
  };
}

export interface BuilderHarness {
  builder: Builder;
  root: string;
  /** An OCI layout whose images are also valid bases (write with output oci-layout). */
  layoutDir: string;
  executor: ReturnType<typeof createRuncExecutor>;
  images: BuildImageSource;
  busybox: SourceImage;
  events: BuildEvent[];
  cleanup(): Promise<void>;
}

/** A builder over a fresh state directory with the runc executor and a busybox base image. */
export async function makeBuilder(options: { cacheMaxBytes?: number; extraImages?: Record<string, SourceImage> } = {}): Promise<BuilderHarness> {
  const root = await mkdtemp(join(tmpdir(), 'berth-builder-'));
  const busybox = await busyboxSourceImage();
  const fixed = staticImageSource({ 'busybox:latest': busybox, ...(options.extraImages ?? {}) });
  // Images the tests build into an OCI layout (`layoutDir`) can be used as bases too.
  const layoutDir = join(root, '..', `${root.split('/').pop()}-layout`);
  const layout = ociLayoutImageSource(layoutDir);
  const images: BuildImageSource = {
    async resolveImage(ref, opts) {
      try {
        return await fixed.resolveImage(ref, opts);
      } catch (error) {
        return layout.resolveImage(ref, opts).catch(() => {
          throw error;
        });
      }
    },
  };
  const executor = createRuncExecutor();
  const builder = await openBuilder({ root, executor, images, cacheMaxBytes: options.cacheMaxBytes });
  return {
    builder,
    root,
    layoutDir,
    executor,
    images,
    busybox,
    events: [],
    async cleanup() {
      await rm(root, { recursive: true, force: true });
      await rm(layoutDir, { recursive: true, force: true });
    },
  };
}
