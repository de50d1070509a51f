import type { Readable, Writable } from 'node:stream';

/** "sha256:<64 hex>" — the algorithm-prefixed hash of the bytes as stored. */
export type Digest = string;

/** What the store knows about one committed blob. */
export interface ContentInfo {
  digest: Digest;
  size: number;
  /** When the blob was committed (mtime of the blob file). */
  createdAt: Date;
}

/** The state of one in-progress write (an "ingest"), as it survives on disk. */
export interface IngestStatus {
  /** Caller-chosen name of the write, e.g. `pull-sha256:abc…`; one writer per ref at a time. */
  ref: string;
  /** Bytes written so far — a resumed writer continues from here. */
  offset: number;
  /** Expected total size, when known (0 = unknown). */
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

/**
 * Read role. Committed blobs never change; reading a digest that is not committed throws
 * `ContentNotFoundError`.
 */
export interface ContentProvider {
  info(digest: Digest): Promise<ContentInfo>;
  has(digest: Digest): Promise<boolean>;
  /** Streams the blob, optionally a byte range [start, end). */
  reader(digest: Digest, range?: { start?: number; end?: number }): Promise<Readable>;
  /** Whole blob in memory — for manifests and configs only (bounded by `maxBytes`, default 4 MiB). */
  readBytes(digest: Digest, maxBytes?: number): Promise<Uint8Array>;
  /** Filesystem path of a committed blob (read-only), for callers that hand it to other tools. */
  path(digest: Digest): string;
}

/**
 * One resumable write. Bytes are appended at `status().offset`; `commit` checks size and digest,
 * fsyncs, and renames the data into place atomically. A writer that is dropped without commit
 * or abort leaves its ingest on disk so the next `writer(ref)` resumes it (also after a crash).
 */
export interface ContentWriter {
  readonly ref: string;
  status(): IngestStatus;
  /** Digest of the bytes written so far. */
  digest(): Digest;
  /** Appends bytes; an array is written in order with one vectored write (no joining copy). */
  write(chunk: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** A Writable over `write` (for `stream.pipeline`); ends without committing. */
  stream(): Writable;
  /**
   * Verifies and commits. `size`/`expected` default to what the writer was opened with.
   * Throws `ContentVerificationError` (and discards the ingest) when the bytes do not match;
   * returns normally if the same blob is already committed (the ingest is removed).
   */
  commit(size?: number, expected?: Digest): Promise<ContentInfo>;
  /** Drops any bytes past `offset` — e.g. to restart a download from an offset the server honours. */
  truncate(offset: number): Promise<void>;
  /** Releases the file handle and the lock; the ingest stays on disk for a later resume. */
  close(): Promise<void>;
}

export interface WriterOptions {
  ref: string;
  /** Expected blob; when given and already committed, `writer` throws `ContentExistsError`. */
  expected?: { digest: Digest; size?: number };
}

/** Write role. */
export interface ContentIngester {
  writer(options: WriterOptions): Promise<ContentWriter>;
}

/** Manage role: enumerate, delete, account. */
export interface ContentManager {
  info(digest: Digest): Promise<ContentInfo>;
  walk(fn: (info: ContentInfo) => void | Promise<void>): Promise<void>;
  delete(digest: Digest): Promise<void>;
  /** Bytes on disk used by committed blobs (allocated blocks, as `du` counts them). */
  usage(): Promise<{ blobs: number; size: number; ingestSize: number }>;
  listIngests(): Promise<IngestStatus[]>;
  abortIngest(ref: string): Promise<void>;
}

/** The three roles together — what `openContentStore` returns. */
export interface ContentStore extends ContentProvider, ContentIngester, ContentManager {
  readonly root: string;
}
