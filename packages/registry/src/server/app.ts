import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isDigest as isDigestGuard, parseDigest, digestOf, MediaType, baseMediaType, isForeignLayerMediaType } from '@berth/oci-spec';
import type { Descriptor } from '@berth/oci-spec';
import {
  BlobUnknownError,
  BlobUploadUnknownError,
  DigestInvalidError,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  ManifestUnknownError,
  NameInvalidError,
  NameUnknownError,
  RangeInvalidError,
  RegistryError,
  SizeInvalidError,
  UnauthorizedError,
  DeniedError,
  UnsupportedError,
} from '../errors.js';
import {
  accessGranted,
  bearerToken,
  formatScope,
  parseBasicAuthorization,
  parseScopes,
  type AccessRequest,
  type Htpasswd,
  type TokenIssuer,
} from './auth.js';
import { GarbageCollector, type GarbageCollectionOptions, type GarbageCollectionReport } from './gc.js';
import { validateManifestDocument, type ManifestSummary } from './manifest-check.js';
import type { ReferrerRecord, StorageDriver } from './storage/driver.js';
import { compareCodePoints } from './storage/filesystem.js';
import { takeRequestBody } from './request-body.js';

/** Manifests larger than this are refused (the distribution spec's recommended limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** One line of the access log, written when a response has finished. */
export interface AccessLogEntry {
  time: string;
  method: string;
  path: string;
  status: number;
  /** Response body bytes written. */
  bytes: number;
  durationMs: number;
  remote: string | undefined;
  user: string | undefined;
  userAgent: string | undefined;
  /** Distribution error code of a failed request. */
  error?: string;
}

export interface RegistryAppOptions {
  driver: StorageDriver;
  htpasswd?: Htpasswd;
  /** Bearer-token mode: clients get a `Bearer` challenge and fetch tokens from `/token`. */
  tokens?: TokenIssuer;
  log?: (entry: AccessLogEntry) => void;
  /** Realm sent with Basic challenges. */
  realm?: string;
}

type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'token' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const ROUTES: Array<[RegExp, (m: RegExpExecArray) => Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/token$/, () => ({ kind: 'token' })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

function matchRoute(pathname: string): Route | undefined {
  for (const [re, make] of ROUTES) {
    const m = re.exec(pathname);
    if (m) return make(m);
  }
  return undefined;
}

/** Per-request state the handlers share. */
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  user: string | undefined;
  errorCode?: string;
}

/**
 * The distribution-spec v1.1 HTTP API over a StorageDriver. `handle` is a plain
 * `(req, res)` listener, so it mounts on any node:http(s) server.
 */
export class RegistryApp {
  readonly driver: StorageDriver;
  readonly gc: GarbageCollector;
  private readonly options: RegistryAppOptions;
  private ready: Promise<void> | undefined;

  constructor(options: RegistryAppOptions) {
    this.options = options;
    this.driver = options.driver;
    this.gc = new GarbageCollector(options.driver);
  }

  init(): Promise<void> {
    this.ready ??= this.driver.init();
    return this.ready;
  }

