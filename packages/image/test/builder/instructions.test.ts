import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BuildContext, imageContextForBuilds, ociLayoutImageSource, openBuilder, openImageContext } from '@berth/image';
import type { BuildEvent, BuildResult } from '@berth/image';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { makeBuilder } from './fixtures.js';
import type { BuilderHarness } from './fixtures.js';
import { readImageFile, statImageFile } from './helpers.js';
import { createRuncExecutor } from './runc-executor.js';

describePrivileged('Dockerfile instructions and flags', () => {
  let h: BuilderHarness;
  let ctx: string;
  let server: Server;
  let baseUrl: string;
  const served: Record<string, Buffer> = {};
  let archiveBytes: Buffer;

  const build = (dockerfileText: string, extra: Partial<Parameters<BuilderHarness['builder']['build']>[0]> = {}): Promise<BuildResult> =>
    h.builder.build({ context: ctx, dockerfileText, ...extra });
  const file = (r: BuildResult, p: string) => readImageFile(h.root, r, p);

  beforeAll(async () => {
    h = await makeBuilder();
    ctx = await mkdtemp(join(tmpdir(), 'berth-ins-ctx-'));
    await mkdir(join(ctx, 'dir/sub'), { recursive: true });
    await writeFile(join(ctx, 'dir/a.txt'), 'a\n');
    await writeFile(join(ctx, 'dir/b.md'), 'b\n');
    await writeFile(join(ctx, 'dir/sub/c.txt'), 'c\n');
    await writeFile(join(ctx, 'script.sh'), '#!/bin/sh\necho script\n', { mode: 0o755 });
    await writeFile(join(ctx, 'secret.txt'), 'do not copy');
    await writeFile(join(ctx, '.dockerignore'), 'secret.txt\n**/*.md\n!dir/b.md\nlogs\n!logs/keep\n');
    await mkdir(join(ctx, 'logs'));
    await writeFile(join(ctx, 'logs/drop'), 'x');
    await writeFile(join(ctx, 'logs/keep'), 'kept\n');
    await writeFile(join(ctx, 'top.md'), 'ignored\n');
    await symlink('/etc/shadow-outside', join(ctx, 'escape-link'));
    // A local tarball for ADD (extracted) and the same bytes served over HTTP (not extracted).
    const tdir = await mkdtemp(join(tmpdir(), 'berth-ins-tar-'));
    await mkdir(join(tdir, 'pkg'));
    await writeFile(join(tdir, 'pkg/inside.txt'), 'inside\n');
    archiveBytes = Buffer.concat(await toBuffers(tar.c({ cwd: tdir, gzip: true, portable: true }, ['pkg'])));
    await promisify(execFile)('tar', ['-C', tdir, '-cJf', join(ctx, 'bundle.tar.xz'), 'pkg']);
    await rm(tdir, { recursive: true, force: true });
    await writeFile(join(ctx, 'notatar.gz'), gzipSync('just compressed text\n'));
    await writeFile(join(ctx, 'bundle.tar.gz'), archiveBytes);
    served['/files/remote.txt'] = Buffer.from('remote content\n');
    served['/files/remote.tar.gz'] = archiveBytes;
    server = createServer((req, res) => {
      const body = served[req.url ?? ''];
      if (!body) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('last-modified', new Date('2024-01-02T03:04:05Z').toUTCString());
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await h?.cleanup();
    if (ctx) await rm(ctx, { recursive: true, force: true });
  });

  it('COPY: globs, directory contents, --chown, --chmod, --exclude, --parents, .dockerignore', async () => {
    const r = await build(
      [
        'FROM busybox',
        'COPY dir/*.txt /globbed/',
        'COPY dir /contents',
        'COPY --chown=berth:wheel --chmod=640 dir/a.txt /owned',
        'COPY --chmod=u+x,go-r dir/a.txt /sym',
        'COPY --exclude=*.txt dir /excluded/',
        'COPY --parents dir/sub/c.txt /parents/',
        'COPY . /ctx/',
        'COPY logs /logs',
      ].join('\n'),
    );
    expect(await file(r, '/globbed/a.txt')).toBe('a\n');
    expect(await statImageFile(h.root, r, '/globbed/b.md')).toBeUndefined();
    expect(await file(r, '/contents/sub/c.txt')).toBe('c\n');
    expect(await file(r, '/contents/b.md')).toBe('b\n');
    const owned = await statImageFile(h.root, r, '/owned');
    expect([owned?.uid, owned?.gid, (owned?.mode ?? 0) & 0o7777]).toEqual([1000, 10, 0o640]);
    const plain = await statImageFile(h.root, r, '/contents/a.txt');
    expect([plain?.uid, plain?.gid]).toEqual([0, 0]);
    expect((await statImageFile(h.root, r, '/sym'))?.mode ?? 0 & 0o777).toSatisfy((m: number) => (m & 0o777) === 0o700);
    expect(await statImageFile(h.root, r, '/excluded/a.txt')).toBeUndefined();
    expect(await file(r, '/excluded/b.md')).toBe('b\n');
    expect(await file(r, '/parents/dir/sub/c.txt')).toBe('c\n');
    // .dockerignore: excluded files, ** patterns with an exception, an excluded dir with a kept file.
    expect(await statImageFile(h.root, r, '/ctx/secret.txt')).toBeUndefined();
    expect(await statImageFile(h.root, r, '/ctx/top.md')).toBeUndefined();
    expect(await file(r, '/ctx/dir/b.md')).toBe('b\n');
    expect(await statImageFile(h.root, r, '/ctx/logs/drop')).toBeUndefined();
    expect(await file(r, '/ctx/logs/keep')).toBe('kept\n');
    expect(await file(r, '/logs/keep')).toBe('kept\n');
    // A link pointing outside is copied as a link, never followed to the host file.
    expect((await statImageFile(h.root, r, '/ctx/escape-link'))?.isSymbolicLink()).toBe(true);
    await expect(build('FROM busybox\nCOPY secret.txt /s\n')).rejects.toThrow(/not found/);
    await expect(build('FROM busybox\nCOPY escape-link /s\n')).rejects.toThrow(/not found/);
  });

  it('COPY --link builds a layer independent of the layers below, reused over another parent', async () => {
    const a = await build('FROM busybox\nRUN echo one > /one\nCOPY --link dir/a.txt /linked/a.txt\n');
    const events: BuildEvent[] = [];
    const b = await build('FROM busybox\nRUN echo two > /two\nCOPY --link dir/a.txt /linked/a.txt\n', { onEvent: (e) => events.push(e) });
    expect(a.config.rootfs.diff_ids.at(-1)).toBe(b.config.rootfs.diff_ids.at(-1));
    expect(events.some((e) => e.type === 'step-cached' && e.step === 3)).toBe(true);
    expect(await file(b, '/linked/a.txt')).toBe('a\n');
    expect(await file(b, '/two')).toBe('two\n');
  });

  it('ADD: local tarballs are extracted, URLs fetched with --checksum, remote tarballs kept', async () => {
    const remoteSum = `sha256:${createHash('sha256').update(served['/files/remote.txt'] as Buffer).digest('hex')}`;
    const r = await build(
      [
        'FROM busybox',
        'ADD bundle.tar.gz /extracted/',
        'ADD bundle.tar.xz /extracted-xz/',
        'ADD notatar.gz /plain/',
        `ADD --checksum=${remoteSum} ${baseUrl}/files/remote.txt /downloads/`,
        `ADD ${baseUrl}/files/remote.tar.gz /downloads/kept.tar.gz`,
      ].join('\n'),
    );
    expect(await file(r, '/extracted/pkg/inside.txt')).toBe('inside\n');
    expect(await file(r, '/extracted-xz/pkg/inside.txt')).toBe('inside\n');
    expect((await imageBytes(r, '/plain/notatar.gz'))?.equals(gzipSync('just compressed text\n'))).toBe(true);
    expect(await file(r, '/downloads/remote.txt')).toBe('remote content\n');
    const st = await statImageFile(h.root, r, '/downloads/remote.txt');
    expect((st?.mode ?? 0) & 0o777).toBe(0o600);
    expect(st?.mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    const kept = await imageBytes(r, '/downloads/kept.tar.gz');
    expect(kept?.equals(archiveBytes)).toBe(true);
    await expect(
      build(`FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${baseUrl}/files/remote.txt /x\n`),
    ).rejects.toThrow(/digest mismatch/);
    await expect(build(`FROM busybox\nCOPY ${baseUrl}/files/remote.txt /x\n`)).rejects.toThrow(/URL for COPY/);
  });

  it('RUN: exec form, SHELL, USER, WORKDIR, ENV and ARG in the environment, proxy args', async () => {
    const lines: string[] = [];
    const r = await build(
      [
        'FROM busybox',
        'ARG FLAVOUR=plain',
        'ENV GREETING=hi',
        'RUN ["/bin/sh", "-c", "echo exec:$GREETING:$FLAVOUR > /exec"]',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "$0 $-" > /shell',
        'WORKDIR /srv/app',
        'RUN pwd > here',
        'USER berth:audio',
        'RUN id > /tmp/id',
        'USER 0',
        'RUN echo "proxy=$HTTP_PROXY" > /proxy',
      ].join('\n'),
      { buildArgs: { FLAVOUR: 'spicy', HTTP_PROXY: 'http://proxy.invalid:3128' }, onEvent: (e) => e.type === 'step-output' && lines.push(e.line) },
    );
    expect(await file(r, '/exec')).toBe('exec:hi:spicy\n');
    expect(await file(r, '/shell')).toMatch(/^\/bin\/sh .*e/);
    expect(await file(r, '/srv/app/here')).toBe('/srv/app\n');
    expect(await file(r, '/tmp/id')).toMatch(/^uid=1000\(berth\) gid=29\(audio\)/);
    expect(await file(r, '/proxy')).toBe('proxy=http://proxy.invalid:3128\n');
    const history = (r.config.history ?? []).map((x) => x.created_by ?? '');
    expect(history).toContain('RUN |1 FLAVOUR=spicy /bin/sh -c echo exec:$GREETING:$FLAVOUR > /exec # buildkit');
    // Proxy args are used but never recorded.
    expect(history.join('\n')).not.toContain('proxy.invalid');
    expect(r.config.config?.Shell).toEqual(['/bin/sh', '-ec']);
  });

  it('RUN heredocs: several per instruction, <<- and a shebang script', async () => {
    const r = await build(
      [
        'FROM busybox',
        'RUN <<ONE cat - <<-TWO > /two-docs',
        'first',
        'ONE',
        '\tsecond',
        '\tTWO',
        'RUN <<PY',
        '#!/bin/sh',
        'echo "from a script: $0" > /shebang',
        'PY',
      ].join('\n'),
    );
    expect(await file(r, '/two-docs')).toBe('second\n');
    expect(await file(r, '/shebang')).toBe('from a script: /dev/pipes/PY\n');
    expect(await statImageFile(h.root, r, '/dev/pipes')).toBeUndefined();
  });

  it('RUN --mount: cache persists across builds, bind from context and stage, tmpfs, secrets stay out', async () => {
    const dockerfile = (n: number) =>
      [
        'FROM busybox AS tool',
        'RUN echo tool-output > /tool.txt',
        'FROM busybox',
        `RUN --mount=type=cache,target=/var/cache/app echo ${n} >> /var/cache/app/log && cat /var/cache/app/log > /cache-seen`,
        'RUN --mount=type=bind,source=dir,target=/ctx cat /ctx/a.txt > /from-ctx',
        'RUN --mount=type=bind,from=tool,source=/,target=/t cat /t/tool.txt > /from-stage',
        'RUN --mount=type=tmpfs,target=/tmpfs touch /tmpfs/x && ls /tmpfs > /tmpfs-seen',
        'RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && wc -c < /run/secrets/token > /secret-size',
        'RUN --mount=type=secret,id=token,env=TOKEN printf %s "$TOKEN" | wc -c > /secret-env',
      ].join('\n');
    const r1 = await build(dockerfile(1), { secrets: { token: 's3cr3t' } });
    expect(await file(r1, '/cache-seen')).toBe('1\n');
    const r2 = await build(dockerfile(2), { secrets: { token: 's3cr3t' } });
    expect(await file(r2, '/cache-seen')).toBe('1\n2\n');
    expect(await file(r2, '/from-ctx')).toBe('a\n');
    expect(await file(r2, '/from-stage')).toBe('tool-output\n');
    expect(await file(r2, '/tmpfs-seen')).toBe('x\n');
    expect((await file(r2, '/secret-size'))?.trim()).toBe('6');
    expect((await file(r2, '/secret-env'))?.trim()).toBe('6');
    // Mount points and the secret never reach a layer or the history.
    for (const p of ['/var/cache/app', '/ctx', '/t', '/tmpfs', '/run/secrets/token']) {
      expect(await statImageFile(h.root, r2, p)).toBeUndefined();
    }
    expect(JSON.stringify(r2.config)).not.toContain('s3cr3t');
    for (const diffId of r2.config.rootfs.diff_ids) {
      const dir = join(h.root, 'layers', diffId.slice(7));
      expect(await grepTree(dir, 's3cr3t')).toBe(false);
    }
    await expect(build('FROM busybox\nRUN --mount=type=secret,id=missing,required=true true\n')).rejects.toThrow(/secret missing not found/);
  });

  it('RUN --mount targets through a symlink a previous step made stay inside the root', async () => {
    const r = await build(
      [
        'FROM busybox',
        'RUN ln -s / /escape && mkdir -p /tmp/inside',
        'RUN --mount=type=tmpfs,target=/escape/tmp/inside/m touch /tmp/inside/m/x && ls /tmp/inside/m > /seen',
      ].join('\n'),
    );
    expect(await file(r, '/seen')).toBe('x\n');
    expect(await statImageFile(h.root, r, '/tmp/inside/m')).toBeUndefined();
    expect((await statImageFile(h.root, r, '/escape'))?.isSymbolicLink()).toBe(true);
  });

  it('config instructions: LABEL, EXPOSE ranges, VOLUME, STOPSIGNAL, HEALTHCHECK NONE, ENTRYPOINT resets inherited CMD, MAINTAINER', async () => {
    const r = await build(
      [
        'FROM busybox',
        'MAINTAINER someone@example.com',
        'ENTRYPOINT ["/bin/echo"]',
        'EXPOSE 7000-7002/udp',
        'VOLUME ["/v1", "/v2"]',
        'STOPSIGNAL 9',
        'HEALTHCHECK NONE',
        'ENV A=1 B=$A',
        'ENV C=${A:+set}${MISSING:-default}',
        'LABEL "quoted key"="v" k2=${A}',
      ].join('\n'),
    );
    const c = r.config.config ?? {};
    expect(r.config.author).toBe('someone@example.com');
    expect(c.Cmd).toBeNull();
    expect(c.Entrypoint).toEqual(['/bin/echo']);
    expect(Object.keys(c.ExposedPorts ?? {})).toEqual(['7000/udp', '7001/udp', '7002/udp']);
    expect(c.Volumes).toEqual({ '/v1': {}, '/v2': {} });
    expect(c.StopSignal).toBe('9');
    expect(c.Healthcheck).toEqual({ Test: ['NONE'] });
    // ENV substitutions see the environment before the instruction (B gets the old A: unset).
    expect(c.Env).toEqual(expect.arrayContaining(['A=1', 'B=', 'C=setdefault']));
    expect(c.Labels).toEqual({ 'quoted key': 'v', k2: '1' });
    await expect(build('FROM busybox\nSTOPSIGNAL SIGNOPE\n')).rejects.toThrow(/invalid signal/);
  });

  it('FROM scratch and a stage, TARGETPLATFORM, --platform', async () => {
    const r = await build(
      [
        'FROM scratch AS files',
        'COPY dir/a.txt /a.txt',
        'FROM --platform=$BUILDPLATFORM busybox AS base',
        'ARG TARGETPLATFORM',
        'ARG TARGETARCH',
        'RUN echo "$TARGETPLATFORM $TARGETARCH" > /platform',
        'FROM base',
        'COPY --from=files /a.txt /from-scratch.txt',
      ].join('\n'),
    );
    expect(await file(r, '/platform')).toMatch(/^linux\/\w+ \w+\n$/);
    expect(await file(r, '/from-scratch.txt')).toBe('a\n');
  });

  it('writes OCI layouts and docker-archives, and imports cache from an image history (--cache-from)', async () => {
    const dockerfileText = 'FROM busybox\nRUN echo cached-work > /work\nCOPY dir/a.txt /a\n';
    const out = await mkdtemp(join(tmpdir(), 'berth-ins-out-'));
    try {
      const r = await build(dockerfileText, { tags: ['cache/src:1', 'cache/src:2'], output: { type: 'oci-layout', dest: join(out, 'layout') } });
      const index = JSON.parse(await readFile(join(out, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
      expect(index.manifests.map((m) => m.annotations?.['io.containerd.image.name'])).toEqual([
        'docker.io/cache/src:1',
        'docker.io/cache/src:2',
      ]);
      expect(index.manifests[0]?.digest).toBe(r.manifestDigest);
      await build(dockerfileText, { tags: ['cache/src:1'], output: { type: 'docker-archive', dest: join(out, 'image.tar') } });
      const members: string[] = [];
      await tar.t({ file: join(out, 'image.tar'), onReadEntry: (e) => members.push(e.path) });
      expect(members).toEqual(expect.arrayContaining(['manifest.json', 'index.json', 'oci-layout', `blobs/sha256/${r.id.slice(7)}`]));

      // A fresh builder (empty cache) that imports the cache from the layout's image runs nothing.
      const root2 = await mkdtemp(join(tmpdir(), 'berth-ins-b2-'));
      try {
        const layoutSource = ociLayoutImageSource(join(out, 'layout'));
        const executor = createRuncExecutor();
        const b2 = await openBuilder({
          root: root2,
          executor,
          images: {
            resolveImage: (ref, opts) => (ref.startsWith('cache/') ? layoutSource.resolveImage(ref, opts) : h.images.resolveImage(ref, opts)),
          },
        });
        const fromCache = await b2.build({ context: ctx, dockerfileText, cacheFrom: ['cache/src:1'] });
        expect(executor.stats.runs).toBe(0);
        expect(fromCache.id).toBe(r.id);
      } finally {
        await rm(root2, { recursive: true, force: true });
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('stores built images in the image store under every tag, and builds FROM them', async () => {
    const storeRoot = await mkdtemp(join(tmpdir(), 'berth-ins-store-'));
    try {
      const imageCtx = await openImageContext(storeRoot);
      const adapter = imageContextForBuilds(imageCtx);
      const first = await build('FROM busybox\nRUN echo stored > /stored\n', {
        tags: ['stored/app:1', 'registry.example:5000/app:latest'],
        output: { type: 'store', store: adapter.store },
      });
      expect(imageCtx.images.find('stored/app:1')?.id).toBe(first.id);
      expect(imageCtx.images.find('registry.example:5000/app')?.id).toBe(first.id);
      expect(imageCtx.images.get(first.id)?.layers.length).toBe(2);
      // Tagging again (cached rebuild) only adds the name.
      await build('FROM busybox\nRUN echo stored > /stored\n', { tags: ['stored/app:2'], output: { type: 'store', store: adapter.store } });
      expect(imageCtx.images.namesOf(first.id)).toContain('docker.io/stored/app:2');
      // A builder whose images come from the store builds FROM the stored image.
      const root2 = await mkdtemp(join(tmpdir(), 'berth-ins-b3-'));
      try {
        const b3 = await openBuilder({ root: root2, executor: createRuncExecutor(), images: adapter.source });
        const lines: string[] = [];
        await b3.build({
          context: ctx,
          dockerfileText: 'FROM stored/app:1\nRUN cat /stored\n',
          onEvent: (e) => e.type === 'step-output' && lines.push(e.line),
        });
        expect(lines).toContain('stored');
        await expect(b3.build({ context: ctx, dockerfileText: 'FROM not/there:1\n' })).rejects.toThrow(/no such image: not\/there:1/);
      } finally {
        await rm(root2, { recursive: true, force: true });
      }
    } finally {
      await rm(storeRoot, { recursive: true, force: true });
    }
  });

  it('prefers <Dockerfile>.dockerignore next to a custom Dockerfile', async () => {
    await writeFile(join(ctx, 'custom.Dockerfile'), 'FROM busybox\nCOPY secret.txt /secret.txt\n');
    await writeFile(join(ctx, 'custom.Dockerfile.dockerignore'), 'dir\n');
    try {
      const r = await h.builder.build({ context: ctx, dockerfile: 'custom.Dockerfile' });
      expect(await file(r, '/secret.txt')).toBe('do not copy');
      await expect(h.builder.build({ context: ctx, dockerfile: 'custom.Dockerfile', dockerfileText: 'FROM busybox\nCOPY dir /d\n' })).rejects.toThrow(/not found/);
    } finally {
      await rm(join(ctx, 'custom.Dockerfile'));
      await rm(join(ctx, 'custom.Dockerfile.dockerignore'));
    }
  });

  it('builds from a tar-stream context', async () => {
    const stream = Readable.from(await toBuffers(tar.c({ cwd: ctx, portable: true }, ['dir', '.dockerignore'])));
    const context = await BuildContext.fromTar(stream);
    try {
      const r = await h.builder.build({ context, dockerfileText: 'FROM busybox\nCOPY dir/sub/c.txt /c\n' });
      expect(await file(r, '/c')).toBe('c\n');
    } finally {
      await context.close();
    }
  });

  it('keeps the cache under its byte limit', async () => {
    const small = await makeBuilder({ cacheMaxBytes: 3 * 1024 * 1024 });
    try {
      const events: BuildEvent[] = [];
      for (let i = 0; i < 3; i++) {
        await small.builder.build({
          context: ctx,
          dockerfileText: `FROM busybox\nRUN head -c 1500000 /dev/urandom > /blob${i}\n`,
          onEvent: (e) => events.push(e),
        });
        const usage = await small.builder.usage();
        expect(usage.bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
      }
      // What the limit pushed out is rebuilt when needed, not served broken.
      const again = await small.builder.build({ context: ctx, dockerfileText: 'FROM busybox\nRUN head -c 1500000 /dev/urandom > /blob0\n' });
      expect((await statImageFile(small.root, again, '/blob0'))?.size).toBe(1500000);
      await small.builder.prune(0);
      expect((await small.builder.usage()).bytes).toBe(0);
    } finally {
      await small.cleanup();
    }
  });

  async function imageBytes(r: BuildResult, p: string): Promise<Buffer | undefined> {
    const { imageFs } = await import('./helpers.js');
    return imageFs(h.root, r).readFile(p.split('/').filter(Boolean));
  }
});

async function toBuffers(stream: AsyncIterable<unknown> | NodeJS.ReadableStream): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) out.push(Buffer.from(chunk));
  return out;
}

async function grepTree(dir: string, needle: string): Promise<boolean> {
  for (const name of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    if (name.isDirectory()) {
      if (await grepTree(p, needle)) return true;
    } else if (name.isFile() && (await readFile(p)).includes(needle)) return true;
  }
  return false;
}
