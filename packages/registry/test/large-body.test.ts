/**
 * Upload workflows with bodies large enough for the server's socket fast path (request-body.ts:
 * Content-Length bodies of 1 MiB or more are read from the socket into reused buffers, and the
 * connection closes after the response). Same status codes and headers as through node:http,
 * over real HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from './support/registry.js';

const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1024 * 1024;

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg.stop();
});

function req(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Response> {
  return fetch(path.startsWith('http') ? path : `${reg.url}${path}`, { method, redirect: 'manual', ...init } as RequestInit);
}

describe('large upload bodies (socket fast path)', () => {
  it('chunked: multi-MiB PATCHes in order, 416 for one out of order, status, closing PUT with the last chunk', async () => {
    const data = randomBytes(9 * MiB + 4321);
    const cuts = [0, 3 * MiB, 6 * MiB + 77, data.length];
    const post = await req('POST', '/v2/large/chunked/blobs/uploads/', { headers: { 'Content-Length': '0' } });
    expect(post.status).toBe(202);
    let location = post.headers.get('location')!;
    for (let i = 0; i < 2; i++) {
      const [start, end] = [cuts[i]!, cuts[i + 1]!];
      const res = await req('PATCH', location, {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end - 1}`, 'Content-Length': String(end - start) },
        body: data.subarray(start, end),
      });
      expect(res.status).toBe(202);
      expect(res.headers.get('range')).toBe(`0-${end - 1}`);
      // The fast path took the body: node:http's parser no longer owns the connection.
      expect(res.headers.get('connection')).toBe('close');
      location = res.headers.get('location')!;
    }
    const outOfOrder = await req('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${cuts[2]! + 5}-${data.length + 4}`, 'Content-Length': String(data.length - cuts[2]!) },
      body: data.subarray(cuts[2]!),
    });
    expect(outOfOrder.status).toBe(416);
    expect(outOfOrder.headers.get('range')).toBe(`0-${cuts[2]! - 1}`);
    const status = await req('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${cuts[2]! - 1}`);
    const put = await req('PUT', `${location}?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length - cuts[2]!) },
      body: data.subarray(cuts[2]!),
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(data));
    const get = await req('GET', `/v2/large/chunked/blobs/${sha256(data)}`);
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(sha256(data));
  });

  it('monolithic POST ?digest= with a large body; a wrong digest is DIGEST_INVALID and stores nothing', async () => {
    const data = randomBytes(5 * MiB + 1);
    const ok = await req('POST', `/v2/large/mono/blobs/uploads/?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) },
      body: data,
    });
    expect(ok.status).toBe(201);
    expect((await req('HEAD', `/v2/large/mono/blobs/${sha256(data)}`)).headers.get('content-length')).toBe(String(data.length));

    const other = randomBytes(2 * MiB);
    const wrong = sha256('not these bytes');
    const bad = await req('POST', `/v2/large/mono/blobs/uploads/?digest=${wrong}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(other.length) },
      body: other,
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DIGEST_INVALID');
    expect((await req('HEAD', `/v2/large/mono/blobs/${sha256(other)}`)).status).toBe(404);
  });

  it('a client that goes away mid-PATCH leaves the bytes that arrived; the upload resumes from its Range', async () => {
    const data = randomBytes(8 * MiB);
    const post = await req('POST', '/v2/large/resume/blobs/uploads/', { headers: { 'Content-Length': '0' } });
    const location = post.headers.get('location')!;
    const sent = 3 * MiB + 999;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(reg.port, '127.0.0.1', () => {
        socket.write(`PATCH ${location} HTTP/1.1\r\nHost: ${reg.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`);
        socket.write(data.subarray(0, sent), () => setTimeout(() => socket.destroy(), 200));
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });
    let range = '';
    for (let i = 0; i < 50 && range !== `0-${sent - 1}`; i++) {
      await new Promise((r) => setTimeout(r, 50));
      range = (await req('GET', location)).headers.get('range') ?? '';
    }
    expect(range).toBe(`0-${sent - 1}`);
    const rest = await req('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${sent}-${data.length - 1}`, 'Content-Length': String(data.length - sent) },
      body: data.subarray(sent),
    });
    expect(rest.status).toBe(202);
    const put = await req('PUT', `${location}?digest=${sha256(data)}`, { headers: { 'Content-Length': '0' } });
    expect(put.status).toBe(201);
    const get = await req('GET', `/v2/large/resume/blobs/${sha256(data)}`);
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(sha256(data));
  });
});
