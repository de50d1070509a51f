import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '@berth/oci-spec';
import {
  BlobUnknownError,
  BlobUploadUnknownError,
  DigestInvalidError,
  RangeInvalidError,
  SizeInvalidError,
} from '../../errors.js';
import type {
  BlobInfo,
  ByteRange,
  ManifestLink,
  ReferrerRecord,
  StorageDriver,
  UploadInfo,
} from './driver.js';

export interface FilesystemDriverOptions {
  /**
   * fsync files before renaming them into place (default true), so that a committed blob or
   * link survives a power loss, not only a process crash. `false` trades that for push
   * throughput on slow disks — what Docker's reference registry does — while renames keep
   * every commit atomic.
   */
  fsync?: boolean;
}

const UPLOAD_ID_RE = /^[a-zA-Z0-9-]{8,64}$/;
const READ_HIGH_WATER_MARK = 1024 * 1024;
/**
 * While upload bytes stream in, the sink starts an fdatasync each time this many bytes have been
 * written since the last one, so the disk writes back during the transfer and the fsync at commit
 * only has the tail left (the durability rule is unchanged: commit still fsyncs before renaming).
 */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

/**
 * Layout under `root`:
 * ```
 * blobs/<alg>/<first two hex>/<hex>                       shared, content-addressed, never rewritten
 * uploads/<id>/data, uploads/<id>/info.json               append-only upload sessions
 * repositories/<name>/_layers/<alg>/<hex>                 blob links (empty files)
 * repositories/<name>/_manifests/revisions/<alg>/<hex>    manifest links ({"mediaType"})
 * repositories/<name>/_manifests/tags/<tag>               tag → digest
 * repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  subject → referrer descriptor
 * tmp/                                                    temp files, renamed into place
 * ```
 * Every file other readers see is written to `tmp/`, fsynced and renamed, so it appears whole.
 * Upload data is appended in place (its size on disk is the resume point after a crash); an
 * upload session's files are not fsynced until the commit (a session outlives the process, not a
 * power cut).
 */
export class FilesystemDriver implements StorageDriver {
  readonly root: string;
  /**
   * Running hashes of uploads, valid while `size` equals the bytes hashed. Lost on restart, in which
   * case `commitUpload` rehashes the file from disk.
   */
  private readonly hashes = new Map<string, { hash: Hash; size: number }>();
  /** Serialises appends/commits per upload. */
  private readonly uploadLocks = new Map<string, Promise<unknown>>();
  /**
   * The fdatasync each append starts on its way out, by upload: `size` is the upload's size it
   * covers. Lost on restart, in which case the commit fsyncs the file itself.
   */
  private readonly flushes = new Map<string, { size: number; flushed: Promise<void> }>();
  /** `info.json` of uploads seen by this process (it never changes once written). */
  private readonly uploadInfo = new Map<string, { repository: string; startedAt: number }>();

  /** Whether commits fsync before renaming (see FilesystemDriverOptions.fsync). */
  readonly fsync: boolean;

  constructor(root: string, options: FilesystemDriverOptions = {}) {
    this.root = path.resolve(root);
    this.fsync = options.fsync ?? true;
  }

  async init(): Promise<void> {
    for (const dir of ['blobs', 'uploads', 'repositories', 'tmp']) {
      await fs.mkdir(path.join(this.root, dir), { recursive: true, mode: 0o700 });
    }
    // Temp files are only ever half-written leftovers of a crash.
    for (const name of await fs.readdir(path.join(this.root, 'tmp'))) {
      await fs.rm(path.join(this.root, 'tmp', name), { force: true, recursive: true });
    }
  }

  // ---- paths -----------------------------------------------------------------------------

