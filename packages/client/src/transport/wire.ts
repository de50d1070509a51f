import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';

/**
 * HTTP/1.1 for the Engine API, written over node:net.
 *
 * The daemon speaks a small, well-behaved HTTP: Content-Length or chunked answers, 101 upgrades for
 * attach and exec, and nothing else. node:http handles all of that, but loading it (its agent,
 * parser binding, incoming/outgoing/client/server modules) is a fifth of a `berth ps` run. This
 * file is that much HTTP and no more: one request at a time per connection, a keep-alive pool of
 * idle connections, request bodies sent whole or chunked with backpressure, answers framed by
 * length, chunks or close, and the socket handed over as is after `101`.
 */

/** Where and how to open a connection. */
export type Dial =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'tls'; host: string; port: number; options: ConnectionOptions };

export interface WireRequest {
  method: string;
  path: string;
  /** Sent as given (the caller adds Host). */
  headers: Record<string, string>;
  body?: Uint8Array | string | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
  /** Ask for `101` and hand the connection over (`Connection: Upgrade`). */
  upgrade?: boolean;
}

/** An answer whose body is this stream. The fields mirror node:http's IncomingMessage. */
export class WireResponse extends Readable {
  statusCode = 0;
  statusMessage = '';
  httpVersion = '1.1';
  headers: IncomingHttpHeaders = {};
  /** True once the whole body (by its framing) has arrived. */
  complete = false;

  constructor(
    readonly socket: Socket,
    private readonly onPull: () => void,
    private readonly onDestroy: (error: Error | null) => void,
  ) {
    super();
    // As node:http's IncomingMessage: an error is seen by whoever reads (a for-await throws it),
    // and is not an uncaught exception when it comes before anyone listens.
    this.on('error', () => undefined);
  }

  override _read(): void {
    this.onPull();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.onDestroy(error);
    callback(error);
  }
}

/** What `request` resolves to: an answer, or after `101` the connection itself. */
export type WireResult =
  | { upgraded: false; response: WireResponse }
  | { upgraded: true; response: WireResponse; socket: Socket };

const MAX_HEAD = 64 * 1024;
const MAX_IDLE = 8;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Headers node:http keeps only the first of; set-cookie is always a list; the rest are joined. */
const SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

export class WireError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('The operation was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

type Framing =
  | { kind: 'none' }
  | { kind: 'length'; left: number }
  | { kind: 'close' }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string };

/** Parses a response head (status line and headers, without the blank line). */
function parseHead(text: string): { status: number; message: string; version: string; headers: IncomingHttpHeaders } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) throw new WireError(`malformed answer from the daemon: status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`, 'HPE_INVALID_STATUS');
  const headers: IncomingHttpHeaders = {};
  const bag = headers as Record<string, string | string[]>;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line.slice(0, colon))) {
      throw new WireError(`malformed answer from the daemon: header line ${JSON.stringify(line.slice(0, 80))}`, 'HPE_INVALID_HEADER_TOKEN');
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = bag[name];
    if (name === 'set-cookie') {
      if (Array.isArray(had)) had.push(value);
      else bag[name] = [value];
    } else if (had === undefined) bag[name] = value;
    else if (!SINGLE.has(name)) bag[name] = `${had as string}, ${value}`;
  }
  return { status: Number(m[2]), message: m[3] ?? '', version: m[1] as string, headers };
}

function framingFor(method: string, status: number, headers: IncomingHttpHeaders): Framing {
  if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' };
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (/(?:^|,)\s*chunked\s*$/i.test(te)) return { kind: 'chunked', state: 'size', left: 0, line: '' };
    return { kind: 'close' };
  }
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl) || !Number.isSafeInteger(Number(cl))) throw new WireError(`malformed answer from the daemon: Content-Length ${JSON.stringify(cl)}`, 'HPE_INVALID_CONTENT_LENGTH');
    return Number(cl) === 0 ? { kind: 'none' } : { kind: 'length', left: Number(cl) };
  }
  return { kind: 'close' };
}

/**
 * One request and its answer on a connection. Bytes come in through `feed`; the answer's body is
 * pushed to `response` until its framing says it is complete.
 */
class Exchange {
  head: Buffer | undefined = Buffer.alloc(0);
  framing: Framing | undefined;
  response: WireResponse | undefined;
  /** The request body is still being written. */
  sending = false;
  settled = false;
  keepAlive = true;
  /** The consumer wants no more for now: stop reading the socket. */
  stalled = false;
  done = false;
  private abortListener: (() => void) | undefined;

  constructor(
    readonly conn: Conn,
    readonly req: WireRequest,
    readonly resolve: (r: WireResult) => void,
    readonly reject: (e: Error) => void,
  ) {
    const signal = req.signal;
    if (signal) {
      this.abortListener = () => this.fail(abortError(signal));
      signal.addEventListener('abort', this.abortListener, { once: true });
    }
  }

