import { Decompress } from 'fzstd';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { Readable, Transform } from 'node:stream';
import type { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InvalidLayerError } from '../errors.js';
import { chunksOf } from './chunks.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** A streaming zstd decoder (fzstd) as a Transform. */
export function createZstdDecompress(): Transform {
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        decoder.push(chunk);
        cb();
      } catch (err) {
        cb(new InvalidLayerError('invalid zstd stream', { cause: err }));
      }
    },
    flush(cb) {
      try {
        decoder.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(new InvalidLayerError('invalid zstd stream', { cause: err }));
      }
    },
  });
  const decoder = new Decompress((data) => {
    t.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  return t;
}

/** The first bytes of `source` sniffed for a compression format, and every chunk (those included). */
async function sniff(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): Promise<{ kind: Compression; chunks: AsyncGenerator<Buffer> }> {
  const it: AsyncIterator<Buffer | Uint8Array> =
    source instanceof Readable
      ? chunksOf(source)
      : Symbol.asyncIterator in source
        ? source[Symbol.asyncIterator]()
        : (async function* () {
            yield* source;
          })();
  let first: Buffer = Buffer.alloc(0);
  const pending: Buffer[] = [];
  while (first.length < 4) {
    const { value, done } = await it.next();
    if (done) break;
    const b = Buffer.isBuffer(value) ? value : Buffer.from(value);
    pending.push(b);
    first = Buffer.concat([first, b]);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      for (const p of pending) yield p;
      while (true) {
        const { value, done } = await it.next();
        if (done) return;
        yield Buffer.isBuffer(value) ? value : Buffer.from(value);
      }
    } finally {
      // A consumer that stops early stops the source too (a Readable is destroyed by chunksOf).
      await it.return?.();
    }
  }
  return { kind: detectCompression(first), chunks: rest() };
}

/**
 * Yields the decompressed bytes of `source`, sniffing gzip / zstd / plain from the first bytes.
 * Errors in the compressed data surface as `InvalidLayerError`. Every chunk is the consumer's to
 * keep.
 */
export async function* decompressStream(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  const { kind, chunks } = await sniff(source);
  yield* decompressSniffed(kind, chunks);
}

async function* decompressSniffed(kind: Compression, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (kind === 'none') {
    yield* rest;
    return;
  }
  if (kind === 'gzip' && IGZIP) {
    const reader = await IgzipReader.start(IGZIP, rest, undefined);
    for await (const chunk of reader) {
      // Copied out of the reader's reusable slabs: these chunks are the consumer's to keep.
      const own = Buffer.allocUnsafe(chunk.length);
      chunk.copy(own);
      reader.release(chunk);
      yield own;
    }
    return;
  }
  const decoder: Transform = kind === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : createZstdDecompress();
  const input = Readable.from(rest, { objectMode: false });
  input.on('error', (err) => decoder.destroy(err));
  input.pipe(decoder);
  try {
    for await (const chunk of chunksOf(decoder)) yield chunk;
  } catch (err) {
    if (err instanceof InvalidLayerError) throw err;
    const code = (err as { code?: string }).code;
    if (code && code.startsWith('Z_')) throw new InvalidLayerError(`invalid ${kind} stream: ${(err as Error).message}`, { cause: err });
    throw err;
  } finally {
    input.destroy();
  }
}

/**
 * Decompressed chunks whose memory is lent, not given: the consumer hands each chunk back with
 * `release` once it no longer reads it (`ByteSource` does, when given `release`), and the
 * producer then reuses that memory for later chunks.
 */
export interface LentChunks extends AsyncIterable<Buffer> {
  release(chunk: Buffer): void;
}

/**
 * `decompressStream` for a consumer that copies what it keeps (`applyLayer`): gzip through
 * igzip is read straight into a few reused slabs instead of a fresh buffer per read —
 * fresh memory costs a page fault per 4 KiB, more than the inflate itself. Other formats
 * yield chunks the consumer may keep, with a `release` that does nothing.
 */
