import type { Readable } from 'node:stream';
import { parseReference } from '@berth/oci-spec';
import type { Descriptor, Reference } from '@berth/oci-spec';
import { ImageError } from '../errors.js';
import type { PushProgress, PushResult } from '../service/types.js';
import type { ImageContext } from '../store/context.js';
import type { ImageRecord } from '../store/image-store.js';

/** The part of @berth/registry's RegistryClient a push needs. */
export interface RegistrySink {
  pushBlob(ref: Reference | string, desc: Descriptor, open: (offset: number) => Readable, opts?: { onProgress?: (bytes: number) => void; signal?: AbortSignal }): Promise<{ outcome: 'exists' | 'mounted' | 'uploaded' }>;
  pushManifest(ref: Reference | string, bytes: Uint8Array, mediaType: string, tagOrDigest?: string, opts?: { signal?: AbortSignal }): Promise<string>;
}

const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * Pushes a stored image to `reference` (which must carry a tag): layers (as stored) in parallel,
 * then the config, then the manifest under the tag.
 */
export async function pushImage(
  ctx: ImageContext,
  sink: RegistrySink,
  record: ImageRecord,
  reference: string,
  options: { onProgress?: (e: PushProgress) => void; signal?: AbortSignal } = {},
): Promise<PushResult> {
  const ref = parseReference(reference);
  if (ref.digest) throw new ImageError('INVALID_REFERENCE', 'invalid', `cannot push to a digest reference: ${reference}`);
  const tag = ref.tag ?? 'latest';
  const emit = options.onProgress ?? (() => undefined);
  const signal = options.signal;
  const blobs: Descriptor[] = record.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  for (const b of blobs) emit({ type: 'layer', id: shortId(b.digest), digest: b.digest, phase: 'preparing', current: 0, total: b.size });
  const pushOne = async (b: Descriptor, report: boolean): Promise<void> => {
    const path = ctx.content.path(b.digest);
    const { createReadStream } = await import('node:fs');
    const opts: { onProgress?: (bytes: number) => void; signal?: AbortSignal } = {};
    if (report) opts.onProgress = (bytes) => emit({ type: 'layer', id: shortId(b.digest), digest: b.digest, phase: 'pushing', current: bytes, total: b.size });
    if (signal) opts.signal = signal;
    const { outcome } = await sink.pushBlob(ref, b, (offset) => createReadStream(path, { start: offset, highWaterMark: 1 << 20 }), opts);
    if (report) emit({ type: 'layer', id: shortId(b.digest), digest: b.digest, phase: outcome === 'uploaded' ? 'pushed' : 'exists', current: b.size, total: b.size });
  };
  await Promise.all(blobs.map((b) => pushOne(b, true)));
  await pushOne(record.config, false);
  const bytes = await ctx.content.readBytes(record.manifest.digest);
  const digest = await sink.pushManifest(ref, bytes, record.manifest.mediaType, tag, signal ? { signal } : {});
  const result = { tag, digest, size: bytes.byteLength };
  emit({ type: 'done', ...result });
  return result;
}
