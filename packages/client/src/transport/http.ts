import http from 'node:http';
import type https from 'node:https';
import type { IncomingMessage, IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { AbortedError, ConnectionError, errorFromResponse } from '../errors.js';
import type { Endpoint } from './host.js';

/**
 * One transport for every call: node:http over the unix socket or TCP (+TLS) endpoint.
 *
 * Why node:http and not undici's Agent: the hijacked attach/exec streams need node:http anyway
 * (101 upgrade, half-close), so JSON calls share the same connection settings and keep-alive agent;
 * and the CLI stays fast to start — loading undici costs more than the whole `berth ps` budget.
 * ky gets a small fetch over this transport (`createFetch`).
 */
export interface Transport {
  readonly endpoint: Endpoint;
  readonly hostUrl: string;
  request(options: RawRequest): Promise<IncomingMessage>;
  hijack(options: RawRequest): Promise<Hijacked>;
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  close(): void;
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | Readable | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
}

/** A connection taken over after `101 UPGRADED` (or a plain 200 raw stream). */
export interface Hijacked {
  /** The raw connection: write stdin to it, `end()` half-closes (stdin EOF) and keeps reading. */
  socket: Socket;
  /** What the daemon sends (bytes that came with the headers included). */
  output: Readable;
  headers: IncomingHttpHeaders;
  upgraded: boolean;
}

export function createTransport(endpoint: Endpoint, hostUrl: string): Transport {
  const isTls = endpoint.kind === 'tcp' && endpoint.tls !== undefined;
  // node:https (and with it node:tls) is loaded only for a TLS endpoint: loading it costs a CLI
  // run over a unix socket ~15 % of its start-up.
  let tls: Promise<{ lib: typeof https; agent: https.Agent }> | undefined;
  const plainAgent = isTls ? undefined : new http.Agent({ keepAlive: true });
  function connection(): Promise<{ lib: typeof http | typeof https; agent: http.Agent }> | { lib: typeof http; agent: http.Agent } {
    if (plainAgent) return { lib: http, agent: plainAgent };
    tls ??= import('node:https').then(({ default: lib }) => ({
      lib,
      agent: new lib.Agent({
        keepAlive: true,
        ca: endpoint.kind === 'tcp' ? endpoint.tls?.ca : undefined,
        cert: endpoint.kind === 'tcp' ? endpoint.tls?.cert : undefined,
        key: endpoint.kind === 'tcp' ? endpoint.tls?.key : undefined,
        rejectUnauthorized: endpoint.kind === 'tcp' ? endpoint.tls?.verify !== false : true,
      }),
    }));
    return tls;
  }

  function options(req: RawRequest, extraHeaders: Record<string, string> = {}): http.RequestOptions {
    const base: http.RequestOptions = {
      method: req.method,
      path: req.path,
      // The host header docker's client sends over a socket; a daemon must not route on it.
      headers: { Host: endpoint.kind === 'unix' ? 'api.moby.localhost' : `${endpoint.host}:${endpoint.port}`, ...extraHeaders, ...req.headers },
    };
    if (endpoint.kind === 'unix') {
      base.socketPath = endpoint.socketPath;
      // No TLS server name over a socket: without this, node:http derives one from the Host
      // header per request, and its first IPv6 test compiles a regex that costs ~10 ms of a CLI run.
      (base as { servername?: string }).servername = '';
    } else {
      base.host = endpoint.host;
      base.port = endpoint.port;
    }
    return base;
  }

  function connectionError(error: unknown): Error {
    const code = (error as { code?: string }).code;
    if (code === 'ABORT_ERR' || (error as Error).name === 'AbortError') {
      return new AbortedError(`request to ${hostUrl} was aborted`, { cause: error });
    }
    if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'EPIPE' || (typeof code === 'string' && code.startsWith('ERR_TLS')) || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
      const why =
        code === 'ENOENT' ? 'no socket there'
        : code === 'ECONNREFUSED' ? 'connection refused'
        : code === 'EACCES' ? 'permission denied on the socket'
        : String(code);
      return new ConnectionError(hostUrl, `cannot connect to the daemon at ${hostUrl} (${why})`, { cause: error });
    }
    return error as Error;
  }

  function writeBody(req: http.ClientRequest, body: RawRequest['body']): void {
    if (body === undefined) {
      req.end();
      return;
    }
    if (typeof body === 'string' || body instanceof Uint8Array) {
      req.end(body);
      return;
    }
    const source = body instanceof Readable ? body : Readable.from(body);
    source.on('error', (error) => req.destroy(error));
    source.pipe(req);
  }

  function bodyHeaders(body: RawRequest['body']): Record<string, string> {
    if (body === undefined) return {};
    if (typeof body === 'string') return { 'Content-Length': String(Buffer.byteLength(body)) };
    if (body instanceof Uint8Array) return { 'Content-Length': String(body.byteLength) };
    return { 'Transfer-Encoding': 'chunked' };
  }

  const transport: Transport = {
    endpoint,
    hostUrl,
    async request(req) {
      const { lib, agent } = await connection();
      return new Promise<IncomingMessage>((resolve, reject) => {
        if (req.signal?.aborted) {
          reject(new AbortedError(`request to ${hostUrl} was aborted`, { cause: req.signal.reason }));
          return;
        }
        const r = lib.request({ ...options(req, bodyHeaders(req.body)), agent, signal: req.signal });
        r.on('response', resolve);
        r.on('error', (error) => reject(connectionError(error)));
        writeBody(r, req.body);
      });
    },
    async hijack(req) {
      const { lib } = await connection();
      return new Promise<Hijacked>((resolve, reject) => {
        if (req.signal?.aborted) {
          reject(new AbortedError(`request to ${hostUrl} was aborted`, { cause: req.signal.reason }));
          return;
        }
        // A fresh connection (no agent): it becomes the stream and never returns to a pool.
        const r = lib.request({
          ...options(req, { Connection: 'Upgrade', Upgrade: 'tcp', ...bodyHeaders(req.body) }),
          agent: false,
          signal: req.signal,
          ...(isTls && endpoint.kind === 'tcp'
            ? { ca: endpoint.tls?.ca, cert: endpoint.tls?.cert, key: endpoint.tls?.key, rejectUnauthorized: endpoint.tls?.verify !== false }
            : {}),
        });
        r.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
          if (head.length > 0) socket.unshift(head);
          resolve({ socket, output: socket, headers: res.headers, upgraded: true });
        });
        r.on('response', (res: IncomingMessage) => {
          if (res.statusCode === 200) {
            // A daemon that answers a plain 200 streams the raw body until it closes.
            resolve({ socket: res.socket as Socket, output: res, headers: res.headers, upgraded: false });
            return;
          }
          readBody(res).then(
            (text) => reject(errorFromResponse(res.statusCode ?? 500, text)),
            reject,
          );
        });
        r.on('error', (error) => reject(connectionError(error)));
        writeBody(r, req.body);
      });
    },
    async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
      if (!(input instanceof Request)) input = new Request(input, init);
      const url = new URL(input.url);
      const headers: Record<string, string> = {};
      input.headers.forEach((value, key) => {
        headers[key] = value;
      });
      let body: Uint8Array | undefined;
      if (input.body) body = new Uint8Array(await input.arrayBuffer());
      const signal = init?.signal ?? input.signal;
      const res = await transport.request({ method: input.method, path: url.pathname + url.search, headers, body, signal: signal ?? undefined });
      const responseHeaders = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        if (Array.isArray(value)) for (const v of value) responseHeaders.append(key, v);
        else if (value !== undefined) responseHeaders.set(key, value);
      }
      const status = res.statusCode ?? 500;
      const nullBody = status === 204 || status === 304 || input.method === 'HEAD';
      if (nullBody) res.resume();
      const webBody = nullBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
      return new Response(webBody, { status, statusText: res.statusMessage ?? '', headers: responseHeaders });
    },
    close() {
      plainAgent?.destroy();
      void tls?.then(({ agent }) => agent.destroy(), () => undefined);
    },
  };
  return transport;
}

/** Reads a whole (small) response body as text. */
export async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
