import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFilters } from '../api/query.js';
import { searchImages, splitSearchTerm } from './image-search.js';

const CATALOGUE = [
  { name: 'busybox', description: 'Busybox base image.', star_count: 3000, is_official: true, is_automated: true },
  { name: 'someone/busybox-tools', description: 'tools', star_count: 12, is_official: false, is_automated: false },
  { name: 'other/busybox-mini', description: 'mini', star_count: 2, is_official: false, is_automated: false },
  { name: 'third/busybox-static', star_count: 40, is_official: false },
];

interface V1Server {
  host: string;
  requests: IncomingMessage[];
  close(): Promise<void>;
}

/** A registry v1 search API: `GET /v1/search?q=&n=` over the catalogue above (ignores n unless told). */
async function v1Server(options: { honourLimit?: boolean; status?: number; hang?: boolean } = {}): Promise<V1Server> {
  const requests: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(req);
    if (options.hang) return;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/v1/search') {
      res.writeHead(404).end('404 page not found\n');
      return;
    }
    if (options.status) {
      res.writeHead(options.status).end();
      return;
    }
    const q = url.searchParams.get('q') ?? '';
    let results = CATALOGUE.filter((r) => r.name.includes(q));
    if (options.honourLimit) results = results.slice(0, Number(url.searchParams.get('n')));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ num_results: results.length, query: q, results }));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('image search (registry v1 search API)', () => {
  let server: V1Server | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('splits terms the way moby does', () => {
    expect(splitSearchTerm('busybox')).toEqual({ index: 'docker.io', remote: 'busybox' });
    expect(splitSearchTerm('library/busybox')).toEqual({ index: 'docker.io', remote: 'library/busybox' });
    expect(splitSearchTerm('localhost/busybox')).toEqual({ index: 'localhost', remote: 'busybox' });
    expect(splitSearchTerm('127.0.0.1:5000/team/app')).toEqual({ index: '127.0.0.1:5000', remote: 'team/app' });
    expect(splitSearchTerm('index.docker.io/busybox')).toEqual({ index: 'docker.io', remote: 'busybox' });
  });

  it('queries a private host with q and n, applies is-official and stars filters, and caps at the limit', async () => {
    server = await v1Server();
    const all = await searchImages({ term: `${server.host}/busybox` });
    expect(all.map((r) => r.name)).toEqual(CATALOGUE.map((r) => r.name));
    expect(all[0]).toEqual({ name: 'busybox', description: 'Busybox base image.', star_count: 3000, is_official: true, is_automated: false });
    expect(all[3]).toEqual({ name: 'third/busybox-static', description: '', star_count: 40, is_official: false, is_automated: false });
    const last = new URL(server.requests.at(-1)!.url!, 'http://x');
    expect(last.searchParams.get('q')).toBe('busybox');
    expect(last.searchParams.get('n')).toBe('25');
    expect(server.requests.at(-1)!.headers['x-docker-token']).toBe('true');

    const official = await searchImages({ term: `${server.host}/busybox`, filters: parseFilters('{"is-official":["true"]}') });
    expect(official.map((r) => r.name)).toEqual(['busybox']);
    const unofficial = await searchImages({ term: `${server.host}/busybox`, filters: parseFilters('{"is-official":{"false":true}}') });
    expect(unofficial.map((r) => r.name)).toEqual(['someone/busybox-tools', 'other/busybox-mini', 'third/busybox-static']);
    const starred = await searchImages({ term: `${server.host}/busybox`, filters: parseFilters('{"stars":["10","30"]}') });
    expect(starred.map((r) => r.name)).toEqual(['busybox', 'third/busybox-static']);
    expect(await searchImages({ term: `${server.host}/busybox`, filters: parseFilters('{"is-automated":["true"]}') })).toEqual([]);

    const limited = await searchImages({ term: `${server.host}/busybox`, limit: 2 });
    expect(limited.map((r) => r.name)).toEqual(['busybox', 'someone/busybox-tools']);
    expect(new URL(server.requests.at(-1)!.url!, 'http://x').searchParams.get('n')).toBe('2');
  });

  it('sends basic credentials and strips library/ for the official index', async () => {
    server = await v1Server({ honourLimit: true });
    const results = await searchImages({
      term: 'library/busybox',
      limit: 1,
      auth: { username: 'alice', password: 'pw' },
      officialIndex: `http://${server.host}/v1/`,
    });
    expect(results.map((r) => r.name)).toEqual(['busybox']);
    const req = server.requests.at(-1)!;
    expect(new URL(req.url!, 'http://x').searchParams.get('q')).toBe('busybox');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('alice:pw').toString('base64')}`);
  });

  it('refuses bad filters, limits and schemes with 400s', async () => {
    await expect(searchImages({ term: 'x', filters: parseFilters('{"nope":["1"]}') })).rejects.toMatchObject({ category: 'invalid', message: "invalid filter 'nope'" });
    await expect(searchImages({ term: 'x', filters: parseFilters('{"stars":["many"]}') })).rejects.toMatchObject({ message: "invalid filter 'stars=many'" });
    await expect(searchImages({ term: 'x', limit: 101 })).rejects.toMatchObject({ category: 'invalid', message: 'limit 101 is outside the range of [1, 100]' });
    await expect(searchImages({ term: 'https://example.com/x' })).rejects.toMatchObject({ category: 'invalid' });
  });

  it('says plainly that a v2-only registry cannot be searched, and passes other statuses on', async () => {
    server = await v1Server({ status: 404 });
    await expect(searchImages({ term: `${server.host}/busybox` })).rejects.toThrow(/Unexpected status code 404: the registry 127\.0\.0\.1:\d+ does not serve the v1 search API/);
    await server.close();
    server = await v1Server({ status: 401 });
    await expect(searchImages({ term: `${server.host}/busybox` })).rejects.toMatchObject({ category: 'unauthorized' });
    await server.close();
    server = await v1Server({ status: 502 });
    await expect(searchImages({ term: `${server.host}/busybox` })).rejects.toMatchObject({ category: 'internal', message: 'Unexpected status code 502' });
  });

  it('fails fast with 503-class errors when the index refuses or never answers', async () => {
    // A port nobody listens on: refused at once.
    const closed = await v1Server();
    const host = closed.host;
    await closed.close();
    await expect(searchImages({ term: `${host}/busybox` })).rejects.toMatchObject({ category: 'unavailable', message: expect.stringMatching(/^Get "http:\/\/127\.0\.0\.1:\d+\/v1\/search\?q=busybox&n=25": .*ECONNREFUSED/) });
    await expect(searchImages({ term: 'busybox', officialIndex: `http://${host}/v1/` })).rejects.toMatchObject({ category: 'unavailable' });

    server = await v1Server({ hang: true });
    const started = Date.now();
    await expect(searchImages({ term: `${server.host}/busybox`, timeoutMs: 300 })).rejects.toMatchObject({
      category: 'unavailable',
      message: expect.stringContaining('no answer within 0.3 s'),
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
