import { Decompress } from 'fzstd';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

/**
 * Yields the decompressed bytes of `source`, sniffing gzip / zstd / plain from the first bytes.
 * Errors in the compressed data surface as `InvalidLayerError`.
 */
export async function* decompressStream(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
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
  const kind = detectCompression(first);
  async function* rest(): AsyncGenerator<Buffer> {
    for (const p of pending) yield p;
    while (true) {
      const { value, done } = await it.next();
      if (done) return;
      yield Buffer.isBuffer(value) ? value : Buffer.from(value);
    }
  }
  if (kind === 'none') {
    yield* rest();
    return;
  }
  if (kind === 'gzip' && IGZIP) {
    yield* externalGunzip(IGZIP, rest());
    return;
  }
  const decoder: Transform = kind === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : createZstdDecompress();
  const input = Readable.from(rest(), { objectMode: false });
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
 * ISA-L's igzip (Debian `isal`) inflates about three times faster than zlib; when installed it
 * decompresses gzip layers in a child process (which also takes the work off this process).
 * `BERTH_GUNZIP=zlib` forces Node's zlib.
 */
const IGZIP = process.env.BERTH_GUNZIP === 'zlib' ? undefined : ['/usr/bin/igzip', '/usr/local/bin/igzip'].find((p) => existsSync(p));

async function* externalGunzip(binary: string, input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const child = spawn(binary, ['-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // Input errors (the download failed) must reach the consumer; EPIPE (igzip quit on bad data) is
  // reported through the exit status instead.
  let inputError: unknown;
  const feeding = pipeline(Readable.from(input), child.stdin).catch((err: unknown) => {
    if ((err as { code?: string }).code !== 'EPIPE') inputError = err;
    child.stdin.destroy();
  });
  let finished = false;
  try {
    for await (const chunk of chunksOf(child.stdout)) {
      if (inputError !== undefined) throw inputError;
      yield chunk;
    }
    await feeding;
    if (inputError !== undefined) throw inputError;
    const code = await exited;
    if (code !== 0) throw new InvalidLayerError(`invalid gzip stream: ${stderr.trim() || `igzip exited with ${code}`}`);
    finished = true;
  } finally {
    if (!finished) {
      child.kill('SIGKILL');
      await feeding.catch(() => undefined);
    }
  }
}
