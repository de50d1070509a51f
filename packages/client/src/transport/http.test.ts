/**
 * Conformance tests for the HTTP/1.1 transport behind @berth/client: what the client relies on
 * from `createTransport` (requests, streamed answers, keep-alive, errors, aborts, hijacked
 * connections, the small fetch ky uses). Every test talks to a real server on a unix socket
 * (one on TCP loopback) started here, and uses only the transport's public surface.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, ConnectionError, NotFoundError } from '../errors.js';
import type { Endpoint } from './host.js';
import { createTransport, readBody } from './http.js';
import type { Transport } from './http.js';

/** A test fails fast instead of hanging for the global timeout when the transport stalls. */
const T = 15_000;

// ---------------------------------------------------------------------------------------------
// Helpers: servers on temp unix sockets (or loopback TCP), cleaned up after every test.

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  // Last registered first: transports, then servers, then their temp dirs.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Served {
  endpoint: Endpoint;
  hostUrl: string;
  /** How many connections the server has accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function listen(server: net.Server, where: 'unix' | 'tcp' = 'unix'): Promise<Served> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  let endpoint: Endpoint;
  let hostUrl: string;
  if (where === 'unix') {
    const dir = await mkdtemp(join(tmpdir(), 'berth-http-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'api.sock');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    endpoint = { kind: 'unix', socketPath };
    hostUrl = `unix://${socketPath}`;
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as net.AddressInfo;
    endpoint = { kind: 'tcp', host: '127.0.0.1', port };
    hostUrl = `tcp://127.0.0.1:${port}`;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
    return closed;
  };
  cleanups.push(close);
  return { endpoint, hostUrl, connections: () => count, close };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A node:http server on a fresh temp unix socket (or loopback TCP). */
function serveHttp(handler: Handler, where: 'unix' | 'tcp' = 'unix'): Promise<Served & { server: http.Server }> {
  const server = http.createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });
  return listen(server, where).then((served) => ({ ...served, server }));
}

/** A raw TCP-level server (for answers node:http's server will not produce). */
function serveRaw(onSocket: (socket: net.Socket) => void): Promise<Served> {
  return listen(net.createServer(onSocket));
}

function transportFor(served: Served): Transport {
  const transport = createTransport(served.endpoint, served.hostUrl);
  cleanups.push(() => transport.close());
  return transport;
}

