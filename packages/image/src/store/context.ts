import { join } from 'node:path';
import { isIndexMediaType, validateDockerManifest, validateDockerManifestList, validateImageConfig, validateImageIndex, validateImageManifest, MediaType } from '@berth/oci-spec';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from '@berth/oci-spec';
import { openContentStore } from '../content/local-store.js';
import type { LocalContentStore } from '../content/local-store.js';
import { InvalidImageError, SnapshotExistsError } from '../errors.js';
import { applyLayer } from '../layer/apply.js';
import { openOverlaySnapshotter } from '../snapshot/overlay.js';
import type { OverlaySnapshotter } from '../snapshot/overlay.js';
import { chainIds, openImageStore } from './image-store.js';
import type { ImageLayerRecord, ImageRecord, ImageStore } from './image-store.js';

/** The three stores every operation works on, under one root. */
export interface ImageContext {
  root: string;
  content: LocalContentStore;
  snapshots: OverlaySnapshotter;
  images: ImageStore;
  /** Upper bound for one layer's uncompressed size (decompression bombs). */
  maxLayerSize: number;
}

export async function openImageContext(root: string, maxLayerSize = 64 * 1024 ** 3): Promise<ImageContext> {
  const [content, snapshots, images] = await Promise.all([
    openContentStore(join(root, 'content')),
    openOverlaySnapshotter(join(root, 'snapshots')),
    openImageStore(root),
  ]);
  return { root, content, snapshots, images, maxLayerSize };
}

export async function readJson<T>(ctx: ImageContext, digest: string): Promise<T> {
  const bytes = await ctx.content.readBytes(digest);
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (err) {
    throw new InvalidImageError(`blob ${digest} is not JSON`, { cause: err });
  }
}

/** Parses and validates a single-platform manifest (OCI or Docker schema2). */
export function parseManifest(bytes: Uint8Array, mediaType: string | undefined, what: string): ImageManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidImageError(`${what}: manifest is not JSON`, { cause: err });
  }
  const mt = mediaType ?? (doc as { mediaType?: string }).mediaType;
  if (isIndexMediaType(mt)) throw new InvalidImageError(`${what}: expected a manifest, got an index`);
  try {
    if (mt === MediaType.DockerManifest) return validateDockerManifest(doc) as unknown as ImageManifest;
    return validateImageManifest(doc);
  } catch (err) {
    throw new InvalidImageError(`${what}: invalid manifest: ${(err as Error).message}`, { cause: err });
  }
}

/** Parses and validates an index (OCI image index or Docker manifest list). */
export function parseIndex(bytes: Uint8Array, mediaType: string | undefined, what: string): ImageIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidImageError(`${what}: index is not JSON`, { cause: err });
  }
  const mt = mediaType ?? (doc as { mediaType?: string }).mediaType;
  try {
    if (mt === MediaType.DockerManifestList) return validateDockerManifestList(doc) as unknown as ImageIndex;
    return validateImageIndex(doc);
  } catch (err) {
    throw new InvalidImageError(`${what}: invalid index: ${(err as Error).message}`, { cause: err });
  }
}

