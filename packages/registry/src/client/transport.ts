import { request as httpRequest, type IncomingMessage, type RequestOptions as HttpRequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import ky from 'ky';
import {
  RegistryError,
  RegistryUnavailableError,
  UnauthorizedError,
  registryErrorFromCode,
} from '../errors.js';
import { parseWwwAuthenticate, TokenCache, type Challenge } from './auth.js';
import { sendRaw, type RawResponse } from './raw-http.js';
import type { Credential, CredentialStore } from './credentials.js';

/** A fetch request body (the DOM's BodyInit, which this lib setting does not declare). */
export type BodyInit = NonNullable<RequestInit['body']>;

export interface TransportOptions {
  insecure: string[];
  credentials: CredentialStore;
  userAgent: string;
  /** Attempts for retryable failures (429, 5xx, connection errors). Default 5. */
  maxAttempts: number;
  /** First backoff delay; doubles each attempt, with jitter. Default 250 ms. */
  backoffMs: number;
}

export interface RequestSpec {
  method: string;
  /** Absolute URL on `host` (or on a host it redirected to). */
  url: string;
  /** The registry host the request belongs to; credentials are only ever sent to it. */
  host: string;
  /** Token scopes the request needs, e.g. `repository:library/busybox:pull`. */
  scopes: string[];
  headers?: Record<string, string>;
  /** Called for every attempt, so a streamed body can be produced afresh on a retry. */
  body?: () => BodyInit | undefined;
  /** Retry on 429/5xx/connection errors; only for requests that are safe to repeat. */
  retry?: boolean;
  signal?: AbortSignal;
}

/**
 * A response whose body is node:http's own stream — for large blob GETs, where reading through
 * fetch's web streams costs several times what the socket does.
 */
export interface StreamResponse {
  status: number;
  ok: boolean;
  headers: Headers;
  body: IncomingMessage;
}

/** The part of a response the request loop looks at, for fetch's and node:http's alike. */
interface AnyResponse {
  status: number;
  headers: Headers;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_RETRY_AFTER_MS = 60_000;

/** True for localhost and loopback addresses, which may be spoken to over plain HTTP. */
export function isLoopbackHost(host: string): boolean {
  const name = hostWithoutPort(host).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/**
 * HTTP for the registry client: scheme choice, auth (anonymous → challenge → bearer or basic),
 * redirects that never carry credentials to another host, and retries with backoff that honour
 * `Retry-After`. Everything goes through ky with its own retry and redirect handling turned off,
 * so that the rules above are the only ones in force.
 */
export class Transport {
  private readonly options: TransportOptions;
  private readonly tokens = new TokenCache();
  /** The challenge each host answered with last, so later requests authenticate up front. */
  private readonly challenges = new Map<string, Challenge>();
  private readonly schemes = new Map<string, Promise<'http' | 'https'>>();
  private readonly credentialCache = new Map<string, Promise<Credential | undefined>>();

  constructor(options: TransportOptions) {
    this.options = options;
  }

  /** `https`, or `http` for loopback and hosts marked insecure when they do not speak TLS. */
  scheme(host: string): Promise<'http' | 'https'> {
    let known = this.schemes.get(host);
    if (!known) {
      const plainAllowed = isLoopbackHost(host) || this.options.insecure.some((h) => h.toLowerCase() === host.toLowerCase());
      known = plainAllowed ? this.probeTls(host) : Promise.resolve('https' as const);
      this.schemes.set(host, known);
    }
    return known;
  }

  private async probeTls(host: string): Promise<'http' | 'https'> {
    try {
      await ky(`https://${host}/v2/`, {
        method: 'GET',
        retry: 0,
        timeout: false,
        signal: AbortSignal.timeout(5_000),
        throwHttpErrors: false,
        redirect: 'manual',
        headers: { 'User-Agent': this.options.userAgent },
      });
      return 'https';
    } catch {
      return 'http';
    }
  }

  async baseUrl(host: string): Promise<string> {
    return `${await this.scheme(host)}://${host}`;
  }

  private credential(host: string): Promise<Credential | undefined> {
    let cached = this.credentialCache.get(host);
    if (!cached) {
      cached = this.options.credentials.get(host);
      this.credentialCache.set(host, cached);
      cached.catch(() => this.credentialCache.delete(host));
    }
    return cached;
  }

  /** Sends a request, following redirects and authenticating; returns any final response. */
  request(spec: RequestSpec): Promise<Response> {
    return this.loop(spec, (url, method, headers, init) => this.sendFetch(spec, url, method, headers, init), async (r) => {
      await r.body?.cancel().catch(() => undefined);
    });
  }

  /**
   * Like `request` (same auth, redirect, credential and retry rules) for a GET whose body is
   * streamed: the body is node:http/https's own stream. Call
   * `errorFromStreamResponse` for a non-2xx answer.
   */
  requestStream(spec: RequestSpec): Promise<StreamResponse> {
    return this.loop(spec, (url, method, headers) => sendNode(spec, url, method, headers), async (r) => void r.body.destroy());
  }

  /**
   * Like `requestStream`, over `sendRaw`: the body's chunks are lent views of reused memory (see
   * `LentChunks`) — the cheap way to take in a large blob. Call `errorFromRawResponse` for a
   * non-2xx answer.
   */
  requestRaw(spec: RequestSpec): Promise<RawResponse> {
    return this.loop(spec, (url, method, headers) => sendRaw(url, method, headers, spec.signal), async (r) => void r.body.destroy());
  }

  private async loop<R extends AnyResponse>(
    spec: RequestSpec,
    send: (url: string, method: string, headers: Record<string, string>, init: BodyInit | undefined) => Promise<R>,
    discard: (r: R) => Promise<unknown>,
  ): Promise<R> {
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      let response: R;
      try {
        response = await this.sendFollowingRedirects(spec, send, discard);
      } catch (error) {
        if (spec.signal?.aborted) throw error;
        if (spec.retry !== false && attempt < this.options.maxAttempts && isConnectionError(error)) {
          await sleep(this.backoff(attempt), spec.signal);
          continue;
        }
        throw new RegistryUnavailableError(`${spec.method} ${spec.url}: ${describe(error)}`, { cause: error });
      }
      if (response.status === 401 && !authRetried) {
        const header = response.headers.get('www-authenticate');
        await discard(response);
        if (header && (await this.answerChallenge(spec, header))) {
          authRetried = true;
          attempt--;
          continue;
        }
        // The error needs the body; `discard` already dropped it, so the status speaks alone.
        throw await errorFromResponse(new Response(null, { status: 401, headers: response.headers }), spec, 'UNAUTHORIZED');
      }
      if (spec.retry !== false && RETRYABLE_STATUS.has(response.status) && attempt < this.options.maxAttempts) {
        const wait = retryAfterMs(response.headers.get('retry-after')) ?? this.backoff(attempt);
        await discard(response);
        await sleep(Math.min(wait, MAX_RETRY_AFTER_MS), spec.signal);
        continue;
      }
      return response;
    }
  }

  private backoff(attempt: number): number {
    const base = this.options.backoffMs * 2 ** (attempt - 1);
    return Math.min(base + Math.random() * base * 0.25, 10_000);
  }

  private sendFetch(spec: RequestSpec, url: string, method: string, headers: Record<string, string>, init: BodyInit | undefined): Promise<Response> {
    return ky(url, {
      method,
      headers,
      retry: 0,
      timeout: false,
      throwHttpErrors: false,
      redirect: 'manual',
      ...(spec.signal ? { signal: spec.signal } : {}),
      ...(init !== undefined ? { body: init, duplex: 'half' } : {}),
    } as Parameters<typeof ky>[1]);
  }

  private async sendFollowingRedirects<R extends AnyResponse>(
    spec: RequestSpec,
    send: (url: string, method: string, headers: Record<string, string>, init: BodyInit | undefined) => Promise<R>,
    discard: (r: R) => Promise<unknown>,
  ): Promise<R> {
    let url = spec.url;
    let method = spec.method;
    let body = spec.body;
    for (let hop = 0; hop < 10; hop++) {
      const target = new URL(url);
      const sameHost = target.host.toLowerCase() === spec.host.toLowerCase();
      const headers: Record<string, string> = { 'User-Agent': this.options.userAgent, ...spec.headers };
      if (sameHost) {
        const authorization = await this.authorization(spec.host, spec.scopes);
        if (authorization) headers.Authorization = authorization;
      } else {
        delete headers.Authorization;
      }
      const init = body?.();
      const response = await send(url, method, headers, init);
      if (!REDIRECT_STATUS.has(response.status)) return response;
      const location = response.headers.get('location');
      if (!location) return response;
      await discard(response);
      url = new URL(location, url).toString();
      if (response.status === 303) {
        method = 'GET';
        body = undefined;
      }
    }
    throw new RegistryError('TOO_MANY_REDIRECTS', `${spec.method} ${spec.url}: too many redirects`, { category: 'unavailable' });
  }

  /** The Authorization header for host+scopes from what is known already, without a round trip. */
  private async authorization(host: string, scopes: string[]): Promise<string | undefined> {
    const challenge = this.challenges.get(host);
    if (!challenge) return undefined;
    if (challenge.scheme === 'bearer') {
      const cached = this.tokens.get(host, scopes);
      if (cached) return `Bearer ${cached}`;
      const token = await this.fetchToken(host, challenge, scopes).catch(() => undefined);
      return token ? `Bearer ${token}` : undefined;
    }
    if (challenge.scheme === 'basic') {
      const cred = await this.credential(host);
      if (cred?.username !== undefined && cred.password !== undefined) {
        return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
      }
    }
    return undefined;
  }

  /** Learns the host's challenge; true when a retry with credentials can succeed. */
  private async answerChallenge(spec: RequestSpec, header: string): Promise<boolean> {
    const challenges = parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const previous = this.challenges.get(spec.host);
    if (bearer?.params.realm) {
      // A challenge for the same realm after we sent a token means the token was refused.
      if (previous?.scheme === 'bearer' && this.tokens.get(spec.host, spec.scopes)) {
        this.tokens.delete(spec.host, spec.scopes);
        if (bearer.params.error === 'insufficient_scope') return false;
      }
      this.challenges.set(spec.host, bearer);
      const scopes = bearer.params.scope ? [...new Set([...spec.scopes, ...bearer.params.scope.split(' ')])] : spec.scopes;
      await this.fetchToken(spec.host, bearer, scopes, spec.scopes);
      return true;
    }
    if (basic) {
      if (previous?.scheme === 'basic') return false;
      this.challenges.set(spec.host, basic);
      const cred = await this.credential(spec.host);
      return cred?.username !== undefined && cred.password !== undefined;
    }
    return false;
  }

  private async fetchToken(host: string, challenge: Challenge, scopes: string[], cacheAs: string[] = scopes): Promise<string> {
    const realm = new URL(challenge.params.realm ?? '');
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isLoopbackHost(realm.host)) && realm.host !== host) {
      throw new UnauthorizedError(`refusing token realm ${realm} over plain HTTP for ${host}`);
    }
    const cred = await this.credential(host);
    if (cred?.registryToken) {
      this.tokens.set(host, cacheAs, cred.registryToken, 300);
      return cred.registryToken;
    }
    const service = challenge.params.service;
    let response: Response;
    if (cred?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'berth' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      response = await ky(realm, {
        method: 'POST',
        body: form,
        retry: 0,
        timeout: false,
        signal: AbortSignal.timeout(30_000),
        throwHttpErrors: false,
        headers: { 'User-Agent': this.options.userAgent },
      });
    } else {
      if (service) realm.searchParams.set('service', service);
      for (const scope of scopes) realm.searchParams.append('scope', scope);
      const headers: Record<string, string> = { 'User-Agent': this.options.userAgent };
      if (cred?.username !== undefined && cred.password !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
      }
      response = await ky(realm, { method: 'GET', headers, retry: 0, timeout: false,
        signal: AbortSignal.timeout(30_000), throwHttpErrors: false });
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      throw new UnauthorizedError(`token request to ${realm.origin}${realm.pathname} for ${host} failed with ${response.status}: ${text.slice(0, 200)}`, {
        status: response.status,
      });
    }
    const body = (await response.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new UnauthorizedError(`token endpoint ${realm.origin} returned no token for ${host}`);
    this.tokens.set(host, cacheAs, token, body.expires_in && body.expires_in > 0 ? body.expires_in : 60);
    return token;
  }
}

/** One node:http(s) request without a body; resolves when the response headers are in. */
function sendNode(spec: RequestSpec, url: string, method: string, headers: Record<string, string>): Promise<StreamResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const options: HttpRequestOptions = { method, headers };
    if (spec.signal) options.signal = spec.signal;
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, options, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const x of v) h.append(k, x);
        else h.set(k, v);
      }
      const status = res.statusCode ?? 0;
      resolve({ status, ok: status >= 200 && status < 300, headers: h, body: res });
    });
    req.once('error', reject);
    req.end();
  });
}

