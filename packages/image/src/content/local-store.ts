import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, chmod, lstat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import {
  ContentExistsError,
  ContentNotFoundError,
  ContentVerificationError,
  ImageError,
  IngestLockedError,
} from '../errors.js';
import type { ContentInfo, ContentStore, ContentWriter, Digest, IngestStatus, WriterOptions } from './types.js';

const DIGEST_RE = /^(sha256):([a-f0-9]{64})$/;

/** Splits a digest into the parts that name its file; refuses anything else (no path games). */
export function digestParts(digest: Digest): { algorithm: 'sha256'; encoded: string } {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new ImageError('DIGEST_INVALID', 'invalid', `invalid or unsupported digest: ${JSON.stringify(digest)}`);
  return { algorithm: 'sha256', encoded: m[2] as string };
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'ENOENT';
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface IngestMeta {
  ref: string;
  total: number;
  expected?: Digest;
  startedAt: string;
  pid: number;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * containerd's content store on a local filesystem:
 *   <root>/blobs/sha256/<hex>       committed, mode 0444, never rewritten
 *   <root>/ingest/<sha256(ref)>/    data + meta.json of one resumable write
 * Ingests are locked per ref inside this process and, across processes, by the pid recorded in
 * meta.json (a dead pid — e.g. after kill -9 — frees the lock so the next writer resumes).
 */
export class LocalContentStore implements ContentStore {
  readonly root: string;
  private readonly active = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  static async open(root: string): Promise<LocalContentStore> {
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
    await mkdir(join(root, 'ingest'), { recursive: true, mode: 0o700 });
    return new LocalContentStore(root);
  }

  path(digest: Digest): string {
    const { algorithm, encoded } = digestParts(digest);
    return join(this.root, 'blobs', algorithm, encoded);
  }

  async info(digest: Digest): Promise<ContentInfo> {
    try {
      const st = await stat(this.path(digest));
      return { digest, size: st.size, createdAt: st.mtime };
    } catch (err) {
      if (isNotFound(err)) throw new ContentNotFoundError(digest, { cause: err });
      throw err;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async reader(digest: Digest, range?: { start?: number; end?: number }): Promise<Readable> {
    const path = this.path(digest);
    const fh = await open(path, 'r').catch((err: unknown) => {
      throw isNotFound(err) ? new ContentNotFoundError(digest, { cause: err }) : err;
    });
    const opts: { start?: number; end?: number; highWaterMark: number } = { highWaterMark: 1 << 20 };
    if (range?.start !== undefined) opts.start = range.start;
    if (range?.end !== undefined) opts.end = range.end - 1;
    return fh.createReadStream(opts);
  }

  async readBytes(digest: Digest, maxBytes = 4 * 1024 * 1024): Promise<Uint8Array> {
    const info = await this.info(digest);
    if (info.size > maxBytes) {
      throw new ImageError('CONTENT_TOO_LARGE', 'invalid', `content ${digest} is ${info.size} bytes, more than ${maxBytes}`);
    }
    return readFile(this.path(digest));
  }

  async walk(fn: (info: ContentInfo) => void | Promise<void>): Promise<void> {
    const dir = join(this.root, 'blobs', 'sha256');
    for (const name of (await readdir(dir)).sort()) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (!st) continue;
      await fn({ digest: `sha256:${name}`, size: st.size, createdAt: st.mtime });
    }
  }

  async delete(digest: Digest): Promise<void> {
    try {
      await unlink(this.path(digest));
    } catch (err) {
      if (isNotFound(err)) throw new ContentNotFoundError(digest, { cause: err });
      throw err;
    }
  }

  async usage(): Promise<{ blobs: number; size: number; ingestSize: number }> {
    let blobs = 0;
    let size = 0;
    const dir = join(this.root, 'blobs', 'sha256');
    for (const name of await readdir(dir)) {
      const st = await lstat(join(dir, name)).catch(() => undefined);
      if (!st) continue;
      blobs++;
      size += st.blocks * 512;
    }
    let ingestSize = 0;
    for (const s of await this.listIngests()) ingestSize += s.offset;
    return { blobs, size, ingestSize };
  }

  /** Path of an ingest's partial data (read-only use: replaying a resumed download). */
  ingestDataPath(ref: string): string {
    return join(this.ingestDir(ref), 'data');
  }

  private ingestDir(ref: string): string {
    return join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  async listIngests(): Promise<IngestStatus[]> {
    const out: IngestStatus[] = [];
    for (const name of await readdir(join(this.root, 'ingest'))) {
      const s = await this.readIngest(join(this.root, 'ingest', name)).catch(() => undefined);
      if (s) out.push(s.status);
    }
    return out;
  }

  private async readIngest(dir: string): Promise<{ meta: IngestMeta; status: IngestStatus }> {
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as IngestMeta;
    const st = await stat(join(dir, 'data'));
    const status: IngestStatus = {
      ref: meta.ref,
      offset: st.size,
      total: meta.total,
      startedAt: new Date(meta.startedAt),
      updatedAt: st.mtime,
    };
    if (meta.expected) status.expected = meta.expected;
    return { meta, status };
  }

  async abortIngest(ref: string): Promise<void> {
    if (this.active.has(ref)) throw new IngestLockedError(ref);
    await rm(this.ingestDir(ref), { recursive: true, force: true });
  }

  async writer(options: WriterOptions): Promise<ContentWriter> {
    const { ref, expected } = options;
    if (expected && (await this.has(expected.digest))) throw new ContentExistsError(expected.digest);
    if (this.active.has(ref)) throw new IngestLockedError(ref);
    this.active.add(ref);
    try {
      // Committed by the writer that held the lock until a moment ago?
      if (expected && (await this.has(expected.digest))) throw new ContentExistsError(expected.digest);
      const dir = this.ingestDir(ref);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      let meta: IngestMeta | undefined;
      try {
        meta = (await this.readIngest(dir)).meta;
      } catch {
        meta = undefined;
      }
      if (meta && meta.pid !== process.pid && processAlive(meta.pid)) throw new IngestLockedError(ref);
      // A resumed ingest whose expectation changed cannot be trusted: start over.
      if (meta && expected && meta.expected && meta.expected !== expected.digest) meta = undefined;
      const now = new Date();
      const fresh: IngestMeta = {
        ref,
        total: expected?.size ?? meta?.total ?? 0,
        startedAt: meta?.startedAt ?? now.toISOString(),
        pid: process.pid,
      };
      const exp = expected?.digest ?? meta?.expected;
      if (exp) fresh.expected = exp;
      await writeFile(join(dir, 'meta.json'), JSON.stringify(fresh));
      const fh = await open(join(dir, 'data'), meta ? 'r+' : 'w+', 0o600);
      let existing = meta ? (await fh.stat()).size : 0;
      if (fresh.total > 0 && existing > fresh.total) existing = 0;
      let released = false;
      // Idempotent: a late close() after commit must not free a lock a new writer now holds.
      const release = (): void => {
        if (released) return;
        released = true;
        this.active.delete(ref);
      };
      const w = new LocalContentWriter(this, dir, fh, createHash('sha256'), 0, fresh, release);
      // Rebuild the digest state from the bytes already on disk (a hash state cannot be saved).
      await w.rehash(existing);
      return w;
    } catch (err) {
      this.active.delete(ref);
      throw err;
    }
  }

  /** @internal called by a writer on commit */
  async commitIngest(dir: string, digest: Digest): Promise<'committed' | 'existed'> {
    const target = this.path(digest);
    if (await this.has(digest)) {
      await rm(dir, { recursive: true, force: true });
      return 'existed';
    }
    const data = join(dir, 'data');
    await chmod(data, 0o444);
    await rename(data, target);
    await fsyncDir(join(this.root, 'blobs', 'sha256'));
    await rm(dir, { recursive: true, force: true });
    return 'committed';
  }
}

/** Bytes written between background flushes to disk (see LocalContentWriter.write). */
const FLUSH_EVERY = 16 << 20;

class LocalContentWriter implements ContentWriter {
  readonly ref: string;
  private closed = false;
  private unflushed = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: LocalContentStore,
    private readonly dir: string,
    private readonly fh: FileHandle,
    private hash: Hash,
    private offset: number,
    private readonly meta: IngestMeta,
    private readonly release: () => void,
  ) {
    this.ref = meta.ref;
  }

  status(): IngestStatus {
    const s: IngestStatus = {
      ref: this.ref,
      offset: this.offset,
      total: this.meta.total,
      startedAt: new Date(this.meta.startedAt),
      updatedAt: new Date(),
    };
    if (this.meta.expected) s.expected = this.meta.expected;
    return s;
  }

  digest(): Digest {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }

  async write(data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    if (this.closed) throw new ImageError('INGEST_CLOSED', 'internal', `ingest ${this.ref}: write after close`);
    const chunks: readonly Uint8Array[] = data instanceof Uint8Array ? [data] : data;
    let length = 0;
    for (const c of chunks) length += c.length;
    let done = 0;
    if (chunks.length > 1) done = (await this.fh.writev(chunks as Uint8Array[], this.offset)).bytesWritten;
    // Whatever a short (or single) write left, piece by piece.
    let skip = done;
    for (const chunk of chunks) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      let at = skip;
      skip = 0;
      while (at < chunk.length) {
        const { bytesWritten } = await this.fh.write(chunk, at, chunk.length - at, this.offset + done);
        at += bytesWritten;
        done += bytesWritten;
      }
    }
    for (const chunk of chunks) this.hash.update(chunk);
    this.offset += length;
    // Write-back while the download goes on, so the fsync on commit finds little left to do
    // (it is on the critical path of a pull; a whole blob's worth of dirty pages is not).
    this.unflushed += length;
    if (this.unflushed >= FLUSH_EVERY && this.flushing === undefined) {
      this.unflushed = 0;
      this.flushing = this.fh.datasync().then(
        () => {
          this.flushing = undefined;
        },
        () => {
          this.flushing = undefined;
        },
      );
    }
    if (this.meta.total > 0 && this.offset > this.meta.total) {
      throw new ContentVerificationError(`ingest ${this.ref}: ${this.offset} bytes written, more than the expected ${this.meta.total}`);
    }
  }

  stream(): Writable {
    return new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        this.write(chunk).then(() => cb(), cb);
      },
      writev: (chunks, cb) => {
        this.write(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
      },
    });
  }

  async truncate(offset: number): Promise<void> {
    if (offset > this.offset) throw new ImageError('INGEST_TRUNCATE', 'invalid', `ingest ${this.ref}: cannot truncate to ${offset}, only ${this.offset} bytes written`);
    await this.rehash(offset);
  }

  /** @internal Truncates the data file to `offset` and recomputes the digest of what remains. */
  async rehash(offset: number): Promise<void> {
    await this.fh.truncate(offset);
    this.hash = createHash('sha256');
    let read = 0;
    const buf = Buffer.allocUnsafe(1 << 20);
    while (read < offset) {
      const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, offset - read), read);
      if (bytesRead === 0) break;
      this.hash.update(buf.subarray(0, bytesRead));
      read += bytesRead;
    }
    this.offset = offset;
  }

  async commit(size?: number, expected?: Digest): Promise<ContentInfo> {
    const wantSize = size ?? (this.meta.total > 0 ? this.meta.total : undefined);
    const wantDigest = expected ?? this.meta.expected;
    const actual = this.digest();
    try {
      if (wantSize !== undefined && wantSize !== this.offset) {
        throw new ContentVerificationError(`ingest ${this.ref}: size mismatch, expected ${wantSize} bytes, got ${this.offset}`);
      }
      if (wantDigest !== undefined && wantDigest !== actual) {
        throw new ContentVerificationError(`ingest ${this.ref}: digest mismatch, expected ${wantDigest}, got ${actual}`);
      }
    } catch (err) {
      await this.close();
      await rm(this.dir, { recursive: true, force: true });
      throw err;
    }
    await this.flushing;
    await this.fh.sync();
    // Keep the ref locked until the data is renamed and the ingest removed, so a waiting
    // writer for the same ref never sees a half-removed ingest.
    try {
      await this.closeHandle();
      await this.store.commitIngest(this.dir, actual);
    } finally {
      this.release();
    }
    return this.store.info(actual);
  }

  private async closeHandle(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    await this.fh.close();
  }

  async close(): Promise<void> {
    try {
      await this.closeHandle();
    } finally {
      this.release();
    }
  }
}

