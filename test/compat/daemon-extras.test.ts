/**
 * berthd's remaining Engine API endpoints through real clients: attach over a WebSocket (the `ws`
 * client), `GET /distribution/{name}/json` (dockerode, against @berth/registry with basic auth),
 * `GET /images/search` (the docker CLI and dockerode, against a registry v1 search server started
 * here), and `docker commit --change` / `docker import --change` (the docker CLI).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import Docker from 'dockerode';
import WebSocket from 'ws';
import { describePrivileged } from '../support/privileged.js';
import { docker, startBerthd, type BerthdInstance } from './support/berthd.js';
import { loadBusybox } from './support/images.js';
import { COMPAT_PASSWORD, COMPAT_USER, pushBusybox, startBerthRegistry, type TestRegistry } from './support/registry.js';

interface WsSession {
  socket: WebSocket;
  messages: { text: string; binary: boolean }[];
  closed: Promise<number>;
  /** Resolves once the concatenated output contains `text`. */
  waitFor(text: string): Promise<void>;
}

function openAttach(socketPath: string, path: string): Promise<WsSession> {
  const socket = new WebSocket(`ws+unix://${socketPath}:${path}`);
  const messages: { text: string; binary: boolean }[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  const output = (): string => messages.map((m) => m.text).join('');
  socket.on('message', (data: Buffer, binary: boolean) => {
    messages.push({ text: data.toString(), binary });
    for (const w of [...waiters]) {
      if (output().includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        messages,
        closed,
        waitFor: (text) =>
          output().includes(text)
            ? Promise.resolve()
            : new Promise<void>((r, fail) => {
                const timer = setTimeout(() => fail(new Error(`no ${JSON.stringify(text)} within 20 s; got ${JSON.stringify(output())}`)), 20_000);
                waiters.push({ text, resolve: () => (clearTimeout(timer), r()) });
              }),
      }),
    );
  });
}

