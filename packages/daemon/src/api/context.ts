import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { InvalidParameterError } from '../errors.js';
import { DetachKeyMatcher } from './detach-keys.js';
import { responseHeaders } from './headers.js';

/** A validator as compiled by ajv: returns the typed body or throws a 400. */
export type BodyValidator<T> = (value: unknown) => T;

/**
 * The two-way byte stream of an attach or exec: the raw socket after a `101 UPGRADED`, or the
 * request and response bodies of a plain 200 (dockerode without `hijack`).
 */
export interface HijackedStream {
  /** Bytes from the client (stdin); ends on the client's half-close. */
  readonly input: Readable;
  /** Bytes to the client. */
  readonly output: Writable;
  /** Ends the output; the connection closes. */
  end(): void;
  /** Resolves when the client has gone away or the stream was ended. */
  readonly closed: Promise<void>;
}

const MAX_JSON_BODY = 16 * 1024 * 1024;

/**
 * Resolves once `out` can take more: at once when nothing is queued past its high-water mark,
 * else on the next 'drain', or when it closes or fails (a client that went away ends the wait).
 * Whichever event wins, the other listeners go, so repeated waits never pile listeners up.
 */
export function drained(out: Writable): Promise<void> {
  if (out.destroyed || out.writableEnded || !out.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
  });
}

/**
 * Writes a chunk of a streamed answer and, when the client is not keeping up (`write()` returned
 * false), waits for it before returning, so the producer stops pulling from its source instead
 * of queueing without bound. A destroyed or ended `out` takes nothing and does not wait.
 */
export async function writeOrWait(out: Writable, chunk: Buffer | string): Promise<void> {
  if (out.destroyed || out.writableEnded) return;
  if (!out.write(chunk)) await drained(out);
}

/**
 * Copies a client's input (the hijacked connection, the websocket's messages) into a process's
 * stdin. When stdin is full (`write()` returned false) the input is paused until stdin drains,
 * closes or fails, so berthd stops reading the client (as Docker does) instead of queueing input
 * for a process that does not read it. Once stdin is gone (the process exited) or the client
 * detached, the rest of the input is read and dropped, so the client is never left paused. With
 * `detachKeys` the input is watched for that sequence (see `DetachKeyMatcher`): its bytes are not
 * passed on and `onDetach` is called.
 */
export function pipeStdin(input: Readable, sink: Writable, options: { detachKeys?: Buffer | null; onDetach?: () => void } = {}): void {
  const matcher = options.detachKeys ? new DetachKeyMatcher(options.detachKeys) : undefined;
  let blocked = false;
  let detached = false;
  sink.on('error', () => undefined);
  const write = (data: Buffer): void => {
    if (data.length === 0 || sink.destroyed || sink.writableEnded) return;
    if (sink.write(data) || blocked) return;
    blocked = true;
    input.pause();
    void drained(sink).then(() => {
      blocked = false;
      input.resume();
    });
  };
  input.on('data', (chunk: Buffer) => {
    if (detached || sink.destroyed || sink.writableEnded) return;
    if (!matcher) return write(chunk);
    const { forward, detached: now } = matcher.push(chunk);
    write(forward);
    if (!now) return;
    detached = true;
    input.resume();
    options.onDetach?.();
  });
  input.once('end', () => {
    if (!detached && !sink.destroyed && !sink.writableEnded) sink.end();
  });
  input.resume();
}

/** One API request, whether it came through the normal handler or as an upgrade. */
export class ApiContext {
  readonly method: string;
  readonly path: string;
  readonly version: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly req: IncomingMessage;
  params: Record<string, string> = {};
  readonly #res: ServerResponse | undefined;
  readonly #socket: Duplex | undefined;
  #head: Buffer;
  #responded = false;

  constructor(init: {
    method: string;
    path: string;
    version: string;
    query: URLSearchParams;
    req: IncomingMessage;
    res?: ServerResponse;
    upgrade?: { socket: Duplex; head: Buffer };
  }) {
    this.method = init.method;
    this.path = init.path;
    this.version = init.version;
    this.query = init.query;
    this.req = init.req;
    this.headers = init.req.headers;
    this.#res = init.res;
    this.#socket = init.upgrade?.socket;
    this.#head = init.upgrade?.head ?? Buffer.alloc(0);
  }

  get isUpgrade(): boolean {
    return this.#socket !== undefined;
  }

  get wantsUpgrade(): boolean {
    return this.#socket !== undefined;
  }

  get responded(): boolean {
    return this.#responded;
  }

  param(name: string): string {
    const value = this.params[name];
    if (value === undefined) throw new InvalidParameterError(`missing path parameter ${name}`);
    return value;
  }

  /** The request source: the raw socket (after the head bytes) for upgrades, else the request. */
  #source(): Readable {
    if (this.#socket) {
      const source = new PassThrough();
      if (this.#head.length > 0) source.write(this.#head);
      this.#head = Buffer.alloc(0);
      this.#socket.pipe(source);
      return source;
    }
    return this.req;
  }