  /** Online garbage collection; see GarbageCollector. */
  collectGarbage(options?: GarbageCollectionOptions): Promise<GarbageCollectionReport> {
    return this.gc.run(options);
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
    const ctx: Ctx = { req, res, url, user: undefined };
    let bytes = 0;
    const count = (chunk: unknown): void => {
      if (chunk && typeof chunk !== 'function' && typeof (chunk as { length?: unknown }).length === 'number') {
        bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as { length: number }).length;
      }
    };
    const write = res.write.bind(res);
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      count(chunk);
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof res.write;
    const end = res.end.bind(res);
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      count(chunk);
      return (end as (...a: unknown[]) => ServerResponse)(chunk, ...rest);
    }) as typeof res.end;
    res.on('close', () => {
      const log = this.options.log;
      if (!log) return;
      log({
        time: new Date().toISOString(),
        method: req.method ?? '',
        path: url.pathname + url.search,
        status: res.statusCode,
        bytes,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        remote: req.socket.remoteAddress,
        user: ctx.user,
        userAgent: req.headers['user-agent'],
        ...(ctx.errorCode ? { error: ctx.errorCode } : {}),
      });
    });
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    this.dispatch(ctx).catch((error: unknown) => this.fail(ctx, error));
  };

  private fail(ctx: Ctx, error: unknown): void {
    const { req, res } = ctx;
    const registryError =
      error instanceof RegistryError
        ? error
        : isCategorised(error)
          ? new RegistryError(error.code, error.message, { category: error.category, cause: error })
          : undefined;
    if (!registryError) {
      // An aborted request body is not a server error worth a 500 body; the socket is gone.
      if (req.destroyed || res.destroyed) return;
      console.error('registry: internal error', error);
    }
    const status = registryError?.status ?? statusOfCategory(registryError?.category ?? 'internal');
    const code = registryError?.code ?? 'UNKNOWN';
    ctx.errorCode = code;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (req.readable && !req.readableEnded) req.resume();
    const body = JSON.stringify({
      errors: [
        {
          code,
          message: registryError?.message ?? 'internal error',
          ...(registryError?.detail !== undefined ? { detail: registryError.detail } : {}),
        },
      ],
    });
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async dispatch(ctx: Ctx): Promise<void> {
    await this.init();
    const route = matchRoute(ctx.url.pathname);
    if (!route) {
      throw new RegistryError('NOT_FOUND', `no route for ${ctx.req.method} ${ctx.url.pathname}`, {
        status: 404,
        category: 'not-found',
      });
    }
    if (route.kind === 'token') return this.token(ctx);
    if ('name' in route && !NAME_RE.test(route.name)) {
      throw new NameInvalidError(`invalid repository name: ${route.name}`, { detail: { name: route.name } });
    }
    await this.authorize(ctx, accessFor(route, ctx.req.method ?? 'GET'));
    const method = ctx.req.method ?? 'GET';
    switch (route.kind) {
      case 'base':
        return this.json(ctx, 200, {});
      case 'catalog':
        return this.catalog(ctx);
      case 'manifest':
        if (method === 'GET' || method === 'HEAD') return this.getManifest(ctx, route.name, route.reference);
        if (method === 'PUT') return this.putManifest(ctx, route.name, route.reference);
        if (method === 'DELETE') return this.deleteManifest(ctx, route.name, route.reference);
        break;
      case 'blob':
        if (method === 'GET' || method === 'HEAD') return this.getBlob(ctx, route.name, route.digest);
        if (method === 'DELETE') return this.deleteBlob(ctx, route.name, route.digest);
        break;
      case 'uploads':
        if (method === 'POST') return this.startUpload(ctx, route.name);
        break;
      case 'upload':
        if (method === 'GET') return this.uploadStatus(ctx, route.name, route.id);
        if (method === 'PATCH') return this.patchUpload(ctx, route.name, route.id);
        if (method === 'PUT') return this.finishUpload(ctx, route.name, route.id);
        if (method === 'DELETE') return this.cancelUpload(ctx, route.name, route.id);
        break;
      case 'tags':
        if (method === 'GET') return this.tags(ctx, route.name);
        break;
      case 'referrers':
        if (method === 'GET') return this.referrers(ctx, route.name, route.digest);
        break;
    }
    ctx.res.setHeader('Allow', allowedMethods(route));
    throw new UnsupportedError(`method ${method} not allowed on ${ctx.url.pathname}`);
  }

  // ---- auth ------------------------------------------------------------------------------

  private async authorize(ctx: Ctx, need: AccessRequest | undefined): Promise<void> {
    const { htpasswd, tokens } = this.options;
    if (!htpasswd && !tokens) return;
    if (tokens) {
      const token = bearerToken(ctx.req);
      const claims = token ? tokens.verify(token) : undefined;
      if (claims && (!need || accessGranted(claims.access, need))) {
        ctx.user = claims.sub;
        return;
      }
      const host = ctx.req.headers.host ?? 'localhost';
      const proto = isTls(ctx.req) ? 'https' : 'http';
      let challenge = `Bearer realm="${proto}://${host}/token",service="${tokens.service}"`;
      if (need) challenge += `,scope="${formatScope(need)}"`;
      if (claims) challenge += ',error="insufficient_scope"';
      ctx.res.setHeader('WWW-Authenticate', challenge);
      throw claims
        ? new DeniedError(`token does not grant ${need ? formatScope(need) : 'access'}`)
        : new UnauthorizedError('authentication required', need ? { detail: [need] } : {});
    }
    const basic = parseBasicAuthorization(ctx.req.headers.authorization);
    if (basic && htpasswd && (await htpasswd.verify(basic.user, basic.password))) {
      ctx.user = basic.user;
      return;
    }
    ctx.res.setHeader('WWW-Authenticate', `Basic realm="${this.options.realm ?? 'berth-registry'}"`);
    throw new UnauthorizedError('authentication required');
  }

  /** The token endpoint of the bearer mode (Docker's token protocol, GET form). */
  private async token(ctx: Ctx): Promise<void> {
    const { tokens, htpasswd } = this.options;
    if (!tokens) throw new RegistryError('NOT_FOUND', 'token auth is not enabled', { status: 404, category: 'not-found' });
    if (ctx.req.method === 'POST') return this.oauthToken(ctx, tokens);
    let user = 'anonymous';
    if (htpasswd) {
      const basic = parseBasicAuthorization(ctx.req.headers.authorization);
      if (!basic || !(await htpasswd.verify(basic.user, basic.password))) {
        ctx.res.setHeader('WWW-Authenticate', `Basic realm="${this.options.realm ?? 'berth-registry'}"`);
        throw new UnauthorizedError('invalid username or password');
      }
      user = basic.user;
    }
    ctx.user = user;
    const access = parseScopes(ctx.url.searchParams.getAll('scope'));
    const { token, expiresIn, issuedAt } = tokens.issue(user, access);
    this.json(ctx, 200, { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt });
  }

  /**
   * The OAuth2 form of the token endpoint (`POST /token`, Docker's token spec): `grant_type=password`
   * checks htpasswd and, with `access_type=offline`, also returns a refresh token;
   * `grant_type=refresh_token` trades a refresh (identity) token for an access token.
   */
  private async oauthToken(ctx: Ctx, tokens: TokenIssuer): Promise<void> {
    const form = new URLSearchParams(Buffer.from(await readBody(ctx.req, 64 * 1024)).toString('utf8'));
    const grant = form.get('grant_type');
    let user: string | undefined;
    if (grant === 'password') {
      const username = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      if (!this.options.htpasswd) user = username || 'anonymous';
      else if (await this.options.htpasswd.verify(username, password)) user = username;
    } else if (grant === 'refresh_token') {
      user = tokens.verifyRefresh(form.get('refresh_token') ?? '');
    } else {
      throw new RegistryError('UNSUPPORTED', `unsupported grant_type ${grant ?? '(none)'}`, { status: 400, category: 'invalid' });
    }
    if (!user) throw new UnauthorizedError(`invalid credentials for grant_type ${grant}`);
    ctx.user = user;
    const access = parseScopes(form.getAll('scope'));
    const { token, expiresIn, issuedAt } = tokens.issue(user, access);
    const refresh = grant === 'password' && form.get('access_type') === 'offline' ? tokens.issueRefresh(user) : grant === 'refresh_token' ? form.get('refresh_token') : undefined;
    this.json(ctx, 200, { access_token: token, expires_in: expiresIn, issued_at: issuedAt, ...(refresh ? { refresh_token: refresh } : {}) });
  }

  // ---- manifests -------------------------------------------------------------------------

  private async resolveManifest(name: string, reference: string): Promise<{ digest: string; mediaType: string }> {
    let digest: string;
    if (isDigest(reference)) {
      digest = reference;
    } else if (TAG_RE.test(reference)) {
      const tagged = await this.driver.getTag(name, reference);
      if (!tagged) throw new ManifestUnknownError(`manifest unknown: ${name}:${reference}`, { detail: { tag: reference } });
      digest = tagged;
    } else if (reference.includes(':')) {
      throw new DigestInvalidError(`digest invalid: ${reference}`);
    } else {
      throw new ManifestInvalidError(`invalid tag: ${reference}`);
    }
    const link = await this.driver.getManifestLink(name, digest);
    if (!link) throw new ManifestUnknownError(`manifest unknown: ${name}@${digest}`, { detail: { digest } });
    return { digest, mediaType: link.mediaType };
  }

  private async getManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
    const { digest, mediaType } = await this.resolveManifest(name, reference);
    const bytes = await this.driver.readBlobBytes(digest);
    if (!bytes) throw new ManifestUnknownError(`manifest unknown: ${name}@${digest} (content missing)`);
    const { res } = ctx;
    res.statusCode = 200;
    res.setHeader('Content-Type', mediaType);
    res.setHeader('Content-Length', bytes.byteLength);
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('Etag', `"${digest}"`);
    res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
  }

  private async putManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
    const byDigest = isDigest(reference);
    if (!byDigest && !TAG_RE.test(reference)) {
      if (reference.includes(':')) throw new DigestInvalidError(`digest invalid: ${reference}`);
      throw new ManifestInvalidError(`invalid tag: ${reference}`);
    }
    const bytes = await readBody(ctx.req, MAX_MANIFEST_BYTES);
    const contentType = ctx.req.headers['content-type'];
    const summary: ManifestSummary = validateManifestDocument(bytes, contentType ? baseMediaType(contentType) : undefined);
    const algorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (byDigest && digest !== reference) {
      throw new DigestInvalidError(`digest invalid: manifest content hashes to ${digest}, not ${reference}`, {
        detail: { expected: reference, actual: digest },
      });
    }

    for (const blob of summary.blobs) {
      if (blob.urls && blob.urls.length > 0 && isForeignLayerMediaType(blob.mediaType)) continue;
      await this.gc.guard(blob.digest);
      const [linked, info] = await Promise.all([this.driver.isBlobLinked(name, blob.digest), this.driver.statBlob(blob.digest)]);
      if (!linked || !info) {
        throw new ManifestBlobUnknownError(`manifest references unknown blob ${blob.digest} in ${name}`, {
          detail: { digest: blob.digest },
        });
      }
      if (info.size !== blob.size) {
        throw new ManifestInvalidError(`manifest gives size ${blob.size} for blob ${blob.digest}, which has ${info.size} bytes`);
      }
    }
    for (const child of summary.manifests) {
      await this.gc.guard(child.digest);
      const link = await this.driver.getManifestLink(name, child.digest);
      if (!link || !(await this.driver.statBlob(child.digest))) {
        throw new ManifestBlobUnknownError(`index references unknown manifest ${child.digest} in ${name}`, {
          detail: { digest: child.digest },
        });
      }
    }

    await this.gc.guard(digest);
    const referrer = summary.subject
      ? {
          subject: summary.subject.digest,
          record: {
            mediaType: summary.mediaType,
            digest,
            size: bytes.byteLength,
            ...(summary.artifactType ? { artifactType: summary.artifactType } : {}),
            ...(summary.annotations ? { annotations: summary.annotations } : {}),
          } satisfies ReferrerRecord,
        }
      : undefined;
    const link = { mediaType: summary.mediaType };
    if (this.driver.putManifest) {
      await this.driver.putManifest(name, digest, bytes, link, {
        ...(byDigest ? {} : { tag: reference }),
        ...(referrer ? { referrer } : {}),
      });
    } else {
      await this.driver.putBlob(digest, bytes);
      await this.driver.linkManifest(name, digest, link);
      if (referrer) await this.driver.addReferrer(name, referrer.subject, referrer.record);
      if (!byDigest) await this.driver.setTag(name, reference, digest);
    }
    if (referrer) ctx.res.setHeader('OCI-Subject', referrer.subject);
    ctx.res.setHeader('Location', `/v2/${name}/manifests/${digest}`);
    ctx.res.setHeader('Docker-Content-Digest', digest);
    this.empty(ctx, 201);
  }

  private async deleteManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
    if (!isDigest(reference)) {
      if (!TAG_RE.test(reference)) throw new ManifestInvalidError(`invalid tag: ${reference}`);
      if (!(await this.driver.deleteTag(name, reference))) {
        throw new ManifestUnknownError(`manifest unknown: ${name}:${reference}`, { detail: { tag: reference } });
      }
      return this.empty(ctx, 202);
    }
    const digest = reference;
    const link = await this.driver.getManifestLink(name, digest);
    if (!link) throw new ManifestUnknownError(`manifest unknown: ${name}@${digest}`, { detail: { digest } });
    const bytes = await this.driver.readBlobBytes(digest);
    await this.driver.unlinkManifest(name, digest);
    for (const tag of await this.driver.listTags(name)) {
      if ((await this.driver.getTag(name, tag)) === digest) await this.driver.deleteTag(name, tag);
    }
    if (bytes) {
      const subject = subjectOf(bytes);
      if (subject) await this.driver.removeReferrer(name, subject, digest);
    }
    this.empty(ctx, 202);
  }

  // ---- blobs -----------------------------------------------------------------------------

  private parseDigestParam(value: string): string {
    if (!isDigest(value)) throw new DigestInvalidError(`digest invalid: ${value}`, { detail: { digest: value } });
    return value;
  }

  private async getBlob(ctx: Ctx, name: string, digestParam: string): Promise<void> {
    const digest = this.parseDigestParam(digestParam);
    const [linked, info] = await Promise.all([this.driver.isBlobLinked(name, digest), this.driver.statBlob(digest)]);
    if (!linked || !info) throw new BlobUnknownError(`blob unknown: ${name}@${digest}`, { detail: { digest } });
    const { req, res } = ctx;
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Etag', `"${digest}"`);
    res.setHeader('Cache-Control', 'max-age=31536000');
    const rangeHeader = req.headers.range;
    let range: { start: number; end: number } | undefined;
    if (rangeHeader) {
      range = parseRangeHeader(rangeHeader, info.size);
      if (!range) {
        res.setHeader('Content-Range', `bytes */${info.size}`);
        throw new RangeInvalidError(`range ${rangeHeader} not satisfiable for ${digest} of ${info.size} bytes`);
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${info.size}`);
      res.setHeader('Content-Length', range.end - range.start + 1);
    } else {
      res.statusCode = 200;
      res.setHeader('Content-Length', info.size);
    }
    if (req.method === 'HEAD' || info.size === 0) {
      res.end();
      return;
    }
    if (this.driver.openBlobFile) {
      const handle = await this.driver.openBlobFile(digest);
      try {
        await sendFileRange(res, handle, range?.start ?? 0, range?.end ?? info.size - 1);
      } finally {
        await handle.close().catch(() => undefined);
      }
      return;
    }
    const stream = await this.driver.readBlob(digest, range);
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      res.on('close', () => {
        stream.destroy();
        resolve();
      });
      stream.pipe(res);
    });
  }

  private async deleteBlob(ctx: Ctx, name: string, digestParam: string): Promise<void> {
    const digest = this.parseDigestParam(digestParam);
    if (!(await this.driver.unlinkBlob(name, digest))) {
      throw new BlobUnknownError(`blob unknown: ${name}@${digest}`, { detail: { digest } });
    }
    this.empty(ctx, 202);
  }

  // ---- uploads ---------------------------------------------------------------------------

  private async startUpload(ctx: Ctx, name: string): Promise<void> {
    const { url, res } = ctx;
    const mount = url.searchParams.get('mount');
    if (mount !== null) {
      const digest = this.parseDigestParam(mount);
      const from = url.searchParams.get('from');
      await this.gc.guard(digest);
      const source = from !== null && NAME_RE.test(from) ? await this.driver.isBlobLinked(from, digest) : false;
      if (source && (await this.driver.statBlob(digest))) {
        await this.driver.linkBlob(name, digest);
        res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
        res.setHeader('Docker-Content-Digest', digest);
        return this.empty(ctx, 201);
      }
      // Not mountable: fall through to a regular upload session, as the spec asks.
    }
    const digestParam = url.searchParams.get('digest');
    const upload = await this.driver.createUpload(name);
    if (digestParam !== null && mount === null) {
      try {
        const digest = this.parseDigestParam(digestParam);
        await this.appendBody(ctx, upload.id, 0);
        await this.gc.guard(digest);
        await this.driver.commitUpload(upload.id, digest, contentLength(ctx.req));
        await this.driver.linkBlob(name, digest);
        res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
        res.setHeader('Docker-Content-Digest', digest);
        return this.empty(ctx, 201);
      } catch (error) {
        await this.driver.cancelUpload(upload.id).catch(() => undefined);
        throw error;
      }
    }
    if (!ctx.req.readableEnded) ctx.req.resume();
    this.uploadHeaders(ctx, name, upload.id, 0);
    this.empty(ctx, 202);
  }

  /**
   * Appends the request body to an upload. A large body is read from the socket straight into
   * the buffers the driver writes (see request-body.ts) when the driver takes chunks that way;
   * otherwise it streams through node:http as usual.
   */
  private async appendBody(ctx: Ctx, id: string, offset: number): Promise<number> {
    const body = this.driver.appendUploadChunks ? takeRequestBody(ctx.req, ctx.res) : undefined;
    if (!body || !this.driver.appendUploadChunks) return this.driver.appendUpload(id, offset, ctx.req);
    try {
      return await this.driver.appendUploadChunks(id, offset, body);
    } catch (error) {
      // Let the client finish sending so that it reads the error response.
      await body.discard();
      throw error;
    }
  }

  private uploadHeaders(ctx: Ctx, name: string, id: string, size: number): void {
    ctx.res.setHeader('Location', `/v2/${name}/blobs/uploads/${id}`);
    ctx.res.setHeader('Range', `0-${size > 0 ? size - 1 : 0}`);
    ctx.res.setHeader('Docker-Upload-UUID', id);
  }

  private async getUpload(name: string, id: string) {
    const upload = await this.driver.statUpload(id);
    if (!upload || upload.repository !== name) {
      throw new BlobUploadUnknownError(`blob upload unknown: ${name} upload ${id}`, { detail: { id } });
    }
    return upload;
  }

  private async uploadStatus(ctx: Ctx, name: string, id: string): Promise<void> {
    const upload = await this.getUpload(name, id);
    this.uploadHeaders(ctx, name, id, upload.size);
    this.empty(ctx, 204);
  }

  private async patchUpload(ctx: Ctx, name: string, id: string): Promise<void> {
    const upload = await this.getUpload(name, id);
    const contentRange = ctx.req.headers['content-range'];
    let offset = upload.size;
    if (contentRange !== undefined) {
      const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(contentRange.trim());
      if (!m) throw new RangeInvalidError(`invalid Content-Range: ${contentRange}`);
      offset = Number(m[1]);
      const end = Number(m[2]);
      const length = contentLength(ctx.req);
      if (length !== undefined && end - offset + 1 !== length) {
        throw new RangeInvalidError(`Content-Range ${contentRange} does not match Content-Length ${length}`);
      }
    }
    try {
      const size = await this.appendBody(ctx, id, offset);
      this.uploadHeaders(ctx, name, id, size);
      this.empty(ctx, 202);
    } catch (error) {
      if (error instanceof RangeInvalidError) {
        const current = await this.driver.statUpload(id);
        if (current) this.uploadHeaders(ctx, name, id, current.size);
      }
      throw error;
    }
  }

  private async finishUpload(ctx: Ctx, name: string, id: string): Promise<void> {
    const upload = await this.getUpload(name, id);
    const digestParam = ctx.url.searchParams.get('digest');
    if (digestParam === null || !isDigest(digestParam)) {
      if (!ctx.req.readableEnded) ctx.req.resume();
      throw new DigestInvalidError(`digest invalid: ${digestParam ?? '(missing digest parameter)'}`);
    }
    const digest = digestParam;
    const length = contentLength(ctx.req);
    if (length !== 0 && !(ctx.req.readableEnded && length === undefined)) {
      await this.appendBody(ctx, id, upload.size);
    }
    await this.gc.guard(digest);
    await this.driver.commitUpload(id, digest);
    await this.driver.linkBlob(name, digest);
    ctx.res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
    ctx.res.setHeader('Docker-Content-Digest', digest);
    this.empty(ctx, 201);
  }

  private async cancelUpload(ctx: Ctx, name: string, id: string): Promise<void> {
    await this.getUpload(name, id);
    await this.driver.cancelUpload(id);
    this.empty(ctx, 204);
  }

  // ---- listing ---------------------------------------------------------------------------

  private paginate(ctx: Ctx, all: string[], path: string, key: string, extra: Record<string, unknown>): void {
    const nParam = ctx.url.searchParams.get('n');
    const last = ctx.url.searchParams.get('last');
    let items = last !== null ? all.filter((x) => compareCodePoints(x, last) > 0) : all;
    if (nParam !== null) {
      const n = Number(nParam);
      if (!Number.isInteger(n) || n < 0) {
        throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid n: ${nParam}`, { status: 400, category: 'invalid' });
      }
      if (items.length > n) {
        items = items.slice(0, n);
        const lastItem = items[items.length - 1];
        if (lastItem !== undefined) {
          ctx.res.setHeader('Link', `<${path}?n=${n}&last=${encodeURIComponent(lastItem)}>; rel="next"`);
        }
      }
    }
    this.json(ctx, 200, { ...extra, [key]: items });
  }

  private async catalog(ctx: Ctx): Promise<void> {
    this.paginate(ctx, await this.driver.listRepositories(), '/v2/_catalog', 'repositories', {});
  }

  private async tags(ctx: Ctx, name: string): Promise<void> {
    const [tags, manifests] = await Promise.all([this.driver.listTags(name), this.driver.listManifests(name)]);
    if (tags.length === 0 && manifests.length === 0) {
      throw new NameUnknownError(`repository name not known to registry: ${name}`, { detail: { name } });
    }
    this.paginate(ctx, tags, `/v2/${name}/tags/list`, 'tags', { name });
  }

  private async referrers(ctx: Ctx, name: string, digestParam: string): Promise<void> {
    const subject = this.parseDigestParam(digestParam);
    const artifactType = ctx.url.searchParams.get('artifactType');
    let records = await this.driver.listReferrers(name, subject);
    // A referrer whose manifest was deleted without going through this server is skipped.
    const live: ReferrerRecord[] = [];
    for (const r of records) if (await this.driver.getManifestLink(name, r.digest)) live.push(r);
    records = live;
    if (artifactType !== null) {
      records = records.filter((r) => r.artifactType === artifactType);
      ctx.res.setHeader('OCI-Filters-Applied', 'artifactType');
    }
    const body = {
      schemaVersion: 2,
      mediaType: MediaType.ImageIndex,
      manifests: records.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    };
    this.json(ctx, 200, body, MediaType.ImageIndex);
  }

  // ---- responses -------------------------------------------------------------------------

  private json(ctx: Ctx, status: number, body: unknown, contentType = 'application/json; charset=utf-8'): void {
    const text = JSON.stringify(body);
    ctx.res.statusCode = status;
    ctx.res.setHeader('Content-Type', contentType);
    ctx.res.setHeader('Content-Length', Buffer.byteLength(text));
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : text);
  }

  private empty(ctx: Ctx, status: number): void {
    ctx.res.statusCode = status;
    ctx.res.setHeader('Content-Length', 0);
    ctx.res.end();
  }
}

