import type { WireResponse } from './transport/wire.js';
import type { Readable } from 'node:stream';
import type { KyInstance } from 'ky';
import { splitReference } from './transport/reference.js';
import { dockerConfigPath, encodeRegistryAuth, readDockerConfig, resolveAllAuths, resolveAuth } from './auth/docker-config.js';
import { AbortedError, ClientError, StreamError, errorFromResponse } from './errors.js';
import { frames } from './streams/demux.js';
import type { OutputFrame } from './streams/demux.js';
import { jsonLines } from './streams/json-lines.js';
import { resolveHost } from './transport/host.js';
import type { Endpoint } from './transport/host.js';
import { createTransport, readBody } from './transport/http.js';
import type { Hijacked, Transport } from './transport/http.js';
import type {
  CommitOptions,
  ContainerChange,
  ContainerCreateBody,
  ContainerCreateOptions,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerPruneResponse,
  ContainerStats,
  ContainerSummary,
  ContainerTopResponse,
  ContainerUpdateBody,
  ContainerUpdateResponse,
  ContainerWaitResponse,
  PathStat,
  WaitCondition,
} from './types/container.js';
import type { ExecCreateBody, ExecCreateResponse, ExecInspect } from './types/exec.js';
import type {
  AuthConfig,
  AuthResponse,
  BuildOptions,
  DistributionInspect,
  ImageDeleteItem,
  ImageHistoryItem,
  ImageInspect,
  ImagePruneResponse,
  ImageSummary,
  ProgressMessage,
  SearchResult,
} from './types/image.js';
import type { NetworkConnectBody, NetworkCreateBody, NetworkCreateResponse, NetworkInspect, NetworkPruneResponse } from './types/network.js';
import type { DiskUsage, EventMessage, Filters, PingResult, SystemInfo, VersionInfo } from './types/system.js';
import type { Volume, VolumeCreateBody, VolumeListResponse, VolumePruneResponse } from './types/volume.js';

/** The newest Engine API version this client speaks (the shapes in ./types are 1.44's). */
export const MAX_API_VERSION = '1.44';
/** What docker's client assumes when the daemon's ping carries no Api-Version. */
export const FALLBACK_API_VERSION = '1.24';

export interface ClientOptions {
  /** `unix:///run/berth/berth.sock`, `tcp://host:2376`… Default: BERTH_HOST, DOCKER_HOST, then berthd's socket. */
  host?: string;
  /** Already-parsed endpoint (overrides `host`). */
  endpoint?: Endpoint;
  /** Pin the API version (like DOCKER_API_VERSION) instead of negotiating through /_ping. */
  apiVersion?: string;
  /** Default timeout in ms for every call that does not pass its own (until response headers). */
  timeout?: number;
  /** Sent as User-Agent. */
  userAgent?: string;
  /** Environment to read BERTH_HOST/DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH/DOCKER_CONFIG from. */
  env?: NodeJS.ProcessEnv;
  /**
   * How JSON calls travel: `ky` (default; ky over this package's node:http fetch) or `http` (straight
   * node:http, no fetch classes). A short-lived CLI uses `http`: loading ky and Node's fetch globals
   * (Request/Response) nearly doubles a `berth ps` on this machine. Same requests, same errors.
   */
  jsonTransport?: 'ky' | 'http';
}

/** Every method takes these: an AbortSignal and a timeout (ms, until the response headers arrive). */
export interface CallOptions {
  signal?: AbortSignal;
  timeout?: number;
}

/** Registry credentials for pull/push: given, or looked up in ~/.docker/config.json. */
export interface RegistryAuthOptions {
  auth?: AuthConfig;
}

/** An attached container or exec session over a hijacked connection. */
export interface AttachSession {
  /** Output frames: demultiplexed `{stream, data}` (everything on stdout for TTY). */
  output: AsyncIterable<OutputFrame>;
  /** Write stdin here; `end()` half-closes the connection (stdin EOF) and output keeps flowing. */
  stdin: NodeJS.WritableStream;
  /** Whether the daemon switched protocols (101) or answered a plain 200 stream. */
  upgraded: boolean;
  /** Tears the connection down. */
  close(): void;
}

export interface LogsOptions extends CallOptions {
  stdout?: boolean;
  stderr?: boolean;
  follow?: boolean;
  tail?: number | 'all';
  since?: number | string;
  until?: number | string;
  timestamps?: boolean;
  /** Whether the container has a TTY (raw output). Found from the content type or the bytes when omitted. */
  tty?: boolean;
}

export interface AttachOptions extends CallOptions {
  stream?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  logs?: boolean;
  detachKeys?: string;
  tty?: boolean;
}

type Query = Record<string, string | number | boolean | string[] | undefined | null>;

/**
 * A typed Docker Engine API client. Works against berthd and dockerd.
 *
 * Calls are grouped by object: `client.containers`, `client.images`, `client.exec`, `client.networks`,
 * `client.volumes`, `client.system`. Errors: DaemonError subclasses by status (NotFoundError…) carrying
 * the daemon's message, ConnectionError when the daemon cannot be reached, AbortedError on abort/timeout,
 * StreamError for an error reported inside a progress stream.
 */