/** Calls `then` with the request head once a raw socket has received it. */
function onRequestHead(socket: net.Socket, then: (head: string) => void): void {
  let buffered = '';
  let done = false;
  socket.on('data', (data: Buffer) => {
    if (done) return;
    buffered += data.toString('latin1');
    const end = buffered.indexOf('\r\n\r\n');
    if (end >= 0) {
      done = true;
      then(buffered.slice(0, end));
    }
  });
  socket.on('error', () => undefined);
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Bytes where every 4-byte word encodes its own position: reordering or loss changes the hash. */
function patterned(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) buf.writeUInt32LE(((i / 4) * 2654435761 + seed) >>> 0, i);
  return buf;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** What a node:http server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

async function seen(req: IncomingMessage): Promise<Seen> {
  return { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: await collect(req) };
}

// ---------------------------------------------------------------------------------------------

describe('createTransport: requests and answers', () => {
  it('GET over a unix socket: status, headers (repeated ones too), JSON body and the request head', { timeout: T }, async () => {
    let got: Seen | undefined;
    const body = JSON.stringify({ Id: 'abc123', Names: ['/web'], Note: 'héllo ✓' });
    const served = await serveHttp(async (req, res) => {
      got = await seen(req);
      res.statusCode = 200;
      res.statusMessage = 'Fine Thanks';
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('X-Multi', ['first', 'second']);
      res.setHeader('Api-Version', '1.44');
      res.end(body);
    });
    const transport = transportFor(served);

    const res = await transport.request({
      method: 'GET',
      path: '/v1.44/containers/json?all=1',
      headers: { 'User-Agent': 'berth-test/1.0', 'X-Registry-Auth': 'e30=' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.statusMessage).toBe('Fine Thanks');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(res.headers['api-version']).toBe('1.44');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers['x-multi']).toBe('first, second');
    for (const key of Object.keys(res.headers)) expect(key).toBe(key.toLowerCase());
    expect(await readBody(res)).toBe(body);
    expect(JSON.parse(body)).toEqual({ Id: 'abc123', Names: ['/web'], Note: 'héllo ✓' });

    expect(got?.method).toBe('GET');
    expect(got?.url).toBe('/v1.44/containers/json?all=1');
    expect(got?.headers.host).toBe('api.moby.localhost');
    expect(got?.headers['user-agent']).toBe('berth-test/1.0');
    expect(got?.headers['x-registry-auth']).toBe('e30=');
    expect(got?.body.length).toBe(0);
  });

  it('GET over TCP sends Host host:port', { timeout: T }, async () => {
    let got: Seen | undefined;
    const served = await serveHttp(async (req, res) => {
      got = await seen(req);
      res.setHeader('Content-Type', 'application/json');
      res.end('{"ok":true}');
    }, 'tcp');
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/_ping', headers: { 'X-Custom': 'yes' } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(await readBody(res))).toEqual({ ok: true });
    const { port } = served.endpoint as { port: number };
    expect(got?.headers.host).toBe(`127.0.0.1:${port}`);
    expect(got?.headers['x-custom']).toBe('yes');
  });

  it('streams a chunked answer as it is written, in order', { timeout: T }, async () => {
    const firstSeen = deferred();
    const parts = ['{"status":"one"}\n', '{"status":"two"}\n', '{"status":"three"}\n', '{"status":"four"}\n'];
    const served = await serveHttp(async (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.write(parts[0]);
      // The rest is written only once the client has seen the first part: an answer
      // buffered until its end would stall here.
      await firstSeen.promise;
      for (const part of parts.slice(1)) {
        await delay(20);
        res.write(part);
      }
      res.end();
    });
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/events' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    let text = '';
    for await (const chunk of res) {
      expect(Buffer.isBuffer(chunk)).toBe(true);
      text += (chunk as Buffer).toString('utf8');
      if (text.includes('\n')) firstSeen.resolve();
    }
    expect(text).toBe(parts.join(''));
  });

  it('delivers a large chunked answer intact to a slow consumer (backpressure)', { timeout: 60_000 }, async () => {
    const payload = patterned(8 * 1024 * 1024, 7);
    const served = await serveHttp(async (_req, res) => {
      res.setHeader('Content-Type', 'application/x-tar');
      const step = 64 * 1024;
      for (let offset = 0; offset < payload.length; offset += step) {
        if (!res.write(payload.subarray(offset, offset + step))) {
          await new Promise((resolve) => res.once('drain', resolve));
        }
      }
      res.end();
    });
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/containers/x/export' });
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    let total = 0;
    let chunks = 0;
    for await (const chunk of res) {
      hash.update(chunk as Buffer);
      total += (chunk as Buffer).length;
      chunks += 1;
      if (chunks % 8 === 0) await delay(2);
    }
    expect(total).toBe(payload.length);
    expect(hash.digest('hex')).toBe(sha256(payload));
  });

  it('reads an answer with neither length nor chunking until the connection closes', { timeout: T }, async () => {
    const served = await serveRaw((socket) => {
      onRequestHead(socket, () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\npart one, ');
        setTimeout(() => {
          socket.write('part two, ');
          setTimeout(() => socket.end('part three'), 20);
        }, 20);
      });
    });
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/containers/x/logs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(await readBody(res)).toBe('part one, part two, part three');
  });

  it('HEAD, 204 and 304 answers have no body, and the connection stays usable', { timeout: T }, async () => {
    const served = await serveHttp((req, res) => {
      if (req.url === '/head') {
        res.setHeader('Content-Length', '1234');
        res.setHeader('Content-Type', 'application/json');
        res.end();
      } else if (req.url === '/no-content') {
        res.statusCode = 204;
        res.end();
      } else if (req.url === '/not-modified') {
        res.statusCode = 304;
        res.setHeader('ETag', '"v1"');
        res.end();
      } else {
        res.end('after');
      }
    });
    const transport = transportFor(served);

    const head = await transport.request({ method: 'HEAD', path: '/head' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('1234');
    expect(await readBody(head)).toBe('');

    const noContent = await transport.request({ method: 'POST', path: '/no-content' });
    expect(noContent.statusCode).toBe(204);
    expect(await readBody(noContent)).toBe('');

    const notModified = await transport.request({ method: 'POST', path: '/not-modified' });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    expect(await readBody(notModified)).toBe('');

    const after = await transport.request({ method: 'GET', path: '/after' });
    expect(await readBody(after)).toBe('after');
    expect(served.connections()).toBe(1);
  });
});

describe('createTransport: request bodies', () => {
  async function echoServer(): Promise<{ served: Served; requests: Seen[] }> {
    const requests: Seen[] = [];
    const served = await serveHttp(async (req, res) => {
      const s = await seen(req);
      requests.push(s);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ length: s.body.length, sha256: sha256(s.body) }));
    });
    return { served, requests };
  }

  it('a string body is sent with its byte Content-Length', { timeout: T }, async () => {
    const { served, requests } = await echoServer();
    const transport = transportFor(served);
    const body = JSON.stringify({ Image: 'alpine', Cmd: ['echo', 'héllo ✓'] });
    const res = await transport.request({ method: 'POST', path: '/containers/create', headers: { 'Content-Type': 'application/json' }, body });
    expect(res.statusCode).toBe(200);
    await readBody(res);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(requests[0]!.headers['transfer-encoding']).toBeUndefined();
    expect(requests[0]!.headers['content-type']).toBe('application/json');
    expect(requests[0]!.body.toString('utf8')).toBe(body);
  });

  it('a Uint8Array body is sent with Content-Length', { timeout: T }, async () => {
    const { served, requests } = await echoServer();
    const transport = transportFor(served);
    const body = new Uint8Array(patterned(100_000, 3));
    const res = await transport.request({ method: 'PUT', path: '/containers/x/archive?path=/tmp', body });
    expect(JSON.parse(await readBody(res))).toEqual({ length: body.byteLength, sha256: sha256(body) });
    expect(requests[0]!.method).toBe('PUT');
    expect(requests[0]!.headers['content-length']).toBe(String(body.byteLength));
    expect(requests[0]!.headers['transfer-encoding']).toBeUndefined();
    expect(sha256(requests[0]!.body)).toBe(sha256(body));
  });

  it('a Readable body (a few MB) is sent chunked, byte for byte', { timeout: 60_000 }, async () => {
    const { served, requests } = await echoServer();
    const transport = transportFor(served);
    const payload = patterned(3 * 1024 * 1024 + 17, 11);
    const step = 50_000;
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < payload.length; offset += step) pieces.push(payload.subarray(offset, offset + step));
    const res = await transport.request({ method: 'POST', path: '/build', headers: { 'Content-Type': 'application/x-tar' }, body: Readable.from(pieces) });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(await readBody(res))).toEqual({ length: payload.length, sha256: sha256(payload) });
    expect(requests[0]!.headers['transfer-encoding']).toBe('chunked');
    expect(requests[0]!.headers['content-length']).toBeUndefined();
    expect(requests[0]!.body.length).toBe(payload.length);
    expect(sha256(requests[0]!.body)).toBe(sha256(payload));
  });

  it('an async-iterable body is sent chunked, byte for byte', { timeout: T }, async () => {
    const { served, requests } = await echoServer();
    const transport = transportFor(served);
    const pieces = [new TextEncoder().encode('first,'), new Uint8Array(patterned(70_000, 5)), new TextEncoder().encode(',last')];
    async function* body(): AsyncGenerator<Uint8Array> {
      for (const piece of pieces) {
        await delay(10);
        yield piece;
      }
    }
    const res = await transport.request({ method: 'POST', path: '/images/load', body: body() });
    const expected = Buffer.concat(pieces);
    expect(JSON.parse(await readBody(res))).toEqual({ length: expected.length, sha256: sha256(expected) });
    expect(requests[0]!.headers['transfer-encoding']).toBe('chunked');
    expect(requests[0]!.headers['content-length']).toBeUndefined();
    expect(requests[0]!.body.equals(expected)).toBe(true);
  });
});