  private blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigestOrThrow(digest);
    return path.join(this.root, 'blobs', algorithm, encoded.slice(0, 2), encoded);
  }

  private uploadDir(id: string): string {
    if (!UPLOAD_ID_RE.test(id)) throw new BlobUploadUnknownError(`blob upload unknown: ${id}`);
    return path.join(this.root, 'uploads', id);
  }

  private repoDir(repository: string): string {
    // Names are validated by the HTTP layer; this guards the filesystem regardless.
    if (repository.split('/').some((c) => c === '' || c === '.' || c === '..' || c.startsWith('_'))) {
      throw new Error(`invalid repository name for storage: ${repository}`);
    }
    return path.join(this.root, 'repositories', ...repository.split('/'));
  }

  private digestPath(base: string, digest: string): string {
    const { algorithm, encoded } = parseDigestOrThrow(digest);
    return path.join(base, algorithm, encoded);
  }

  private async writeAtomic(target: string, data: Uint8Array | string): Promise<void> {
    await this.publishAll([[target, await this.prepareAtomic(data)]]);
  }

  /** Writes `data` to a new temp file and fsyncs it (per the fsync option); returns its path. */
  private async prepareAtomic(data: Uint8Array | string): Promise<string> {
    const tmp = path.join(this.root, 'tmp', randomUUID());
    try {
      const handle = await fs.open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(data);
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
    return tmp;
  }

  /** Renames prepared temp files into place, in order; on failure the rest are removed. */
  private async publishAll(moves: Array<[target: string, tmp: string]>): Promise<void> {
    for (let i = 0; i < moves.length; i++) {
      const [target, tmp] = moves[i]!;
      try {
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.rename(tmp, target);
      } catch (error) {
        for (const [, rest] of moves.slice(i)) await fs.rm(rest, { force: true });
        throw error;
      }
    }
  }

  // ---- blobs -----------------------------------------------------------------------------

  async statBlob(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await fs.stat(this.blobPath(digest));
      return { digest, size: st.size, modifiedAt: st.mtimeMs };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async readBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const file = this.blobPath(digest);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if (isNotFound(error)) throw new BlobUnknownError(`blob unknown: ${digest}`, { cause: error });
      throw error;
    }
    // Opening first means a concurrent delete cannot turn a 200 into a torn body.
    return handle.createReadStream({
      autoClose: true,
      highWaterMark: READ_HIGH_WATER_MARK,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async openBlobFile(digest: string): Promise<fs.FileHandle> {
    try {
      return await fs.open(this.blobPath(digest), 'r');
    } catch (error) {
      if (isNotFound(error)) throw new BlobUnknownError(`blob unknown: ${digest}`, { cause: error });
      throw error;
    }
  }

  async readBlobBytes(digest: string): Promise<Uint8Array | undefined> {
    try {
      return await fs.readFile(this.blobPath(digest));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async putBlob(digest: string, bytes: Uint8Array): Promise<void> {
    const { algorithm } = parseDigestOrThrow(digest);
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (actual !== digest) throw new DigestInvalidError(`digest invalid: expected ${digest}, content is ${actual}`);
    const target = this.blobPath(digest);
    if (await exists(target)) return;
    await this.writeAtomic(target, bytes);
  }

  /**
   * A pushed manifest in one step: its bytes as a blob (hashed like putBlob), its revision link,
   * then the referrer record and the tag when given. The temp files are written and fsynced
   * concurrently (one journal commit to wait for instead of one per file), then renamed into
   * place in that order, so a reader never sees a tag without its link or a link without its blob.
   */
  async putManifest(
    repository: string,
    digest: string,
    bytes: Uint8Array,
    link: ManifestLink,
    extra: { tag?: string; referrer?: { subject: string; record: ReferrerRecord } } = {},
  ): Promise<void> {
    const { algorithm } = parseDigestOrThrow(digest);
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (actual !== digest) throw new DigestInvalidError(`digest invalid: expected ${digest}, content is ${actual}`);
    const pieces: Array<[target: string, data: Uint8Array | string]> = [];
    const blobTarget = this.blobPath(digest);
    if (!(await exists(blobTarget))) pieces.push([blobTarget, bytes]);
    pieces.push([this.manifestLinkPath(repository, digest), JSON.stringify(link)]);
    if (extra.referrer) {
      const { algorithm: a, encoded } = parseDigestOrThrow(extra.referrer.record.digest);
      pieces.push([path.join(this.referrerDir(repository, extra.referrer.subject), `${a}-${encoded}`), JSON.stringify(extra.referrer.record)]);
    }
    if (extra.tag !== undefined) pieces.push([this.tagPath(repository, extra.tag), digest]);
    const prepared = await Promise.allSettled(pieces.map(([, data]) => this.prepareAtomic(data)));
    const failed = prepared.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) {
      for (const p of prepared) if (p.status === 'fulfilled') await fs.rm(p.value, { force: true });
      throw failed.reason;
    }
    await this.publishAll(pieces.map(([target], i) => [target, (prepared[i] as PromiseFulfilledResult<string>).value]));
  }

  async deleteBlob(digest: string): Promise<boolean> {
    try {
      await fs.unlink(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async *listBlobs(): AsyncIterable<BlobInfo> {
    const base = path.join(this.root, 'blobs');
    for (const algorithm of await readdirSorted(base)) {
      for (const prefix of await readdirSorted(path.join(base, algorithm))) {
        for (const encoded of await readdirSorted(path.join(base, algorithm, prefix))) {
          const digest = `${algorithm}:${encoded}`;
          const info = await this.statBlob(digest).catch(() => undefined);
          if (info) yield info;
        }
      }
    }
  }

  // ---- uploads ---------------------------------------------------------------------------

  async createUpload(repository: string): Promise<UploadInfo> {
    const id = randomUUID();
    const dir = this.uploadDir(id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const info: UploadInfo = { id, repository, size: 0, startedAt: Date.now() };
    // Neither file is fsynced, and info.json is written in place (one small write, which a process
    // crash cannot tear): a session only has to outlive the server process. One lost to a power
    // cut reads as unknown, and the client starts that blob again; committed blobs are what the
    // fsync policy protects. (An fsync here was a journal commit on every blob push.)
    await Promise.all([
      fs.writeFile(path.join(dir, 'data'), new Uint8Array(0), { mode: 0o600 }),
      fs.writeFile(path.join(dir, 'info.json'), JSON.stringify({ repository, startedAt: info.startedAt }), { mode: 0o600, flag: 'wx' }),
    ]);
    this.uploadInfo.set(id, { repository, startedAt: info.startedAt });
    this.hashes.set(id, { hash: createHash('sha256'), size: 0 });
    return info;
  }

  async statUpload(id: string): Promise<UploadInfo | undefined> {
    let dir: string;
    try {
      dir = this.uploadDir(id);
    } catch {
      return undefined;
    }
    try {
      let raw = this.uploadInfo.get(id);
      if (!raw) {
        raw = JSON.parse(await fs.readFile(path.join(dir, 'info.json'), 'utf8')) as { repository: string; startedAt: number };
        this.uploadInfo.set(id, raw);
      }
      const st = await fs.stat(path.join(dir, 'data'));
      return { id, repository: raw.repository, size: st.size, startedAt: raw.startedAt };
    } catch (error) {
      // A torn info.json (a power cut right after the session started) is an unknown session.
      if (isNotFound(error) || error instanceof SyntaxError) {
        this.uploadInfo.delete(id);
        return undefined;
      }
      throw error;
    }
  }

  private withUploadLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.uploadLocks.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.uploadLocks.set(id, settled);
    void settled.then(() => {
      if (this.uploadLocks.get(id) === settled) this.uploadLocks.delete(id);
    });
    return next;
  }

  appendUpload(id: string, offset: number, data: Readable): Promise<number> {
    return this.append(id, offset, () => data.resume(), async (handle, running) => {
      const sink = new UploadSink(handle, running, this.fsync ? SYNC_EVERY_BYTES : undefined);
      try {
        await pipeline(data, sink);
      } catch (error) {
        // What arrived stays (the sink writes what it gathered before the handle closes).
        await sink.settle();
        throw error;
      }
    });
  }

  appendUploadChunks(id: string, offset: number, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const discard = (): void => {
      void chunks[Symbol.asyncIterator]().return?.();
    };
    return this.append(id, offset, discard, async (handle, running) => {
      // Each chunk is hashed and written before the next is asked for (the producer reuses its
      // memory); the producer reads the next chunk from the socket while this one is written.
      // Periodic fdatasyncs run one at a time beside the writes; the last one is not waited for
      // here but handed on (an error it reports must reach the commit: see `flushes`).
      let unsynced = 0;
      let syncing: Promise<void> | undefined;
      let lastSync: Promise<void> | undefined;
      let syncError: unknown;
      try {
        for await (const chunk of chunks) {
          // The write (thread pool) and the hash (this thread) both only read the chunk: run
          // them side by side. A failed write drops the running hash anyway.
          const written = writeFully(handle, chunk);
          if (running) {
            running.hash.update(chunk);
            running.size += chunk.length;
          }
          await written;
          if (syncError !== undefined) throw syncError;
          unsynced += chunk.length;
          if (this.fsync && !syncing && unsynced >= SYNC_EVERY_BYTES) {
            unsynced = 0;
            lastSync = handle.datasync();
            syncing = lastSync.then(
              () => {
                syncing = undefined;
              },
              (error: unknown) => {
                syncing = undefined;
                syncError = error;
              },
            );
          }
        }
      } catch (error) {
        while (syncing) await syncing;
        throw error;
      }
      if (syncError !== undefined) throw syncError;
      return lastSync;
    });
  }

  /**
   * The common part of both appends: under the upload's lock, checks the offset (`refuse` drops
   * the body of a refused request), opens the data file for appending and runs `write`. On
   * failure the running hash may be ahead of the file, so it is dropped (commit rehashes).
   */
  private append(
    id: string,
    offset: number,
    refuse: () => void,
    write: (handle: fs.FileHandle, running: { hash: Hash; size: number } | undefined) => Promise<Promise<void> | undefined | void>,
  ): Promise<number> {
    return this.withUploadLock(id, async () => {
      const info = await this.statUpload(id);
      if (!info) {
        refuse();
        throw new BlobUploadUnknownError(`blob upload unknown: ${id}`);
      }
      if (offset !== info.size) {
        refuse();
        throw new RangeInvalidError(`chunk starts at ${offset} but upload ${id} has ${info.size} bytes`, {
          detail: { size: info.size },
        });
      }
      let running = this.hashes.get(id);
      if (running && running.size !== info.size) {
        this.hashes.delete(id);
        running = undefined;
      }
      const file = path.join(this.uploadDir(id), 'data');
      const handle = await fs.open(file, 'a');
      let handedOn = false;
      try {
        const pendingSync = await write(handle, running);
        const { size } = await handle.stat();
        if (this.fsync) {
          // The final flush runs after the response: the client's next request (usually the
          // closing PUT) overlaps with it, and the commit waits for it instead of syncing again.
          // Chained after the previous append's flush, whose error must not be lost either.
          const previous = this.flushes.get(id)?.flushed ?? Promise.resolve();
          const flushed = previous.then(() => pendingSync).then(() => handle.datasync());
          this.flushes.set(id, { size, flushed });
          handedOn = true;
          void flushed.catch(() => undefined).then(() => handle.close().catch(() => undefined));
        }
        return size;
      } catch (error) {
        this.hashes.delete(id);
        throw error;
      } finally {
        if (!handedOn) await handle.close().catch(() => undefined);
      }
    });
  }

  commitUpload(id: string, digest: string, size?: number): Promise<BlobInfo> {
    return this.withUploadLock(id, async () => {
      const info = await this.statUpload(id);
      if (!info) throw new BlobUploadUnknownError(`blob upload unknown: ${id}`);
      const dir = this.uploadDir(id);
      const file = path.join(dir, 'data');
      try {
        const { algorithm } = parseDigestOrThrow(digest);
        if (size !== undefined && size !== info.size) {
          throw new SizeInvalidError(`size invalid: upload has ${info.size} bytes, expected ${size}`);
        }
        const running = this.hashes.get(id);
        let actual: string;
        if (running && running.size === info.size && algorithm === 'sha256') {
          actual = `sha256:${running.hash.copy().digest('hex')}`;
        } else {
          const hash = createHash(algorithm);
          await pipeline(createReadStream(file, { highWaterMark: READ_HIGH_WATER_MARK }), new HashThrough({ hash, size: 0 }), devNull());
          actual = `${algorithm}:${hash.digest('hex')}`;
        }
        if (actual !== digest) {
          throw new DigestInvalidError(`digest invalid: upload ${id} hashes to ${actual}, not ${digest}`);
        }
        const target = this.blobPath(digest);
        const flush = this.flushes.get(id);
        if (!(await exists(target))) {
          // The flush the last append started: its error, if any, fails the commit — a second
          // fsync would not report it again (the kernel reports a writeback error once), so it
          // must not be retried. When it covers every byte, nothing is left to sync.
          if (flush) await flush.flushed;
          if (this.fsync && !(flush && flush.size === info.size)) {
            const handle = await fs.open(file, 'r+');
            try {
              await handle.sync();
            } finally {
              await handle.close();
            }
          }
          await fs.mkdir(path.dirname(target), { recursive: true });
          await fs.rename(file, target);
        } else {
          // Refresh the existing blob's mtime so that GC's grace period covers this push too.
          const now = new Date();
          await fs.utimes(target, now, now).catch(() => undefined);
        }
        const st = await fs.stat(target);
        return { digest, size: st.size, modifiedAt: st.mtimeMs };
      } finally {
        this.hashes.delete(id);
        this.flushes.delete(id);
        await fs.rm(dir, { recursive: true, force: true });
        this.uploadInfo.delete(id);
      }
    });
  }

  async cancelUpload(id: string): Promise<boolean> {
    return this.withUploadLock(id, async () => {
      const info = await this.statUpload(id);
      if (!info) return false;
      this.hashes.delete(id);
      this.flushes.delete(id);
      await fs.rm(this.uploadDir(id), { recursive: true, force: true });
      this.uploadInfo.delete(id);
      return true;
    });
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    for (const id of await readdirSorted(path.join(this.root, 'uploads'))) {
      const info = await this.statUpload(id);
      if (info) yield info;
    }
  }

  // ---- repositories ----------------------------------------------------------------------

  async listRepositories(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
        if (isNotFound(error)) return [];
        throw error;
      });
      let isRepo = false;
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        if (entry.name.startsWith('_')) {
          if (entry.name === '_manifests') isRepo = true;
          continue;
        }
        await walk(path.join(dir, entry.name), [...prefix, entry.name]);
      }
      if (isRepo && prefix.length > 0) found.push(prefix.join('/'));
    };
    await walk(path.join(this.root, 'repositories'), []);
    return found.sort(compareCodePoints);
  }

  async linkBlob(repository: string, digest: string): Promise<void> {
    const target = this.digestPath(path.join(this.repoDir(repository), '_layers'), digest);
    if (await exists(target)) return;
    // A link is an empty file: creating it (O_CREAT|O_EXCL) is already atomic — there is no
    // content to tear — so it needs neither a temp file nor an fsync of data it does not have.
    // Its creation reaches the journal after the blob's rename, as the temp+rename did.
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.writeFile(target, '', { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    return removeFile(this.digestPath(path.join(this.repoDir(repository), '_layers'), digest));
  }

  async isBlobLinked(repository: string, digest: string): Promise<boolean> {
    return exists(this.digestPath(path.join(this.repoDir(repository), '_layers'), digest));
  }

  async listBlobLinks(repository: string): Promise<string[]> {
    return listDigests(path.join(this.repoDir(repository), '_layers'));
  }

  private manifestLinkPath(repository: string, digest: string): string {
    return this.digestPath(path.join(this.repoDir(repository), '_manifests', 'revisions'), digest);
  }

  async linkManifest(repository: string, digest: string, link: ManifestLink): Promise<void> {
    await this.writeAtomic(this.manifestLinkPath(repository, digest), JSON.stringify(link));
  }

  async getManifestLink(repository: string, digest: string): Promise<ManifestLink | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.manifestLinkPath(repository, digest), 'utf8')) as ManifestLink;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async unlinkManifest(repository: string, digest: string): Promise<boolean> {
    return removeFile(this.manifestLinkPath(repository, digest));
  }

  async listManifests(repository: string): Promise<string[]> {
    return listDigests(path.join(this.repoDir(repository), '_manifests', 'revisions'));
  }

  private tagPath(repository: string, tag: string): string {
    if (!/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/.test(tag)) throw new Error(`invalid tag for storage: ${tag}`);
    return path.join(this.repoDir(repository), '_manifests', 'tags', tag);
  }

  async setTag(repository: string, tag: string, digest: string): Promise<void> {
    parseDigestOrThrow(digest);
    await this.writeAtomic(this.tagPath(repository, tag), digest);
  }

  async getTag(repository: string, tag: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(this.tagPath(repository, tag), 'utf8')).trim();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return removeFile(this.tagPath(repository, tag));
  }

  async listTags(repository: string): Promise<string[]> {
    return (await readdirSorted(path.join(this.repoDir(repository), '_manifests', 'tags'))).filter(
      (name) => !name.startsWith('.'),
    );
  }

  private referrerDir(repository: string, subject: string): string {
    return this.digestPath(path.join(this.repoDir(repository), '_referrers'), subject);
  }

  async addReferrer(repository: string, subject: string, referrer: ReferrerRecord): Promise<void> {
    const { algorithm, encoded } = parseDigestOrThrow(referrer.digest);
    await this.writeAtomic(
      path.join(this.referrerDir(repository, subject), `${algorithm}-${encoded}`),
      JSON.stringify(referrer),
    );
  }

  async removeReferrer(repository: string, subject: string, referrerDigest: string): Promise<boolean> {
    const { algorithm, encoded } = parseDigestOrThrow(referrerDigest);
    return removeFile(path.join(this.referrerDir(repository, subject), `${algorithm}-${encoded}`));
  }

  async listReferrers(repository: string, subject: string): Promise<ReferrerRecord[]> {
    const dir = this.referrerDir(repository, subject);
    const out: ReferrerRecord[] = [];
    for (const name of await readdirSorted(dir)) {
      try {
        out.push(JSON.parse(await fs.readFile(path.join(dir, name), 'utf8')) as ReferrerRecord);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return out;
  }
}

function parseDigestOrThrow(digest: string): { algorithm: 'sha256' | 'sha512'; encoded: string } {
  try {
    return parseDigest(digest);
  } catch (error) {
    throw new DigestInvalidError(`digest invalid: ${digest}`, { cause: error });
  }
}

/** Upload bytes are appended in batches of about this many bytes (one writev each). */
const SINK_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Where upload bytes go. Request bodies arrive in small pieces (tens of KiB, one per HTTP chunk,
 * each a fresh buffer the sink may keep); the sink hashes each piece (when a running hash is kept)
 * and collects them, and appends a batch of about 4 MiB with one `writev` while the next batch
 * collects — a few dozen thread-pool round trips for a large layer instead of one per piece, and
 * no copy. At most one write is in flight, so the file grows in order. With `syncEvery`, an
 * fdatasync starts (without holding up the writes) each time that many bytes have been appended
 * since the last one, so writeback overlaps the transfer and the fsync at commit only has the tail
 * left. On `_final`, and via `settle()` after a failure, whatever was collected is written, so the
 * bytes that arrived stay in the file.
 */
class UploadSink extends Writable {
  private batch: Buffer[] = [];
  private batched = 0;
  /** The write in flight. */
  private flushing: Promise<void> = Promise.resolve();
  private error: Error | undefined;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly running: { hash: Hash; size: number } | undefined,
    private readonly syncEvery: number | undefined,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.error) return callback(this.error);
    if (this.running) {
      this.running.hash.update(chunk);
      this.running.size += chunk.length;
    }
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched < SINK_BATCH_BYTES) return callback();
    // A full batch: start it once the previous write has completed.
    this.flushing.then(() => {
      this.flush();
      callback(this.error ?? null);
    }, callback);
  }

  /** Starts appending the collected batch (the previous write has completed). */
  private flush(): void {
    if (this.batched === 0) return;
    const buffers = this.batch;
    const length = this.batched;
    this.batch = [];
    this.batched = 0;
    this.flushing = this.writeAll(buffers, length).then(
      () => this.maybeSync(length),
      (error: Error) => {
        this.error ??= error;
      },
    );
  }

  private async writeAll(buffers: Buffer[], length: number): Promise<void> {
    const { bytesWritten } = await this.handle.writev(buffers);
    if (bytesWritten === length) return;
    // A short writev (rare): write the rest piece by piece.
    let skip = bytesWritten;
    for (const buffer of buffers) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      let done = skip;
      skip = 0;
      while (done < buffer.length) {
        const { bytesWritten: n } = await this.handle.write(buffer, done, buffer.length - done);
        if (n === 0) throw new Error(`short write appending ${length} bytes`);
        done += n;
      }
    }
  }

  private maybeSync(written: number): void {
    if (this.syncEvery === undefined) return;
    this.unsynced += written;
    if (this.syncing || this.unsynced < this.syncEvery) return;
    this.unsynced = 0;
    this.syncing = this.handle.datasync().then(
      () => {
        this.syncing = undefined;
      },
      (error: Error) => {
        this.syncing = undefined;
        this.error ??= error;
      },
    );
  }

  private drained: Promise<void> | undefined;

  /** Writes what is collected, waits for the write and the sync in flight. */
  private drainAll(): Promise<void> {
    this.drained ??= (async () => {
      // A pending _write may start one more write when the current one completes; wait it out.
      for (let f = this.flushing; ; f = this.flushing) {
        await f;
        if (f === this.flushing) break;
      }
      this.flush();
      await this.flushing;
      while (this.syncing) await this.syncing;
    })();
    return this.drained;
  }

  /** Resolves once everything collected has been written (after a failure too). */
  settle(): Promise<void> {
    return this.drainAll().catch(() => undefined);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.drainAll().then(() => callback(this.error ?? null), callback);
  }
}

/** Writes all of `bytes` at the file's end (appending handle), looping over short writes. */
async function writeFully(handle: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    if (bytesWritten === 0) throw new Error(`short write appending ${bytes.length} bytes`);
    done += bytesWritten;
  }
}

class HashThrough extends Transform {
  constructor(private readonly state: { hash: Hash; size: number }) {
    super({ highWaterMark: READ_HIGH_WATER_MARK });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.state.hash.update(chunk);
    this.state.size += chunk.length;
    callback(null, chunk);
  }
}

function devNull(): Writable {
  return new Writable({
    highWaterMark: READ_HIGH_WATER_MARK,
    write(_chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
      callback();
    },
  });
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'ENOENT';
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function removeFile(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

async function readdirSorted(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort(compareCodePoints);
  } catch (error) {
    if (isNotFound(error) || (error as { code?: string }).code === 'ENOTDIR') return [];
    throw error;
  }
}

async function listDigests(base: string): Promise<string[]> {
  const out: string[] = [];
  for (const algorithm of await readdirSorted(base)) {
    for (const encoded of await readdirSorted(path.join(base, algorithm))) out.push(`${algorithm}:${encoded}`);
  }
  return out;
}

export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