/** Opens (creating) the content store under `<root>` — e.g. `<dataRoot>/content`. */
export function openContentStore(root: string): Promise<LocalContentStore> {
  return LocalContentStore.open(root);
}

/**
 * Writes a whole stream as one blob: resumes an existing ingest for `ref` only if the caller
 * asks (`resume`), verifies against `expected` and commits. Returns the committed info; if the
 * blob already exists the stream is not consumed.
 */
export async function writeBlob(
  store: ContentStore,
  source: Readable | Uint8Array,
  options: { ref?: string; expected?: { digest: Digest; size?: number } } = {},
): Promise<ContentInfo> {
  if (options.expected && (await store.has(options.expected.digest))) {
    if (!(source instanceof Uint8Array)) source.destroy();
    return store.info(options.expected.digest);
  }
  const ref = options.ref ?? `write-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const w = await store.writer(options.expected ? { ref, expected: options.expected } : { ref });
  try {
    if (w.status().offset > 0) await w.truncate(0);
    if (source instanceof Uint8Array) {
      await w.write(source);
    } else {
      for await (const chunk of source) await w.write(chunk as Buffer);
    }
    return await w.commit();
  } catch (err) {
    await w.close();
    await store.abortIngest(ref).catch(() => undefined);
    throw err;
  }
}