export function parseConfig(bytes: Uint8Array, what: string): ImageConfig {
  try {
    return validateImageConfig(JSON.parse(Buffer.from(bytes).toString('utf8')));
  } catch (err) {
    throw new InvalidImageError(`${what}: invalid image config: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Builds the image record for a manifest whose manifest and config blobs are in the content
 * store (layers need not be yet). Checks that layers and diff_ids agree.
 */
export async function recordFor(ctx: ImageContext, target: Descriptor, manifestDesc: Descriptor, what: string): Promise<{ record: ImageRecord; manifest: ImageManifest; config: ImageConfig }> {
  const manifestBytes = await ctx.content.readBytes(manifestDesc.digest);
  const manifest = parseManifest(manifestBytes, manifestDesc.mediaType, what);
  return recordOf(target, manifestDesc, manifestBytes, await ctx.content.readBytes(manifest.config.digest), what);
}

/**
 * `recordFor` from the manifest and config bytes at hand (verified by the caller against
 * `manifestDesc` and the manifest's config descriptor).
 */
export function recordOf(
  target: Descriptor,
  manifestDesc: Descriptor,
  manifestBytes: Uint8Array,
  configBytes: Uint8Array,
  what: string,
): { record: ImageRecord; manifest: ImageManifest; config: ImageConfig } {
  const manifest = parseManifest(manifestBytes, manifestDesc.mediaType, what);
  const config = parseConfig(configBytes, what);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidImageError(`${what}: manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff_ids`);
  }
  const chains = chainIds(diffIds);
  const layers: ImageLayerRecord[] = manifest.layers.map((l, i) => ({
    digest: l.digest,
    mediaType: l.mediaType,
    size: l.size,
    diffId: diffIds[i] as string,
    chainId: chains[i] as string,
  }));
  const record: ImageRecord = {
    id: manifest.config.digest,
    target,
    manifest: { mediaType: manifestDesc.mediaType, digest: manifestDesc.digest, size: manifestDesc.size },
    config: { mediaType: manifest.config.mediaType, digest: manifest.config.digest, size: manifest.config.size },
    layers,
    repoDigests: [],
    storedAt: new Date().toISOString(),
  };
  return { record, manifest, config };
}

export async function hasSnapshot(ctx: ImageContext, key: string): Promise<boolean> {
  try {
    const s = await ctx.snapshots.stat(key);
    return s.kind === 'committed';
  } catch {
    return false;
  }
}

/**
 * Unpacks layer `i` of `layers` (from the content store, or from `source` when given) into a
 * committed snapshot named by its chainID; the parent must be committed already. Idempotent:
 * a snapshot committed meanwhile by someone else wins.
 */
export async function unpackLayer(
  ctx: ImageContext,
  layers: ImageLayerRecord[],
  i: number,
  source?: AsyncIterable<Buffer | Uint8Array>,
  onProgress?: (bytes: number) => void,
): Promise<void> {
  const layer = layers[i] as ImageLayerRecord;
  if (await hasSnapshot(ctx, layer.chainId)) return;
  const parent = i > 0 ? (layers[i - 1] as ImageLayerRecord).chainId : undefined;
  const key = `extract-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}-${layer.chainId}`;
  await ctx.snapshots.prepare(key, parent, { labels: { 'berth.extract': String(process.pid) } });
  try {
    const input = source ?? (await ctx.content.reader(layer.digest));
    const opts: Parameters<typeof applyLayer>[2] = { lowers: await ctx.snapshots.lowerDirs(key), maxSize: ctx.maxLayerSize };
    // A source with `release` lends its chunks (a pull's ChunkChannel): give each back when used.
    const lender = source as { release?: (chunk: Buffer) => void } | undefined;
    if (typeof lender?.release === 'function') opts.release = (chunk) => lender.release?.(chunk);
    if (onProgress) opts.onProgress = onProgress;
    const result = await applyLayer(await ctx.snapshots.upperDir(key), input, opts);
    if (result.diffId !== layer.diffId) {
      throw new InvalidImageError(`layer ${layer.digest}: uncompressed content hashes to ${result.diffId}, the config says ${layer.diffId}`);
    }
    await ctx.snapshots.commit(layer.chainId, key, { labels: { 'berth.usage': String(result.usage), 'berth.diff-size': String(result.size), 'berth.extract': '' } });
  } catch (err) {
    await ctx.snapshots.remove(key).catch(() => undefined);
    if (err instanceof SnapshotExistsError) return;
    throw err;
  }
}

/** Makes sure every layer of `record` is unpacked, in order. */
export async function unpackImage(ctx: ImageContext, record: ImageRecord): Promise<void> {
  for (let i = 0; i < record.layers.length; i++) await unpackLayer(ctx, record.layers, i);
}