export class BerthClient {
  readonly host: string;
  readonly endpoint: Endpoint;
  private readonly transport: Transport;
  private http: Promise<KyInstance> | undefined;
  private readonly options: ClientOptions;
  private version: Promise<string> | undefined;

  readonly containers: ContainersApi;
  readonly images: ImagesApi;
  readonly exec: ExecApi;
  readonly networks: NetworksApi;
  readonly volumes: VolumesApi;
  readonly system: SystemApi;

  constructor(options: ClientOptions = {}) {
    this.options = options;
    const env = options.env ?? process.env;
    if (options.endpoint) {
      this.endpoint = options.endpoint;
      this.host = options.host ?? (options.endpoint.kind === 'unix' ? `unix://${options.endpoint.socketPath}` : `tcp://${options.endpoint.host}:${options.endpoint.port}`);
    } else {
      const resolved = resolveHost(options.host, env);
      this.host = resolved.url;
      this.endpoint = resolved.endpoint;
    }
    this.transport = createTransport(this.endpoint, this.host);
    const pinned = options.apiVersion ?? (env.DOCKER_API_VERSION || undefined);
    if (pinned) this.version = Promise.resolve(pinned.replace(/^v/, ''));
    this.containers = new ContainersApi(this);
    this.images = new ImagesApi(this);
    this.exec = new ExecApi(this);
    this.networks = new NetworksApi(this);
    this.volumes = new VolumesApi(this);
    this.system = new SystemApi(this);
  }

  /** Releases pooled connections. */
  close(): void {
    this.transport.close();
  }

  /**
   * The API version used for requests: pinned, or negotiated once like docker's client — the lower of
   * the daemon's Api-Version and MAX_API_VERSION; 1.24 when the ping carries none.
   */
  apiVersion(call: CallOptions = {}): Promise<string> {
    if (!this.version) {
      const pending = this.ping(call).then((p) => negotiateVersion(p.apiVersion));
      this.version = pending;
      pending.catch(() => {
        if (this.version === pending) this.version = undefined;
      });
    }
    return this.version;
  }

  /** `HEAD /_ping`, then `GET /_ping` if HEAD is not answered 200/500 — as docker's client. */
  async ping(call: CallOptions = {}): Promise<PingResult> {
    let res = await this.raw({ method: 'HEAD', path: '/_ping', call, versioned: false });
    if (res.statusCode !== 200 && res.statusCode !== 500) {
      res.resume();
      res = await this.raw({ method: 'GET', path: '/_ping', call, versioned: false });
    }
    const text = await readBody(res);
    if (res.statusCode !== 200 && res.statusCode !== 500) throw errorFromResponse(res.statusCode, text);
    const h = res.headers;
    const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
    const result: PingResult = { experimental: one(h['docker-experimental']) === 'true' };
    const apiVersion = one(h['api-version']);
    if (apiVersion) result.apiVersion = apiVersion;
    const osType = one(h['ostype']);
    if (osType) result.osType = osType;
    const builder = one(h['builder-version']);
    if (builder) result.builderVersion = builder;
    const swarm = one(h['swarm']);
    if (swarm) result.swarm = swarm;
    return result;
  }

  // ---- plumbing shared by the API groups (internal, but typed) ----

  /** @internal Full path with the negotiated version prefix and the query string. */
  async url(path: string, query: Query | undefined, call: CallOptions, versioned = true): Promise<string> {
    const prefix = versioned ? `/v${await this.apiVersion(call)}` : '';
    return prefix + path + encodeQuery(query);
  }

  private ky(): Promise<KyInstance> {
    this.http ??= import('ky').then(({ default: ky }) =>
      ky.create({
        prefixUrl: 'http://api.moby.localhost',
        fetch: this.transport.fetch,
        retry: 0,
        timeout: false,
        throwHttpErrors: false,
        headers: { 'User-Agent': this.options.userAgent ?? 'berth-client/0.1.0' },
      }),
    );
    return this.http;
  }