describe('createTransport: connections', () => {
  it('reuses one connection for sequential requests whose bodies were read', { timeout: T }, async () => {
    const served = await serveHttp((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: req.url }));
    });
    const transport = transportFor(served);
    const first = await transport.request({ method: 'GET', path: '/one' });
    expect(JSON.parse(await readBody(first))).toEqual({ url: '/one' });
    const second = await transport.request({ method: 'GET', path: '/two' });
    expect(JSON.parse(await readBody(second))).toEqual({ url: '/two' });
    expect(served.connections()).toBe(1);
  });

  it('opens a new connection after an answer with Connection: close', { timeout: T }, async () => {
    const served = await serveHttp((req, res) => {
      if (req.url === '/closing') res.setHeader('Connection', 'close');
      res.end(`answer to ${req.url}`);
    });
    const transport = transportFor(served);
    const first = await transport.request({ method: 'GET', path: '/closing' });
    expect(first.headers.connection).toBe('close');
    expect(await readBody(first)).toBe('answer to /closing');
    const second = await transport.request({ method: 'GET', path: '/next' });
    expect(await readBody(second)).toBe('answer to /next');
    expect(served.connections()).toBe(2);
  });

  it('answers concurrent requests, each with its own answer', { timeout: T }, async () => {
    const served = await serveHttp(async (req, res) => {
      // Answer in reverse order of arrival so a mix-up between connections would show.
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
      await delay((5 - n) * 15);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ n }));
    });
    const transport = transportFor(served);
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map(async (n) => {
        const res = await transport.request({ method: 'GET', path: `/containers/${n}/json?n=${n}` });
        return { status: res.statusCode, body: JSON.parse(await readBody(res)) as unknown };
      }),
    );
    expect(results).toEqual([0, 1, 2, 3, 4].map((n) => ({ status: 200, body: { n } })));
  });
});

