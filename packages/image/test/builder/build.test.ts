import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BuildEvent } from '@berth/image';
import { RunStepFailedError, SourceNotFoundError } from '@berth/image';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { makeBuilder } from './fixtures.js';
import type { BuilderHarness } from './fixtures.js';
import { layerDirs, readImageFile, statImageFile } from './helpers.js';

const MULTI_STAGE = `# syntax=docker/dockerfile:1
ARG BASE=busybox
ARG GREETING=hello
FROM \${BASE} AS build
ARG GREETING
ARG VERSION=1.0
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY src/ ./src/
RUN <<EOF
set -e
mkdir -p out
echo "$GREETING $VERSION" > out/greeting.txt
cat src/*.txt > out/all.txt
EOF
COPY <<EOF /app/out/config.ini
name=\${APP_HOME}
version=$VERSION
EOF

FROM busybox AS unused
RUN exit 1

FROM busybox
LABEL org.example.title="demo app" stage=final
COPY --from=build /app/out/ /opt/app/
RUN --mount=type=tmpfs,target=/scratch echo done > /scratch/x && ls /opt/app > /listing
USER berth
WORKDIR /home/berth
RUN id -u > /tmp/uid.txt
EXPOSE 8080 53/udp
VOLUME /data
ENV PATH=/opt/app:$PATH
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --retries=2 CMD wget -q -O- localhost:8080 || exit 1
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /opt/app/greeting.txt"]
ONBUILD RUN echo triggered
`;

