import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  MANIFEST_ACCEPT,
  MediaType,
  baseMediaType,
  VerifyStream,
  Digester,
  digestOf,
  isIndexMediaType,
  parseDigest,
  parsePlatform,
  parseReference,
  registryHost,
  selectManifest,
  validateDockerManifest,
  validateDockerManifestList,
  validateImageIndex,
  validateImageManifest,
  DigestMismatchError,
  SizeMismatchError,
} from '@berth/oci-spec';
import type {
  Descriptor,
  Digest,
  DockerManifest,
  DockerManifestList,
  ImageIndex,
  ImageManifest,
  Platform,
  Reference,
} from '@berth/oci-spec';
import {
  BlobUnknownError,
  DigestInvalidError,
  ManifestInvalidError,
  ManifestUnknownError,
  RegistryError,
  SizeInvalidError,
} from '../errors.js';
import { DockerConfigCredentials, type CredentialStore } from './credentials.js';
import { Semaphore } from './semaphore.js';
import type { LentChunks } from './raw-http.js';
import { Transport, errorFromRawResponse, errorFromResponse, errorFromStreamResponse, isConnectionError, sleep, type BodyInit, type RequestSpec } from './transport.js';

/** Manifests larger than this are refused, as the reference registry and containerd do. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export interface RegistryClientOptions {
  /** Hosts (`host:port`) allowed over plain HTTP besides localhost and loopback addresses. */
  insecure?: string[];
  /** Default: Docker's `config.json` (auths, credsStore, credHelpers). */
  credentials?: CredentialStore;
  /** Blob transfers in flight at once across this client (default 4). */
  concurrency?: number;
  userAgent?: string;
  /** Attempts for retryable failures (429, 5xx, resets); default 5. */
  maxAttempts?: number;
  /** First retry delay in ms, doubled per attempt; default 250. */
  backoffMs?: number;
}

export type AnyManifest = ImageManifest | ImageIndex | DockerManifest | DockerManifestList;

export interface ManifestResult {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: AnyManifest;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface FetchBlobOptions extends RequestOptions {
  /**
   * Start at this byte (an HTTP Range request) to resume a partial download. The stream then
   * carries the bytes from `offset` on. Verification: pass `digester` already fed with the first
   * `offset` bytes and the stream verifies the whole blob at its end; without it only the size
   * is checked and the caller must verify the assembled file.
   */
  offset?: number;
  digester?: Digester;
  /**
   * `false`: check only the size, not the digest — for a caller that hashes what it keeps
   * anyway and refuses to commit a mismatch (a content store ingest), so the bytes are not
   * hashed twice. Default `true`.
   */
  verify?: boolean;
  /** Called with the cumulative bytes of this blob received (counting from `offset`). */
  onProgress?: (bytes: number) => void;
}

export interface PushBlobOptions extends RequestOptions {
  /** Cumulative bytes sent for this blob. */
  onProgress?: (bytes: number) => void;
  /** Try a cross-repository mount from this repository (path on the same registry) first. */
  mountFrom?: string;
  /** Upload in PATCH chunks of this many bytes (default: one monolithic PUT). */
  chunkSize?: number;
  /** Resume this upload session (a Location URL from an earlier attempt) instead of starting one. */
  uploadUrl?: string;
  /** Skip the existence check (HEAD) before uploading. */
  skipExistenceCheck?: boolean;
  /** Called with the upload session URL when a session starts, so a caller can persist it. */
  onSession?: (uploadUrl: string) => void;
}

export interface PushBlobResult {
  /** What happened: the blob was there already, was mounted, or was uploaded. */
  outcome: 'exists' | 'mounted' | 'uploaded';
}

export interface ListOptions extends RequestOptions {
  /** Page size; when given, one page is returned (see `last`). Without it all pages are followed. */
  n?: number;
  last?: string;
}

export interface ReferrersOptions extends RequestOptions {
  artifactType?: string;
}

export interface ImageManifestResult extends ManifestResult {
  /** The index the manifest was selected from, when the reference named an index. */
  index?: ManifestResult;
}

interface Target {
  host: string;
  path: string;
  ref: Reference;
}

/**
 * A client for the OCI distribution API (and Docker's registry v2 API). Stateless apart from
 * caches: auth challenges and tokens per host and scope, the scheme per host, credentials.
 * Every method takes a reference (`localhost:5000/app:1`, `busybox`, or a parsed Reference).
 */
export class RegistryClient {
  private readonly transport: Transport;
  private readonly transfers: Semaphore;

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new Transport({
      insecure: options.insecure ?? [],
      credentials: options.credentials ?? new DockerConfigCredentials(),
      userAgent: options.userAgent ?? 'berth/0.1 (+@berth/registry)',
      maxAttempts: options.maxAttempts ?? 5,
      backoffMs: options.backoffMs ?? 250,
    });
    this.transfers = new Semaphore(options.concurrency ?? 4);
  }

