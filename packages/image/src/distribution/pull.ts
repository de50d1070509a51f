import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import {
  formatReference,
  hostPlatform,
  isIndexMediaType,
  parsePlatform,
  parseReference,
  referenceName,
  selectManifest,
  withDigest,
  formatPlatform,
} from '@berth/oci-spec';
import type { Descriptor, Platform, Reference } from '@berth/oci-spec';
import { writeBlob } from '../content/local-store.js';
import { chunksOf } from '../layer/chunks.js';
import { ContentExistsError, IngestLockedError, InvalidImageError } from '../errors.js';
import type { PullProgress, PullResult } from '../service/types.js';
import type { ImageContext } from '../store/context.js';
import { hasSnapshot, parseIndex, recordFor, unpackLayer } from '../store/context.js';
import type { ImageLayerRecord } from '../store/image-store.js';

/**
 * The part of @berth/registry's RegistryClient a pull needs. `fetchBlob` with an offset returns
 * the raw bytes from that offset; the content store verifies the whole blob on commit.
 */
export interface RegistrySource {
  getManifest(ref: Reference | string, opts?: { signal?: AbortSignal }): Promise<{ descriptor: Descriptor; bytes: Uint8Array; manifest: unknown }>;
  fetchBlob(ref: Reference | string, desc: Descriptor, opts?: { offset?: number; signal?: AbortSignal }): Promise<Readable>;
}

export interface PullImageOptions {
  platform?: string | Platform;
  concurrency?: number;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
}

const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** A counting semaphore for parallel downloads. */
class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiters.push(r));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * Pulls `reference` from a registry into the stores: manifests and config first (verified,
 * validated), then every layer — downloads run in parallel, and each layer is unpacked as soon
 * as its parent is (the first layer unpacks while it downloads). A download resumes from the
 * bytes an earlier, interrupted pull left in the content store's ingest. The image is put into
 * the image store only once every blob and snapshot is committed.
 */