export async function decompressLent(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  sourceRelease?: (chunk: Buffer) => void,
): Promise<LentChunks> {
  const { kind, chunks } = await sniff(source);
  // igzip's input side hands every chunk back once it is written to the pipe.
  if (kind === 'gzip' && IGZIP) return IgzipReader.start(IGZIP, chunks, sourceRelease);
  // Elsewhere a lent input chunk is copied and given back at once (zstd, plain tar, zlib: rare).
  const input = sourceRelease ? copied(chunks, sourceRelease) : chunks;
  const out = decompressSniffed(kind, input);
  return { [Symbol.asyncIterator]: () => out, release: () => undefined };
}

async function* copied(chunks: AsyncGenerator<Buffer>, release: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    const own = Buffer.from(chunk);
    release(chunk);
    yield own;
  }
}

/**
 * ISA-L's igzip (Debian `isal`) inflates about three times faster than zlib; when installed it
 * decompresses gzip layers in a child process (which also takes the work off this process).
 * `BERTH_GUNZIP=zlib` forces Node's zlib.
 */
const IGZIP = process.env.BERTH_GUNZIP === 'zlib' ? undefined : ['/usr/bin/igzip', '/usr/local/bin/igzip'].find((p) => existsSync(p));

let socketCounter = 0;
const SLAB = 1 << 20;
/** A slab with less room than this is retired (a read into it would be short). */
const MIN_READ = 64 * 1024;
const MAX_QUEUED = 64;
/** Slabs kept (process-wide) for reuse once every chunk cut from them is released. */
const KEEP_SLABS = 16;
const spareSlabs: Buffer[] = [];

interface Slab {
  buf: Buffer;
  /** Chunks handed out of this slab and not released yet. */
  lent: number;
}

/**
 * igzip in a child process, its stdout a unix socket whose other end this reader reads with
 * `onread`, so every read lands in a slab (Node's own pipes allocate a fresh buffer per
 * 64 KiB read). A slab is reused once every chunk cut from it is released. The compressed
 * input goes to igzip's stdin; a lent input chunk is handed back once it is in the pipe.
 */
class IgzipReader implements LentChunks {
  private readonly slabs = new Map<ArrayBufferLike, Slab>();
  private current: Slab;
  private offset = 0;
  private readonly queue: Buffer[] = [];
  private head = 0;
  private paused = false;
  private ended = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  private stderr = '';
  private inputError: unknown;
  private readonly out: Socket;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private feeding: Promise<void> = Promise.resolve();

  private constructor(
    path: string,
    private readonly input: AsyncGenerator<Buffer>,
    private readonly inputRelease: ((chunk: Buffer) => void) | undefined,
  ) {
    this.current = this.newSlab();
    // `onread` is a documented net.connect option (no 'data' events: reads land in our slabs).
    this.out = connect({ path, onread: { buffer: () => this.nextBuffer(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) } });
    this.out.on('end', () => {
      this.ended = true;
      this.notify();
    });
    this.out.on('error', (err) => {
      this.error ??= err;
      this.notify();
    });
  }