  private target(ref: Reference | string): Target {
    const parsed = typeof ref === 'string' ? parseReference(ref) : ref;
    return { host: registryHost(parsed.domain), path: parsed.path, ref: parsed };
  }

  private async url(t: Target, suffix: string): Promise<string> {
    return `${await this.transport.baseUrl(t.host)}/v2/${t.path}/${suffix}`;
  }

  private spec(t: Target, method: string, url: string, actions: string, extra: Partial<RequestSpec> = {}): RequestSpec {
    return { method, url, host: t.host, scopes: [`repository:${t.path}:${actions}`], retry: true, ...extra };
  }

  /** `GET /v2/` on a host: true when it speaks the API (after authenticating if asked to). */
  async ping(host: string, opts: RequestOptions = {}): Promise<boolean> {
    const h = registryHost(host);
    const url = `${await this.transport.baseUrl(h)}/v2/`;
    const res = await this.transport.request({ method: 'GET', url, host: h, scopes: [], ...(opts.signal ? { signal: opts.signal } : {}) });
    await res.body?.cancel().catch(() => undefined);
    return res.ok;
  }

  // ---- manifests -------------------------------------------------------------------------

  /** The descriptor a tag or digest points at: HEAD first, GET when HEAD does not tell. */
  async resolve(ref: Reference | string, opts: RequestOptions = {}): Promise<Descriptor> {
    const t = this.target(ref);
    const reference = t.ref.digest ?? t.ref.tag ?? 'latest';
    const url = await this.url(t, `manifests/${reference}`);
    const res = await this.transport.request(
      this.spec(t, 'HEAD', url, 'pull', { headers: { Accept: MANIFEST_ACCEPT.join(', ') }, ...signal(opts) }),
    );
    if (res.ok) {
      const digest = t.ref.digest ?? res.headers.get('docker-content-digest') ?? undefined;
      const mediaType = res.headers.get('content-type');
      const size = Number(res.headers.get('content-length'));
      if (digest && mediaType && Number.isSafeInteger(size) && size > 0) {
        return { mediaType: baseMediaType(mediaType), digest, size };
      }
    } else if (res.status !== 405 && res.status !== 404) {
      throw await errorFromResponse(res, { method: 'HEAD', url }, 'MANIFEST_UNKNOWN');
    } else if (res.status === 404) {
      throw new ManifestUnknownError(`manifest unknown: ${t.host}/${t.path}:${reference}`, { status: 404 });
    }
    return (await this.getManifest(ref, opts)).descriptor;
  }

  /** Fetches the manifest or index a reference names, verified against its digest, ≤ 4 MiB. */
  async getManifest(ref: Reference | string, opts: RequestOptions = {}): Promise<ManifestResult> {
    const t = this.target(ref);
    const reference = t.ref.digest ?? t.ref.tag ?? 'latest';
    const url = await this.url(t, `manifests/${reference}`);
    const res = await this.transport.request(
      this.spec(t, 'GET', url, 'pull', { headers: { Accept: MANIFEST_ACCEPT.join(', ') }, ...signal(opts) }),
    );
    if (!res.ok) throw await errorFromResponse(res, { method: 'GET', url }, 'MANIFEST_UNKNOWN');
    const bytes = await readLimited(res, MAX_MANIFEST_SIZE, `manifest ${t.host}/${t.path}:${reference}`);
    const expected = t.ref.digest ?? res.headers.get('docker-content-digest') ?? undefined;
    const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (expected && expected !== digest) {
      throw new DigestInvalidError(`manifest ${t.host}/${t.path}:${reference} hashes to ${digest}, expected ${expected}`);
    }
    const { manifest, mediaType } = parseManifest(bytes, res.headers.get('content-type'));
    return {
      descriptor: { mediaType, digest: algorithm === 'sha256' ? digest : digestOf(bytes), size: bytes.byteLength },
      bytes,
      manifest,
    };
  }

