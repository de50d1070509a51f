import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
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
import type { LentChunks } from '../layer/decompress.js';
import { ChunkChannel } from './chunk-channel.js';
import { ContentExistsError, ContentVerificationError, IngestLockedError, InvalidImageError } from '../errors.js';
import type { PullProgress, PullResult } from '../service/types.js';
import type { ImageContext } from '../store/context.js';
import { hasSnapshot, parseIndex, recordOf, unpackLayer } from '../store/context.js';
import type { ImageLayerRecord } from '../store/image-store.js';

/**
 * The part of @berth/registry's RegistryClient a pull needs. `fetchBlob` with an offset returns
 * the raw bytes from that offset; the content store verifies the whole blob on commit.
 */
export interface RegistrySource {
  getManifest(ref: Reference | string, opts?: { signal?: AbortSignal }): Promise<{ descriptor: Descriptor; bytes: Uint8Array; manifest: unknown }>;
  /** `verify: false` asks for a size check only: the content store hashes what it ingests. */
  fetchBlob(ref: Reference | string, desc: Descriptor, opts?: { offset?: number; signal?: AbortSignal; verify?: boolean }): Promise<Readable>;
  /**
   * Optional, preferred for layers: the same bytes as chunks lent by the source (valid until
   * handed back with `release`) — @berth/registry's `fetchBlobChunks`.
   */
  fetchBlobChunks?(ref: Reference | string, desc: Descriptor, opts?: { offset?: number; signal?: AbortSignal; verify?: boolean }): Promise<LentChunks>;
}

export interface PullImageOptions {
  platform?: string | Platform;
  concurrency?: number;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
}

const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);
const sha256Digest = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

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

  // Manifests and the config are verified in memory and used from there; their commits to the
  // content store (an fsync each) run beside the layer downloads and are awaited before the
  // image is listed.
  const commits: Promise<unknown>[] = [];
  const storeBlob = (bytes: Uint8Array, digest: string): void => {
    const p = writeBlob(ctx.content, bytes, { expected: { digest, size: bytes.byteLength } });
    p.catch(() => undefined);
    commits.push(p);
  };
  try {
    return await pullWith(ctx, source, ref, want, emit, storeBlob, commits, signal, options.concurrency ?? 4);
  } catch (err) {
    // Nothing left running behind a failed pull.
    await Promise.allSettled(commits);
    throw err;
  }
}

