import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Large upload bodies read straight from the socket into reused buffers, bypassing node:http's
 * body parsing.
 *
 * Why: node:http's parser hands every body piece to JavaScript as a fresh copy (one allocation
 * and one memmove per ≤64 KiB read, and the garbage collection that follows); for a layer push
 * that is a fifth of the server's CPU. Here the socket reads land directly in two 4 MiB buffers
 * that the consumer hashes and writes to disk in turn (reads of up to a few MiB at a time, no
 * copy, no allocation), through the `onread` buffer machinery `net.Socket` already has.
 *
 * When: only for a plain-TCP HTTP/1.x request with a `Content-Length` of at least
 * `MIN_BODY_BYTES` and no `Transfer-Encoding`, on a socket whose HTTP parser still consumes it
 * (node:http's default), and only while the node internals this relies on look as expected
 * (`socket._handle.useUserBuffer`, the `kBuffer*` symbols of `net.Socket`); otherwise
 * `takeRequestBody` returns undefined and the caller reads `req` as a stream as before.
 *
 * Contract: once taken, the HTTP parser never sees this connection again, so the response is
 * sent with `Connection: close` (the client opens a new connection for its next request; skopeo
 * and Go's client already close after an upload). Bytes after the declared length (a pipelined
 * request) are dropped with the connection. If the client goes away early, iteration rejects.
 */
export const MIN_BODY_BYTES = 1024 * 1024;
const BUFFER_BYTES = 4 * 1024 * 1024;
/** Where reads go while both buffers are lent out or after the body (normally never written). */
const SCRATCH_BYTES = 64 * 1024;

/** The body of one request, as chunks that are only valid until the next `next()` call. */
export interface TakenBody extends AsyncIterable<Uint8Array> {
  /** Declared length of the body (Content-Length). */
  readonly length: number;
  /**
   * Read and drop the rest of the body (after the request failed), so that the client can finish
   * sending and then read the error response; resolves once the body is all in (or the connection
   * is gone). Pending and later iteration ends.
   */
  discard(): Promise<void>;
}

interface NodeInternals {
  kBuffer: symbol;
  kBufferCb: symbol;
  kBufferGen: symbol;
}

interface StreamHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/** Free 4 MiB buffers, kept so that back-to-back uploads do not fault in fresh memory. */
const pool: Buffer[] = [];
const POOL_MAX = 4;

function getBuffer(size: number): Buffer {
  if (size === BUFFER_BYTES) {
    const b = pool.pop();
    if (b) return b;
  }
  return Buffer.allocUnsafeSlow(size);
}

function putBuffer(b: Buffer): void {
  if (b.length === BUFFER_BYTES && pool.length < POOL_MAX && !pool.includes(b)) pool.push(b);
}

function internalsOf(socket: Socket): NodeInternals | undefined {
  const found: Partial<NodeInternals> = {};
  for (const s of Object.getOwnPropertySymbols(socket)) {
    const d = s.description;
    if (d === 'kBuffer' || d === 'kBufferCb' || d === 'kBufferGen') {
      // A socket already reading into a user buffer is not ours to take.
      if ((socket as unknown as Record<symbol, unknown>)[s] !== null) return undefined;
      found[d] = s;
    }
  }
  return found.kBuffer && found.kBufferCb && found.kBufferGen ? (found as NodeInternals) : undefined;
}

/**
 * Takes over the rest of `req`'s body (see the module comment), or returns undefined when the
 * request does not qualify. Call it before anything else reads `req`, and before the response
 * headers are written (it sets `Connection: close` on `res`).
 */
export function takeRequestBody(req: IncomingMessage, res: ServerResponse, minBytes = MIN_BODY_BYTES): TakenBody | undefined {
  if (req.headers['transfer-encoding'] !== undefined || req.complete || res.headersSent) return undefined;
  const raw = req.headers['content-length'];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const length = Number(raw);
  if (!Number.isSafeInteger(length) || length < minBytes) return undefined;
  const socket = req.socket as Socket & { encrypted?: boolean; parser?: { _consumed?: boolean } | null; _handle?: unknown };
  if (socket.encrypted || socket.destroyed || !socket.parser || socket.parser._consumed !== true) return undefined;
  const handle = socket._handle as Partial<StreamHandle> | null | undefined;
  if (!handle || typeof handle.useUserBuffer !== 'function') return undefined;
  const internals = internalsOf(socket);
  if (!internals) return undefined;
  return new SocketBody(req, res, socket, handle as StreamHandle, internals, length);
}

type Waiter = { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void };

/**
 * State: two fill buffers. Socket reads go into `buffers[filling]` from `fill` on; a full buffer
 * (or the last, partial one) moves to `ready`; the consumer holds at most one (`lent`) until its
 * next `next()`. When neither buffer is free, reading stops. Node hands a read the region the
 * kBufferGen callback returned after the previous read (`target`); whenever the state moved on
 * since (or reading stopped), that region is `scratch` and what lands there is copied.
 */
class SocketBody implements TakenBody {
  readonly length: number;
  private remaining: number;
  private readonly buffers: Buffer[];
  /** Index of the buffer reads go into, or -1 while none is free. */
  private filling = 0;
  private fill = 0;
  /** Full (or final) buffers waiting for the consumer: [index, bytes]. */
  private readonly ready: Array<[number, number]> = [];
  /** Index of the buffer the consumer holds, or -1. */
  private lent = -1;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Bytes that arrived in `scratch` while no buffer was free (a resume we did not ask for). */
  private spill: Buffer[] = [];
  /** The region node reads into next (what the kBufferGen callback returned last). */
  private target: Buffer;
  private waiter: Waiter | undefined;
  private failure: Error | undefined;
  private discarding = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    private readonly socket: Socket,
    handle: StreamHandle,
    internals: NodeInternals,
    length: number,
  ) {
    this.length = length;
    this.remaining = length;
    const size = Math.min(BUFFER_BYTES, length);
    this.buffers = [getBuffer(size), getBuffer(size)];
    res.setHeader('Connection', 'close');
    // Body bytes the parser had already taken in (at most a read or two) come first.
    for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) this.accept(chunk);
    this.target = this.nextTarget();
    const s = socket as unknown as Record<symbol, unknown>;
    s[internals.kBuffer] = this.target;
    s[internals.kBufferCb] = (nread: number, buf: Buffer) => this.onRead(nread, buf);
    s[internals.kBufferGen] = () => this.target;
    // node:http answers a request whose body its parser has not seen complete with a 400 when
    // the client half-closes; the socket's end is handled here instead.
    for (const listener of socket.listeners('end')) {
      if ((listener as { name?: string }).name === 'bound socketOnEnd') socket.removeListener('end', listener as () => void);
    }
    socket.on('end', this.onEnd);
    socket.once('close', this.onEnd);
    // Adding a 'data' listener is node:http's own way to make its parser let go of the socket
    // (it unconsumes the handle); with the kBuffer symbols set, no 'data' event is emitted and
    // reads land in `target`.
    socket.on('data', noop);
    handle.useUserBuffer(this.target);
    if (this.remaining > 0) socket.resume();
  }

  /**
   * The connection ended (or closed). Before the declared length, that fails the body — after the
   * bytes that did arrive have been handed out, so that they are stored (the upload resumes
   * from there).
   */
  private readonly onEnd = (): void => {
    if (this.remaining > 0 && !this.failure) {
      this.failure = Object.assign(new Error(`request body ended after ${this.length - this.remaining} of ${this.length} bytes`), { code: 'ECONNRESET' });
      if (this.filling >= 0 && this.fill > 0) this.ready.push([this.filling, this.fill]);
      this.filling = -1;
      this.fill = 0;
      this.socket.destroy();
      this.wake();
    }
    this.checkDrained();
  };

  /** Takes bytes that did not arrive in place (the parser's leftovers, reads into scratch). */
  private accept(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length && this.remaining > 0) {
      if (this.discarding) {
        const n = Math.min(bytes.length - offset, this.remaining);
        this.remaining -= n;
        offset += n;
        continue;
      }
      if (this.filling < 0) {
        this.spill.push(Buffer.from(bytes.subarray(offset, offset + Math.min(bytes.length - offset, this.remaining))));
        return;
      }
      const buffer = this.buffers[this.filling]!;
      const n = Math.min(bytes.length - offset, this.remaining, buffer.length - this.fill);
      bytes.copy(buffer, this.fill, offset, offset + n);
      offset += n;
      this.added(n);
    }
  }

  /** `n` more bytes are in the fill buffer: hand it on when full (or when the body is complete). */
  private added(n: number): void {
    this.fill += n;
    this.remaining -= n;
    const buffer = this.buffers[this.filling]!;
    if (this.fill < buffer.length && this.remaining > 0) return;
    this.ready.push([this.filling, this.fill]);
    this.fill = 0;
    const other = this.filling ^ 1;
    this.filling = this.remaining > 0 && this.lent !== other && !this.ready.some(([i]) => i === other) ? other : -1;
    this.wake();
  }

  /** Node read `nread` bytes into `buf` (the last region the kBufferGen callback returned). */
  private onRead(nread: number, buf: Buffer): boolean {
    if (this.failure) {
      this.target = this.scratch;
      return false;
    }
    const expected = this.filling >= 0 && !this.discarding ? this.buffers[this.filling]! : undefined;
    if (expected && buf.buffer === expected.buffer && buf.byteOffset === expected.byteOffset + this.fill && nread <= expected.length - this.fill) {
      this.added(Math.min(nread, this.remaining));
    } else {
      this.accept(buf.subarray(0, nread));
    }
    this.target = this.nextTarget();
    this.checkDrained();
    // Stop reading when there is nowhere to read into, or the body is complete (what follows
    // belongs to no request we will parse; the connection closes after the response).
    return this.remaining > 0 && (this.filling >= 0 || this.discarding);
  }

  private nextTarget(): Buffer {
    if (this.remaining <= 0 || this.discarding || this.filling < 0) return this.scratch;
    return this.buffers[this.filling]!.subarray(this.fill);
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const item = this.discarding ? undefined : this.ready.shift();
    if (item) {
      this.waiter = undefined;
      const [index, bytes] = item;
      this.lent = index;
      w.resolve({ value: this.buffers[index]!.subarray(0, bytes), done: false });
    } else if (this.failure && !this.discarding) {
      this.waiter = undefined;
      w.reject(this.failure);
    } else if (this.remaining <= 0 || this.discarding) {
      this.waiter = undefined;
      this.recycle();
      w.resolve({ value: undefined, done: true });
    }
  }

  /** The consumer is done with the buffer it held: reads may use it again. */
  private giveBack(): void {
    if (this.lent < 0) return;
    const index = this.lent;
    this.lent = -1;
    if (this.failure) {
      // Bytes that were spilled before the connection ended still go out, through this buffer.
      const buffer = this.buffers[index]!;
      let n = 0;
      while (this.spill.length > 0 && n < buffer.length) {
        const head = this.spill[0]!;
        const take = Math.min(head.length, buffer.length - n);
        head.copy(buffer, n, 0, take);
        n += take;
        if (take === head.length) this.spill.shift();
        else this.spill[0] = head.subarray(take);
      }
      if (n > 0) this.ready.push([index, n]);
      return;
    }
    if (this.filling >= 0 || this.remaining <= 0 || this.discarding) return;
    this.filling = index;
    this.fill = 0;
    const spilled = this.spill;
    this.spill = [];
    for (const b of spilled) this.accept(b);
    // Reading stopped with `scratch` as the target: the first read after this lands there and is
    // copied; from then on reads go straight into the freed buffer.
    if (this.filling >= 0 && this.remaining > 0 && !this.socket.destroyed) this.socket.resume();
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.waiter) return Promise.reject(new Error('request body: next() while a read is pending'));
    this.giveBack();
    return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  discard(): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    if (this.discarding) return this.drained;
    this.discarding = true;
    this.ready.length = 0;
    this.lent = -1;
    this.spill = [];
    this.filling = -1;
    if (this.remaining > 0 && !this.socket.destroyed) this.socket.resume();
    this.wake();
    this.checkDrained();
    return this.drained;
  }

  private drained: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  private checkDrained(): void {
    if (this.onDrained && (this.remaining <= 0 || this.failure || this.socket.destroyed)) {
      this.onDrained();
      this.onDrained = undefined;
    }
  }

  /**
   * Returns the buffers to the pool after a clean finish: node's read target is `scratch` by
   * then (the last read's callback said so), so nothing can write into them any more.
   */
  private recycle(): void {
    if (this.recycled || this.discarding || this.failure || this.target !== this.scratch || this.lent >= 0) return;
    this.recycled = true;
    for (const b of this.buffers) putBuffer(b);
  }

  private recycled = false;

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: () => {
        void this.discard();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

function noop(): void {}