describePrivileged('Dockerfile builds in real containers', () => {
  let h: BuilderHarness;
  let ctx: string;

  beforeAll(async () => {
    h = await makeBuilder();
    ctx = await mkdtemp(join(tmpdir(), 'berth-build-ctx-'));
    await mkdir(join(ctx, 'src'), { recursive: true });
    await writeFile(join(ctx, 'src/one.txt'), 'one\n');
    await writeFile(join(ctx, 'src/two.txt'), 'two\n');
    await writeFile(join(ctx, 'Dockerfile'), MULTI_STAGE);
  });
  afterAll(async () => {
    await h?.cleanup();
    if (ctx) await rm(ctx, { recursive: true, force: true });
  });

  it('builds a multi-stage Dockerfile with COPY --from, build args and heredocs', async () => {
    const events: BuildEvent[] = [];
    const runsBefore = h.executor.stats.runs;
    const result = await h.builder.build({
      context: ctx,
      buildArgs: { GREETING: 'howdy', UNUSED_ARG: 'x' },
      tags: ['demo:1'],
      output: { type: 'oci-layout', dest: h.layoutDir },
      onEvent: (e) => events.push(e),
    });
    // The unused stage (whose RUN would fail) is skipped: three RUN steps ran.
    expect(h.executor.stats.runs - runsBefore).toBe(3);
    expect(await readImageFile(h.root, result, '/opt/app/greeting.txt')).toBe('howdy 1.0\n');
    expect(await readImageFile(h.root, result, '/opt/app/all.txt')).toBe('one\ntwo\n');
    expect(await readImageFile(h.root, result, '/opt/app/config.ini')).toBe('name=/app\nversion=1.0\n');
    expect(await readImageFile(h.root, result, '/listing')).toBe('all.txt\nconfig.ini\ngreeting.txt\n');
    expect(await readImageFile(h.root, result, '/tmp/uid.txt')).toBe('1000\n');
    expect(await statImageFile(h.root, result, '/scratch')).toBeUndefined();
    expect(await statImageFile(h.root, result, '/app')).toBeUndefined();

    const c = result.config.config ?? {};
    expect(c.User).toBe('berth');
    expect(c.WorkingDir).toBe('/home/berth');
    expect(c.ExposedPorts).toEqual({ '8080/tcp': {}, '53/udp': {} });
    expect(c.Volumes).toEqual({ '/data': {} });
    expect(c.Env).toContain('PATH=/opt/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q -O- localhost:8080 || exit 1'], Interval: 10e9, Retries: 2 });
    expect(c.Entrypoint).toEqual(['/bin/sh', '-c']);
    expect(c.Cmd).toEqual(['cat /opt/app/greeting.txt']);
    expect(c.OnBuild).toEqual(['RUN echo triggered']);
    expect(c.Labels).toEqual({ 'org.example.title': 'demo app', stage: 'final' });

    // Base history, then one entry per instruction of the final stage, layers only where files changed.
    const history = result.config.history ?? [];
    expect(history.length).toBe(1 + 14);
    const own = history.slice(1).map((x) => [x.created_by, x.empty_layer ?? false]);
    expect(own).toEqual([
      ['LABEL org.example.title=demo app stage=final', true],
      ['COPY --from=build /app/out/ /opt/app/ # buildkit', false],
      ['RUN /bin/sh -c echo done > /scratch/x && ls /opt/app > /listing # buildkit', false],
      ['USER berth', true],
      ['WORKDIR /home/berth', true],
      ['RUN /bin/sh -c id -u > /tmp/uid.txt # buildkit', false],
      ['EXPOSE map[53/udp:{} 8080/tcp:{}]', true],
      ['VOLUME [/data]', true],
      ['ENV PATH=/opt/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', true],
      ['STOPSIGNAL SIGINT', true],
      ['HEALTHCHECK &{["CMD-SHELL" "wget -q -O- localhost:8080 || exit 1"] "10s" "0s" "0s" "0s" \'\\x02\'}', true],
      ['ENTRYPOINT ["/bin/sh" "-c"]', true],
      ['CMD ["cat /opt/app/greeting.txt"]', true],
      ['ONBUILD RUN echo triggered', true],
    ]);
    expect(result.config.rootfs.diff_ids.length).toBe(4);
    expect(result.manifest.layers.length).toBe(4);
    expect(result.warnings.some((w) => w.includes('UNUSED_ARG'))).toBe(true);

    // Events: every step started and finished; the RUN output arrives as lines.
    const started = events.filter((e) => e.type === 'step-started');
    const finished = events.filter((e) => e.type === 'step-finished');
    expect(started.length).toBe(result.steps.total);
    expect(finished.length).toBe(result.steps.total);
    expect(events.at(-1)).toMatchObject({ type: 'image', id: result.id, tags: ['demo:1'] });
  });

  it('rebuilds with nothing changed: every step cached, no executor call, no layer written', async () => {
    const runsBefore = h.executor.stats.runs;
    const layersBefore = await layerDirs(h.root);
    const first = await h.builder.build({ context: ctx, buildArgs: { GREETING: 'howdy' } });
    const events: BuildEvent[] = [];
    const again = await h.builder.build({ context: ctx, buildArgs: { GREETING: 'howdy' }, onEvent: (e) => events.push(e) });
    expect(h.executor.stats.runs).toBe(runsBefore);
    expect(again.steps.executed).toBe(0);
    expect(again.steps.cached).toBe(again.steps.total);
    expect(again.id).toBe(first.id);
    expect(await layerDirs(h.root)).toEqual(layersBefore);
    expect(events.filter((e) => e.type === 'step-finished').every((e) => e.type === 'step-finished' && e.cached)).toBe(true);
    // A different build arg value reaches the RUN that has it in scope: it runs again, and so do
    // the final stage's RUNs after the COPY --from of its (changed) output.
    const other = await h.builder.build({ context: ctx, buildArgs: { GREETING: 'hi' } });
    expect(other.id).not.toBe(first.id);
    expect(h.executor.stats.runs).toBe(runsBefore + 3);
    expect(await readImageFile(h.root, other, '/opt/app/greeting.txt')).toBe('hi 1.0\n');
  });

  it('runs ONBUILD triggers of the base image', async () => {
    const lines: string[] = [];
    const result = await h.builder.build({
      context: ctx,
      dockerfileText: 'FROM demo:1\nRUN cat /opt/app/greeting.txt\n',
      onEvent: (e) => {
        if (e.type === 'step-output') lines.push(e.line);
      },
    });
    expect(lines).toContain('triggered');
    expect(lines).toContain('howdy 1.0');
    expect(result.config.config?.OnBuild ?? null).toBeNull();
  });

  it('invalidates exactly the steps after a changed copied file; touching keeps the cache', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-build-inval-'));
    try {
      await writeFile(join(dir, 'a'), 'A1');
      await writeFile(join(dir, 'b'), 'B1');
      const dockerfileText = 'FROM busybox\nRUN echo first > /first\nCOPY a /a\nRUN cat /a > /a.copy\nCOPY b /b\nENV DONE=1\n';
      const first = await h.builder.build({ context: dir, dockerfileText });
      const runs0 = h.executor.stats.runs;
      // New mtime, same bytes: still cached.
      await utimes(join(dir, 'a'), new Date(), new Date(Date.now() + 5000));
      const touched = await h.builder.build({ context: dir, dockerfileText });
      expect(touched.id).toBe(first.id);
      expect(h.executor.stats.runs).toBe(runs0);

      await writeFile(join(dir, 'a'), 'A2');
      const events: BuildEvent[] = [];
      const changed = await h.builder.build({ context: dir, dockerfileText, onEvent: (e) => events.push(e) });
      const cachedSteps = events.filter((e) => e.type === 'step-finished' && e.cached).map((e) => (e.type === 'step-finished' ? e.step : 0));
      // Steps: 1 FROM, 2 RUN, 3 COPY a, 4 RUN, 5 COPY b, 6 ENV — FROM and the first RUN stay cached.
      expect(cachedSteps).toEqual([1, 2]);
      expect(h.executor.stats.runs).toBe(runs0 + 1);
      expect(await readImageFile(h.root, changed, '/a.copy')).toBe('A2');
      expect(changed.config.rootfs.diff_ids.slice(0, 2)).toEqual(first.config.rootfs.diff_ids.slice(0, 2));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--no-cache runs every step again', async () => {
    const runs0 = h.executor.stats.runs;
    const result = await h.builder.build({ context: ctx, buildArgs: { GREETING: 'howdy' }, noCache: true });
    expect(h.executor.stats.runs - runs0).toBe(3);
    expect(result.steps.executed).toBeGreaterThanOrEqual(5);
  });

  it('--target builds only the stages the target needs', async () => {
    const runs0 = h.executor.stats.runs;
    const result = await h.builder.build({ context: ctx, buildArgs: { GREETING: 'howdy' }, target: 'build' });
    expect(h.executor.stats.runs).toBe(runs0);
    expect(await readImageFile(h.root, result, '/app/out/greeting.txt')).toBe('howdy 1.0\n');
    await expect(h.builder.build({ context: ctx, target: 'unused' })).rejects.toThrow(RunStepFailedError);
    await expect(h.builder.build({ context: ctx, target: 'nope' })).rejects.toThrow(/could not be found/);
  });

  it('runs independent stages in parallel', async () => {
    const events: BuildEvent[] = [];
    const dockerfileText = [
      'FROM busybox AS a',
      'RUN sleep 1 && echo a > /a',
      'FROM busybox AS b',
      'RUN sleep 1 && echo b > /b',
      'FROM busybox',
      'COPY --from=a /a /a',
      'COPY --from=b /b /b',
    ].join('\n');
    const result = await h.builder.build({ context: ctx, dockerfileText, onEvent: (e) => events.push(e) });
    const startA = events.findIndex((e) => e.type === 'step-started' && e.step === 2);
    const startB = events.findIndex((e) => e.type === 'step-started' && e.step === 4);
    const endA = events.findIndex((e) => e.type === 'step-finished' && e.step === 2);
    const endB = events.findIndex((e) => e.type === 'step-finished' && e.step === 4);
    // Both RUNs started before either finished.
    expect(Math.max(startA, startB)).toBeLessThan(Math.min(endA, endB));
    expect(await readImageFile(h.root, result, '/a')).toBe('a\n');
    expect(await readImageFile(h.root, result, '/b')).toBe('b\n');
  });

  it('a failing stage stops the stages running beside it', async () => {
    const events: BuildEvent[] = [];
    const dockerfileText = [
      'FROM busybox AS slow',
      'RUN sleep 60',
      'FROM busybox AS failing',
      'RUN sleep 0.5; exit 5',
      'FROM busybox',
      'COPY --from=slow /bin/busybox /a',
      'COPY --from=failing /bin/busybox /b',
    ].join('\n');
    const error = await h.builder.build({ context: ctx, dockerfileText, noCache: true, onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunStepFailedError);
    expect((error as RunStepFailedError).exitCode).toBe(5);
    // The sleeping step was stopped (failed), not left running after build() returned.
    expect(events.some((e) => e.type === 'step-failed' && e.step === 2)).toBe(true);
    expect(events.some((e) => e.type === 'step-finished' && e.step === 2)).toBe(false);
  });

  it('reports failing RUN steps with their exit code and output, and missing sources', async () => {
    const lines: string[] = [];
    const error = await h.builder
      .build({
        context: ctx,
        dockerfileText: 'FROM busybox\nRUN echo about to fail >&2; exit 3\n',
        onEvent: (e) => {
          if (e.type === 'step-output') lines.push(`${e.stream}:${e.line}`);
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunStepFailedError);
    expect((error as RunStepFailedError).exitCode).toBe(3);
    expect(lines).toContain('stderr:about to fail');
    await expect(h.builder.build({ context: ctx, dockerfileText: 'FROM busybox\nCOPY missing /x\n' })).rejects.toThrow(/not found/);
    await expect(h.builder.build({ context: ctx, dockerfileText: 'FROM busybox\nCOPY ../../etc/passwd /x\n' })).rejects.toThrow(SourceNotFoundError);
  });
});