function accessFor(route: Route, method: string): AccessRequest | undefined {
  if (route.kind === 'base' || route.kind === 'token') return undefined;
  if (route.kind === 'catalog') return { type: 'registry', name: 'catalog', actions: ['*'] };
  const action = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push';
  const actions = action === 'push' ? ['pull', 'push'] : [action];
  return { type: 'repository', name: route.name, actions };
}

function allowedMethods(route: Route): string {
  switch (route.kind) {
    case 'manifest':
      return 'GET, HEAD, PUT, DELETE';
    case 'blob':
      return 'GET, HEAD, DELETE';
    case 'uploads':
      return 'POST';
    case 'upload':
      return 'GET, PATCH, PUT, DELETE';
    default:
      return 'GET';
  }
}

function isTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

function isCategorised(error: unknown): error is { code: string; category: RegistryError['category']; message: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { category?: unknown }).category === 'string'
  );
}

function statusOfCategory(category: string): number {
  switch (category) {
    case 'not-found':
      return 404;
    case 'invalid':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'conflict':
    case 'already-exists':
      return 409;
    case 'not-implemented':
      return 405;
    case 'unavailable':
      return 503;
    default:
      return 500;
  }
}

function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) {
    req.resume();
    throw new SizeInvalidError(`manifest of ${declared} bytes exceeds the limit of ${limit} bytes`, { status: 413 });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) {
      req.resume();
      throw new SizeInvalidError(`manifest exceeds the limit of ${limit} bytes`, { status: 413 });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Size of the buffers `sendFileRange` reads into (two of them, reused). */
const SEND_CHUNK_BYTES = 1024 * 1024;

/**
 * Writes bytes [start, end] of an open file as the response body, then ends the response. Two
 * buffers take turns: one is read into while the other is being written to the socket, and a
 * buffer is only reused once the socket has taken its bytes (the write callback) — no
 * allocation per chunk and no stream machinery between the file and the socket. Resolves when
 * the response has ended or the client went away (nothing more can be sent then).
 */
async function sendFileRange(res: ServerResponse, handle: FileHandle, start: number, end: number): Promise<void> {
  let remaining = end - start + 1;
  let position = start;
  const size = Math.min(SEND_CHUNK_BYTES, remaining);
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(remaining > size ? size : 0)];
  const inFlight: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
  let gone = false;
  const closed = new Promise<void>((resolve) => {
    if (res.destroyed) gone = true;
    res.once('close', () => {
      gone = true;
      resolve();
    });
  });
  const written = (buffer: Buffer): Promise<void> =>
    new Promise<void>((resolve) => {
      res.write(buffer, () => resolve());
    });
  for (let turn = 0; remaining > 0; turn ^= 1) {
    await Promise.race([inFlight[turn], closed]);
    if (gone) return;
    const buffer = buffers[turn]!;
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, remaining), position);
    if (bytesRead === 0) throw new Error(`blob file ended ${remaining} bytes early`);
    if (gone) return;
    position += bytesRead;
    remaining -= bytesRead;
    inFlight[turn] = written(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
  }
  await Promise.race([Promise.all(inFlight), closed]);
  if (!gone) res.end();
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` for one range; undefined when unsatisfiable or malformed. */
export function parseRangeHeader(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, end };
}

/** isDigest without the type-guard narrowing (a Digest is just a string, so the guard narrows to never). */
function isDigest(value: string): boolean {
  return isDigestGuard(value);
}

function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { subject?: Descriptor };
    return typeof doc.subject?.digest === 'string' ? doc.subject.digest : undefined;
  } catch {
    return undefined;
  }
}