  /** @internal A JSON call (ky, or node:http with `jsonTransport: 'http'`). Non-2xx answers become typed DaemonErrors. */
  async json<T>(method: string, path: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string>; call?: CallOptions; allow?: number[] } = {}): Promise<T> {
    const call = opts.call ?? {};
    const url = await this.url(path, opts.query, call);
    const { signal, cleanup, timedOut } = this.signalFor(call);
    try {
      let status: number;
      let text: string;
      if (this.options.jsonTransport === 'http') {
        const res = await this.transport.request({
          method,
          path: url,
          headers: {
            'User-Agent': this.options.userAgent ?? 'berth-client/0.1.0',
            ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
            ...opts.headers,
          },
          body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
          signal,
        });
        status = res.statusCode;
        text = await readBody(res);
      } else {
        const http = await this.ky();
        const res = await http(url.slice(1), {
          method,
          headers: opts.headers,
          signal,
          ...(opts.body !== undefined ? { json: opts.body } : {}),
        });
        status = res.status;
        text = await res.text();
      }
      if ((status < 200 || status >= 300) && !(opts.allow ?? []).includes(status)) throw errorFromResponse(status, text);
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new ClientError('BAD_RESPONSE', 'internal', `${method} ${path}: the daemon's answer is not JSON: ${text.slice(0, 200)}`, { cause: error });
      }
    } catch (error) {
      throw this.mapAbort(error, timedOut(), call, `${method} ${path}`);
    } finally {
      cleanup();
    }
  }

  /**
   * @internal A raw node:http call for streaming bodies/answers. Resolves once the response headers
   * arrive; non-2xx (outside `allow`) become typed errors. The timeout covers only the headers.
   */
  async raw(opts: { method: string; path: string; query?: Query; body?: Readable | AsyncIterable<Uint8Array> | Uint8Array | string; headers?: Record<string, string>; call?: CallOptions; versioned?: boolean; allow?: number[]; checkStatus?: boolean }): Promise<WireResponse> {
    const call = opts.call ?? {};
    const url = await this.url(opts.path, opts.query, call, opts.versioned ?? true);
    const { signal, cleanup, timedOut, release } = this.signalFor(call, true);
    try {
      const res = await this.transport.request({
        method: opts.method,
        path: url,
        headers: { 'User-Agent': this.options.userAgent ?? 'berth-client/0.1.0', ...opts.headers },
        body: opts.body,
        signal,
      });
      release();
      const status = res.statusCode;
      if (opts.checkStatus && (status < 200 || status >= 300) && !(opts.allow ?? []).includes(status)) {
        throw errorFromResponse(status, await readBody(res));
      }
      return res;
    } catch (error) {
      cleanup();
      throw this.mapAbort(error, timedOut(), call, `${opts.method} ${opts.path}`);
    }
  }

  /** @internal A hijacked (101 upgrade) connection for attach and exec start. */
  async hijack(path: string, query: Query | undefined, body: unknown, call: CallOptions): Promise<Hijacked> {
    const url = await this.url(path, query, call);
    const { signal, timedOut, release } = this.signalFor(call, true);
    try {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const hijacked = await this.transport.hijack({
        method: 'POST',
        path: url,
        headers: { 'User-Agent': this.options.userAgent ?? 'berth-client/0.1.0', ...(payload ? { 'Content-Type': 'application/json' } : {}) },
        body: payload,
        signal,
      });
      release();
      return hijacked;
    } catch (error) {
      throw this.mapAbort(error, timedOut(), call, `POST ${path}`);
    }
  }

  /** @internal Credentials for a reference's registry: given, else from config.json and helpers. */
  async registryAuthHeader(ref: string, auth: AuthConfig | undefined): Promise<string> {
    if (auth) return encodeRegistryAuth(auth);
    const { domain } = splitReference(ref);
    const found = await resolveAuth(domain, await readDockerConfig(dockerConfigPath(this.options.env ?? process.env)));
    return encodeRegistryAuth(found);
  }

  /** @internal X-Registry-Config for builds: every stored credential. */
  async registryConfigHeader(): Promise<string> {
    return encodeRegistryAuth(await resolveAllAuths(await readDockerConfig(dockerConfigPath(this.options.env ?? process.env))));
  }

  private signalFor(call: CallOptions, releasable = false): { signal: AbortSignal | undefined; cleanup: () => void; timedOut: () => boolean; release: () => void } {
    const timeout = call.timeout ?? this.options.timeout;
    const signals: AbortSignal[] = [];
    if (call.signal) signals.push(call.signal);
    let timer: NodeJS.Timeout | undefined;
    let fired = false;
    let controller: AbortController | undefined;
    if (timeout !== undefined && timeout > 0) {
      controller = new AbortController();
      timer = setTimeout(() => {
        fired = true;
        controller?.abort(new AbortedError(`timed out after ${timeout} ms`));
      }, timeout);
      signals.push(controller.signal);
    }
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
    };
    // After the headers arrive a streaming call is no longer subject to the timeout; it only follows
    // the caller's signal. The node:http request keeps listening to `signal`, so the timeout controller
    // must simply never fire.
    const release = (): void => {
      cleanup();
      void releasable;
    };
    return { signal, cleanup, timedOut: () => fired, release };
  }

  private mapAbort(error: unknown, timedOut: boolean, call: CallOptions, what: string): unknown {
    if (error instanceof ClientError && !(error instanceof AbortedError)) return error;
    const name = (error as Error)?.name;
    if (timedOut) return new AbortedError(`${what} timed out after ${call.timeout ?? this.options.timeout} ms`, { cause: error });
    if (error instanceof AbortedError || name === 'AbortError' || name === 'TimeoutError') {
      return new AbortedError(`${what} was aborted`, { cause: error });
    }
    return error;
  }
}

function negotiateVersion(serverVersion: string | undefined): string {
  if (!serverVersion) return FALLBACK_API_VERSION;
  return compareVersions(serverVersion, MAX_API_VERSION) < 0 ? serverVersion : MAX_API_VERSION;
}