/** `errorFromResponse` for a streamed response (reads at most 64 KiB of its body). */
export async function errorFromStreamResponse(response: StreamResponse, spec: { method: string; url: string }, fallbackCode: string): Promise<RegistryError> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 64 * 1024) break;
    }
  } catch {
    // body unreadable: the status is all we have
  }
  response.body.destroy();
  const status = response.status >= 200 && response.status <= 599 ? response.status : 500;
  return errorFromResponse(new Response(Buffer.concat(chunks), { status, headers: response.headers }), spec, fallbackCode);
}

/** `errorFromResponse` for a `sendRaw` response (reads at most 64 KiB of its body). */
export async function errorFromRawResponse(response: RawResponse, spec: { method: string; url: string }, fallbackCode: string): Promise<RegistryError> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      chunks.push(Buffer.from(chunk));
      response.body.release(chunk);
      size += chunk.length;
      if (size >= 64 * 1024) break;
    }
  } catch {
    // body unreadable: the status is all we have
  }
  response.body.destroy();
  const status = response.status >= 200 && response.status <= 599 ? response.status : 500;
  return errorFromResponse(new Response(Buffer.concat(chunks), { status, headers: response.headers }), spec, fallbackCode);
}

/** Turns a non-2xx response into the typed error for its distribution error code. */
export async function errorFromResponse(response: Response, spec: { method: string; url: string }, fallbackCode: string): Promise<RegistryError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // body unreadable: the status is all we have
  }
  const status = response.status;
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    const first = body.errors?.[0];
    if (first?.code) {
      return registryErrorFromCode(first.code, `${first.message ?? first.code} (${spec.method} ${spec.url})`, {
        status,
        detail: first.detail,
      });
    }
  } catch {
    // not a distribution error body
  }
  const code =
    status === 401
      ? 'UNAUTHORIZED'
      : status === 403
        ? 'DENIED'
        : status === 429
          ? 'TOOMANYREQUESTS'
          : status === 416
            ? 'RANGE_INVALID'
            : status >= 500
              ? 'UNAVAILABLE'
              : fallbackCode;
  return registryErrorFromCode(code, `${spec.method} ${spec.url}: HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, { status });
}

export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  return undefined;
}

export function isConnectionError(error: unknown): boolean {
  let e: unknown = error;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'EAI_AGAIN', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)
    ) {
      return true;
    }
    if (e instanceof TypeError && /fetch failed|terminated|other side closed/i.test(e.message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function describe(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; i < 4 && e; i++) {
    if (e instanceof Error) parts.push(e.message);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ') || String(error);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