async function pullWith(
  ctx: ImageContext,
  source: RegistrySource,
  ref: Reference,
  want: Platform,
  emit: (event: PullProgress) => void,
  storeBlob: (bytes: Uint8Array, digest: string) => void,
  commits: Promise<unknown>[],
  signal: AbortSignal | undefined,
  concurrency: number,
): Promise<PullResult> {
  const top = await source.getManifest(ref, signal ? { signal } : {});
  const target: Descriptor = { mediaType: top.descriptor.mediaType, digest: top.descriptor.digest, size: top.descriptor.size };
  emit({ type: 'resolved', reference: formatReference(ref), digest: target.digest });
  storeBlob(top.bytes, target.digest);

  let manifestDesc = target;
  let manifestBytes = top.bytes;
  if (isIndexMediaType(target.mediaType)) {
    const index = parseIndex(top.bytes, target.mediaType, formatReference(ref));
    const chosen = selectManifest(index, want);
    if (!chosen) throw new InvalidImageError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries of ${formatReference(ref)}`);
    const m = await source.getManifest(withDigest({ domain: ref.domain, path: ref.path }, chosen.digest), signal ? { signal } : {});
    manifestDesc = { mediaType: m.descriptor.mediaType, digest: m.descriptor.digest, size: m.descriptor.size };
    if (manifestDesc.digest !== chosen.digest) throw new InvalidImageError(`registry answered ${manifestDesc.digest} for ${chosen.digest}`);
    storeBlob(m.bytes, manifestDesc.digest);
    manifestBytes = m.bytes;
  }

  // Config (small): fetched whole and verified (digest and size) by the registry client.
  const configDesc = (JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as { config?: Descriptor }).config;
  if (!configDesc) throw new InvalidImageError(`${formatReference(ref)}: manifest has no config`);
  if (configDesc.size > 4 * 1024 * 1024) throw new InvalidImageError(`${formatReference(ref)}: config of ${configDesc.size} bytes is larger than 4 MiB`);
  let configBytes: Uint8Array;
  if (await ctx.content.has(configDesc.digest)) configBytes = await ctx.content.readBytes(configDesc.digest);
  else {
    const parts: Buffer[] = [];
    for await (const c of chunksOf(await source.fetchBlob(ref, configDesc, signal ? { signal } : {}))) parts.push(c);
    configBytes = Buffer.concat(parts);
    if (configBytes.byteLength !== configDesc.size || sha256Digest(configBytes) !== configDesc.digest) {
      throw new ContentVerificationError(`config ${configDesc.digest} of ${formatReference(ref)}: the registry sent other bytes`);
    }
    storeBlob(configBytes, configDesc.digest);
  }
  const { record } = recordOf(target, manifestDesc, manifestBytes, configBytes, formatReference(ref));
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
  const sem = new Semaphore(concurrency);

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
        const teeInto = parentReady ? new ChunkChannel() : undefined;
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
  await Promise.all(commits);
  await ctx.images.put(record, names);
  emit({ type: 'done', reference: formatReference(ref), digest: target.digest, upToDate });
  return { reference: formatReference(ref), digest: target.digest, id: record.id, upToDate };
}

/**
 * Downloads one blob into the content store through a resumable ingest named after its digest;
 * `tee` (optional) receives every byte too, from offset 0, for unpacking while downloading.
 * With a source that lends its chunks (`fetchBlobChunks`), a chunk goes to the ingest (hashed
 * once, there: nothing unverified is committed) and to the unpacker as it is, and is handed
 * back to the source once both are done with it — no copy, no fresh memory per chunk.
 */
async function download(
  ctx: ImageContext,
  source: RegistrySource,
  ref: Reference,
  layer: ImageLayerRecord,
  onBytes: (current: number) => void,
  tee: ChunkChannel | undefined,
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
        tee.end();
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
      // One hash of the compressed bytes: the ingest's, checked on commit (nothing unverified is committed).
      const opts: { offset?: number; signal?: AbortSignal; verify?: boolean } = { verify: false };
      if (offset > 0) opts.offset = offset;
      if (signal) opts.signal = signal;
      let chunks: AsyncIterable<Buffer>;
      let giveBack: (chunk: Buffer) => void = () => undefined;
      if (source.fetchBlobChunks) {
        const lent = await source.fetchBlobChunks(ref, desc, opts);
        chunks = lent;
        giveBack = (chunk) => lent.release(chunk);
      } else chunks = chunksOf(await source.fetchBlob(ref, desc, opts));
      let last = 0;
      // Disk writes in ~1 MiB batches (write-behind: one on its way to disk while the next
      // one arrives); the unpacker gets every chunk as it arrives.
      let batch: Buffer[] = [];
      let batchDone: (() => void)[] = [];
      let batched = 0;
      const flush = async (): Promise<void> => {
        await writing;
        const pieces = batch;
        const done = batchDone;
        batch = [];
        batchDone = [];
        batched = 0;
        writing = writer.write(pieces).then(() => {
          for (const d of done) d();
        });
        writing.catch(() => undefined);
      };
      for await (const b of chunks) {
        let holders = tee && !tee.destroyed ? 2 : 1;
        const done = (): void => {
          if (--holders === 0) giveBack(b);
        };
        batch.push(b);
        batchDone.push(done);
        batched += b.length;
        offset += b.length;
        if (tee && holders === 2) {
          tee.push(b, done);
          await tee.waitForRoom();
        }
        if (batched >= 1 << 20 || batch.length >= 512) await flush();
        if (offset - last >= 256 * 1024 || offset === layer.size) {
          last = offset;
          onBytes(offset);
        }
      }
      if (batched > 0) await flush();
      await writing;
    }
    await writer.commit(layer.size, layer.digest);
    tee?.end();
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

/** Hands the unpacker a chunk this pull owns (read from disk), with backpressure. */
async function feed(tee: ChunkChannel, chunk: Buffer): Promise<void> {
  tee.push(chunk, () => undefined);
  await tee.waitForRoom();
}
