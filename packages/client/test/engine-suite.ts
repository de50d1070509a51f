import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { create as createTar, extract as extractTar } from 'tar';
import {
  BerthClient,
  ConflictError,
  NotFoundError,
  AbortedError,
  StreamError,
  buildImage,
  runContainer,
  MAX_API_VERSION,
  compareVersions,
} from '@berth/client';
import type { ContainerCreateBody, EventMessage, OutputFrame } from '@berth/client';
import { importBusybox, uniqueName } from './support/engines.js';
import type { Engine } from './support/engines.js';

async function collect(frames: AsyncIterable<OutputFrame>): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  for await (const f of frames) {
    if (f.stream === 'stdout') stdout += f.data.toString();
    else stderr += f.data.toString();
  }
  return { stdout, stderr };
}

/**
 * The client's behaviour against a real engine. The same suite runs against dockerd and berthd:
 * the client must behave the same against both.
 */
/**
 * What an engine does not do yet. The suite then asserts the engine's current answer instead, so a
 * fix shows up as a failing test that says to remove the gap.
 */
export type EngineGap = 'import-changes' | 'commit-changes' | 'build';

export function engineSuite(getEngine: () => Engine, gaps: ReadonlySet<EngineGap> = new Set()): void {
  let client: BerthClient;
  const image = `${uniqueName('berth-client-busybox')}:1`;
  const label = uniqueName('berth.client.test');
  const created: string[] = [];
  const base = (cmd: string[], extra: Partial<ContainerCreateBody> = {}): ContainerCreateBody => ({
    Image: image,
    Cmd: cmd,
    Labels: { [label]: '1' },
    ...extra,
    HostConfig: { NetworkMode: 'none', ...extra.HostConfig },
  });
  async function createContainer(cmd: string[], extra: Partial<ContainerCreateBody> = {}): Promise<string> {
    const { Id } = await client.containers.create(base(cmd, extra), { name: uniqueName('bc') });
    created.push(Id);
    return Id;
  }

  beforeAll(async () => {
    client = new BerthClient({ host: getEngine().host });
    await importBusybox(client, image);
  });

  afterAll(async () => {
    if (!client) return;
    for (const id of created) await client.containers.remove(id, { force: true, volumes: true }).catch(() => undefined);
    const left = await client.containers.list({ all: true, filters: { label: [label] } }).catch(() => []);
    for (const c of left) await client.containers.remove(c.Id, { force: true }).catch(() => undefined);
    await client.images.remove(image, { force: true }).catch(() => undefined);
    client.close();
  });

  it('negotiates the API version through /_ping and reads version and info', async () => {
    const ping = await client.ping();
    expect(ping.apiVersion).toMatch(/^1\.\d+$/);
    const negotiated = await client.apiVersion();
    expect(compareVersions(negotiated, MAX_API_VERSION)).toBeLessThanOrEqual(0);
    expect(compareVersions(negotiated, ping.apiVersion!)).toBeLessThanOrEqual(0);
    const version = await client.system.version();
    expect(version.ApiVersion).toBe(ping.apiVersion);
    expect(version.Os).toBe('linux');
    const info = await client.system.info();
    expect(info.OSType).toBe('linux');
    expect(typeof info.NCPU).toBe('number');
    expect(info.Images).toBeGreaterThanOrEqual(1);
  });

  it('lists, inspects, tags and untags images', async () => {
    const inspect = await client.images.inspect(image);
    expect(inspect.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    if (gaps.has('import-changes')) expect(inspect.Config?.Cmd ?? null, 'the engine now applies import changes: remove the gap').toBeNull();
    else expect(inspect.Config?.Cmd).toEqual(['sh']);
    const list = await client.images.list({ filters: { reference: [image] } });
    expect(list.map((i) => i.Id)).toContain(inspect.Id);
    const extraTag = uniqueName('berth-client-tagged');
    await client.images.tag(image, extraTag, 'v2');
    expect((await client.images.inspect(`${extraTag}:v2`)).Id).toBe(inspect.Id);
    const history = await client.images.history(image);
    expect(history.length).toBeGreaterThanOrEqual(1);
    const removed = await client.images.remove(`${extraTag}:v2`);
    expect(removed).toEqual([{ Untagged: `${extraTag}:v2` }]);
    await expect(client.images.inspect(`${extraTag}:v2`)).rejects.toSatisfy((e: unknown) => e instanceof NotFoundError && /no such image/i.test((e as Error).message));
  });

  it('runs a container and demultiplexes stdout and stderr, with its exit code', async () => {
    const result = await runContainer(client, base(['sh', '-c', 'echo out; echo err >&2; exit 3']), { name: uniqueName('bc-run') });
    created.push(result.id);
    expect(result.stdout).toBe('out\n');
    expect(result.stderr).toBe('err\n');
    expect(result.statusCode).toBe(3);
  });

  it('removes an AutoRemove container before run resolves (wait condition removed)', async () => {
    const result = await runContainer(client, base(['true'], { HostConfig: { AutoRemove: true } }));
    expect(result.statusCode).toBe(0);
    await expect(client.containers.inspect(result.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('sends stdin and half-closes it, the output keeps flowing after EOF', async () => {
    const result = await runContainer(client, base(['sh', '-c', 'cat; echo done']), { stdin: Readable.from([Buffer.from('abc\n')]) });
    created.push(result.id);
    expect(result.stdout).toBe('abc\ndone\n');
    expect(result.statusCode).toBe(0);
  });

  it('gives raw output for a TTY container', async () => {
    const result = await runContainer(client, base(['sh', '-c', 'echo tty; echo e >&2'], { Tty: true }));
    created.push(result.id);
    expect(result.stdout.replace(/\r/g, '')).toBe('tty\ne\n');
    expect(result.stderr).toBe('');
  });

  it('reports start failures (missing executable)', async () => {
    await expect(runContainer(client, base(['/no/such/binary']))).rejects.toSatisfy((e: unknown) => (e as { exitCode?: number }).exitCode === 127);
  });

  it('drives the lifecycle: start, inspect, top, stats, pause, unpause, rename, update, stop, restart, kill, wait, remove', async () => {
    const id = await createContainer(['sleep', '300']);
    expect(await client.containers.start(id)).toBe(true);
    expect(await client.containers.start(id)).toBe(false);
    const info = await client.containers.inspect(id);
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels?.[label]).toBe('1');
    const top = await client.containers.top(id);
    expect(top.Titles).toContain('PID');
    expect(top.Processes.some((p) => p.join(' ').includes('sleep'))).toBe(true);
    const stats = await client.containers.stats(id, { oneShot: true });
    expect(typeof stats.memory_stats).toBe('object');
    // No memory limit set: the limit reported is the host's memory, not the cgroup's "no limit".
    expect(stats.memory_stats.limit).toBeGreaterThan(0);
    expect(stats.memory_stats.limit).toBeLessThanOrEqual(totalmem());
    await client.containers.pause(id);
    expect((await client.containers.inspect(id)).State.Paused).toBe(true);
    await client.containers.unpause(id);
    const newName = uniqueName('bc-renamed');
    await client.containers.rename(id, newName);
    expect((await client.containers.inspect(newName)).Id).toBe(id);
    await client.containers.update(id, { RestartPolicy: { Name: 'no' } });
    const listed = await client.containers.list({ filters: { label: [label], status: ['running'] } });
    expect(listed.map((c) => c.Id)).toContain(id);
    expect(listed.find((c) => c.Id === id)?.Names).toEqual([`/${newName}`]);
    expect(await client.containers.stop(id, { t: 1 })).toBe(true);
    expect(await client.containers.stop(id, { t: 1 })).toBe(false);
    await client.containers.restart(id, { t: 1 });
    expect((await client.containers.inspect(id)).State.Running).toBe(true);
    const waited = client.containers.wait(id);
    await client.containers.kill(id, { signal_: 'SIGKILL' });
    expect((await waited).StatusCode).toBe(137);
    await client.containers.remove(id);
    await expect(client.containers.inspect(id)).rejects.toSatisfy((e: unknown) => e instanceof NotFoundError && /no such container/i.test((e as Error).message));
  });

  it('refuses to remove a running container (409) and to reuse a name', async () => {
    const name = uniqueName('bc-conflict');
    const { Id } = await client.containers.create(base(['sleep', '300']), { name });
    created.push(Id);
    await client.containers.start(Id);
    await expect(client.containers.remove(Id)).rejects.toBeInstanceOf(ConflictError);
    await expect(client.containers.create(base(['true']), { name })).rejects.toBeInstanceOf(ConflictError);
    await client.containers.remove(Id, { force: true });
  });

  it('streams logs, following until the container exits, and with tail', async () => {
    const id = await createContainer(['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo bad >&2']);
    await client.containers.start(id);
    const followed = await collect(await client.containers.logs(id, { follow: true }));
    expect(followed.stdout).toBe('line1\nline2\nline3\n');
    expect(followed.stderr).toBe('bad\n');
    const tail = await collect(await client.containers.logs(id, { tail: 2 }));
    expect(tail).toEqual({ stdout: 'line3\n', stderr: 'bad\n' });
    const stamped = await collect(await client.containers.logs(id, { timestamps: true, stderr: false }));
    expect(stamped.stdout.split('\n')[0]).toMatch(/^\d{4}-\d\d-\d\dT[^ ]+Z line1$/);
  });

  it('attaches to a running container and its stdin', async () => {
    const id = await createContainer(['sh', '-c', 'read x; echo got:$x'], { OpenStdin: true, StdinOnce: true, AttachStdin: true });
    const session = await client.containers.attach(id, { stdin: true, stdout: true, stderr: true });
    expect(session.upgraded).toBe(true);
    const output = collect(session.output);
    await client.containers.start(id);
    session.stdin.end('hello\n');
    expect((await output).stdout).toBe('got:hello\n');
    expect((await client.containers.wait(id)).StatusCode).toBe(0);
    session.close();
  });

  it('execs with output, exit code and stdin', async () => {
    const id = await createContainer(['sleep', '300']);
    await client.containers.start(id);
    const exec = await client.exec.create(id, { Cmd: ['sh', '-c', 'echo in-exec; echo warn >&2; exit 5'] });
    const out = await collect((await client.exec.start(exec.Id)).output);
    expect(out).toEqual({ stdout: 'in-exec\n', stderr: 'warn\n' });
    const inspect = await client.exec.inspect(exec.Id);
    expect(inspect.ExitCode).toBe(5);
    expect(inspect.Running).toBe(false);
    const withStdin = await client.exec.create(id, { Cmd: ['tr', 'a-z', 'A-Z'], AttachStdin: true });
    const session = await client.exec.start(withStdin.Id);
    const upper = collect(session.output);
    session.stdin.end('shout\n');
    expect((await upper).stdout).toBe('SHOUT\n');
    await client.containers.remove(id, { force: true });
  });

  it('copies files in and out (archive put/head/get), lists changes and exports', async () => {
    const id = await createContainer(['sleep', '300']);
    await client.containers.start(id);
    const dir = await mkdtemp(join(tmpdir(), 'berth-client-cp-'));
    try {
      await writeFile(join(dir, 'hello.txt'), 'copied in\n');
      await client.containers.putArchive(id, '/tmp', createTar({ cwd: dir, portable: true }, ['hello.txt']) as unknown as Readable);
      const stat = await client.containers.statPath(id, '/tmp/hello.txt');
      expect(stat).toMatchObject({ name: 'hello.txt', size: 10 });
      const { stat: got, tar } = await client.containers.getArchive(id, '/tmp/hello.txt');
      expect(got.name).toBe('hello.txt');
      const out = join(dir, 'out');
      await mkdir(out);
      await new Promise<void>((resolve, reject) => {
        const x = extractTar({ cwd: out });
        tar.pipe(x as unknown as NodeJS.WritableStream);
        (x as unknown as NodeJS.EventEmitter).on('finish', () => resolve()).on('error', reject);
      });
      expect(await readFile(join(out, 'hello.txt'), 'utf8')).toBe('copied in\n');
      await expect(client.containers.statPath(id, '/nope')).rejects.toBeInstanceOf(NotFoundError);
      const changes = await client.containers.changes(id);
      expect(changes?.some((c) => c.Path === '/tmp/hello.txt')).toBe(true);
      let exported = 0;
      for await (const chunk of await client.containers.export(id)) exported += (chunk as Buffer).length;
      expect(exported).toBeGreaterThan(512);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('commits a container into an image', async () => {
    const id = await createContainer(['sh', '-c', 'echo committed > /marker']);
    if (gaps.has('commit-changes')) {
      await client.containers.start(id);
      await client.containers.wait(id);
      const repo = uniqueName('berth-client-commit');
      const { Id } = await client.containers.commit({ container: id, repo, tag: 'v1' });
      try {
        expect(Id).toMatch(/^sha256:/);
        // Without the CMD change, run the committed image with an explicit command.
        const result = await runContainer(client, { ...base(['cat', '/marker']), Image: `${repo}:v1` });
        created.push(result.id);
        expect(result.stdout).toBe('committed\n');
        const withChange = await client.containers.commit({ container: id, repo, tag: 'v2', changes: ['CMD ["cat","/marker"]'] });
        const inspected = await client.images.inspect(withChange.Id);
        expect(inspected.Config?.Cmd ?? null, 'the engine now applies commit changes: remove the gap').not.toEqual(['cat', '/marker']);
      } finally {
        await client.images.remove(`${repo}:v1`, { force: true }).catch(() => undefined);
        await client.images.remove(`${repo}:v2`, { force: true }).catch(() => undefined);
      }
      return;
    }
    await client.containers.start(id);
    await client.containers.wait(id);
    const repo = uniqueName('berth-client-commit');
    const { Id } = await client.containers.commit({ container: id, repo, tag: 'v1', changes: ['CMD ["cat","/marker"]'] });
    try {
      expect(Id).toMatch(/^sha256:/);
      const result = await runContainer(client, { ...base([]), Image: `${repo}:v1`, Cmd: undefined });
      created.push(result.id);
      expect(result.stdout).toBe('committed\n');
    } finally {
      await client.images.remove(`${repo}:v1`, { force: true }).catch(() => undefined);
    }
  });

  it('builds a directory, honouring .dockerignore, with progress messages', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-client-build-'));
    if (gaps.has('build')) {
      try {
        await writeFile(join(dir, 'Dockerfile'), `FROM ${image}\n`);
        await expect(buildImage(client, dir, {}), 'the engine builds now: remove the gap').rejects.toSatisfy((e: unknown) => (e as { statusCode?: number }).statusCode === 501);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return;
    }
    const tag = `${uniqueName('berth-client-built')}:1`;
    try {
      await writeFile(join(dir, 'Dockerfile'), `FROM ${image}\nCOPY . /ctx/\nRUN ls /ctx > /listing\nCMD ["cat", "/listing"]\n`);
      await writeFile(join(dir, '.dockerignore'), 'secret*\n!secret-ok\n');
      await writeFile(join(dir, 'keep.txt'), 'k');
      await writeFile(join(dir, 'secret.key'), 's');
      await writeFile(join(dir, 'secret-ok'), 'o');
      const streams: string[] = [];
      const built = await buildImage(client, dir, { tags: [tag], onProgress: (m) => m.stream && streams.push(m.stream) });
      expect(built.imageId).toMatch(/^(sha256:)?[0-9a-f]{12,64}$/);
      expect(streams.join('')).toMatch(/Step 1\/4 : FROM/);
      const result = await runContainer(client, { ...base([]), Image: tag, Cmd: undefined });
      created.push(result.id);
      // What reaches COPY: the ignored file is left out, the exception kept (the daemon itself may drop
      // .dockerignore from the context, as dockerd does).
      const listing = result.stdout.split('\n').filter(Boolean);
      expect(listing).toEqual(expect.arrayContaining(['Dockerfile', 'keep.txt', 'secret-ok']));
      expect(listing).not.toContain('secret.key');
      await writeFile(join(dir, 'Dockerfile'), `FROM ${image}\nRUN exit 7\n`);
      await expect(buildImage(client, dir, {})).rejects.toBeInstanceOf(StreamError);
    } finally {
      await client.images.remove(tag, { force: true }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('saves and loads an image', async () => {
    const saved = await client.images.save([image]);
    const chunks: Buffer[] = [];
    for await (const chunk of saved) chunks.push(chunk as Buffer);
    const tarball = Buffer.concat(chunks);
    expect(tarball.length).toBeGreaterThan(1024);
    const messages = [];
    for await (const m of await client.images.load(tarball)) messages.push(m);
    expect(messages.map((m) => m.stream ?? m.status ?? '').join('')).toMatch(/Loaded image/);
  });

  it('creates, lists, inspects and removes volumes', async () => {
    const name = uniqueName('bc-vol');
    const vol = await client.volumes.create({ Name: name, Labels: { [label]: '1' } });
    expect(vol.Name).toBe(name);
    expect(vol.Driver).toBe('local');
    const list = await client.volumes.list({ filters: { label: [label] } });
    expect(list.Volumes?.map((v) => v.Name)).toEqual([name]);
    expect((await client.volumes.inspect(name)).Mountpoint).toBeTruthy();
    await client.volumes.remove(name);
    await expect(client.volumes.inspect(name)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('creates, inspects and removes a network', async () => {
    const name = uniqueName('bc-net');
    const net = await client.networks.create({ Name: name, Internal: true, Labels: { [label]: '1' } });
    try {
      expect(net.Id).toMatch(/^[0-9a-f]{12,64}$/);
      const inspect = await client.networks.inspect(name);
      expect(inspect.Name).toBe(name);
      expect(inspect.Internal).toBe(true);
      expect((await client.networks.list({ filters: { label: [label] } })).map((n) => n.Name)).toEqual([name]);
    } finally {
      await client.networks.remove(name);
    }
    await expect(client.networks.inspect(name)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('streams events with filters and stops on abort', async () => {
    const controller = new AbortController();
    const since = Math.floor(Date.now() / 1000) - 1;
    const events = await client.system.events({ since, filters: { label: [label], event: ['create', 'start', 'die'] }, signal: controller.signal });
    const id = await createContainer(['true']);
    await client.containers.start(id);
    const seen: EventMessage[] = [];
    try {
      for await (const e of events) {
        if (e.Actor.ID !== id) continue;
        seen.push(e);
        if (e.Action === 'die') controller.abort();
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
    expect(seen.map((e) => e.Action)).toEqual(['create', 'start', 'die']);
    expect(seen[2]?.Actor.Attributes.exitCode).toBe('0');
  });

  it('aborts calls through an AbortSignal and a timeout', async () => {
    const id = await createContainer(['sleep', '300']);
    await client.containers.start(id);
    await expect(client.containers.wait(id, { timeout: 200 })).rejects.toBeInstanceOf(AbortedError);
    const controller = new AbortController();
    const pending = client.containers.wait(id, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    await client.containers.remove(id, { force: true });
  });

  it('reports disk usage and prunes stopped containers by label', async () => {
    const df = await client.system.df();
    expect(Array.isArray(df.Images)).toBe(true);
    const id = await createContainer(['true']);
    const pruned = await client.containers.prune({ filters: { label: [label] } });
    expect(pruned.ContainersDeleted ?? []).toContain(id);
  });

  it('passes stdout through a writable in run', async () => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (d: Buffer) => (text += d.toString()));
    const result = await runContainer(client, base(['echo', 'to-writable']), { stdout: sink });
    created.push(result.id);
    expect(text).toBe('to-writable\n');
  });
}