  /** Takes bytes from the socket; returns bytes that are not this exchange's (after an upgrade). */
  feed(data: Buffer): Buffer | undefined {
    if (this.head !== undefined) {
      const acc: Buffer = this.head.length === 0 ? data : Buffer.concat([this.head, data]);
      const end = acc.indexOf(CRLFCRLF);
      if (end === -1 || end > MAX_HEAD) {
        if (acc.length > MAX_HEAD) throw new WireError(`malformed answer from the daemon: head larger than ${MAX_HEAD} bytes`, 'HPE_HEADER_OVERFLOW');
        this.head = acc;
        return undefined;
      }
      const head = parseHead(acc.subarray(0, end).toString('latin1'));
      const rest = acc.subarray(end + 4);
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        // Interim answer (100 Continue): the real one follows.
        this.head = Buffer.alloc(0);
        return rest.length > 0 ? this.feed(rest) : undefined;
      }
      this.head = undefined;
      return this.onHead(head, rest);
    }
    this.body(data);
    return undefined;
  }

  private onHead(head: ReturnType<typeof parseHead>, rest: Buffer): Buffer | undefined {
    const res = new WireResponse(
      this.conn.socket,
      () => this.conn.pull(this),
      (error) => this.responseDestroyed(error),
    );
    res.statusCode = head.status;
    res.statusMessage = head.message;
    res.httpVersion = head.version;
    res.headers = head.headers;
    this.response = res;
    const connection = (head.headers.connection ?? '').toLowerCase();
    if (head.version === '1.0' ? !connection.includes('keep-alive') : connection.includes('close')) this.keepAlive = false;
    if (head.status === 101) {
      this.keepAlive = false;
      this.framing = { kind: 'none' };
      this.settled = true;
      res.complete = true;
      res.push(null);
      this.done = true;
      this.cleanup();
      this.resolve({ upgraded: true, response: res, socket: this.conn.socket });
      return rest;
    }
    this.framing = framingFor(this.req.method, head.status, head.headers);
    if (this.framing.kind === 'close') this.keepAlive = false;
    this.settled = true;
    this.resolve({ upgraded: false, response: res });
    if (this.framing.kind === 'none') this.finish();
    else if (rest.length > 0) this.body(rest);
    return undefined;
  }

  private body(data: Buffer): void {
    const f = this.framing;
    if (f === undefined || this.done) {
      if (data.length > 0) throw new WireError('the daemon sent bytes after the end of its answer', 'HPE_UNEXPECTED_CONTENT');
      return;
    }
    if (f.kind === 'close') {
      this.push(data);
      return;
    }
    if (f.kind === 'length') {
      if (data.length > f.left) throw new WireError('the daemon sent more bytes than its Content-Length', 'HPE_UNEXPECTED_CONTENT');
      f.left -= data.length;
      this.push(data);
      if (f.left === 0) this.finish();
      return;
    }
    if (f.kind === 'chunked') this.chunked(f, data);
  }

  private chunked(f: Extract<Framing, { kind: 'chunked' }>, data: Buffer): void {
    let i = 0;
    while (i < data.length) {
      if (this.done) throw new WireError('the daemon sent bytes after the end of its answer', 'HPE_UNEXPECTED_CONTENT');
      if (f.state === 'data') {
        const take = Math.min(f.left, data.length - i);
        this.push(data.subarray(i, i + take));
        i += take;
        f.left -= take;
        if (f.left === 0) f.state = 'data-end';
        continue;
      }
      const nl = data.indexOf(0x0a, i);
      const end = nl === -1 ? data.length : nl + 1;
      f.line += data.toString('latin1', i, end);
      i = end;
      if (nl === -1) {
        if (f.line.length > 1024) throw new WireError('malformed chunked answer from the daemon: line too long', 'HPE_INVALID_CHUNK_SIZE');
        continue;
      }
      const line = f.line.endsWith('\r\n') ? f.line.slice(0, -2) : f.line.slice(0, -1);
      f.line = '';
      if (f.state === 'data-end') {
        if (line !== '') throw new WireError('malformed chunked answer from the daemon: no CRLF after a chunk', 'HPE_INVALID_CHUNK_SIZE');
        f.state = 'size';
      } else if (f.state === 'size') {
        const hex = (line.split(';')[0] ?? '').trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new WireError(`malformed chunked answer from the daemon: chunk size ${JSON.stringify(line.slice(0, 40))}`, 'HPE_INVALID_CHUNK_SIZE');
        const size = parseInt(hex, 16);
        if (size === 0) f.state = 'trailer';
        else {
          f.state = 'data';
          f.left = size;
        }
      } else if (line === '') {
        this.finish();
        if (i < data.length) throw new WireError('the daemon sent bytes after the end of its answer', 'HPE_UNEXPECTED_CONTENT');
      }
    }
  }

  private push(data: Buffer): void {
    if (data.length === 0 || this.response === undefined) return;
    if (!this.response.push(data)) this.stalled = true;
  }

  /** The whole body is in. */
  private finish(): void {
    this.done = true;
    const res = this.response;
    if (res) {
      res.complete = true;
      res.push(null);
    }
    this.cleanup();
    this.conn.exchangeDone(this);
  }

  /** The connection closed: complete for a close-delimited body, an error otherwise. */
  onEnd(): void {
    if (this.done) return;
    if (this.framing?.kind === 'close') {
      this.keepAlive = false;
      this.finish();
      return;
    }
    this.fail(
      this.response
        ? new WireError('the connection to the daemon closed before the end of its answer', 'ECONNRESET')
        : new WireError('the daemon closed the connection without answering', 'ECONNRESET'),
    );
  }

  /** The consumer destroyed the answer before its end: the connection cannot be reused. */
  private responseDestroyed(error: Error | null): void {
    if (this.done) return;
    this.done = true;
    this.keepAlive = false;
    this.cleanup();
    this.conn.destroy(error ?? undefined);
  }

  fail(error: Error): void {
    if (this.done && this.settled) return;
    const wasDone = this.done;
    this.done = true;
    this.keepAlive = false;
    this.cleanup();
    if (!this.settled) {
      this.settled = true;
      this.reject(error);
    } else if (!wasDone) this.response?.destroy(error);
    this.conn.destroy(error);
  }

  private cleanup(): void {
    if (this.abortListener) {
      this.req.signal?.removeEventListener('abort', this.abortListener);
      this.abortListener = undefined;
    }
  }
}