  /**
   * The single-platform image manifest for a reference: when it names an index (or manifest
   * list), the entry for `platform` (default: this host) is selected and fetched.
   */
  async getImageManifest(ref: Reference | string, opts: RequestOptions & { platform?: Platform | string } = {}): Promise<ImageManifestResult> {
    const top = await this.getManifest(ref, opts);
    if (!isIndexMediaType(top.descriptor.mediaType)) return top;
    const want = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform;
    const chosen = selectManifest(top.manifest as ImageIndex, ...(want ? [want] : []));
    const t = this.target(ref);
    if (!chosen) {
      throw new ManifestUnknownError(
        `no manifest for platform ${typeof opts.platform === 'string' ? opts.platform : JSON.stringify(opts.platform ?? 'host')} in ${t.host}/${t.path}`,
      );
    }
    const child = await this.getManifest({ ...t.ref, digest: chosen.digest }, opts);
    return { ...child, index: top };
  }

  /**
   * Pushes a manifest under a tag, or by digest when `tagOrDigest` is a digest or absent.
   * Returns its digest. A manifest with a `subject` pushed to a registry without the referrers
   * API also updates the fallback referrers index tagged `<alg>-<hex>`, as the spec asks clients to.
   */
  async pushManifest(ref: Reference | string, bytes: Uint8Array, mediaType: string, tagOrDigest?: string, opts: RequestOptions = {}): Promise<Digest> {
    const t = this.target(ref);
    const digest = digestOf(bytes);
    const reference = tagOrDigest ?? t.ref.tag ?? digest;
    const url = await this.url(t, `manifests/${reference}`);
    const res = await this.transport.request(
      this.spec(t, 'PUT', url, 'pull,push', {
        headers: { 'Content-Type': mediaType },
        body: () => bytes as BodyInit,
        ...signal(opts),
      }),
    );
    if (res.status !== 201 && !res.ok) throw await errorFromResponse(res, { method: 'PUT', url }, 'MANIFEST_INVALID');
    await res.body?.cancel().catch(() => undefined);
    const returned = res.headers.get('docker-content-digest');
    if (returned && returned !== digest && parseDigest(returned).algorithm === 'sha256') {
      throw new DigestInvalidError(`registry stored manifest as ${returned}, but its content hashes to ${digest}`);
    }
    const subject = subjectOf(bytes);
    if (subject && !res.headers.get('oci-subject')) {
      await this.updateReferrersTag(t, subject, { mediaType, digest, size: bytes.byteLength, ...artifactInfo(bytes) }, opts);
    }
    return digest;
  }

  private async updateReferrersTag(t: Target, subject: string, desc: Descriptor, opts: RequestOptions): Promise<void> {
    const tag = referrersTag(subject);
    let index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
    try {
      const existing = await this.getManifest({ ...t.ref, tag, digest: undefined }, opts);
      if (existing.descriptor.mediaType === MediaType.ImageIndex) index = existing.manifest as ImageIndex;
    } catch (error) {
      if (!(error instanceof ManifestUnknownError)) throw error;
    }
    if (index.manifests.some((m) => m.digest === desc.digest)) return;
    index = { ...index, manifests: [...index.manifests, desc] };
    await this.pushManifest({ ...t.ref, digest: undefined }, Buffer.from(JSON.stringify(index)), MediaType.ImageIndex, tag, opts);
  }

  async deleteManifest(ref: Reference | string, digestOrTag: string, opts: RequestOptions = {}): Promise<void> {
    const t = this.target(ref);
    const url = await this.url(t, `manifests/${digestOrTag}`);
    const res = await this.transport.request(this.spec(t, 'DELETE', url, 'delete', signal(opts)));
    if (!res.ok) throw await errorFromResponse(res, { method: 'DELETE', url }, 'MANIFEST_UNKNOWN');
    await res.body?.cancel().catch(() => undefined);
  }

  // ---- blobs -----------------------------------------------------------------------------

  async blobExists(ref: Reference | string, digest: Digest, opts: RequestOptions = {}): Promise<boolean> {
    return (await this.statBlob(ref, digest, opts)) !== undefined;
  }