export async function pullImage(ctx: ImageContext, source: RegistrySource, reference: string, options: PullImageOptions = {}): Promise<PullResult> {
  const ref = parseReference(reference);
  const emit = options.onProgress ?? (() => undefined);
  const signal = options.signal;
  const want: Platform = options.platform === undefined ? hostPlatform() : typeof options.platform === 'string' ? parsePlatform(options.platform) : options.platform;

  const top = await source.getManifest(ref, signal ? { signal } : {});
  const target: Descriptor = { mediaType: top.descriptor.mediaType, digest: top.descriptor.digest, size: top.descriptor.size };
  emit({ type: 'resolved', reference: formatReference(ref), digest: target.digest });
  await writeBlob(ctx.content, top.bytes, { expected: { digest: target.digest, size: top.bytes.byteLength } });

  let manifestDesc = target;
  if (isIndexMediaType(target.mediaType)) {
    const index = parseIndex(top.bytes, target.mediaType, formatReference(ref));
    const chosen = selectManifest(index, want);
    if (!chosen) throw new InvalidImageError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries of ${formatReference(ref)}`);
    const m = await source.getManifest(withDigest({ domain: ref.domain, path: ref.path }, chosen.digest), signal ? { signal } : {});
    manifestDesc = { mediaType: m.descriptor.mediaType, digest: m.descriptor.digest, size: m.descriptor.size };
    if (manifestDesc.digest !== chosen.digest) throw new InvalidImageError(`registry answered ${manifestDesc.digest} for ${chosen.digest}`);
    await writeBlob(ctx.content, m.bytes, { expected: { digest: manifestDesc.digest, size: m.bytes.byteLength } });
  }

  // Config (small): fetched whole, verified by the content store.
  const manifestBytes = await ctx.content.readBytes(manifestDesc.digest);
  const configDesc = (JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as { config?: Descriptor }).config;
  if (!configDesc) throw new InvalidImageError(`${formatReference(ref)}: manifest has no config`);
  if (configDesc.size > 4 * 1024 * 1024) throw new InvalidImageError(`${formatReference(ref)}: config of ${configDesc.size} bytes is larger than 4 MiB`);
  if (!(await ctx.content.has(configDesc.digest))) {
    await writeBlob(ctx.content, await source.fetchBlob(ref, configDesc, signal ? { signal } : {}), { expected: { digest: configDesc.digest, size: configDesc.size } });
  }
  const { record } = await recordFor(ctx, target, manifestDesc, formatReference(ref));
  const name = referenceName(ref);
  record.repoDigests = [`${name}@${target.digest}`];
  const names = ref.tag !== undefined && ref.digest === undefined ? [formatReference(ref)] : [];

  const existing = ctx.images.get(record.id);
  let fetched = false;
  const layers = record.layers;
  const unpacked: boolean[] = layers.map(() => false);
  const done: Promise<void>[] = [];
  const resolvers: (() => void)[] = [];
  for (let i = 0; i < layers.length; i++) done.push(new Promise<void>((r) => resolvers.push(r)));
  const sem = new Semaphore(options.concurrency ?? 4);

  const layerEvent = (l: ImageLayerRecord, phase: Extract<PullProgress, { type: 'layer' }>['phase'], current = 0, total = l.size): void =>
    emit({ type: 'layer', id: shortId(l.digest), digest: l.digest, phase, current, total });

  const task = async (i: number): Promise<void> => {
    const l = layers[i] as ImageLayerRecord;
    if (await hasSnapshot(ctx, l.chainId)) {
      layerEvent(l, 'exists', l.size);
      unpacked[i] = true;
      return;
    }
    layerEvent(l, 'waiting');
    const release = await sem.acquire();
    try {
      fetched = true;
      const parentReady = i === 0 || unpacked[i - 1] === true;
      if (!(await ctx.content.has(l.digest))) {
        const teeInto = parentReady ? new PassThrough({ highWaterMark: 4 << 20 }) : undefined;
        // Errors reach the unpacker through its iterator; this keeps a late one from crashing.
        teeInto?.on('error', () => undefined);
        const unpacking = teeInto
          ? (async () => {
              layerEvent(l, 'extracting', 0, l.size);
              await unpackLayer(ctx, layers, i, teeInto);
            })()
          : undefined;
        // A failed unpack stops reading the tee: drop it so the download is not stuck on
        // backpressure (the blob still lands in the store; the error surfaces below).
        unpacking?.catch(() => teeInto?.destroy());
        try {
          await download(ctx, source, ref, l, (current) => layerEvent(l, 'downloading', current), teeInto, signal);
        } catch (err) {
          teeInto?.destroy(err as Error);
          await unpacking?.catch(() => undefined);
          throw err;
        }
        layerEvent(l, 'download-complete', l.size);
        if (unpacking) {
          await unpacking;
          unpacked[i] = true;
          layerEvent(l, 'pull-complete', l.size);
          return;
        }
      } else {
        layerEvent(l, 'download-complete', l.size);
      }
    } finally {
      release();
    }
    if (i > 0) await done[i - 1];
    layerEvent(l, 'extracting', 0, l.size);
    await unpackLayer(ctx, layers, i, undefined);
    unpacked[i] = true;
    layerEvent(l, 'pull-complete', l.size);
  };

  const results = await Promise.allSettled(
    layers.map((_, i) =>
      task(i).then(
        () => (resolvers[i] as () => void)(),
        (err: unknown) => {
          (resolvers[i] as () => void)();
          throw err;
        },
      ),
    ),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  // Parents must be unpacked before children; a later layer can finish first only by waiting.
  for (let i = 0; i < layers.length; i++) if (!unpacked[i]) throw new InvalidImageError(`layer ${i} of ${formatReference(ref)} was not unpacked`);

  const upToDate = !fetched && existing !== undefined && existing.target.digest === target.digest && names.every((n) => ctx.images.allNames()[n] === record.id);
  await ctx.images.put(record, names);
  emit({ type: 'done', reference: formatReference(ref), digest: target.digest, upToDate });
  return { reference: formatReference(ref), digest: target.digest, id: record.id, upToDate };
}

/**
 * Downloads one blob into the content store through a resumable ingest named after its digest;
 * `tee` (optional) receives every byte too, from offset 0, for unpacking while downloading.
 */
async function download(
  ctx: ImageContext,
  source: RegistrySource,
  ref: Reference,
  layer: ImageLayerRecord,
  onBytes: (current: number) => void,
  tee: PassThrough | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const desc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
  let writer;
  try {
    // Another pull of the same blob (in this process or another) holds the ingest: wait for it
    // to commit, or for the lock to free up (it failed or died), rather than fetching twice.
    for (;;) {
      try {
        writer = await ctx.content.writer({ ref: `pull-${layer.digest}`, expected: { digest: layer.digest, size: layer.size } });
        break;
      } catch (err) {
        if (!(err instanceof IngestLockedError)) throw err;
        if (signal?.aborted) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    if (err instanceof ContentExistsError) {
      if (tee) {
        for await (const c of chunksOf(await ctx.content.reader(layer.digest))) await feed(tee, c);
        if (!tee.destroyed) tee.end();
      }
      return;
    }
    throw err;
  }
  let writing: Promise<void> = Promise.resolve();
  try {
    let offset = writer.status().offset;
    if (offset > 0 && tee) {
      // Resumed: replay what is on disk to the unpacker first.
      const ingestData = createReadStream(ctx.content.ingestDataPath(writer.ref), { start: 0, end: offset - 1, highWaterMark: 1 << 20 });
      for await (const c of chunksOf(ingestData)) await feed(tee, c);
    }
    if (offset < layer.size) {
      const opts: { offset?: number; signal?: AbortSignal } = {};
      if (offset > 0) opts.offset = offset;
      if (signal) opts.signal = signal;
      const stream = await source.fetchBlob(ref, desc, opts);
      let last = 0;
      // Disk writes in ~1 MiB batches; the unpacker gets every chunk as it arrives.
      let batch: Buffer[] = [];
      let batched = 0;
      for await (const b of chunksOf(stream)) {
        batch.push(b);
        batched += b.length;
        offset += b.length;
        if (tee) await feed(tee, b);
        if (batched >= 1 << 20 || batch.length >= 512) {
          // Write-behind: one batch on its way to disk while the next one arrives.
          await writing;
          writing = writer.write(batch);
          writing.catch(() => undefined);
          batch = [];
          batched = 0;
        }
        if (offset - last >= 256 * 1024 || offset === layer.size) {
          last = offset;
          onBytes(offset);
        }
      }
      await writing;
      if (batched > 0) await writer.write(batch);
    }
    await writer.commit(layer.size, layer.digest);
    if (tee && !tee.destroyed) tee.end();
  } catch (err) {
    await writing.catch(() => undefined);
    await writer.close();
    // Bytes that failed verification must not be resumed from: start that blob over next time.
    const code = (err as { code?: string }).code;
    if (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID' || code === 'SIZE_MISMATCH') {
      await ctx.content.abortIngest(`pull-${layer.digest}`).catch(() => undefined);
    }
    throw err;
  }
}

/** Writes to the unpacker's stream with backpressure; a destroyed stream (failed unpack) is skipped. */
async function feed(tee: PassThrough, chunk: Buffer): Promise<void> {
  if (tee.destroyed) return;
  if (tee.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      tee.off('drain', done);
      tee.off('close', done);
      resolve();
    };
    tee.on('drain', done);
    tee.on('close', done);
  });
}
