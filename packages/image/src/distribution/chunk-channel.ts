/**
 * Hands a download's chunks to an unpacker running beside it, without copying them: a bounded
 * queue (backpressure through `waitForRoom`) whose consumer gives every chunk back with
 * `release` once it is done with it; the producer learns that through the callback it pushed
 * the chunk with (and may then reuse the chunk's memory — see @berth/registry's `LentChunks`).
 * Consumers that keep bytes copy them; `applyLayer` does (its `release` option).
 */
export class ChunkChannel implements AsyncIterable<Buffer> {
  private readonly queue: { chunk: Buffer; done: () => void }[] = [];
  private head = 0;
  private queued = 0;
  /** Yielded to the consumer, not released yet. */
  private readonly lent = new Map<Buffer, () => void>();
  private ended = false;
  private closed = false;
  private error: Error | undefined;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly highWaterMark = 4 << 20) {}

  /** True once the consumer stopped reading (finished, failed or left): pushes are dropped. */
  get destroyed(): boolean {
    return this.closed;
  }

  /** Queues `chunk`; `done` runs once the consumer releases it (or at once, if it is gone). */
  push(chunk: Buffer, done: () => void): void {
    if (this.closed || this.ended) {
      done();
      return;
    }
    this.queue.push({ chunk, done });
    this.queued += chunk.length;
    this.notifyConsumer();
  }

  /** Resolves when the queue is below its high-water mark, or the consumer is gone. */
  async waitForRoom(): Promise<void> {
    while (!this.closed && this.queued >= this.highWaterMark) {
      await new Promise<void>((resolve) => {
        this.wakeProducer = resolve;
      });
    }
  }

  end(): void {
    this.ended = true;
    this.notifyConsumer();
  }

  /** Fails the consumer's iteration with `error` (or ends it) and drops what is queued. */
  destroy(error?: Error): void {
    if (error) this.error ??= error;
    this.ended = true;
    this.drop();
    this.notifyConsumer();
  }

  release(chunk: Buffer): void {
    const done = this.lent.get(chunk);
    if (!done) return;
    this.lent.delete(chunk);
    done();
  }

  private drop(): void {
    for (let i = this.head; i < this.queue.length; i++) (this.queue[i] as { done: () => void }).done();
    this.queue.length = 0;
    this.head = 0;
    this.queued = 0;
  }

  private notifyConsumer(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }

  private notifyProducer(): void {
    const w = this.wakeProducer;
    this.wakeProducer = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.error) throw this.error;
        if (this.head < this.queue.length) {
          const item = this.queue[this.head++] as { chunk: Buffer; done: () => void };
          if (this.head === this.queue.length) {
            this.queue.length = 0;
            this.head = 0;
          }
          this.queued -= item.chunk.length;
          if (this.queued < this.highWaterMark) this.notifyProducer();
          this.lent.set(item.chunk, item.done);
          yield item.chunk;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wakeConsumer = resolve;
        });
      }
    } finally {
      this.closed = true;
      this.drop();
      this.notifyProducer();
    }
  }
}
