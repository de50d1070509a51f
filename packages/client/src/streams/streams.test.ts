import { describe, expect, it } from 'vitest';
import { demultiplex, encodeFrame, frames } from './demux.js';
import { jsonLines } from './json-lines.js';

async function* chunks(...parts: (Buffer | string)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p;
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe('multiplexed streams', () => {
  it('splits frames that span chunks and keeps stdout/stderr apart', async () => {
    const bytes = Buffer.concat([encodeFrame('stdout', Buffer.from('hello\n')), encodeFrame('stderr', Buffer.from('oops\n')), encodeFrame('stdout', Buffer.from(''))]);
    const pieces = [bytes.subarray(0, 3), bytes.subarray(3, 11), bytes.subarray(11)];
    const out = await all(demultiplex(chunks(...pieces)));
    expect(out.map((f) => [f.stream, f.data.toString()])).toEqual([
      ['stdout', 'hello\n'],
      ['stderr', 'oops\n'],
    ]);
  });

  it('reports systemerr frames and truncated frames as errors', async () => {
    await expect(all(demultiplex(chunks(encodeFrame('system', Buffer.from('boom')))))).rejects.toThrow('boom');
    await expect(all(demultiplex(chunks(encodeFrame('stdout', Buffer.from('abc')).subarray(0, 9))))).rejects.toThrow(/ended inside a frame/);
  });

  it('chooses raw or demultiplexed from the content type, the tty flag, or the first bytes', async () => {
    const framed = encodeFrame('stderr', Buffer.from('x'));
    expect((await all(frames(chunks(framed), 'application/vnd.docker.multiplexed-stream')))[0]).toMatchObject({ stream: 'stderr' });
    expect((await all(frames(chunks('raw text'), 'application/vnd.docker.raw-stream', true)))[0]?.data.toString()).toBe('raw text');
    expect((await all(frames(chunks(framed), 'application/vnd.docker.raw-stream')))[0]).toMatchObject({ stream: 'stderr' });
    expect((await all(frames(chunks('plain'), undefined)))[0]).toMatchObject({ stream: 'stdout' });
  });
});

describe('JSON message streams', () => {
  it('parses newline, CRLF and back-to-back objects split anywhere', async () => {
    const text = '{"status":"a"}\r\n{"status":"b","x":"}{"}{"stream":"c\\n"}\n';
    const split = [text.slice(0, 5), text.slice(5, 20), text.slice(20)];
    expect(await all(jsonLines(chunks(...split)))).toEqual([{ status: 'a' }, { status: 'b', x: '}{' }, { stream: 'c\n' }]);
  });

  it('says which line is not JSON', async () => {
    await expect(all(jsonLines(chunks('not json\n')))).rejects.toThrow(/not JSON: not json/);
  });
});