  /** The size of a blob in the repository, or undefined when absent. */
  async statBlob(ref: Reference | string, digest: Digest, opts: RequestOptions = {}): Promise<{ size: number } | undefined> {
    const t = this.target(ref);
    const url = await this.url(t, `blobs/${digest}`);
    const res = await this.transport.request(this.spec(t, 'HEAD', url, 'pull', signal(opts)));
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 404) return undefined;
    if (!res.ok) throw await errorFromResponse(res, { method: 'HEAD', url }, 'BLOB_UNKNOWN');
    return { size: Number(res.headers.get('content-length') ?? -1) };
  }

  /**
   * Streams a blob, verified against `desc.digest` and `desc.size` while it flows: the stream
   * fails with DigestMismatchError/SizeMismatchError at the end (or as soon as too many bytes
   * arrive), so a consumer that commits only after a clean end never keeps bad content.
   */
  async fetchBlob(ref: Reference | string, desc: Descriptor, opts: FetchBlobOptions = {}): Promise<Readable> {
    const t = this.target(ref);
    const offset = opts.offset ?? 0;
    const release = await this.transfers.acquire();
    try {
      const url = await this.url(t, `blobs/${desc.digest}`);
      const headers: Record<string, string> = {};
      if (offset > 0) headers.Range = `bytes=${offset}-`;
      // node:http straight into the verifier: fetch's web streams cost several times the socket.
      const res = await this.transport.requestStream(this.spec(t, 'GET', url, 'pull', { headers, ...signal(opts) }));
      if (res.status === 404) {
        res.body.destroy();
        throw blobUnknown(t, desc);
      }
      if (!res.ok) throw await errorFromStreamResponse(res, { method: 'GET', url }, 'BLOB_UNKNOWN');
      if (offset > 0 && res.status !== 206) {
        res.body.destroy();
        throw rangeIgnored(desc, offset, res.status);
      }
      const body = res.body;
      let check: Transform;
      if (offset === 0 && opts.verify !== false) check = new VerifyStream(desc.digest, desc.size, { highWaterMark: 4 * 1024 * 1024 });
      else check = new ResumeCheck(desc, offset, opts.verify === false ? undefined : opts.digester);
      let received = 0;
      const onProgress = opts.onProgress;
      const out = body.pipe(check);
      if (onProgress) {
        body.on('data', (chunk: Buffer) => {
          received += chunk.length;
          onProgress(received);
        });
      }
      body.on('error', (error) => out.destroy(error));
      let released = false;
      const done = (): void => {
        if (!released) {
          released = true;
          release();
        }
      };
      out.on('close', done).on('end', done).on('error', done);
      // A consumer that stops early frees the connection.
      out.on('close', () => {
        if (!body.complete) body.destroy();
      });
      return out;
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * `fetchBlob` for a consumer that takes the bytes in as they come and copies whatever it
   * keeps (a content store ingest, an unpacker): the chunks are views of memory this client
   * reuses, lent until the consumer hands each back with `release` (see `LentChunks`) — no
   * fresh buffer per socket read and no copy in an HTTP parser, which on a fast link cost more
   * than the bytes. The same checks as `fetchBlob`: the iteration fails with
   * DigestMismatchError/SizeMismatchError at the end (or as soon as too many bytes arrive).
   * Stopping the iteration early closes the connection.
   */
  async fetchBlobChunks(ref: Reference | string, desc: Descriptor, opts: FetchBlobOptions = {}): Promise<LentChunks> {
    const t = this.target(ref);
    const offset = opts.offset ?? 0;
    const release = await this.transfers.acquire();
    try {
      const url = await this.url(t, `blobs/${desc.digest}`);
      const headers: Record<string, string> = {};
      if (offset > 0) headers.Range = `bytes=${offset}-`;
      const res = await this.transport.requestRaw(this.spec(t, 'GET', url, 'pull', { headers, ...signal(opts) }));
      if (res.status === 404) {
        res.body.destroy();
        throw blobUnknown(t, desc);
      }
      if (!res.ok) throw await errorFromRawResponse(res, { method: 'GET', url }, 'BLOB_UNKNOWN');
      if (offset > 0 && res.status !== 206) {
        res.body.destroy();
        throw rangeIgnored(desc, offset, res.status);
      }
      const body = res.body;
      const digester = opts.verify === false ? undefined : offset === 0 ? new Digester(parseDigest(desc.digest).algorithm) : opts.digester;
      const onProgress = opts.onProgress;
      let transferDone = false;
      const done = (): void => {
        if (!transferDone) {
          transferDone = true;
          release();
        }
      };
      async function* chunks(): AsyncGenerator<Buffer> {
        let seen = offset;
        let received = 0;
        try {
          for await (const chunk of body) {
            seen += chunk.length;
            if (seen > desc.size) throw new SizeMismatchError(desc.size, seen);
            digester?.update(chunk);
            received += chunk.length;
            onProgress?.(received);
            yield chunk;
          }
          if (seen !== desc.size) throw new SizeMismatchError(desc.size, seen);
          if (digester) {
            const actual = digester.digest();
            if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual);
          }
        } finally {
          body.destroy();
          done();
        }
      }
      const it = chunks();
      return { [Symbol.asyncIterator]: () => it, release: (chunk) => body.release(chunk) };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Pushes a blob unless the repository has it: a cross-repository mount when `mountFrom` is
   * given, else an upload — one monolithic PUT, or PATCH chunks of `chunkSize`. A chunked upload
   * that fails midway (a reset, a 5xx, a restarted registry) asks the registry how much it has
   * (`GET` on the session → `Range`) and resumes from there, reopening the source with
   * `open(offset)`. `open(offset)` must return the blob's bytes from `offset` on.
   */
  async pushBlob(
    ref: Reference | string,
    desc: Descriptor,
    open: (offset: number) => Readable,
    opts: PushBlobOptions = {},
  ): Promise<PushBlobResult> {
    const t = this.target(ref);
    const release = await this.transfers.acquire();
    try {
      if (!opts.uploadUrl && !opts.skipExistenceCheck && (await this.blobExists(t.ref, desc.digest, opts))) {
        opts.onProgress?.(desc.size);
        return { outcome: 'exists' };
      }
      let location = opts.uploadUrl;
      if (!location) {
        const started = await this.startUpload(t, desc.digest, opts);
        if (started.mounted) {
          opts.onProgress?.(desc.size);
          return { outcome: 'mounted' };
        }
        location = started.location;
        opts.onSession?.(location);
      }
      await this.upload(t, desc, open, location, opts);
      return { outcome: 'uploaded' };
    } finally {
      release();
    }
  }

  private async startUpload(t: Target, digest: Digest, opts: PushBlobOptions): Promise<{ mounted: boolean; location: string }> {
    let url = await this.url(t, 'blobs/uploads/');
    const scopes = [`repository:${t.path}:pull,push`];
    if (opts.mountFrom) {
      url += `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(opts.mountFrom)}`;
      scopes.push(`repository:${opts.mountFrom}:pull`);
    }
    const res = await this.transport.request({
      method: 'POST',
      url,
      host: t.host,
      scopes,
      retry: true,
      headers: { 'Content-Length': '0' },
      ...signal(opts),
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 201 && opts.mountFrom) return { mounted: true, location: '' };
    if (res.status !== 202) throw await errorFromResponse(res, { method: 'POST', url }, 'BLOB_UPLOAD_INVALID');
    const location = res.headers.get('location');
    if (!location) throw new RegistryError('BLOB_UPLOAD_INVALID', `POST ${url}: no Location in 202 response`, { category: 'unavailable' });
    return { mounted: false, location: new URL(location, url).toString() };
  }

  /** Sends the blob to an upload session, resuming after failures from the registry's Range. */
  private async upload(t: Target, desc: Descriptor, open: (offset: number) => Readable, startLocation: string, opts: PushBlobOptions): Promise<void> {
    let location = startLocation;
    let offset = opts.uploadUrl ? (await this.uploadStatus(t, location, opts)).offset : 0;
    let failures = 0;
    const chunkSize = opts.chunkSize;
    for (;;) {
      try {
        if (chunkSize === undefined || chunkSize >= desc.size - offset) {
          await this.putFinal(t, desc, open, location, offset, opts);
          return;
        }
        const end = Math.min(offset + chunkSize, desc.size);
        location = await this.patchChunk(t, open, location, offset, end, opts);
        offset = end;
        failures = 0;
      } catch (error) {
        if (opts.signal?.aborted) throw error;
        if (error instanceof RegistryError && (error.code === 'DIGEST_INVALID' || error.code === 'SIZE_INVALID')) throw error;
        const retryable =
          isConnectionError(error) ||
          (error instanceof RegistryError && (error.code === 'UNAVAILABLE' || error.code === 'RANGE_INVALID' || (error.status ?? 0) >= 500));
        if (!retryable || ++failures >= 8) throw error;
        await sleep(Math.min(250 * 2 ** (failures - 1), 5_000), opts.signal);
        try {
          const status = await this.uploadStatus(t, location, opts);
          offset = status.offset;
          location = status.location;
        } catch (statusError) {
          if (statusError instanceof RegistryError && statusError.code === 'BLOB_UPLOAD_UNKNOWN') {
            // The session is gone (expired or cancelled): start over.
            const started = await this.startUpload(t, desc.digest, { ...opts, mountFrom: undefined });
            location = started.location;
            opts.onSession?.(location);
            offset = 0;
          } else if (!isConnectionError(statusError) && !(statusError instanceof RegistryError && statusError.code === 'UNAVAILABLE')) {
            throw statusError;
          }
        }
      }
    }
  }

  /** How many bytes an upload session holds (`Range: 0-<end>`), and its current URL. */
  async uploadStatus(ref: Reference | string | Target, location: string, opts: RequestOptions = {}): Promise<{ offset: number; location: string }> {
    const t = isTarget(ref) ? ref : this.target(ref);
    const res = await this.transport.request(this.spec(t, 'GET', location, 'pull,push', signal(opts)));
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 204 && !res.ok) throw await errorFromResponse(res, { method: 'GET', url: location }, 'BLOB_UPLOAD_UNKNOWN');
    const range = res.headers.get('range');
    const next = res.headers.get('location');
    return { offset: rangeEnd(range), location: next ? new URL(next, location).toString() : location };
  }

  private async patchChunk(t: Target, open: (offset: number) => Readable, location: string, start: number, end: number, opts: PushBlobOptions): Promise<string> {
    const res = await this.transport.request(
      this.spec(t, 'PATCH', location, 'pull,push', {
        retry: false,
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(end - start),
          'Content-Range': `${start}-${end - 1}`,
        },
        body: () => toBody(limitStream(open(start), end - start), start, opts.onProgress),
        ...signal(opts),
      }),
    );
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 202) throw await errorFromResponse(res, { method: 'PATCH', url: location }, 'BLOB_UPLOAD_INVALID');
    const got = rangeEnd(res.headers.get('range'));
    if (res.headers.get('range') && got !== end) {
      throw new RegistryError('RANGE_INVALID', `registry has ${got} bytes after a chunk ending at ${end}`, { status: 416 });
    }
    const next = res.headers.get('location');
    return next ? new URL(next, location).toString() : location;
  }

  private async putFinal(t: Target, desc: Descriptor, open: (offset: number) => Readable, location: string, offset: number, opts: PushBlobOptions): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const remaining = desc.size - offset;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(remaining) };
    const res = await this.transport.request(
      this.spec(t, 'PUT', url.toString(), 'pull,push', {
        retry: false,
        headers,
        body: () => (remaining > 0 ? toBody(limitStream(open(offset), remaining), offset, opts.onProgress) : undefined),
        ...signal(opts),
      }),
    );
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 201 && res.status !== 204) throw await errorFromResponse(res, { method: 'PUT', url: url.toString() }, 'BLOB_UPLOAD_INVALID');
    const returned = res.headers.get('docker-content-digest');
    if (returned && returned !== desc.digest) {
      throw new DigestInvalidError(`registry committed ${returned} for blob ${desc.digest}`);
    }
  }

  /** Cancels an upload session. */
  async cancelUpload(ref: Reference | string, location: string, opts: RequestOptions = {}): Promise<void> {
    const t = this.target(ref);
    const res = await this.transport.request(this.spec(t, 'DELETE', location, 'pull,push', signal(opts)));
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) throw await errorFromResponse(res, { method: 'DELETE', url: location }, 'BLOB_UPLOAD_UNKNOWN');
  }

  async deleteBlob(ref: Reference | string, digest: Digest, opts: RequestOptions = {}): Promise<void> {
    const t = this.target(ref);
    const url = await this.url(t, `blobs/${digest}`);
    const res = await this.transport.request(this.spec(t, 'DELETE', url, 'delete', signal(opts)));
    if (!res.ok) throw await errorFromResponse(res, { method: 'DELETE', url }, 'BLOB_UNKNOWN');
    await res.body?.cancel().catch(() => undefined);
  }

  // ---- listing ---------------------------------------------------------------------------

  /** Tags of a repository, lexically sorted. With `n`, one page after `last`; else all pages. */
  async listTags(ref: Reference | string, opts: ListOptions = {}): Promise<string[]> {
    const t = this.target(ref);
    const first = await this.url(t, 'tags/list');
    return this.paged(t.host, [`repository:${t.path}:pull`], first, 'tags', opts);
  }

  /** Repositories of a registry host (`_catalog`). With `n`, one page; else all pages. */
  async catalog(host: string, opts: ListOptions = {}): Promise<string[]> {
    const h = registryHost(host);
    const first = `${await this.transport.baseUrl(h)}/v2/_catalog`;
    return this.paged(h, ['registry:catalog:*'], first, 'repositories', opts);
  }

  private async paged(host: string, scopes: string[], first: string, key: 'tags' | 'repositories', opts: ListOptions): Promise<string[]> {
    const out: string[] = [];
    const url = new URL(first);
    if (opts.n !== undefined) url.searchParams.set('n', String(opts.n));
    if (opts.last !== undefined) url.searchParams.set('last', opts.last);
    let next: string | undefined = url.toString();
    while (next) {
      const current: string = next;
      const res = await this.transport.request({ method: 'GET', url: current, host, scopes, retry: true, ...signal(opts) });
      if (!res.ok) throw await errorFromResponse(res, { method: 'GET', url: current }, key === 'tags' ? 'NAME_UNKNOWN' : 'UNSUPPORTED');
      const body = (await res.json()) as Record<string, unknown>;
      const items = body[key];
      if (Array.isArray(items)) out.push(...items.filter((x): x is string => typeof x === 'string'));
      if (opts.n !== undefined) break;
      const link = res.headers.get('link');
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      next = m?.[1] ? new URL(m[1], current).toString() : undefined;
    }
    return out;
  }

  /**
   * Manifests whose `subject` is `digest`: the referrers API, or — when the registry answers
   * 404 for it — the fallback index tagged `<alg>-<hex>`. `artifactType` filters either way.
   */
  async referrers(ref: Reference | string, digest: Digest, opts: ReferrersOptions = {}): Promise<Descriptor[]> {
    const t = this.target(ref);
    const url = new URL(await this.url(t, `referrers/${digest}`));
    if (opts.artifactType) url.searchParams.set('artifactType', opts.artifactType);
    const res = await this.transport.request(
      this.spec(t, 'GET', url.toString(), 'pull', { headers: { Accept: MediaType.ImageIndex }, ...signal(opts) }),
    );
    let manifests: Descriptor[];
    let filtered = false;
    if (res.ok && baseMediaType(res.headers.get('content-type') ?? '') === MediaType.ImageIndex) {
      const index = validateImageIndex(JSON.parse(await res.text()));
      manifests = index.manifests;
      filtered = (res.headers.get('oci-filters-applied') ?? '').split(',').map((s) => s.trim()).includes('artifactType');
    } else if (res.status === 404 || res.ok) {
      await res.body?.cancel().catch(() => undefined);
      try {
        const fallback = await this.getManifest({ ...t.ref, tag: referrersTag(digest), digest: undefined }, opts);
        manifests = isIndexMediaType(fallback.descriptor.mediaType) ? (fallback.manifest as ImageIndex).manifests : [];
      } catch (error) {
        if (error instanceof ManifestUnknownError || (error instanceof RegistryError && error.status === 404)) return [];
        throw error;
      }
    } else {
      throw await errorFromResponse(res, { method: 'GET', url: url.toString() }, 'UNSUPPORTED');
    }
    if (opts.artifactType && !filtered) manifests = manifests.filter((m) => m.artifactType === opts.artifactType);
    return manifests;
  }
}

