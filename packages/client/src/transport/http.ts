import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { AbortedError, ClientError, ConnectionError, errorFromResponse } from '../errors.js';
import type { Endpoint } from './host.js';
import { WireError, WirePool } from './wire.js';
import type { Dial, WireResponse } from './wire.js';

export type { WireResponse } from './wire.js';

/**
 * One transport for every call: HTTP/1.1 over the unix socket or TCP (+TLS) endpoint, with a
 * keep-alive pool (wire.ts).
 *
 * Why not node:http or undici: loading node:http is a fifth of a `berth ps` run, and undici more
 * than the whole of it; the daemon's HTTP is small enough to speak directly, hijacked attach/exec
 * streams (101 upgrade, half-close) included. ky gets a small fetch over this transport
 * (`createFetch`).
 */
export interface Transport {
  readonly endpoint: Endpoint;
  readonly hostUrl: string;
  request(options: RawRequest): Promise<WireResponse>;
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
  const dial: Dial =
    endpoint.kind === 'unix' ? { kind: 'unix', path: endpoint.socketPath }
    : endpoint.tls === undefined ? { kind: 'tcp', host: endpoint.host, port: endpoint.port }
    : {
        kind: 'tls',
        host: endpoint.host,
        port: endpoint.port,
        options: {
          ca: endpoint.tls.ca,
          cert: endpoint.tls.cert,
          key: endpoint.tls.key,
          rejectUnauthorized: endpoint.tls.verify !== false,
          // A name to verify the certificate against; an IP address is checked by its SAN.
          ...(/^[\d.]+$|:/.test(endpoint.host) ? {} : { servername: endpoint.host }),
        },
      };
  const pool = new WirePool(dial);
  // The host header docker's client sends over a socket; a daemon must not route on it.
  const hostHeader = endpoint.kind === 'unix' ? 'api.moby.localhost' : `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;

  function headersFor(req: RawRequest): Record<string, string> {
    const headers: Record<string, string> = { Host: hostHeader };
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      // Framing is the transport's: a caller's Content-Length or Transfer-Encoding is not sent.
      const lower = k.toLowerCase();
      if (lower === 'host') headers['Host'] = v;
      else if (lower !== 'content-length' && lower !== 'transfer-encoding' && lower !== 'connection') headers[k] = v;
    }
    return headers;
  }

  async function send(req: RawRequest, upgrade: boolean): ReturnType<WirePool['request']> {
    if (req.signal?.aborted) throw new AbortedError(`request to ${hostUrl} was aborted`, { cause: req.signal.reason });
    try {
      return await pool.request({ method: req.method, path: req.path, headers: headersFor(req), body: req.body, signal: req.signal, upgrade });
    } catch (error) {
      throw connectionError(error);
    }
  }

  function connectionError(error: unknown): Error {
    const code = (error as { code?: string }).code;
    if (code === 'ABORT_ERR' || (error as Error).name === 'AbortError') {
      return new AbortedError(`request to ${hostUrl} was aborted`, { cause: error });
    }
    if (error instanceof WireError) {
      // Connected, then the answer was cut short or not HTTP: say so, not "cannot connect".
      return code === 'ECONNRESET'
        ? new ConnectionError(hostUrl, `${error.message} (${hostUrl})`, { cause: error })
        : new ClientError('BAD_RESPONSE', 'internal', `${error.message} (${hostUrl})`, { cause: error });
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

  const transport: Transport = {
    endpoint,
    hostUrl,
    async request(req) {
      const result = await send(req, false);
      return result.response;
    },
    async hijack(req) {
      const result = await send(req, true);
      if (result.upgraded) {
        const { socket } = result;
        return { socket, output: socket, headers: result.response.headers, upgraded: true };
      }
      const res = result.response;
      if (res.statusCode === 200) {
        // A daemon that answers a plain 200 streams the raw body until it closes.
        return { socket: res.socket, output: res, headers: res.headers, upgraded: false };
      }
      throw errorFromResponse(res.statusCode, await readBody(res));
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
      const status = res.statusCode;
      const nullBody = status === 204 || status === 304 || input.method === 'HEAD';
      if (nullBody) res.resume();
      const webBody = nullBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
      return new Response(webBody, { status, statusText: res.statusMessage, headers: responseHeaders });
    },
    close() {
      pool.close();
    },
  };
  return transport;
}

/** Reads a whole (small) response body as text. */
export async function readBody(res: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
