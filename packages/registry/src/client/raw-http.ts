import { connect as netConnect, isIP } from 'node:net';
import type { OnReadOpts, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';

/**
 * Chunks whose memory is lent, not given: `release` hands a chunk back once the consumer is done
 * with it, and the producer reuses that memory for later chunks. A chunk never released is only
 * garbage-collected (its memory is not reused) — never corrupted.
 */
export interface LentChunks extends AsyncIterable<Buffer> {
  release(chunk: Buffer): void;
}

/** The body of a `sendRaw` response: lent chunks, plus what the request loop needs. */
export interface RawBody extends LentChunks {
  /** True once the whole body (by Content-Length, chunked framing or close) has arrived. */
  readonly complete: boolean;
  destroy(error?: Error): void;
}

export interface RawResponse {
  status: number;
  ok: boolean;
  headers: Headers;
  body: RawBody;
}

/** Memory is read into slabs this big; a slab with less than MIN_READ left is retired. */
const SLAB = 1 << 20;
const MIN_READ = 128 * 1024;
/** Slabs kept (process-wide) for reuse once every chunk cut from them is released. */
const KEEP_SLABS = 16;
const spareSlabs: Buffer[] = [];
/** Body bytes queued for the consumer before the socket stops reading. */
const MAX_QUEUED = 4 << 20;
const MAX_HEAD = 64 * 1024;

interface Slab {
  buf: Buffer;
  lent: number;
}

type Framing =
  | { kind: 'length'; left: number }
  | { kind: 'close' }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string };

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * One HTTP/1.1 request without a body over its own connection (`Connection: close`), for large
 * blob GETs. node:http reads a socket into a fresh 64 KiB buffer per read and copies every body
 * piece once more in its parser; on a fast link that fresh memory (a page fault per 4 KiB) costs
 * more than the bytes themselves. Here the socket reads straight into a few reused slabs (`onread`)
 * and the body is framed in place, so a chunk is a view of a slab until the consumer releases it.
 * Resolves once the response head is in; rejects with the socket's error (ECONNREFUSED, …).
 */