/** One connection: its socket, and the exchange it carries, if any. */
class Conn {
  current: Exchange | undefined;
  private closed = false;
  private destroyed = false;

  constructor(
    readonly socket: Socket,
    private readonly pool: WirePool,
  ) {
    socket.on('readable', this.onReadable);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private readonly onReadable = (): void => {
    this.read();
  };

  pull(exchange: Exchange): void {
    if (this.current !== exchange) return;
    exchange.stalled = false;
    this.read();
  }

  private read(): void {
    for (;;) {
      const ex = this.current;
      if (ex?.stalled) return;
      const chunk = this.socket.read() as Buffer | null;
      if (chunk === null) return;
      if (ex === undefined) {
        // Bytes on an idle connection: nothing is waiting for them.
        this.destroy(new WireError('the daemon sent bytes nobody asked for', 'HPE_UNEXPECTED_CONTENT'));
        return;
      }
      let rest: Buffer | undefined;
      try {
        rest = ex.feed(chunk);
      } catch (error) {
        ex.fail(error as Error);
        return;
      }
      if (rest !== undefined) {
        // After 101 the socket is the caller's: give back what was read past the head.
        this.release();
        if (rest.length > 0) this.socket.unshift(rest);
        return;
      }
    }
  }

  private readonly onEnd = (): void => {
    this.current?.onEnd();
    if (!this.socket.destroyed) this.socket.destroy();
  };

  private readonly onError = (error: Error): void => {
    this.closed = true;
    this.pool.forget(this);
    this.current?.fail(error);
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.pool.forget(this);
    this.current?.onEnd();
  };

  exchangeDone(ex: Exchange): void {
    if (this.current !== ex) return;
    this.current = undefined;
    if (!ex.keepAlive || ex.sending || this.closed) {
      this.socket.destroy();
      return;
    }
    this.pool.idle(this);
  }

  /** Detaches from the socket (after 101): the caller owns it now. */
  release(): void {
    this.current = undefined;
    this.socket.removeListener('readable', this.onReadable);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('error', this.onError);
    this.socket.removeListener('close', this.onClose);
    this.pool.forget(this);
  }

  /** Closes the connection; an answer still coming fails with `error`. */
  destroy(error?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    this.pool.forget(this);
    // The socket's own 'error' event would come back to this connection; it has been reported.
    this.socket.removeListener('error', this.onError);
    this.socket.on('error', () => undefined);
    this.socket.destroy();
    if (error) this.current?.fail(error);
  }

  get usable(): boolean {
    return !this.closed && !this.socket.destroyed && this.current === undefined;
  }
}

/**
 * Connections to one endpoint. `request` sends one request on an idle connection (or a new one)
 * and resolves with the answer's head; the body streams from the response. A request sent on a
 * reused connection that the daemon had closed meanwhile is sent again once on a new one, when its
 * body can be (not a stream).
 */
export class WirePool {
  private readonly free: Conn[] = [];
  /** Every connection carrying a request or idle (not those handed over after 101). */
  private readonly all = new Set<Conn>();
  private closed = false;
  private tls: Promise<typeof import('node:tls')> | undefined;