/** A registry v1 search API (`GET /v1/search?q=&n=`), as Docker Hub's index speaks it. */
async function startSearchIndex(): Promise<{ host: string; queries: URLSearchParams[]; close(): Promise<void> }> {
  const catalogue = [
    { name: 'busybox', description: 'official busybox', star_count: 3000, is_official: true, is_automated: false },
    { name: 'alice/busybox-tools', description: 'tools', star_count: 25, is_official: false, is_automated: true },
    { name: 'bob/busybox-mini', description: 'mini', star_count: 3, is_official: false, is_automated: false },
    { name: 'carol/busybox-static', description: 'static', star_count: 11, is_official: false, is_automated: false },
  ];
  const queries: URLSearchParams[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://index');
    if (url.pathname !== '/v1/search') {
      res.writeHead(404).end();
      return;
    }
    queries.push(url.searchParams);
    const q = url.searchParams.get('q') ?? '';
    const n = Number(url.searchParams.get('n') ?? '25');
    const results = catalogue.filter((r) => r.name.includes(q)).slice(0, n);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ num_results: results.length, query: q, results }));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    queries,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describePrivileged('compat: attach/ws, distribution, search and --change against berthd', () => {
  let berthd: BerthdInstance;
  let registry: TestRegistry;
  let client: Docker;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) => docker(env, args);

  beforeAll(async () => {
    [berthd, registry] = await Promise.all([startBerthd(), startBerthRegistry()]);
    env = berthd.env;
    await loadBusybox(env, 'busybox:latest');
    await pushBusybox(registry.host, 'extras/busybox', 'latest', { username: COMPAT_USER, password: COMPAT_PASSWORD });
    client = new Docker({ socketPath: berthd.socket });
  }, 180_000);

  afterAll(async () => {
    await berthd?.destroy();
    await registry?.close();
  }, 120_000);

  it('attach/ws: reads output, sends stdin and sees the close when the container exits', async () => {
    const container = await client.createContainer({
      Image: 'busybox:latest',
      Cmd: ['sh', '-c', 'echo ready; echo oops >&2; while read line; do echo "got $line"; [ "$line" = quit ] && exit 3; done'],
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    try {
      // Attached before start, as `docker run` does: the connection is held until the start.
      const ws = await openAttach(berthd.socket, `/containers/${container.id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1`);
      await container.start();
      await ws.waitFor('ready\n');
      await ws.waitFor('oops\n');
      ws.socket.send('hello\n');
      await ws.waitFor('got hello\n');
      ws.socket.send(Buffer.from('quit\n'));
      expect(await ws.closed).toBe(1000);
      const text = ws.messages.map((m) => m.text).join('');
      expect(text).toContain('got quit\n');
      // Not multiplexed (no 8-byte headers), binary frames at API 1.44.
      expect(text.startsWith('ready\n') || text.startsWith('oops\n')).toBe(true);
      expect(ws.messages.every((m) => m.binary)).toBe(true);
      expect((await container.wait()).StatusCode).toBe(3);
    } finally {
      await container.remove({ force: true });
    }
  });

  it('attach/ws: a TTY streams raw, a client that leaves detaches, old API versions get text frames with logs', async () => {
    const container = await client.createContainer({ Image: 'busybox:latest', Cmd: ['sh', '-c', 'echo tty-out; sleep 30'], Tty: true });
    try {
      await container.start();
      // Once the line is in the log, a logs=1 attach must replay it (no race with the live part).
      for (let i = 0; i < 100 && !String(await container.logs({ stdout: true })).includes('tty-out'); i++) await new Promise((r) => setTimeout(r, 100));
      // stdout only, with the log replayed: the line printed before the attach arrives.
      const ws = await openAttach(berthd.socket, `/containers/${container.id}/attach/ws?logs=1&stream=1&stdout=1`);
      await ws.waitFor('tty-out\r\n');
      ws.socket.close(1000);
      await ws.closed;
      // The container keeps running after the client went away.
      await new Promise((r) => setTimeout(r, 300));
      expect((await container.inspect()).State.Running).toBe(true);
      await container.kill();
      await container.wait();

      // Below 1.28 moby sends text frames; below 1.42 every stream is attached whatever the query.
      const old = await openAttach(berthd.socket, `/v1.27/containers/${container.id}/attach/ws?logs=1`);
      expect(await old.closed).toBe(1000);
      expect(old.messages.map((m) => m.text).join('')).toBe('tty-out\r\n');
      expect(old.messages.every((m) => !m.binary)).toBe(true);
    } finally {
      await container.remove({ force: true });
    }
    await expect(openAttach(berthd.socket, '/containers/no-such-container/attach/ws?stream=1')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('distribution: dockerode resolves a reference against the registry with X-Registry-Auth', async () => {
    const authconfig = { username: COMPAT_USER, password: COMPAT_PASSWORD, serveraddress: registry.host };
    const info = (await client.getImage(`${registry.host}/extras/busybox:latest`).distribution({ authconfig })) as {
      Descriptor: { mediaType: string; digest: string; size: number };
      Platforms: { architecture: string; os: string }[];
    };
    expect(info.Descriptor.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(info.Descriptor.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(info.Descriptor.size).toBeGreaterThan(0);
    expect(info.Platforms).toEqual([{ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux' }]);

    await expect(client.getImage(`${registry.host}/extras/busybox:latest`).distribution({})).rejects.toMatchObject({ statusCode: 401 });
    await expect(client.getImage(`${registry.host}/extras/busybox:missing`).distribution({ authconfig })).rejects.toMatchObject({ statusCode: 404 });
  });

  it('search: the docker CLI and dockerode query a v1 index with limit and filters; v2-only and dead registries fail clearly', async () => {
    const index = await startSearchIndex();
    try {
      const found = await cli(['search', '--format', '{{.Name}} {{.StarCount}} {{.IsOfficial}}', '--filter', 'stars=10', '--limit', '3', `${index.host}/busybox`]);
      expect(found.code, found.stderr).toBe(0);
      // The CLI renders IsOfficial as "[OK]" or nothing.
      expect(found.stdout.trim().split('\n').map((l) => l.trimEnd())).toEqual(['busybox 3000 [OK]', 'alice/busybox-tools 25']);
      expect(index.queries.at(-1)?.get('n')).toBe('3');
      expect(index.queries.at(-1)?.get('q')).toBe('busybox');

      const official = (await client.searchImages({ term: `${index.host}/busybox`, filters: { 'is-official': ['false'] } })) as { name: string; is_automated: boolean }[];
      expect(official.map((r) => r.name)).toEqual(['alice/busybox-tools', 'bob/busybox-mini', 'carol/busybox-static']);
      expect(official.every((r) => !r.is_automated)).toBe(true);

      const badFilter = await cli(['search', '--filter', 'nope=1', `${index.host}/busybox`]);
      expect(badFilter.code).toBe(1);
      expect(badFilter.stderr).toContain("invalid filter 'nope'");
    } finally {
      await index.close();
    }
    // A v2-only registry (ours) has no /v1/search.
    const v2only = await cli(['search', `${registry.host}/busybox`]);
    expect(v2only.code).toBe(1);
    expect(v2only.stderr).toContain(`the registry ${registry.host} does not serve the v1 search API`);
    // The index closed a moment ago: refused at once, a 503 with Go's "Get <url>: …" style.
    const dead = await cli(['search', `${index.host}/busybox`]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(new RegExp(`Error response from daemon: Get "http://${index.host.replace(/\./g, '\\.')}/v1/search\\?q=busybox&n=25": .*ECONNREFUSED`));
  });

  it('commit --change and import --change apply Dockerfile instructions to the image config', async () => {
    const made = await cli(['run', '--name', 'changes-src', 'busybox', 'sh', '-c', 'echo data > /f']);
    expect(made.code, made.stderr).toBe(0);

    const committed = await cli([
      'commit',
      '--change', 'CMD ["cat", "/f"]',
      '--change', 'ENV FOO=bar',
      '--change', 'EXPOSE 8080/tcp',
      '--change', 'LABEL team=berth',
      '--change', 'WORKDIR /tmp',
      '--change', 'USER nobody',
      '--change', 'STOPSIGNAL SIGINT',
      '--change', 'VOLUME /cache',
      '--change', 'ONBUILD RUN echo child',
      '--change', 'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
      'changes-src', 'changed:1',
    ]);
    expect(committed.code, committed.stderr).toBe(0);
    const config = JSON.parse((await cli(['image', 'inspect', '--format', '{{json .Config}}', 'changed:1'])).stdout) as Record<string, unknown>;
    expect(config['Cmd']).toEqual(['cat', '/f']);
    expect(config['Env']).toEqual(expect.arrayContaining(['FOO=bar', expect.stringMatching(/^PATH=/)]));
    expect(config['ExposedPorts']).toEqual({ '8080/tcp': {} });
    expect(config['Labels']).toEqual({ team: 'berth' });
    expect(config['WorkingDir']).toBe('/tmp');
    expect(config['User']).toBe('nobody');
    expect(config['StopSignal']).toBe('SIGINT');
    expect(config['Volumes']).toEqual({ '/cache': {} });
    expect(config['OnBuild']).toEqual(['RUN echo child']);
    expect(config['Healthcheck']).toEqual({ Test: ['CMD', 'true'], Interval: 5_000_000_000, Retries: 2 });
    const ran = await cli(['run', '--rm', 'changed:1']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('data\n');

    // Without changes the image runs what the container ran (moby's merge with its config);
    // an ENTRYPOINT change drops the container's CMD.
    expect((await cli(['commit', 'changes-src', 'plain:1'])).code).toBe(0);
    expect(JSON.parse((await cli(['image', 'inspect', '--format', '{{json .Config.Cmd}}', 'plain:1'])).stdout)).toEqual(['sh', '-c', 'echo data > /f']);
    expect((await cli(['commit', '--change', 'ENTRYPOINT ["cat"]', 'changes-src', 'entry:1'])).code).toBe(0);
    expect((await cli(['image', 'inspect', '--format', '{{json .Config.Entrypoint}} {{json .Config.Cmd}}', 'entry:1'])).stdout.trim()).toBe('["cat"] null');

    const refused = await cli(['commit', '--change', 'RUN echo no', 'changes-src', 'refused:1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Error response from daemon: run is not a valid change command');
    expect((await cli(['image', 'inspect', 'refused:1'])).code).toBe(1);

    const work = await mkdtemp(join(tmpdir(), 'berth-extras-'));
    try {
      const rootfs = join(work, 'rootfs.tar');
      const exported = await cli(['export', '-o', rootfs, 'changes-src']);
      expect(exported.code, exported.stderr).toBe(0);
      const imported = await cli(['import', '--change', 'CMD ["cat", "/f"]', '--change', 'ENV A=1', '--change', 'ENTRYPOINT []', rootfs, 'imported:1']);
      expect(imported.code, imported.stderr).toBe(0);
      const importedConfig = JSON.parse((await cli(['image', 'inspect', '--format', '{{json .Config}}', 'imported:1'])).stdout) as Record<string, unknown>;
      expect(importedConfig['Cmd']).toEqual(['cat', '/f']);
      expect(importedConfig['Env']).toEqual(['A=1']);
      expect(importedConfig['Entrypoint'] ?? null).toBeNull();
      const importedRun = await cli(['run', '--rm', 'imported:1']);
      expect(importedRun.stdout).toBe('data\n');

      const badImport = await cli(['import', '--change', 'COPY a b', rootfs, 'bad-import:1']);
      expect(badImport.code).toBe(1);
      expect(badImport.stderr).toContain('Error response from daemon: copy is not a valid change command');
    } finally {
      await rm(work, { recursive: true, force: true });
      await cli(['rm', '-f', 'changes-src']);
    }

    // A running container is paused for the commit (moby's default) and runs on afterwards.
    const started = await cli(['run', '-d', '--name', 'changes-live', 'busybox', 'sh', '-c', 'echo live > /g; exec sleep 60']);
    expect(started.code, started.stderr).toBe(0);
    try {
      for (let i = 0; i < 50 && (await cli(['exec', 'changes-live', 'cat', '/g'])).stdout !== 'live\n'; i++) await new Promise((r) => setTimeout(r, 100));
      const live = await cli(['commit', '--change', 'CMD ["cat", "/g"]', 'changes-live', 'live:1']);
      expect(live.code, live.stderr).toBe(0);
      expect((await cli(['inspect', '--format', '{{.State.Running}} {{.State.Paused}}', 'changes-live'])).stdout.trim()).toBe('true false');
      expect((await cli(['run', '--rm', 'live:1'])).stdout).toBe('live\n');
    } finally {
      await cli(['rm', '-f', 'changes-live']);
    }
  });
});