describe('createTransport: errors', () => {
  it('a socket path with nothing there rejects with ConnectionError (no socket there)', { timeout: T }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-http-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'missing.sock');
    const transport = createTransport({ kind: 'unix', socketPath }, `unix://${socketPath}`);
    cleanups.push(() => transport.close());
    const attempt = transport.request({ method: 'GET', path: '/_ping' });
    await expect(attempt).rejects.toBeInstanceOf(ConnectionError);
    await expect(attempt).rejects.toThrow(/no socket there/);
  });

  it('a server that drops the connection before answering makes the request reject', { timeout: T }, async () => {
    const served = await serveHttp((req) => {
      req.socket.destroy();
    });
    const transport = transportFor(served);
    await expect(transport.request({ method: 'GET', path: '/_ping' })).rejects.toBeInstanceOf(Error);
  });

  it('a body cut short of its Content-Length makes reading it throw', { timeout: T }, async () => {
    const served = await serveRaw((socket) => {
      onRequestHead(socket, () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n0123456789');
        setTimeout(() => socket.end(), 20);
      });
    });
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/x' });
    expect(res.statusCode).toBe(200);
    await expect(collect(res)).rejects.toBeInstanceOf(Error);
  });

  it('a chunked body cut before its last chunk makes reading it throw', { timeout: T }, async () => {
    const served = await serveRaw((socket) => {
      onRequestHead(socket, () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        setTimeout(() => socket.end(), 20);
      });
    });
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/events' });
    expect(res.statusCode).toBe(200);
    await expect(readBody(res)).rejects.toBeInstanceOf(Error);
  });

  it('a malformed answer makes the request reject', { timeout: T }, async () => {
    const served = await serveRaw((socket) => {
      onRequestHead(socket, () => {
        socket.write('garbage\r\n\r\n');
      });
    });
    const transport = transportFor(served);
    await expect(transport.request({ method: 'GET', path: '/_ping' })).rejects.toBeInstanceOf(Error);
  });
});