/** Compares dotted API versions numerically (`1.9` < `1.44`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Query string the way docker's client writes it: booleans as 1/0, arrays repeated, objects as JSON. */
export function encodeQuery(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, v);
    else if (typeof value === 'boolean') params.append(key, value ? '1' : '0');
    else params.append(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/**
 * Filters in the map form the docker CLI sends (`{"label":{"a=b":true}}`); undefined when empty.
 */
export function encodeFilters(filters: Filters | undefined): string | undefined {
  if (!filters) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const [key, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [String(value)];
    if (values.length === 0) continue;
    out[key] = Object.fromEntries(values.map((v) => [v, true]));
  }
  return Object.keys(out).length === 0 ? undefined : JSON.stringify(out);
}

function id(value: string): string {
  return encodeURIComponent(value);
}

/** Image names keep their `/` and `:` in paths, as docker's client sends them. */
function imagePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/').replace(/%3A/gi, ':');
}

/** Reads a JSON progress stream; yields every message and throws StreamError on an in-band error. */
export async function* progressMessages(res: AsyncIterable<Uint8Array> & { destroy?: () => void }): AsyncGenerator<ProgressMessage> {
  try {
    for await (const message of jsonLines<ProgressMessage>(res)) {
      if (message.errorDetail || message.error) {
        throw new StreamError({ ...(message.errorDetail?.code !== undefined ? { code: message.errorDetail.code } : {}), message: message.errorDetail?.message ?? message.error ?? 'unknown error' });
      }
      yield message;
    }
  } finally {
    res.destroy?.();
  }
}

