import type { Readable } from 'node:stream';

/**
 * The chunks of a byte stream exactly as they were pushed. `for await` on a Readable calls
 * `read()`, which joins everything buffered into one new Buffer — a copy of every byte when the
 * producer runs ahead (large highWaterMark, a fast socket or child process). This reads 'data'
 * events instead, with pause/resume for backpressure, so no byte is copied. Destroys the stream
 * when the consumer stops early.
 */
export async function* chunksOf(stream: Readable, maxQueued = 64): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let ended = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Buffer | string): void => {
    queue.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (queue.length - head >= maxQueued) stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (err: unknown): void => {
    error ??= err;
    notify();
  };
  const onClose = (): void => {
    if (!ended) error ??= Object.assign(new Error('stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.on('close', onClose);
  try {
    for (;;) {
      if (head < queue.length) {
        const chunk = queue[head] as Buffer;
        queue[head++] = EMPTY;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (queue.length - head < maxQueued / 2 && stream.isPaused() && !ended) stream.resume();
        yield chunk;
        continue;
      }
      if (error !== undefined) throw error;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onClose);
    // Late errors (after the consumer left) must not go unhandled.
    if (!ended || error !== undefined) stream.destroy();
  }
}

const EMPTY = Buffer.alloc(0);