  /** Reads the whole body (bounded). In upgrade mode reads exactly Content-Length bytes. */
  async body(limit = MAX_JSON_BODY): Promise<Buffer> {
    if (this.#socket) {
      const length = Number.parseInt(String(this.headers['content-length'] ?? '0'), 10) || 0;
      if (length > limit) throw new InvalidParameterError(`request body too large (${length} bytes)`);
      const socket = this.#socket;
      while (this.#head.length < length) {
        const chunk = await new Promise<Buffer | null>((resolve) => {
          const onData = (c: Buffer): void => {
            cleanup();
            resolve(c);
          };
          const onEnd = (): void => {
            cleanup();
            resolve(null);
          };
          const cleanup = (): void => {
            socket.off('data', onData);
            socket.off('end', onEnd);
            socket.off('close', onEnd);
            socket.pause();
          };
          socket.on('data', onData);
          socket.once('end', onEnd);
          socket.once('close', onEnd);
          socket.resume();
        });
        if (chunk === null) break;
        this.#head = Buffer.concat([this.#head, chunk]);
      }
      const body = this.#head.subarray(0, length);
      this.#head = this.#head.subarray(length);
      return body;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new InvalidParameterError(`request body too large (more than ${limit} bytes)`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** Parses and validates a JSON body; an empty body is `{}` unless `required`. */
  async json<T>(validate: BodyValidator<T>, options: { required?: boolean } = {}): Promise<T> {
    const raw = await this.body();
    return parseJsonBody(raw, validate, options.required ?? false);
  }

  /**
   * Reads a JSON object at the start of a request body that may never end (dockerode's exec
   * start with openStdin sends the JSON and keeps the chunked body open as stdin).
   */
  async jsonPrefix<T>(validate: BodyValidator<T>): Promise<T> {
    if (this.#socket) return this.json(validate);
    const contentLength = this.headers['content-length'];
    if (contentLength !== undefined) return this.json(validate);
    const req = this.req;
    let text = '';
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        try {
          fn();
        } catch (err) {
          reject(err);
        }
      };
      const onData = (chunk: Buffer): void => {
        text += chunk.toString('utf8');
        const trimmed = text.trim();
        if (trimmed === '') return;
        try {
          const value = JSON.parse(trimmed) as unknown;
          done(() => resolve(validate(value)));
        } catch {
          if (text.length > 1024 * 1024) done(() => reject(new InvalidParameterError('invalid JSON body')));
        }
      };
      const onEnd = (): void => done(() => resolve(parseJsonBody(Buffer.from(text), validate, false)));
      req.on('data', onData);
      req.once('end', onEnd);
    });
  }

  #writeRawHead(status: number, headers: Record<string, string | number>): void {
    const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
    for (const [k, v] of Object.entries({ ...responseHeaders(), ...headers })) lines.push(`${k}: ${v}`);
    this.#socket!.write(lines.join('\r\n') + '\r\n\r\n');
  }

  /** A complete response with an optional body. */
  send(status: number, body?: string | Buffer, contentType = 'text/plain; charset=utf-8'): void {
    this.#responded = true;
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const noBody = status === 204 || status === 304;
    if (this.#socket) {
      const headers: Record<string, string | number> = { Connection: 'close' };
      if (!noBody) {
        headers['Content-Type'] = contentType;
        headers['Content-Length'] = payload.length;
      }
      this.#writeRawHead(status, headers);
      if (!noBody && this.method !== 'HEAD') this.#socket.write(payload);
      this.#socket.end();
      return;
    }
    const res = this.#res!;
    if (noBody) {
      res.writeHead(status);
      res.end();
      return;
    }
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': payload.length });
    res.end(this.method === 'HEAD' ? undefined : payload);
  }

  sendJson(status: number, value: unknown): void {
    this.send(status, JSON.stringify(value) + '\n', 'application/json');
  }

  noContent(): void {
    this.send(204);
  }

  /** Sets a header on the (not yet sent) response; ignored in upgrade mode unless passed to send. */
  setHeader(name: string, value: string): void {
    this.#res?.setHeader(name, value);
    if (this.#socket) this.#extraHeaders[name] = value;
  }
  #extraHeaders: Record<string, string> = {};

  /**
   * Starts a streaming 200 response and flushes the headers at once (clients such as the CLI's
   * ContainerWait block on the headers). Returns the body writable; end it when done.
   */
  stream(contentType: string, status = 200): Writable {
    this.#responded = true;
    if (this.#socket) {
      this.#writeRawHead(status, { 'Content-Type': contentType, Connection: 'close', ...this.#extraHeaders });
      return this.#socket;
    }
    const res = this.#res!;
    res.writeHead(status, { 'Content-Type': contentType });
    res.flushHeaders();
    return res;
  }

  /**
   * Takes over the connection for attach/exec: `101 UPGRADED` on an upgrade request, else a
   * streaming 200 whose request body (if any is left) is the input.
   */
  hijack(contentType: string): HijackedStream {
    this.#responded = true;
    if (this.#socket) {
      const socket = this.#socket;
      socket.write(
        `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
      );
      const input = this.#source();
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      return {
        input,
        output: socket,
        end: () => {
          if (!socket.destroyed) socket.end();
        },
        closed,
      };
    }
    const res = this.#res!;
    res.writeHead(200, { 'Content-Type': contentType });
    res.flushHeaders();
    const req = this.req;
    const closed = new Promise<void>((resolve) => {
      res.once('close', () => resolve());
    });
    req.resume();
    return {
      input: req,
      output: res,
      end: () => {
        if (!res.writableEnded) res.end();
      },
      closed,
    };
  }

  /** The socket under the request, for noticing a client that hung up. */
  get connection(): Duplex {
    return this.#socket ?? this.req.socket;
  }
}

function parseJsonBody<T>(raw: Buffer, validate: BodyValidator<T>, required: boolean): T {
  const text = raw.toString('utf8').trim();
  if (text === '') {
    if (required) throw new InvalidParameterError('request body is required');
    return validate({});
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new InvalidParameterError(`invalid JSON body: ${(cause as Error).message}`, { cause });
  }
  return validate(value);
}
