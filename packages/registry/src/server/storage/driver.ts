import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/**
 * The storage a registry server keeps its state in. Three kinds of thing live here:
 *
 * - **blobs**: immutable, content-addressed byte strings shared by every repository (layers,
 *   configs and manifests alike). A blob only ever appears through `commitUpload` or `putBlob`,
 *   both of which hash the bytes themselves and refuse a digest that does not match; a committed
 *   blob is never rewritten.
 * - **uploads**: an upload session is an append-only byte string with an id. It survives a restart
 *   of the server (the driver persists it), so a client can ask for its size and resume it.
 * - **repository metadata**: per-repository links to shared blobs, manifest revisions (with the
 *   media type the manifest was pushed with), tags, and the referrers index (subject digest →
 *   descriptors of manifests whose `subject` names it).
 *
 * Contracts every implementation keeps (the shared suite in `driver-suite.ts` checks them):
 * - writes other readers see are atomic: a reader sees the old state or the new, never a torn one;
 * - `appendUpload` refuses an offset that is not the upload's current size (`UploadOffsetError`);
 * - `commitUpload` with a wrong digest or size throws and stores nothing (the upload is removed);
 * - listing methods return names sorted in lexical (code point) order;
 * - methods about a thing that does not exist return `undefined`/`false`/`[]` rather than throw,
 *   except where noted.
 */
export interface StorageDriver {
  /** Creates what the driver needs (directories, buckets). Idempotent. */
  init(): Promise<void>;

  // ---- blobs -----------------------------------------------------------------------------
  statBlob(digest: string): Promise<BlobInfo | undefined>;
  /** Streams a blob, or the inclusive byte range [start, end] of it. Throws when it is absent. */
  readBlob(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * Optional fast path for serving a blob: an open, read-only handle on its bytes, which the
   * caller reads at explicit positions and closes. Servers use it instead of `readBlob` when
   * present (fewer copies and allocations than a stream). Throws like `readBlob` when absent.
   */
  openBlobFile?(digest: string): Promise<FileHandle>;
  /** Reads a small blob (a manifest) whole; undefined when absent. */
  readBlobBytes(digest: string): Promise<Uint8Array | undefined>;
  /** Stores small bytes (a manifest) under their digest after hashing them; idempotent. */
  putBlob(digest: string, bytes: Uint8Array): Promise<void>;
  /**
   * Optional: stores a pushed manifest in one step — `putBlob(digest, bytes)`, then
   * `linkManifest`, then (when given) `addReferrer` and `setTag`, visible in that order — so a
   * driver can prepare the pieces concurrently. Servers fall back to the single calls without it.
   */
  putManifest?(
    repository: string,
    digest: string,
    bytes: Uint8Array,
    link: ManifestLink,
    extra?: { tag?: string; referrer?: { subject: string; record: ReferrerRecord } },
  ): Promise<void>;
  /** Removes a blob from the shared store; false when it was not there. */
  deleteBlob(digest: string): Promise<boolean>;
  listBlobs(): AsyncIterable<BlobInfo>;

  // ---- uploads ---------------------------------------------------------------------------
  createUpload(repository: string): Promise<UploadInfo>;
  statUpload(id: string): Promise<UploadInfo | undefined>;
  /**
   * Appends `data` at `offset`, which must equal the upload's current size. Returns the new size.
   * When `data` fails midway, the bytes that did arrive stay (the size tells the client where to
   * resume).
   */
  appendUpload(id: string, offset: number, data: Readable): Promise<number>;
  /**
   * Optional fast path of `appendUpload` for a body read into memory the producer reuses: each
   * chunk is valid only until the iterator is advanced, so the driver must be done with it
   * (hashed, written) before asking for the next one — which lets a server read a request body
   * from the socket straight into the buffers that are written to storage. Same contract as
   * `appendUpload` otherwise (offset check, bytes that arrived stay when the body fails midway).
   */
  appendUploadChunks?(id: string, offset: number, chunks: AsyncIterable<Uint8Array>): Promise<number>;
  /**
   * Verifies the upload's bytes against `digest` (and `size` when given), then makes them the blob
   * `digest`. The upload is gone afterwards whether or not the commit succeeded.
   */
  commitUpload(id: string, digest: string, size?: number): Promise<BlobInfo>;
  cancelUpload(id: string): Promise<boolean>;
  listUploads(): AsyncIterable<UploadInfo>;

  // ---- repositories ----------------------------------------------------------------------
  listRepositories(): Promise<string[]>;
  /** Links a (shared) blob into a repository, which makes it visible there. */
  linkBlob(repository: string, digest: string): Promise<void>;
  unlinkBlob(repository: string, digest: string): Promise<boolean>;
  isBlobLinked(repository: string, digest: string): Promise<boolean>;
  listBlobLinks(repository: string): Promise<string[]>;

  linkManifest(repository: string, digest: string, link: ManifestLink): Promise<void>;
  getManifestLink(repository: string, digest: string): Promise<ManifestLink | undefined>;
  unlinkManifest(repository: string, digest: string): Promise<boolean>;
  listManifests(repository: string): Promise<string[]>;

  setTag(repository: string, tag: string, digest: string): Promise<void>;
  getTag(repository: string, tag: string): Promise<string | undefined>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  listTags(repository: string): Promise<string[]>;

  addReferrer(repository: string, subject: string, referrer: ReferrerRecord): Promise<void>;
  removeReferrer(repository: string, subject: string, referrerDigest: string): Promise<boolean>;
  listReferrers(repository: string, subject: string): Promise<ReferrerRecord[]>;
}

export interface BlobInfo {
  digest: string;
  size: number;
  /** When the blob was committed (ms since the epoch); GC keeps young unreferenced blobs. */
  modifiedAt: number;
}

export interface UploadInfo {
  id: string;
  repository: string;
  size: number;
  startedAt: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface ManifestLink {
  mediaType: string;
}

/** What the referrers API returns for one referrer: a descriptor plus artifactType/annotations. */
export interface ReferrerRecord {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