describe('createTransport: aborts', () => {
  it('aborting while waiting for the answer rejects with AbortedError', { timeout: T }, async () => {
    const arrived = deferred();
    const served = await serveHttp(() => {
      // Never answers.
      arrived.resolve();
    });
    const transport = transportFor(served);
    const controller = new AbortController();
    const attempt = transport.request({ method: 'GET', path: '/containers/x/wait', signal: controller.signal });
    attempt.catch(() => undefined);
    await arrived.promise;
    controller.abort();
    await expect(attempt).rejects.toBeInstanceOf(AbortedError);
  });

  it('an already-aborted signal rejects at once, without connecting', { timeout: T }, async () => {
    const served = await serveHttp((_req, res) => {
      res.end('should not be asked');
    });
    const transport = transportFor(served);
    const controller = new AbortController();
    controller.abort();
    await expect(transport.request({ method: 'GET', path: '/_ping', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await expect(transport.hijack({ method: 'POST', path: '/containers/x/attach', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await delay(50);
    expect(served.connections()).toBe(0);
  });
});

describe('createTransport: hijack', () => {
  /** A server whose 'upgrade' handler reads the request body then hands the socket to `then`. */
  async function upgradeServer(then: (socket: net.Socket, req: IncomingMessage, body: Buffer, rest: Buffer) => void): Promise<Served> {
    const served = await serveHttp((_req, res) => {
      res.statusCode = 500;
      res.end('expected an upgrade');
    });
    served.server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.on('error', () => undefined);
      const length = Number(req.headers['content-length'] ?? 0);
      let buffered = head;
      let handed = false;
      const check = (): void => {
        if (handed || buffered.length < length) return;
        handed = true;
        socket.off('data', onData);
        then(socket, req, buffered.subarray(0, length), buffered.subarray(length));
      };
      const onData = (data: Buffer): void => {
        buffered = Buffer.concat([buffered, data]);
        check();
      };
      socket.on('data', onData);
      check();
    });
    return served;
  }

  it('upgrades (101), gives early bytes first, carries both ways, and reads after half-close', { timeout: T }, async () => {
    let seenRequest: { url?: string; headers?: IncomingHttpHeaders; body?: string } = {};
    const served = await upgradeServer((socket, req, body, rest) => {
      seenRequest = { url: req.url, headers: req.headers, body: body.toString('utf8') };
      // Headers and the first output in one write: the client gets them together.
      socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nEARLY;');
      let received = rest;
      socket.on('data', (data: Buffer) => {
        received = Buffer.concat([received, data]);
        socket.write(Buffer.concat([Buffer.from('echo:'), data]));
      });
      socket.on('end', () => {
        socket.end(`;BYE after ${received.length} bytes`);
      });
    });
    const transport = transportFor(served);
    const body = JSON.stringify({ Detach: false, Tty: false });
    const h = await transport.hijack({ method: 'POST', path: '/v1.44/exec/abc/start', headers: { 'Content-Type': 'application/json' }, body });
    expect(h.upgraded).toBe(true);
    expect(h.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    expect(seenRequest.url).toBe('/v1.44/exec/abc/start');
    expect(seenRequest.headers?.host).toBe('api.moby.localhost');
    expect(seenRequest.headers?.connection?.toLowerCase()).toBe('upgrade');
    expect(seenRequest.headers?.upgrade).toBe('tcp');
    expect(seenRequest.headers?.['content-type']).toBe('application/json');
    expect(seenRequest.body).toBe(body);

    const it = h.output[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let text = '';
    const readUntil = async (want: string): Promise<void> => {
      while (!text.includes(want)) {
        const next = await it.next();
        if (next.done) throw new Error(`output ended before "${want}"; got "${text}"`);
        text += Buffer.from(next.value).toString('utf8');
      }
    };
    await readUntil('EARLY;');
    expect(text).toBe('EARLY;');
    h.socket.write('ping');
    await readUntil('echo:ping');
    h.socket.end();
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      text += Buffer.from(next.value).toString('utf8');
    }
    expect(text).toBe('EARLY;echo:ping;BYE after 4 bytes');
  });

  it('a plain 200 answer streams its raw body (upgraded: false)', { timeout: T }, async () => {
    const served = await upgradeServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nline one\n');
      setTimeout(() => socket.end('line two\n'), 20);
    });
    const transport = transportFor(served);
    const h = await transport.hijack({ method: 'POST', path: '/containers/x/attach?stream=1&stdout=1' });
    expect(h.upgraded).toBe(false);
    expect(h.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    expect((await collect(h.output)).toString('utf8')).toBe('line one\nline two\n');
  });

  it('an error status rejects with the daemon’s message', { timeout: T }, async () => {
    const served = await upgradeServer((socket) => {
      const body = '{"message":"no such container"}';
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    const transport = transportFor(served);
    const attempt = transport.hijack({ method: 'POST', path: '/containers/nope/attach' });
    await expect(attempt).rejects.toBeInstanceOf(NotFoundError);
    await expect(attempt).rejects.toThrow(/no such container/);
  });
});

describe('createTransport: fetch', () => {
  it('sends method, path with query, headers and body, and answers a Response', { timeout: T }, async () => {
    let got: Seen | undefined;
    const served = await serveHttp(async (req, res) => {
      got = await seen(req);
      res.statusCode = 201;
      res.statusMessage = 'Created';
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('X-Answer', 'yes');
      res.end(JSON.stringify({ Id: 'new', Warnings: [] }));
    });
    const transport = transportFor(served);
    const res = await transport.fetch('http://api.moby.localhost/x?y=1', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Created');
    expect(res.ok).toBe(true);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-answer')).toBe('yes');
    expect(await res.json()).toEqual({ Id: 'new', Warnings: [] });
    expect(got?.method).toBe('POST');
    expect(got?.url).toBe('/x?y=1');
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body.toString('utf8')).toBe('{"a":1}');
  });
});

describe('createTransport: hostile or surprising answers', () => {
  /** A raw server that answers each request head on a connection with the next of `answers`. */
  function answering(answers: string[], after?: (socket: net.Socket) => void): Promise<Served> {
    return serveRaw((socket) => {
      let buffered = '';
      socket.on('error', () => undefined);
      socket.on('data', (data: Buffer) => {
        buffered += data.toString('latin1');
        let end: number;
        while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
          buffered = buffered.slice(end + 4);
          socket.write(answers.shift() ?? 'HTTP/1.1 500 Out Of Answers\r\nContent-Length: 0\r\n\r\n');
          after?.(socket);
        }
      });
    });
  }

  it('sends a request again on a new connection when the daemon closed the idle one', { timeout: T }, async () => {
    // The server closes each connection right after its answer, without saying Connection: close.
    const served = await answering(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'], (socket) => socket.end());
    const transport = transportFor(served);
    expect(await readBody(await transport.request({ method: 'GET', path: '/one' }))).toBe('ok');
    await delay(50);
    expect(await readBody(await transport.request({ method: 'GET', path: '/two' }))).toBe('ok');
    expect(served.connections()).toBe(2);
  });

  it('refuses more body bytes than the Content-Length announced', { timeout: T }, async () => {
    const served = await answering(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA']);
    const transport = transportFor(served);
    const res = await transport.request({ method: 'GET', path: '/' });
    await expect(readBody(res)).rejects.toThrow(/more bytes than its Content-Length|after the end of its answer/);
  });

  it('refuses a head larger than 64 KiB with a clear error', { timeout: T }, async () => {
    const served = await answering([`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 0\r\n\r\n`]);
    const transport = transportFor(served);
    await expect(transport.request({ method: 'GET', path: '/' })).rejects.toThrow(/head larger than 65536 bytes/);
  });

  it('refuses a header line that is not a header', { timeout: T }, async () => {
    const served = await answering(['HTTP/1.1 200 OK\r\nnot a header\r\nContent-Length: 0\r\n\r\n']);
    const transport = transportFor(served);
    await expect(transport.request({ method: 'GET', path: '/' })).rejects.toThrow(/malformed answer from the daemon: header line/);
  });

  it('does not reuse a connection whose answer the caller destroyed before its end', { timeout: T }, async () => {
    const served = await serveHttp((req, res) => {
      if (req.url === '/long') {
        res.write('first part');
        return; // never ends
      }
      res.end('short');
    });
    const transport = transportFor(served);
    const long = await transport.request({ method: 'GET', path: '/long' });
    for await (const chunk of long) {
      expect((chunk as Buffer).toString()).toBe('first part');
      break; // destroys the answer
    }
    expect(await readBody(await transport.request({ method: 'GET', path: '/short' }))).toBe('short');
    expect(served.connections()).toBe(2);
  });

  it('refuses a header value with a line break instead of sending it', { timeout: T }, async () => {
    const served = await serveHttp((_req, res) => {
      res.end('x');
    });
    const transport = transportFor(served);
    await expect(transport.request({ method: 'GET', path: '/', headers: { 'X-Evil': 'a\r\nX-Injected: 1' } })).rejects.toThrow(/line break/);
  });
});

describe('createTransport: TLS (tcp:// with DOCKER_TLS_VERIFY)', () => {
  /** A self-signed certificate for 127.0.0.1 and localhost, made by openssl in a temp dir. */
  async function certificate(): Promise<{ cert: Buffer; key: Buffer }> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { execFileSync } = await import('node:child_process');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=berth-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    const { readFile } = await import('node:fs/promises');
    return { cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) };
  }

  async function serveTls(server: { cert: Buffer; key: Buffer }, client?: { cert: Buffer }): Promise<{ port: number; peers: string[] }> {
    const https = await import('node:https');
    const peers: string[] = [];
    const srv = https.createServer({ cert: server.cert, key: server.key, requestCert: client !== undefined, rejectUnauthorized: false }, (req, res) => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      peers.push(String(peer?.subject?.CN ?? ''));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
    });
    const served = await listen(srv, 'tcp');
    return { port: (served.endpoint as { port: number }).port, peers };
  }

  it('verifies the daemon against the given CA, sends the client certificate, and keeps the connection', { timeout: 30_000 }, async () => {
    const server = await certificate();
    const client = await certificate();
    const { port, peers } = await serveTls(server, client);
    const transport = createTransport({ kind: 'tcp', host: '127.0.0.1', port, tls: { verify: true, ca: server.cert, cert: client.cert, key: client.key } }, `tcp://127.0.0.1:${port}`);
    cleanups.push(() => transport.close());
    for (const path of ['/_ping', '/containers/json']) {
      const res = await transport.request({ method: 'GET', path });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(await readBody(res))).toEqual({ path, host: `127.0.0.1:${port}` });
    }
    expect(peers).toEqual(['berth-test', 'berth-test']);
  });

  it('refuses a daemon whose certificate the CA did not sign, unless verification is off', { timeout: 30_000 }, async () => {
    const server = await certificate();
    const other = await certificate();
    const { port } = await serveTls(server);
    const strict = createTransport({ kind: 'tcp', host: 'localhost', port, tls: { verify: true, ca: other.cert } }, `tcp://localhost:${port}`);
    cleanups.push(() => strict.close());
    const refused = strict.request({ method: 'GET', path: '/_ping' });
    await expect(refused).rejects.toBeInstanceOf(ConnectionError);
    await expect(refused).rejects.toThrow(/SELF_SIGNED|VERIFY|CERT/);
    const lax = createTransport({ kind: 'tcp', host: 'localhost', port, tls: { verify: false } }, `tcp://localhost:${port}`);
    cleanups.push(() => lax.close());
    const res = await lax.request({ method: 'GET', path: '/_ping' });
    expect(res.statusCode).toBe(200);
    await readBody(res);
  });
});

describe('createTransport: close', () => {
  it('ends an answer still streaming, and refuses later requests', { timeout: T }, async () => {
    const served = await serveHttp((_req, res) => {
      res.write('first part');
      // never ends
    });
    const transport = createTransport(served.endpoint, served.hostUrl);
    const res = await transport.request({ method: 'GET', path: '/events' });
    const reading = (async () => {
      const got: string[] = [];
      for await (const chunk of res) got.push((chunk as Buffer).toString());
      return got;
    })();
    await delay(50);
    transport.close();
    await expect(reading).rejects.toThrow(/closed/);
    await expect(transport.request({ method: 'GET', path: '/_ping' })).rejects.toThrow(/closed/);
  });
});

describe('createTransport: answers cut at every place', () => {
  /** A server that writes each answer in the pieces given, pausing between them. */
  function piecewise(pieces: () => Buffer[]): Promise<Served> {
    return serveRaw((socket) => {
      let buffered = '';
      socket.on('error', () => undefined);
      socket.on('data', (data: Buffer) => {
        buffered += data.toString('latin1');
        if (!buffered.includes('\r\n\r\n')) return;
        buffered = '';
        void (async () => {
          for (const piece of pieces()) {
            socket.write(piece);
            await delay(1);
          }
        })();
      });
    });
  }

  /** A seeded generator, so a failure can be replayed. */
  function random(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }

  function split(bytes: Buffer, rnd: () => number): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(rnd() * Math.min(40, bytes.length - at));
      out.push(bytes.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  it('reads the same head and body however a length-framed or chunked answer is split', { timeout: 60_000 }, async () => {
    for (let seed = 1; seed <= 24; seed++) {
      const rnd = random(seed);
      const body = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 600) }, (_, i) => String.fromCharCode(32 + ((i * 7 + seed) % 90))).join(''));
      let wire: Buffer;
      if (seed % 2 === 0) {
        wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seed: ${seed}\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
      } else {
        const parts: Buffer[] = [Buffer.from(`HTTP/1.1 200 OK\r\nX-Seed: ${seed}\r\nTransfer-Encoding: chunked\r\n\r\n`)];
        for (let at = 0; at < body.length; ) {
          const n = 1 + Math.floor(rnd() * 100);
          const chunk = body.subarray(at, at + n);
          parts.push(Buffer.from(`${chunk.length.toString(16)}${rnd() < 0.3 ? ';ext=1' : ''}\r\n`), chunk, Buffer.from('\r\n'));
          at += n;
        }
        parts.push(Buffer.from('0\r\n\r\n'));
        wire = Buffer.concat(parts);
      }
      const served = await piecewise(() => split(wire, rnd));
      const transport = transportFor(served);
      // Twice on one connection: the second answer starts where the first ended.
      for (let round = 0; round < 2; round++) {
        const res = await transport.request({ method: 'GET', path: `/seed/${seed}` });
        expect(res.statusCode, `seed ${seed}`).toBe(200);
        expect(res.headers['x-seed'], `seed ${seed}`).toBe(String(seed));
        expect(await readBody(res), `seed ${seed}`).toBe(body.toString());
      }
      expect(served.connections(), `seed ${seed}`).toBe(1);
    }
  });

  it('never hangs or crashes on random bytes after a valid status line', { timeout: 60_000 }, async () => {
    for (let seed = 1; seed <= 24; seed++) {
      const rnd = random(seed * 7919);
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256)));
      const wire = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), junk]);
      const served = await serveRaw((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () => {
          // The answer, then the end of the connection: whatever the parser makes of it, it ends.
          socket.end(wire);
        });
      });
      const transport = transportFor(served);
      const outcome = await transport
        .request({ method: 'GET', path: '/' })
        .then((res) => readBody(res).then(() => 'read', () => 'body error'), () => 'rejected');
      // Without the end of a head the answer is incomplete: the request must fail, not hang.
      // With one, any outcome will do, as long as it comes (a hang fails the test by its timeout).
      if (!wire.includes('\r\n\r\n')) expect(outcome, `seed ${seed}`).toBe('rejected');
    }
  });
});