/** The tag the referrers tag schema uses for a subject: `sha256:abc…` → `sha256-abc…`. */
export function referrersTag(digest: Digest): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm}-${encoded}`.slice(0, 128);
}

function isTarget(value: unknown): value is Target {
  return typeof value === 'object' && value !== null && 'host' in value && 'path' in value && 'ref' in value;
}

/** A blob GET answered 404. */
function blobUnknown(t: Target, desc: Descriptor): BlobUnknownError {
  return new BlobUnknownError(`blob unknown: ${t.host}/${t.path}@${desc.digest}`, { status: 404 });
}

/** A resumed blob GET answered with the whole blob instead of the range asked for. */
function rangeIgnored(desc: Descriptor, offset: number, status: number): RegistryError {
  return new RegistryError('RANGE_UNSUPPORTED', `registry ignored Range for ${desc.digest}; cannot resume at ${offset}`, {
    category: 'unavailable',
    status,
  });
}

function signal(opts: RequestOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}

/** `Range: 0-<end>` → bytes held (`end + 1`); `0-0` and absent mean 0 as the reference registry sends. */
function rangeEnd(range: string | null): number {
  if (!range) return 0;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
  if (!m) return 0;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new SizeInvalidError(`${what} is ${declared} bytes, over the ${limit}-byte limit`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limit) throw new SizeInvalidError(`${what} exceeds the ${limit}-byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses and validates a fetched manifest by its media type (Content-Type, else its own). */