function attachSession(h: Hijacked, tty: boolean | undefined): AttachSession {
  const contentType = Array.isArray(h.headers['content-type']) ? h.headers['content-type'][0] : h.headers['content-type'];
  const output = frames(h.output, contentType, tty);
  return {
    output,
    stdin: h.socket,
    upgraded: h.upgraded,
    close: () => {
      h.socket.destroy();
      h.output.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface ContainerListOptions extends CallOptions {
  all?: boolean;
  limit?: number;
  size?: boolean;
  filters?: Filters;
}

export class ContainersApi {
  constructor(private readonly c: BerthClient) {}

  list(opts: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    return this.c.json('GET', '/containers/json', { query: { all: opts.all || undefined, limit: opts.limit, size: opts.size || undefined, filters: encodeFilters(opts.filters) }, call: opts });
  }
  create(body: ContainerCreateBody, opts: ContainerCreateOptions & CallOptions = {}): Promise<ContainerCreateResponse> {
    return this.c.json('POST', '/containers/create', { query: { name: opts.name, platform: opts.platform }, body, call: opts });
  }
  inspect(nameOrId: string, opts: CallOptions & { size?: boolean } = {}): Promise<ContainerInspect> {
    return this.c.json('GET', `/containers/${id(nameOrId)}/json`, { query: { size: opts.size || undefined }, call: opts });
  }
  /** Resolves true when started, false when it already was (304). */
  async start(nameOrId: string, opts: CallOptions & { detachKeys?: string } = {}): Promise<boolean> {
    const res = await this.c.raw({ method: 'POST', path: `/containers/${id(nameOrId)}/start`, query: { detachKeys: opts.detachKeys }, call: opts, checkStatus: true, allow: [304] });
    res.resume();
    return res.statusCode !== 304;
  }
  /** Resolves true when stopped, false when it was not running (304). */
  async stop(nameOrId: string, opts: CallOptions & { t?: number; signal_?: string } = {}): Promise<boolean> {
    const res = await this.c.raw({ method: 'POST', path: `/containers/${id(nameOrId)}/stop`, query: { t: opts.t, signal: opts.signal_ }, call: opts, checkStatus: true, allow: [304] });
    res.resume();
    return res.statusCode !== 304;
  }
  async restart(nameOrId: string, opts: CallOptions & { t?: number; signal_?: string } = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/restart`, { query: { t: opts.t, signal: opts.signal_ }, call: opts });
  }
  /** `signal_` is the signal to send (`SIGTERM`, `9`…); `signal` stays the AbortSignal. */
  async kill(nameOrId: string, opts: CallOptions & { signal_?: string } = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/kill`, { query: { signal: opts.signal_ }, call: opts });
  }
  async remove(nameOrId: string, opts: CallOptions & { force?: boolean; volumes?: boolean; link?: boolean } = {}): Promise<void> {
    await this.c.json('DELETE', `/containers/${id(nameOrId)}`, { query: { force: opts.force || undefined, v: opts.volumes || undefined, link: opts.link || undefined }, call: opts });
  }
  /**
   * `POST /containers/{id}/wait`. `waiting()` resolves as soon as the daemon has sent the response headers,
   * i.e. once the wait is registered — `run` starts the container only after that, as docker does.
   */
  waitFor(nameOrId: string, opts: CallOptions & { condition?: WaitCondition } = {}): { waiting: Promise<void>; result: Promise<ContainerWaitResponse> } {
    // The daemon answers with headers at once and holds the body until the condition is met, so here the
    // timeout covers the whole wait, not only the headers.
    const signals = [opts.signal, opts.timeout ? AbortSignal.timeout(opts.timeout) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const what = `wait ${nameOrId}`;
    const aborted = (error: unknown): unknown => {
      if (error instanceof ClientError && !(error instanceof AbortedError)) return error;
      if (signal?.aborted) {
        const timedOut = opts.timeout !== undefined && !opts.signal?.aborted;
        return new AbortedError(timedOut ? `${what} timed out after ${opts.timeout} ms` : `${what} was aborted`, { cause: error });
      }
      return error;
    };
    const response = this.c.raw({ method: 'POST', path: `/containers/${id(nameOrId)}/wait`, query: { condition: opts.condition }, call: { signal }, checkStatus: true });
    const result = response.then(async (res) => {
      let text: string;
      try {
        text = await readBody(res);
      } catch (error) {
        throw aborted(error);
      }
      try {
        return JSON.parse(text) as ContainerWaitResponse;
      } catch (error) {
        throw new ClientError('BAD_RESPONSE', 'internal', `${what}: the daemon's answer is not JSON: ${text.slice(0, 200)}`, { cause: error });
      }
    }, (error: unknown) => {
      throw aborted(error);
    });
    result.catch(() => undefined);
    const waiting = response.then(() => undefined, (error: unknown) => {
      throw aborted(error);
    });
    waiting.catch(() => undefined);
    return { waiting, result };
  }
  wait(nameOrId: string, opts: CallOptions & { condition?: WaitCondition } = {}): Promise<ContainerWaitResponse> {
    return this.waitFor(nameOrId, opts).result;
  }
  /** Log frames as an async iterable (break out of the loop to stop following). */
  async logs(nameOrId: string, opts: LogsOptions = {}): Promise<AsyncIterable<OutputFrame>> {
    const res = await this.c.raw({
      method: 'GET',
      path: `/containers/${id(nameOrId)}/logs`,
      query: {
        stdout: opts.stdout ?? true,
        stderr: opts.stderr ?? true,
        follow: opts.follow || undefined,
        tail: opts.tail === undefined ? undefined : String(opts.tail),
        since: opts.since,
        until: opts.until,
        timestamps: opts.timestamps || undefined,
      },
      call: opts,
      checkStatus: true,
    });
    return closingFrames(res, frames(res, res.headers['content-type'], opts.tty));
  }
  /** Hijacked attach (101 upgrade). */
  async attach(nameOrId: string, opts: AttachOptions = {}): Promise<AttachSession> {
    const h = await this.c.hijack(
      `/containers/${id(nameOrId)}/attach`,
      { stream: opts.stream ?? true, stdin: opts.stdin || undefined, stdout: opts.stdout ?? true, stderr: opts.stderr ?? true, logs: opts.logs || undefined, detachKeys: opts.detachKeys },
      undefined,
      opts,
    );
    return attachSession(h, opts.tty);
  }
  async resize(nameOrId: string, size: { h: number; w: number }, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/resize`, { query: size, call: opts });
  }
  top(nameOrId: string, opts: CallOptions & { psArgs?: string } = {}): Promise<ContainerTopResponse> {
    return this.c.json('GET', `/containers/${id(nameOrId)}/top`, { query: { ps_args: opts.psArgs }, call: opts });
  }
  /** One sample (`stream=false`). */
  stats(nameOrId: string, opts: CallOptions & { oneShot?: boolean } = {}): Promise<ContainerStats> {
    return this.c.json('GET', `/containers/${id(nameOrId)}/stats`, { query: { stream: false, 'one-shot': opts.oneShot || undefined }, call: opts });
  }
  /** A sample about every second until the loop stops or the signal aborts. */
  async statsStream(nameOrId: string, opts: CallOptions = {}): Promise<AsyncIterable<ContainerStats>> {
    const res = await this.c.raw({ method: 'GET', path: `/containers/${id(nameOrId)}/stats`, query: { stream: true }, call: opts, checkStatus: true });
    return closing(res, jsonLines<ContainerStats>(res));
  }
  changes(nameOrId: string, opts: CallOptions = {}): Promise<ContainerChange[] | null> {
    return this.c.json('GET', `/containers/${id(nameOrId)}/changes`, { call: opts });
  }
  /** The container's filesystem as a tar stream. */
  async export(nameOrId: string, opts: CallOptions = {}): Promise<Readable> {
    return this.c.raw({ method: 'GET', path: `/containers/${id(nameOrId)}/export`, call: opts, checkStatus: true });
  }
  async rename(nameOrId: string, name: string, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/rename`, { query: { name }, call: opts });
  }
  update(nameOrId: string, body: ContainerUpdateBody, opts: CallOptions = {}): Promise<ContainerUpdateResponse> {
    return this.c.json('POST', `/containers/${id(nameOrId)}/update`, { body, call: opts });
  }
  async pause(nameOrId: string, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/pause`, { call: opts });
  }
  async unpause(nameOrId: string, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/containers/${id(nameOrId)}/unpause`, { call: opts });
  }
  prune(opts: CallOptions & { filters?: Filters } = {}): Promise<ContainerPruneResponse> {
    return this.c.json('POST', '/containers/prune', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
  /** `HEAD /containers/{id}/archive`: what is at `path` in the container. */
  async statPath(nameOrId: string, path: string, opts: CallOptions = {}): Promise<PathStat> {
    const res = await this.c.raw({ method: 'HEAD', path: `/containers/${id(nameOrId)}/archive`, query: { path }, call: opts });
    res.resume();
    if (res.statusCode >= 300) {
      const message = res.statusCode === 404 ? `Could not find the file ${path} in container ${nameOrId}` : `stat ${path} in ${nameOrId} failed (${res.statusCode})`;
      throw errorFromResponse(res.statusCode, JSON.stringify({ message }));
    }
    return decodePathStat(res, path);
  }
  /** `GET /containers/{id}/archive`: a tar of `path` plus its stat. */
  async getArchive(nameOrId: string, path: string, opts: CallOptions = {}): Promise<{ stat: PathStat; tar: Readable }> {
    const res = await this.c.raw({ method: 'GET', path: `/containers/${id(nameOrId)}/archive`, query: { path }, call: opts, checkStatus: true });
    return { stat: decodePathStat(res, path), tar: res };
  }
  /** `PUT /containers/{id}/archive`: extracts a tar under `path` in the container. */
  async putArchive(nameOrId: string, path: string, tar: Readable | AsyncIterable<Uint8Array> | Uint8Array, opts: CallOptions & { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {}): Promise<void> {
    const res = await this.c.raw({
      method: 'PUT',
      path: `/containers/${id(nameOrId)}/archive`,
      query: { path, noOverwriteDirNonDir: opts.noOverwriteDirNonDir ?? true, copyUIDGID: opts.copyUIDGID || undefined },
      headers: { 'Content-Type': 'application/x-tar' },
      body: tar,
      call: opts,
      checkStatus: true,
    });
    res.resume();
  }
  /** `POST /commit`: a new image from a container's changes. */
  commit(opts: CommitOptions & CallOptions): Promise<{ Id: string }> {
    return this.c.json('POST', '/commit', {
      query: { container: opts.container, repo: opts.repo, tag: opts.tag, comment: opts.comment, author: opts.author, pause: opts.pause, changes: opts.changes },
      body: opts.config ?? {},
      call: opts,
    });
  }
}

function decodePathStat(res: WireResponse, path: string): PathStat {
  const header = res.headers['x-docker-container-path-stat'];
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) throw new ClientError('BAD_RESPONSE', 'internal', `the daemon sent no X-Docker-Container-Path-Stat for ${path}`);
  return JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as PathStat;
}

async function* closingFrames(res: WireResponse, source: AsyncIterable<OutputFrame>): AsyncGenerator<OutputFrame> {
  try {
    yield* source;
  } finally {
    res.destroy();
  }
}

async function* closing<T>(res: WireResponse, source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    res.destroy();
  }
}

export interface ImageListOptions extends CallOptions {
  all?: boolean;
  filters?: Filters;
  digests?: boolean;
  sharedSize?: boolean;
}

export interface PullOptions extends CallOptions, RegistryAuthOptions {
  platform?: string;
}

export class ImagesApi {
  constructor(private readonly c: BerthClient) {}

  list(opts: ImageListOptions = {}): Promise<ImageSummary[]> {
    return this.c.json('GET', '/images/json', { query: { all: opts.all || undefined, filters: encodeFilters(opts.filters), digests: opts.digests || undefined, 'shared-size': opts.sharedSize || undefined }, call: opts });
  }
  inspect(name: string, opts: CallOptions = {}): Promise<ImageInspect> {
    return this.c.json('GET', `/images/${imagePath(name)}/json`, { call: opts });
  }
  history(name: string, opts: CallOptions = {}): Promise<ImageHistoryItem[]> {
    return this.c.json('GET', `/images/${imagePath(name)}/history`, { call: opts });
  }
  /**
   * `POST /images/create?fromImage=…&tag=…` — progress messages as they come; throws StreamError
   * when the daemon reports a failure in the stream. The reference is split like docker's CLI does.
   */
  async pull(ref: string, opts: PullOptions = {}): Promise<AsyncIterable<ProgressMessage>> {
    const { fromImage, tag } = splitForPull(ref);
    const res = await this.c.raw({
      method: 'POST',
      path: '/images/create',
      query: { fromImage, tag, platform: opts.platform },
      headers: { 'X-Registry-Auth': await this.c.registryAuthHeader(ref, opts.auth) },
      call: opts,
      checkStatus: true,
    });
    return progressMessages(res);
  }
  /** `POST /images/create?fromSrc=-`: an image from a filesystem tar. */
  async import(tar: Readable | AsyncIterable<Uint8Array> | Uint8Array, opts: CallOptions & { repo?: string; tag?: string; message?: string; changes?: string[]; platform?: string } = {}): Promise<AsyncIterable<ProgressMessage>> {
    const res = await this.c.raw({
      method: 'POST',
      path: '/images/create',
      query: { fromSrc: '-', repo: opts.repo, tag: opts.tag, message: opts.message, changes: opts.changes, platform: opts.platform },
      headers: { 'Content-Type': 'application/x-tar' },
      body: tar,
      call: opts,
      checkStatus: true,
    });
    return progressMessages(res);
  }
  /** `POST /images/{name}/push` — progress, ending with `aux: {Tag, Digest, Size}`. */
  async push(ref: string, opts: CallOptions & RegistryAuthOptions & { tag?: string } = {}): Promise<AsyncIterable<ProgressMessage>> {
    let name = ref;
    let tag = opts.tag;
    const at = ref.indexOf('@');
    const lastColon = ref.lastIndexOf(':');
    if (tag === undefined && at < 0 && lastColon > ref.lastIndexOf('/')) {
      name = ref.slice(0, lastColon);
      tag = ref.slice(lastColon + 1);
    }
    const res = await this.c.raw({
      method: 'POST',
      path: `/images/${imagePath(name)}/push`,
      query: { tag },
      headers: { 'X-Registry-Auth': await this.c.registryAuthHeader(ref, opts.auth) },
      call: opts,
      checkStatus: true,
    });
    return progressMessages(res);
  }
  async tag(name: string, repo: string, tag?: string, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/images/${imagePath(name)}/tag`, { query: { repo, tag }, call: opts });
  }
  remove(name: string, opts: CallOptions & { force?: boolean; noprune?: boolean } = {}): Promise<ImageDeleteItem[]> {
    return this.c.json('DELETE', `/images/${imagePath(name)}`, { query: { force: opts.force || undefined, noprune: opts.noprune || undefined }, call: opts });
  }
  prune(opts: CallOptions & { filters?: Filters } = {}): Promise<ImagePruneResponse> {
    return this.c.json('POST', '/images/prune', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
  search(term: string, opts: CallOptions & { limit?: number; filters?: Filters } = {}): Promise<SearchResult[]> {
    return this.c.json('GET', '/images/search', { query: { term, limit: opts.limit, filters: encodeFilters(opts.filters) }, call: opts });
  }
  distribution(name: string, opts: CallOptions & RegistryAuthOptions = {}): Promise<DistributionInspect> {
    return this.c.registryAuthHeader(name, opts.auth).then((auth) => this.c.json('GET', `/distribution/${imagePath(name)}/json`, { headers: { 'X-Registry-Auth': auth }, call: opts }));
  }
  /** `GET /images/get?names=…`: a `docker save` tarball. */
  async save(names: string[], opts: CallOptions = {}): Promise<Readable> {
    return this.c.raw({ method: 'GET', path: '/images/get', query: { names }, call: opts, checkStatus: true });
  }
  /** `POST /images/load`: loads a `docker save` tarball or an OCI layout tar. */
  async load(tar: Readable | AsyncIterable<Uint8Array> | Uint8Array, opts: CallOptions & { quiet?: boolean } = {}): Promise<AsyncIterable<ProgressMessage>> {
    const res = await this.c.raw({
      method: 'POST',
      path: '/images/load',
      query: { quiet: opts.quiet ?? false },
      headers: { 'Content-Type': 'application/x-tar' },
      body: tar,
      call: opts,
      checkStatus: true,
    });
    return progressMessages(res);
  }
  /**
   * `POST /build` (legacy builder, `version=1`) with a tar of the context as the body. Progress messages
   * carry `stream` text; the image ID arrives as `aux.ID`.
   */
  async build(context: Readable | AsyncIterable<Uint8Array> | Uint8Array, opts: BuildOptions & CallOptions = {}): Promise<AsyncIterable<ProgressMessage>> {
    const res = await this.c.raw({
      method: 'POST',
      path: '/build',
      query: {
        t: opts.tags,
        dockerfile: opts.dockerfile,
        buildargs: opts.buildArgs ? JSON.stringify(opts.buildArgs) : undefined,
        labels: opts.labels ? JSON.stringify(opts.labels) : undefined,
        target: opts.target,
        platform: opts.platform,
        nocache: opts.noCache || undefined,
        pull: opts.pull || undefined,
        q: opts.quiet || undefined,
        rm: opts.rm ?? true,
        forcerm: opts.forceRm || undefined,
        networkmode: opts.networkMode,
        cachefrom: opts.cacheFrom ? JSON.stringify(opts.cacheFrom) : undefined,
        extrahosts: opts.extraHosts,
        version: '1',
      },
      headers: { 'Content-Type': 'application/x-tar', 'X-Registry-Config': await this.c.registryConfigHeader() },
      body: context,
      call: opts,
      checkStatus: true,
    });
    return progressMessages(res);
  }
}

/** `busybox` → fromImage=docker.io/library/busybox, tag=latest; a digest stays in fromImage's tag slot. */
export function splitForPull(ref: string): { fromImage: string; tag: string } {
  const parsed = splitReference(ref);
  const name = `${parsed.domain}/${parsed.path}`;
  if (parsed.digest) return { fromImage: name, tag: parsed.digest };
  return { fromImage: name, tag: parsed.tag ?? 'latest' };
}

export class ExecApi {
  constructor(private readonly c: BerthClient) {}

  create(container: string, body: ExecCreateBody, opts: CallOptions = {}): Promise<ExecCreateResponse> {
    return this.c.json('POST', `/containers/${id(container)}/exec`, { body: { AttachStdout: true, AttachStderr: true, ...body }, call: opts });
  }
  /** Hijacked `POST /exec/{id}/start`; the output ends when the process exits (then `inspect` has ExitCode). */
  async start(execId: string, opts: CallOptions & { tty?: boolean; consoleSize?: [number, number] } = {}): Promise<AttachSession> {
    const body: Record<string, unknown> = { Detach: false, Tty: opts.tty ?? false };
    if (opts.consoleSize) body.ConsoleSize = opts.consoleSize;
    const h = await this.c.hijack(`/exec/${id(execId)}/start`, undefined, body, opts);
    return attachSession(h, opts.tty);
  }
  /** Starts detached (`Detach: true`): returns once the process runs. */
  async startDetached(execId: string, opts: CallOptions & { tty?: boolean } = {}): Promise<void> {
    await this.c.json('POST', `/exec/${id(execId)}/start`, { body: { Detach: true, Tty: opts.tty ?? false }, call: opts });
  }
  async resize(execId: string, size: { h: number; w: number }, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/exec/${id(execId)}/resize`, { query: size, call: opts });
  }
  inspect(execId: string, opts: CallOptions = {}): Promise<ExecInspect> {
    return this.c.json('GET', `/exec/${id(execId)}/json`, { call: opts });
  }
}

export class NetworksApi {
  constructor(private readonly c: BerthClient) {}

  list(opts: CallOptions & { filters?: Filters } = {}): Promise<NetworkInspect[]> {
    return this.c.json('GET', '/networks', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
  inspect(nameOrId: string, opts: CallOptions & { verbose?: boolean } = {}): Promise<NetworkInspect> {
    return this.c.json('GET', `/networks/${id(nameOrId)}`, { query: { verbose: opts.verbose || undefined }, call: opts });
  }
  create(body: NetworkCreateBody, opts: CallOptions = {}): Promise<NetworkCreateResponse> {
    return this.c.json('POST', '/networks/create', { body: { CheckDuplicate: true, Driver: 'bridge', ...body }, call: opts });
  }
  async remove(nameOrId: string, opts: CallOptions = {}): Promise<void> {
    await this.c.json('DELETE', `/networks/${id(nameOrId)}`, { call: opts });
  }
  async connect(nameOrId: string, body: NetworkConnectBody, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/networks/${id(nameOrId)}/connect`, { body, call: opts });
  }
  async disconnect(nameOrId: string, body: { Container: string; Force?: boolean }, opts: CallOptions = {}): Promise<void> {
    await this.c.json('POST', `/networks/${id(nameOrId)}/disconnect`, { body, call: opts });
  }
  prune(opts: CallOptions & { filters?: Filters } = {}): Promise<NetworkPruneResponse> {
    return this.c.json('POST', '/networks/prune', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
}

export class VolumesApi {
  constructor(private readonly c: BerthClient) {}

  list(opts: CallOptions & { filters?: Filters } = {}): Promise<VolumeListResponse> {
    return this.c.json('GET', '/volumes', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
  inspect(name: string, opts: CallOptions = {}): Promise<Volume> {
    return this.c.json('GET', `/volumes/${id(name)}`, { call: opts });
  }
  create(body: VolumeCreateBody = {}, opts: CallOptions = {}): Promise<Volume> {
    return this.c.json('POST', '/volumes/create', { body: { Driver: 'local', ...body }, call: opts });
  }
  async remove(name: string, opts: CallOptions & { force?: boolean } = {}): Promise<void> {
    await this.c.json('DELETE', `/volumes/${id(name)}`, { query: { force: opts.force || undefined }, call: opts });
  }
  prune(opts: CallOptions & { filters?: Filters } = {}): Promise<VolumePruneResponse> {
    return this.c.json('POST', '/volumes/prune', { query: { filters: encodeFilters(opts.filters) }, call: opts });
  }
}

export interface EventsOptions extends CallOptions {
  since?: number | string;
  until?: number | string;
  filters?: Filters;
}

export class SystemApi {
  constructor(private readonly c: BerthClient) {}

  ping(opts: CallOptions = {}): Promise<PingResult> {
    return this.c.ping(opts);
  }
  version(opts: CallOptions = {}): Promise<VersionInfo> {
    return this.c.json('GET', '/version', { call: opts });
  }
  info(opts: CallOptions = {}): Promise<SystemInfo> {
    return this.c.json('GET', '/info', { call: opts });
  }
  df(opts: CallOptions = {}): Promise<DiskUsage> {
    return this.c.json('GET', '/system/df', { call: opts });
  }
  /** Validates credentials with the daemon (`POST /auth`); saving them is the caller's job. */
  auth(body: AuthConfig, opts: CallOptions = {}): Promise<AuthResponse> {
    return this.c.json('POST', '/auth', { body, call: opts });
  }
  /** `GET /events` as a typed stream; it ends at `until`, or when the loop breaks / the signal aborts. */
  async events(opts: EventsOptions = {}): Promise<AsyncIterable<EventMessage>> {
    const res = await this.c.raw({ method: 'GET', path: '/events', query: { since: opts.since, until: opts.until, filters: encodeFilters(opts.filters) }, call: opts, checkStatus: true });
    return closing(res, jsonLines<EventMessage>(res));
  }
}

/** A client from BERTH_HOST / DOCKER_HOST (or the given options). */
export function createClient(options: ClientOptions = {}): BerthClient {
  return new BerthClient(options);
}
