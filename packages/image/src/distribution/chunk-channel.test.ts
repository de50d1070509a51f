import { describe, expect, it } from 'vitest';
import { ChunkChannel } from './chunk-channel.js';

describe('ChunkChannel', () => {
  it('delivers chunks in order, reports each release to its producer, and applies backpressure', async () => {
    const ch = new ChunkChannel(10);
    const released: string[] = [];
    for (const s of ['aaaa', 'bbbb', 'cccc']) ch.push(Buffer.from(s), () => released.push(s));
    // 12 bytes queued, over the mark of 10: the producer waits until the consumer takes some.
    let roomy = false;
    const room = ch.waitForRoom().then(() => {
      roomy = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(roomy).toBe(false);
    const got: string[] = [];
    const consumer = (async () => {
      for await (const c of ch) {
        got.push(c.toString());
        ch.release(c);
        ch.release(c); // a second release is ignored
      }
    })();
    await room;
    ch.push(Buffer.from('dddd'), () => released.push('dddd'));
    ch.end();
    await consumer;
    expect(got).toEqual(['aaaa', 'bbbb', 'cccc', 'dddd']);
    expect(released).toEqual(['aaaa', 'bbbb', 'cccc', 'dddd']);
  });

  it('fails the consumer on destroy(error) and hands back whatever is still queued', async () => {
    const ch = new ChunkChannel();
    const released: string[] = [];
    ch.push(Buffer.from('x'), () => released.push('x'));
    ch.destroy(new Error('download failed'));
    await expect((async () => {
      for await (const c of ch) ch.release(c);
    })()).rejects.toThrow('download failed');
    expect(released).toEqual(['x']);
    ch.push(Buffer.from('y'), () => released.push('y'));
    expect(released).toEqual(['x', 'y']);
  });

  it('lets the producer go on once the consumer leaves early', async () => {
    const ch = new ChunkChannel(4);
    const released: string[] = [];
    const consumer = (async () => {
      for await (const c of ch) {
        ch.release(c);
        break;
      }
    })();
    ch.push(Buffer.from('1234'), () => released.push('1'));
    ch.push(Buffer.from('5678'), () => released.push('2'));
    await consumer;
    await ch.waitForRoom();
    expect(ch.destroyed).toBe(true);
    expect(released.sort()).toEqual(['1', '2']);
  });
});