function parseManifest(bytes: Uint8Array, contentType: string | null): { manifest: AnyManifest; mediaType: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ManifestInvalidError('manifest is not JSON', { cause: error });
  }
  const own = typeof (doc as { mediaType?: unknown }).mediaType === 'string' ? (doc as { mediaType: string }).mediaType : undefined;
  const header = contentType ? baseMediaType(contentType) : undefined;
  const generic = !header || header === 'application/json' || header === 'text/plain' || header === 'application/octet-stream';
  let mediaType = own ?? (generic ? undefined : header);
  if (!mediaType) {
    const d = doc as { manifests?: unknown; config?: unknown };
    mediaType = Array.isArray(d.manifests) ? MediaType.ImageIndex : MediaType.ImageManifest;
  }
  try {
    switch (mediaType) {
      case MediaType.ImageManifest:
        return { manifest: validateImageManifest(doc), mediaType };
      case MediaType.ImageIndex:
        return { manifest: validateImageIndex(doc), mediaType };
      case MediaType.DockerManifest:
        return { manifest: validateDockerManifest(doc), mediaType };
      case MediaType.DockerManifestList:
        return { manifest: validateDockerManifestList(doc), mediaType };
      default:
        throw new ManifestInvalidError(`unsupported manifest media type ${mediaType}`);
    }
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw new ManifestInvalidError(`manifest invalid: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { subject?: { digest?: unknown } };
    return typeof doc.subject?.digest === 'string' ? doc.subject.digest : undefined;
  } catch {
    return undefined;
  }
}

function artifactInfo(bytes: Uint8Array): Pick<Descriptor, 'artifactType' | 'annotations'> {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      artifactType?: string;
      config?: { mediaType?: string };
      annotations?: Record<string, string>;
    };
    const artifactType = doc.artifactType ?? doc.config?.mediaType;
    return { ...(artifactType ? { artifactType } : {}), ...(doc.annotations ? { annotations: doc.annotations } : {}) };
  } catch {
    return {};
  }
}

/** Passes on at most `limit` bytes of `source`, then ends (and stops reading the source). */
function limitStream(source: Readable, limit: number): Readable {
  let left = limit;
  const out = new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback) {
      if (left <= 0) return callback();
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      this.push(part);
      if (left <= 0) {
        this.push(null);
        source.unpipe(this);
        source.destroy();
      }
      callback();
    },
  });
  source.on('error', (error) => out.destroy(error));
  return source.pipe(out);
}

function toBody(stream: Readable, base: number, onProgress?: (bytes: number) => void): BodyInit {
  if (onProgress) {
    let sent = base;
    stream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      onProgress(sent);
    });
  }
  return Readable.toWeb(stream) as unknown as BodyInit;
}

/** The remainder of a resumed download: counts bytes, and verifies with a supplied digester. */
class ResumeCheck extends Transform {
  private seen: number;
  constructor(
    private readonly desc: Descriptor,
    offset: number,
    private readonly digester: Digester | undefined,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.seen = offset;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.desc.size) return callback(new SizeMismatchError(this.desc.size, this.seen));
    this.digester?.update(chunk);
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    if (this.seen !== this.desc.size) return callback(new SizeMismatchError(this.desc.size, this.seen));
    if (this.digester) {
      const actual = this.digester.digest();
      if (actual !== this.desc.digest) return callback(new DigestMismatchError(this.desc.digest, actual));
    }
    callback();
  }
}