  constructor(private readonly dial: Dial) {}

  forget(conn: Conn): void {
    this.all.delete(conn);
    const i = this.free.indexOf(conn);
    if (i !== -1) this.free.splice(i, 1);
  }

  idle(conn: Conn): void {
    if (this.free.length >= MAX_IDLE) {
      conn.socket.destroy();
      return;
    }
    // An idle connection does not keep the process alive.
    conn.socket.unref();
    this.free.push(conn);
  }

  private async open(): Promise<Conn> {
    const d = this.dial;
    let socket: Socket;
    if (d.kind === 'unix') socket = netConnect({ path: d.path });
    else if (d.kind === 'tcp') socket = netConnect({ host: d.host, port: d.port });
    else {
      this.tls ??= import('node:tls');
      const tls = await this.tls;
      socket = tls.connect({ host: d.host, port: d.port, ALPNProtocols: ['http/1.1'], ...d.options });
    }
    socket.setNoDelay?.(true);
    const conn = new Conn(socket, this);
    this.all.add(conn);
    return conn;
  }

  async request(req: WireRequest): Promise<WireResult> {
    if (req.signal?.aborted) throw abortError(req.signal);
    if (this.closed) throw new WireError('the client was closed', 'ERR_CLIENT_CLOSED');
    const replayable = req.body === undefined || typeof req.body === 'string' || req.body instanceof Uint8Array;
    for (;;) {
      const reused = req.upgrade ? undefined : this.takeIdle();
      const conn = reused ?? (await this.open());
      try {
        return await this.send(conn, req);
      } catch (error) {
        const code = (error as { code?: string }).code;
        const stale = reused !== undefined && replayable && (code === 'ECONNRESET' || code === 'EPIPE') && !req.signal?.aborted;
        if (!stale) throw error;
      }
    }
  }

  private takeIdle(): Conn | undefined {
    while (this.free.length > 0) {
      const conn = this.free.pop() as Conn;
      if (conn.usable) {
        conn.socket.ref();
        return conn;
      }
    }
    return undefined;
  }

  private send(conn: Conn, req: WireRequest): Promise<WireResult> {
    return new Promise<WireResult>((resolve, reject) => {
      const ex = new Exchange(conn, req, resolve, reject);
      conn.current = ex;
      if (req.signal?.aborted) {
        ex.fail(abortError(req.signal));
        return;
      }
      const { socket } = conn;
      let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(req.headers)) {
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) {
          ex.fail(new WireError(`header ${JSON.stringify(k)} holds a line break`, 'ERR_INVALID_CHAR'));
          return;
        }
        head += `${k}: ${v}\r\n`;
      }
      if (req.upgrade) head += 'Connection: Upgrade\r\nUpgrade: tcp\r\n';
      const body = req.body;
      if (body === undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') head += 'Content-Length: 0\r\n';
        socket.write(`${head}\r\n`, 'latin1');
      } else if (typeof body === 'string') {
        socket.write(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      } else if (body instanceof Uint8Array) {
        socket.cork();
        socket.write(`${head}Content-Length: ${body.byteLength}\r\n\r\n`, 'latin1');
        socket.write(body);
        socket.uncork();
      } else {
        socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n`, 'latin1');
        ex.sending = true;
        // An answer that comes before the last chunk went out closes the connection (exchangeDone).
        void sendChunked(socket, body, ex).then(
          () => {
            ex.sending = false;
          },
          (error: unknown) => ex.fail(error instanceof Error ? error : new Error(String(error))),
        );
      }
    });
  }

  /** Ends every connection, those still carrying an answer too; later requests fail. */
  close(): void {
    this.closed = true;
    this.free.length = 0;
    for (const conn of [...this.all]) conn.destroy(new WireError('the client was closed', 'ERR_CLIENT_CLOSED'));
  }
}

/** Writes a streamed request body with chunked framing, waiting for the socket to drain. */
async function sendChunked(socket: Socket, body: AsyncIterable<Uint8Array>, ex: Exchange): Promise<void> {
  for await (const chunk of body) {
    if (ex.done || socket.destroyed) return;
    if (chunk.byteLength === 0) continue;
    socket.cork();
    socket.write(`${chunk.byteLength.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    if (!ok) await drained(socket);
  }
  if (!ex.done && !socket.destroyed) socket.write('0\r\n\r\n', 'latin1');
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.removeListener('drain', done);
      socket.removeListener('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
