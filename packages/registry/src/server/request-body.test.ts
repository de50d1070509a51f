import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { takeRequestBody, type TakenBody } from './request-body.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Seen {
  taken: boolean;
  digest?: string;
  size?: number;
  chunks?: number;
  largest?: number;
  error?: string;
}

let servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  servers = [];
});

/**
 * A server whose handler takes the body (after an await, as the registry does), hashes it
 * chunk by chunk, and answers 201 with what it saw; `consume` can slow down or stop early.
 */
async function serve(
  consume?: (chunk: Uint8Array, index: number, body: TakenBody) => Promise<'stop' | void>,
  options: { pokeSocket?: boolean } = {},
): Promise<{ port: number; seen: Promise<Seen> }> {
  let report!: (s: Seen) => void;
  const seen = new Promise<Seen>((resolve) => (report = resolve));
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    void (async () => {
      await new Promise((r) => setTimeout(r, 20)); // the parser takes in some body meanwhile
      const body = takeRequestBody(req, res);
      if (!body) {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const all = Buffer.concat(chunks);
        report({ taken: false, digest: sha(all), size: all.length });
        res.end();
        return;
      }
      // Something else resuming the socket while both buffers are lent out must not make
      // reads land in them (they go to scratch and are copied in order).
      const poke = options.pokeSocket ? setInterval(() => req.socket.resume(), 1) : undefined;
      const hash = createHash('sha256');
      let size = 0;
      let chunks = 0;
      let largest = 0;
      try {
        for await (const chunk of body) {
          hash.update(chunk);
          size += chunk.length;
          largest = Math.max(largest, chunk.length);
          chunks++;
          if ((await consume?.(chunk, chunks - 1, body)) === 'stop') {
            await body.discard();
            break;
          }
        }
        report({ taken: true, digest: hash.digest('hex'), size, chunks, largest });
        res.statusCode = 201;
        res.end('done');
      } catch (error) {
        report({ taken: true, error: (error as Error).message, size });
      } finally {
        clearInterval(poke);
      }
    })();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, seen };
}

/** Sends raw bytes on a new connection; resolves with everything the server sent back. */
function raw(port: number, parts: Array<Buffer | string>, opts: { halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
    socket.on('connect', () => {
      void (async () => {
        for (const p of parts) if (!socket.write(p)) await new Promise((r) => socket.once('drain', r));
        if (opts.halfClose) socket.end();
      })();
    });
  });
}

const head = (length: number, extra = ''): string =>
  `PATCH /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe('takeRequestBody', () => {
  it('reads a large Content-Length body from the socket into reused buffers, bytes intact', async () => {
    const data = randomBytes(13 * 1024 * 1024 + 123);
    const { port, seen } = await serve();
    const res = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'PATCH', body: data });
    expect(res.status).toBe(201);
    expect(res.headers.get('connection')).toBe('close');
    const s = await seen;
    expect(s).toMatchObject({ taken: true, size: data.length, digest: sha(data) });
    expect(s.largest).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(s.chunks).toBeGreaterThanOrEqual(4);
  });

  it('keeps bytes in order when the consumer is slower than the network (reading stops and resumes)', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    const { port, seen } = await serve(() => new Promise((r) => setTimeout(r, 30)));
    const reply = await raw(port, [head(data.length), data]);
    expect(reply).toMatch(/^HTTP\/1\.1 201/);
    expect(await seen).toMatchObject({ taken: true, size: data.length, digest: sha(data) });
  });

  it('keeps bytes in order when something else resumes the socket while no buffer is free', async () => {
    const data = randomBytes(30 * 1024 * 1024 + 3);
    const { port, seen } = await serve(() => new Promise((r) => setTimeout(r, 25)), { pokeSocket: true });
    const reply = await raw(port, [head(data.length), data]);
    expect(reply).toMatch(/^HTTP\/1\.1 201/);
    expect(await seen).toMatchObject({ taken: true, size: data.length, digest: sha(data) });
  });

  it('leaves small bodies and chunked bodies to node:http', async () => {
    const small = randomBytes(100 * 1024);
    const a = await serve();
    await fetch(`http://127.0.0.1:${a.port}/upload`, { method: 'PATCH', body: small });
    expect(await a.seen).toMatchObject({ taken: false, digest: sha(small) });

    const big = randomBytes(2 * 1024 * 1024);
    const b = await serve();
    const chunked = `${big.length.toString(16)}\r\n`;
    await raw(b.port, [`PATCH /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`, big, '\r\n0\r\n\r\n']);
    expect(await b.seen).toMatchObject({ taken: false, size: big.length, digest: sha(big) });
  });

  it('hands out every byte that arrived, then rejects, when the client goes away before the declared length', async () => {
    const data = randomBytes(6 * 1024 * 1024 + 100);
    const { port, seen } = await serve(() => new Promise((r) => setTimeout(r, 10)));
    await raw(port, [head(data.length + 1024 * 1024), data], { halfClose: true });
    const s = await seen;
    expect(s.taken).toBe(true);
    expect(s.error).toBe(`request body ended after ${data.length} of ${data.length + 1024 * 1024} bytes`);
    expect(s.size).toBe(data.length);
  });

  it('answers normally when the client half-closes after a complete body', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const { port, seen } = await serve(() => new Promise((r) => setTimeout(r, 20)));
    const reply = await raw(port, [head(data.length), data], { halfClose: true });
    expect(reply).toMatch(/^HTTP\/1\.1 201/);
    expect(reply).toMatch(/done$/);
    expect(await seen).toMatchObject({ taken: true, digest: sha(data) });
  });

  it('drops bytes after the declared length and closes the connection after the response', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const { port, seen } = await serve();
    const reply = await raw(port, [head(data.length), data, 'GET /next HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(reply).toMatch(/^HTTP\/1\.1 201[^]*connection: close/i);
    expect(await seen).toMatchObject({ taken: true, size: data.length, digest: sha(data) });
  });

  it('discard() reads and drops the rest so that the client gets the response', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const { port, seen } = await serve((_chunk, index) => Promise.resolve(index === 0 ? 'stop' : undefined));
    const reply = await raw(port, [head(data.length), data]);
    expect(reply).toMatch(/^HTTP\/1\.1 201/);
    const s = await seen;
    expect(s.taken).toBe(true);
    expect(s.chunks).toBe(1);
  });
});