export function sendRaw(url: string, method: string, headers: Record<string, string>, signal?: AbortSignal): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const https = target.protocol === 'https:';
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    const port = Number(target.port || (https ? 443 : 80));
    const conn = new RawConnection(resolve, reject);
    const onread: OnReadOpts = { buffer: () => conn.nextBuffer(), callback: (n, buf) => conn.onRead(n, buf) };
    // tls.connect takes `onread` as net.connect does (the typings list it for net only).
    const tlsOptions: ConnectionOptions & { onread: OnReadOpts } = { host, port, ALPNProtocols: ['http/1.1'], onread };
    if (!isIP(host)) tlsOptions.servername = host;
    const socket: Socket = https ? tlsConnect(tlsOptions) : netConnect({ host, port, onread });
    conn.attach(socket, signal);
    const lines = [`${method} ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    lines.push('Connection: close', '', '');
    socket.write(lines.join('\r\n'));
  });
}

class RawConnection implements RawBody {
  private socket: Socket | undefined;
  private readonly slabs = new Map<ArrayBufferLike, Slab>();
  private current: Slab;
  private offset = 0;
  private head: Buffer | undefined = Buffer.alloc(0);
  private framing: Framing | undefined;
  private readonly queue: Buffer[] = [];
  private qhead = 0;
  private queued = 0;
  private paused = false;
  private done = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private responded = false;

  constructor(
    private readonly resolve: (r: RawResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.current = this.newSlab();
  }

  get complete(): boolean {
    return this.done;
  }

  attach(socket: Socket, signal: AbortSignal | undefined): void {
    this.socket = socket;
    socket.on('end', () => {
      if (this.framing?.kind === 'close') this.done = true;
      if (!this.done) this.fail(Object.assign(new Error('connection closed before the end of the response'), { code: 'ECONNRESET' }));
      this.notify();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => {
      if (!this.done) this.fail(Object.assign(new Error('connection closed before the end of the response'), { code: 'ECONNRESET' }));
    });
    if (signal) {
      const abort = (): void => this.destroy(signal.reason instanceof Error ? signal.reason : Object.assign(new Error('aborted'), { name: 'AbortError' }));
      if (signal.aborted) abort();
      else {
        signal.addEventListener('abort', abort, { once: true });
        socket.once('close', () => signal.removeEventListener('abort', abort));
      }
    }
  }

  private newSlab(): Slab {
    // Reused across readers in this process: fresh memory costs a page fault per 4 KiB.
    const slab = { buf: spareSlabs.pop() ?? Buffer.allocUnsafe(SLAB), lent: 0 };
    this.slabs.set(slab.buf.buffer, slab);
    return slab;
  }

  nextBuffer(): Uint8Array {
    if (SLAB - this.offset < MIN_READ) {
      const old = this.current;
      this.current = this.newSlab();
      this.offset = 0;
      if (old.lent === 0) this.retire(old);
    }
    return this.current.buf.subarray(this.offset);
  }

  private retire(slab: Slab): void {
    this.slabs.delete(slab.buf.buffer);
    if (spareSlabs.length < KEEP_SLABS) spareSlabs.push(slab.buf);
  }

  release(chunk: Buffer): void {
    const slab = this.slabs.get(chunk.buffer);
    if (!slab) return;
    slab.lent--;
    if (slab.lent === 0 && slab !== this.current) this.retire(slab);
  }

  onRead(n: number, buf: Uint8Array): boolean {
    const data = Buffer.from(buf.buffer, buf.byteOffset, n);
    this.offset += n;
    try {
      if (this.head !== undefined) this.readHead(data);
      else this.readBody(data);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    if (this.queued >= MAX_QUEUED) {
      this.paused = true;
      return false;
    }
    return true;
  }

  private readHead(data: Buffer): void {
    // The head is small: copied out; whatever follows it stays a view of the slab.
    let acc = Buffer.concat([this.head as Buffer, data]);
    for (;;) {
      const end = acc.indexOf(CRLFCRLF);
      if (end === -1) {
        if (acc.length > MAX_HEAD) throw new Error(`response head larger than ${MAX_HEAD} bytes`);
        this.head = acc;
        return;
      }
      const lines = acc.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
      if (!m) throw new Error(`malformed response status line: ${JSON.stringify((lines[0] ?? '').slice(0, 100))}`);
      const status = Number(m[1]);
      const consumed = end + 4 - (acc.length - data.length);
      if (status >= 100 && status < 200) {
        // Interim response: the real one follows.
        acc = acc.subarray(end + 4);
        if (consumed >= 0) data = data.subarray(consumed);
        continue;
      }
      const headers = new Headers();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const te = headers.get('transfer-encoding');
      const cl = headers.get('content-length');
      if (status === 204 || status === 304) this.framing = { kind: 'length', left: 0 };
      else if (te && te.toLowerCase().includes('chunked')) this.framing = { kind: 'chunked', state: 'size', left: 0, line: '' };
      else if (cl !== null && /^\d+$/.test(cl)) this.framing = { kind: 'length', left: Number(cl) };
      else this.framing = { kind: 'close' };
      this.head = undefined;
      this.responded = true;
      this.resolve({ status, ok: status >= 200 && status < 300, headers, body: this });
      // Body bytes that came with the head: a view of this read when the head ended in it.
      const rest = consumed >= 0 ? data.subarray(consumed) : Buffer.from(acc.subarray(end + 4));
      if (this.framing.kind === 'length' && this.framing.left === 0) this.finish();
      else if (rest.length > 0) this.readBody(rest);
      return;
    }
  }

  private readBody(data: Buffer): void {
    const f = this.framing;
    if (!f || this.done) return;
    if (f.kind === 'close') {
      this.deliver(data);
      return;
    }
    if (f.kind === 'length') {
      const take = Math.min(f.left, data.length);
      if (take > 0) this.deliver(data.subarray(0, take));
      f.left -= take;
      if (f.left === 0) this.finish();
      return;
    }
    let i = 0;
    while (i < data.length && !this.done) {
      if (f.state === 'data') {
        const take = Math.min(f.left, data.length - i);
        this.deliver(data.subarray(i, i + take));
        i += take;
        f.left -= take;
        if (f.left === 0) f.state = 'data-end';
        continue;
      }
      // Line-oriented states: chunk size, the CRLF after data, trailers.
      const nl = data.indexOf(0x0a, i);
      const end = nl === -1 ? data.length : nl + 1;
      f.line += data.subarray(i, end).toString('latin1');
      i = end;
      if (nl === -1) {
        if (f.line.length > 4096) throw new Error('malformed chunked encoding (line too long)');
        continue;
      }
      const line = f.line.replace(/\r?\n$/, '');
      f.line = '';
      if (f.state === 'data-end') {
        if (line !== '') throw new Error('malformed chunked encoding (no CRLF after chunk data)');
        f.state = 'size';
      } else if (f.state === 'size') {
        const size = parseInt(line.split(';')[0] ?? '', 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new Error(`malformed chunk size ${JSON.stringify(line.slice(0, 40))}`);
        if (size === 0) f.state = 'trailer';
        else {
          f.state = 'data';
          f.left = size;
        }
      } else if (line === '') this.finish();
    }
  }

  private deliver(view: Buffer): void {
    const slab = this.slabs.get(view.buffer);
    if (slab) slab.lent++;
    this.queue.push(view);
    this.queued += view.length;
    this.notify();
  }

  private finish(): void {
    this.done = true;
    this.notify();
    // Connection: close — nothing more is read from this socket.
    this.socket?.destroy();
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.error ??= err;
    this.socket?.destroy();
    if (!this.responded) {
      this.responded = true;
      this.reject(err);
    }
    this.notify();
  }

  destroy(error?: Error): void {
    this.fail(error ?? Object.assign(new Error('response body destroyed'), { code: 'ERR_STREAM_DESTROYED' }));
    this.socket?.destroy();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.qhead < this.queue.length) {
          const chunk = this.queue[this.qhead++] as Buffer;
          if (this.qhead === this.queue.length) {
            this.queue.length = 0;
            this.qhead = 0;
          }
          this.queued -= chunk.length;
          if (this.paused && this.queued < MAX_QUEUED / 2 && this.socket && !this.socket.destroyed) {
            this.paused = false;
            this.socket.resume();
          }
          yield chunk;
          continue;
        }
        if (this.error) throw this.error;
        if (this.done) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      // A consumer that stops early frees the connection.
      if (!this.done) this.destroy();
    }
  }
}
