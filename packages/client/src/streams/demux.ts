import { ClientError } from '../errors.js';

/** One piece of a container's output. For TTY containers everything is `stdout`. */
export interface OutputFrame {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

/** Content types the daemon uses for attach, logs and exec streams. */
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';
export const RAW_STREAM = 'application/vnd.docker.raw-stream';

/**
 * Splits docker's multiplexed stream (8-byte header `[type,0,0,0,size_be32]` + payload) into frames.
 * Type 0 (stdin echo) is reported as stdout, as docker's stdcopy does; type 3 (systemerr) throws a
 * ClientError carrying the daemon's text. Frames may span chunks; a truncated last frame throws.
 */
export async function* demultiplex(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  let buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    buffer = buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 8) {
      const type = buffer[0]!;
      const size = buffer.readUInt32BE(4);
      if (buffer.length < 8 + size) break;
      const data = buffer.subarray(8, 8 + size);
      buffer = buffer.subarray(8 + size);
      if (type === 3) throw new ClientError('STREAM_ERROR', 'internal', data.toString('utf8').trim());
      if (type > 3) throw new ClientError('BAD_FRAME', 'internal', `unexpected stream type ${type} in a multiplexed stream`);
      if (size === 0) continue;
      yield { stream: type === 2 ? 'stderr' : 'stdout', data: Buffer.from(data) };
    }
  }
  if (buffer.length > 0) {
    throw new ClientError('BAD_FRAME', 'internal', `multiplexed stream ended inside a frame (${buffer.length} bytes left)`);
  }
}

/** A TTY stream: bytes as they come, all on stdout. */
export async function* rawFrames(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  for await (const chunk of source) {
    if (chunk.length > 0) yield { stream: 'stdout', data: Buffer.from(chunk) };
  }
}

/**
 * Chooses demultiplexing or raw from the response content type; for a `raw-stream` answer whose
 * TTY-ness the caller does not know, looks at the first bytes the way dockerode does (a header whose
 * type byte is 0–2 followed by three zeros means multiplexed).
 */
export function frames(source: AsyncIterable<Uint8Array>, contentType: string | undefined, tty?: boolean): AsyncGenerator<OutputFrame> {
  if (contentType?.startsWith(MULTIPLEXED_STREAM)) return demultiplex(source);
  if (tty === true) return rawFrames(source);
  if (tty === false) return demultiplex(source);
  return sniff(source);
}

async function* sniff(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return;
  const head = Buffer.from(first.value);
  const rest: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => {
      let sentHead = false;
      return {
        next: async () => {
          if (!sentHead) {
            sentHead = true;
            return { done: false, value: head };
          }
          return iterator.next();
        },
      };
    },
  };
  const multiplexed = head.length >= 4 && head[0]! <= 2 && head[1] === 0 && head[2] === 0 && head[3] === 0;
  yield* multiplexed ? demultiplex(rest) : rawFrames(rest);
}

/** Encodes one frame (used by tests and by servers written on this package). */
export function encodeFrame(stream: 'stdout' | 'stderr' | 'stdin' | 'system', data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream === 'stdin' ? 0 : stream === 'stdout' ? 1 : stream === 'stderr' ? 2 : 3;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}
