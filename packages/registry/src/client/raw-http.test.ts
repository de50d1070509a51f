import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRaw } from './raw-http.js';

const big = randomBytes(9 * 1024 * 1024 + 123);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Reads a body the way a consumer of lent chunks must: copy what is kept, release the rest. */
async function drain(body: AsyncIterable<Buffer> & { release(chunk: Buffer): void }, hold = 0): Promise<{ bytes: Buffer; chunks: number }> {
  const kept: Buffer[] = [];
  const held: Buffer[] = [];
  let chunks = 0;
  for await (const c of body) {
    chunks++;
    kept.push(Buffer.from(c));
    held.push(c);
    // Release late (a few chunks behind) as a pipelined consumer does; memory must not be reused early.
    while (held.length > hold) body.release(held.shift() as Buffer);
  }
  for (const c of held) body.release(c);
  return { bytes: Buffer.concat(kept), chunks };
}

describe('sendRaw (HTTP/1.1 GET into reused memory)', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/length') {
        res.writeHead(200, { 'Content-Length': String(big.length), 'X-Two': 'a' });
        res.end(big);
      } else if (req.url === '/chunked') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        // Odd-sized writes so chunk headers fall anywhere within a socket read.
        let at = 0;
        const step = (): void => {
          while (at < big.length) {
            const n = Math.min(big.length - at, 1 + ((at * 7919) % 200_000));
            const more = res.write(big.subarray(at, at + n));
            at += n;
            if (!more) {
              res.once('drain', step);
              return;
            }
          }
          res.end();
        };
        step();
      } else if (req.url === '/range') {
        const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
        const from = Number(m?.[1] ?? 0);
        res.writeHead(206, { 'Content-Length': String(big.length - from), 'Content-Range': `bytes ${from}-${big.length - 1}/${big.length}` });
        res.end(big.subarray(from));
      } else if (req.url === '/missing') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
      } else if (req.url === '/headers') {
        res.writeHead(200, { 'Content-Length': '2' });
        res.end(req.headers.authorization === 'Bearer t' ? 'ok' : 'no');
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'Content-Length': String(big.length) });
        res.write(big.subarray(0, 1024 * 1024), () => res.socket?.destroy());
      } else {
        res.writeHead(204);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('reads a Content-Length body intact while releasing chunks behind the consumer', async () => {
    const res = await sendRaw(`${base}/length`, 'GET', {});
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.headers.get('x-two')).toBe('a');
    const { bytes } = await drain(res.body, 3);
    expect(res.body.complete).toBe(true);
    expect(sha(bytes)).toBe(sha(big));
  });

  it('decodes chunked transfer encoding split at arbitrary points', async () => {
    const res = await sendRaw(`${base}/chunked`, 'GET', {});
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const { bytes } = await drain(res.body, 5);
    expect(bytes.length).toBe(big.length);
    expect(sha(bytes)).toBe(sha(big));
  });

  it('sends the given headers and reads a 206 range answer', async () => {
    const h = await sendRaw(`${base}/headers`, 'GET', { Authorization: 'Bearer t' });
    expect((await drain(h.body)).bytes.toString()).toBe('ok');
    const res = await sendRaw(`${base}/range`, 'GET', { Range: 'bytes=1000-' });
    expect(res.status).toBe(206);
    expect(sha((await drain(res.body)).bytes)).toBe(sha(big.subarray(1000)));
  });

  it('gives error statuses their body and empty answers none', async () => {
    const res = await sendRaw(`${base}/missing`, 'GET', {});
    expect(res.status).toBe(404);
    expect(res.ok).toBe(false);
    expect(JSON.parse((await drain(res.body)).bytes.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
    const empty = await sendRaw(`${base}/nothing`, 'GET', {});
    expect(empty.status).toBe(204);
    expect((await drain(empty.body)).bytes.length).toBe(0);
  });

  it('fails the body when the connection drops before its end, and rejects a refused connection', async () => {
    const res = await sendRaw(`${base}/cut`, 'GET', {});
    await expect(drain(res.body)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(sendRaw(`http://127.0.0.1:${port}/x`, 'GET', {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('stops on abort', async () => {
    const ac = new AbortController();
    const res = await sendRaw(`${base}/length`, 'GET', {}, ac.signal);
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    ac.abort();
    await expect((async () => {
      for (;;) if ((await it.next()).done) return;
    })()).rejects.toThrow();
  });
});
