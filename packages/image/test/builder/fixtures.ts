import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesLayer, openBuilder, staticImageSource } from '@berth/image';
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
  const images = staticImageSource({ 'busybox:latest': busybox, ...(options.extraImages ?? {}) });
  const executor = createRuncExecutor();
  const builder = await openBuilder({ root, executor, images, cacheMaxBytes: options.cacheMaxBytes });
  return {
    builder,
    root,
    executor,
    images,
    busybox,
    events: [],
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}