  private run(child: ChildProcess): void {
    this.child = child;
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < 4096) this.stderr += d;
    });
    // A failed spawn: reported through the exit status ('close' follows 'error').
    child.on('error', (err) => {
      this.stderr ||= err.message;
    });
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
    this.feeding = this.feed(child.stdin as Writable, this.input, this.inputRelease);
  }

  /**
   * Writes the compressed input to igzip's stdin, handing each chunk back once it is in the pipe.
   * Input errors (the download failed) reach the consumer; EPIPE (igzip quit on bad data) is
   * reported through the exit status instead.
   */
  private async feed(stdin: Writable, input: AsyncGenerator<Buffer>, release: ((chunk: Buffer) => void) | undefined): Promise<void> {
    let broken = false;
    let wakeWriter: (() => void) | undefined;
    const wake = (): void => {
      const w = wakeWriter;
      wakeWriter = undefined;
      w?.();
    };
    stdin.on('error', () => {
      broken = true;
      wake();
    });
    stdin.on('drain', wake);
    stdin.on('close', () => {
      broken = true;
      wake();
    });
    try {
      for await (const chunk of input) {
        if (broken) {
          release?.(chunk);
          continue;
        }
        const room = stdin.write(chunk, () => release?.(chunk));
        if (!room && !broken) {
          await new Promise<void>((resolve) => {
            wakeWriter = resolve;
          });
        }
      }
      if (!broken) stdin.end();
    } catch (err) {
      this.inputError = err;
      this.notify();
      stdin.destroy();
    }
  }

  /**
   * Starts igzip with its stdout on one end of a fresh unix socket pair (abstract name, never on
   * disk): the other end is this reader's `onread` socket. No pipe of Node's own (whose reads
   * allocate), no extra process to make a FIFO. (Another local process that raced to connect
   * first could only feed bytes that fail the diffID check: nothing it sends is committed.)
   */
  static async start(binary: string, input: AsyncGenerator<Buffer>, inputRelease: ((chunk: Buffer) => void) | undefined): Promise<IgzipReader> {
    const server = createServer();
    const name = `\0berth-gunzip-${process.pid}-${++socketCounter}-${randomBytes(6).toString('hex')}`;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(name, resolve);
      });
      const accepted = new Promise<Socket>((resolve, reject) => {
        server.once('connection', resolve);
        server.once('error', reject);
      });
      const reader = new IgzipReader(name, input, inputRelease);
      const peer = await accepted;
      try {
        // The child gets its own copy of the socket; ours is closed at once so that the reader
        // sees end-of-file when igzip exits.
        reader.run(spawn(binary, ['-d', '-c'], { stdio: ['pipe', peer, 'pipe'] }));
      } catch (err) {
        reader.out.destroy();
        throw err;
      } finally {
        peer.destroy();
      }
      return reader;
    } finally {
      server.close();
    }
  }

  private newSlab(): Slab {
    // Reused across readers in this process: fresh memory costs a page fault per 4 KiB.
    const slab = { buf: spareSlabs.pop() ?? Buffer.allocUnsafe(SLAB), lent: 0 };
    this.slabs.set(slab.buf.buffer, slab);
    return slab;
  }

  private nextBuffer(): Uint8Array {
    if (SLAB - this.offset < MIN_READ) {
      const old = this.current;
      this.current = this.newSlab();
      this.offset = 0;
      if (old.lent === 0) this.retire(old);
    }
    return this.current.buf.subarray(this.offset);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    this.queue.push(Buffer.from(buf.buffer, buf.byteOffset, n));
    this.current.lent++;
    this.offset += n;
    this.notify();
    if (this.queue.length - this.head >= MAX_QUEUED) {
      this.paused = true;
      return false;
    }
    return true;
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

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    let finished = false;
    try {
      for (;;) {
        if (this.inputError !== undefined) throw this.inputError;
        if (this.head < this.queue.length) {
          const chunk = this.queue[this.head++] as Buffer;
          if (this.head === this.queue.length) {
            this.queue.length = 0;
            this.head = 0;
          }
          if (this.paused && this.queue.length - this.head < MAX_QUEUED / 2) {
            this.paused = false;
            this.out.resume();
          }
          yield chunk;
          continue;
        }
        if (this.error !== undefined) throw this.error;
        if (this.ended) break;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
      await this.feeding;
      if (this.inputError !== undefined) throw this.inputError;
      const code = await this.exited;
      if (code !== 0) throw new InvalidLayerError(`invalid gzip stream: ${this.stderr.trim() || `igzip exited with ${code}`}`);
      finished = true;
    } finally {
      this.out.destroy();
      // Not awaiting the input side: it may wait on a download that goes on; it drops (and
      // hands back) whatever still comes once igzip is gone.
      if (!finished) this.child?.kill('SIGKILL');
    }
  }
}
