/**
 * Dockerfile builds: berth's builder against `docker build` (legacy builder and BuildKit) on
 * the same Dockerfile and context:
 *
 *   FROM busybox
 *   RUN echo hi > /a
 *   COPY file /b
 *
 * "cold" is `--no-cache` with the base image already present (every step runs); "cached" is a
 * rebuild with nothing changed. Each case runs RUNS times; medians and the ratio
 * docker / berth (> 1 means berth is faster) are printed and appended to bench/RESULTS.md.
 *
 * berth runs in-process (no CLI or daemon round trip) with the test suite's runc executor
 * (a real container per RUN step via `runc run`). Docker runs when Debian's docker.io is
 * installed: the bench starts a private dockerd (own data root, socket, no iptables, no
 * bridge), loads the same busybox image into it from a berth-built docker-archive, and times
 * the `docker build` CLI (legacy: DOCKER_BUILDKIT=0, BuildKit: DOCKER_BUILDKIT=1).
 *
 * Run: bash bench/build.sh   (as root)
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bytesLayer, openBuilder, staticImageSource } from '@berth/image';
import type { ImageConfig } from '@berth/oci-spec';
import { buildBusyboxImage } from '../test/support/busybox.js';
import { createRuncExecutor } from '../packages/image/test/builder/runc-executor.js';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const DOCKERFILE = 'FROM busybox\nRUN echo hi > /a\nCOPY file /b\n';
const DOCKER = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function exists(path: string): Promise<boolean> {
  return run('test', ['-x', path]).then(
    () => true,
    () => false,
  );
}

async function startDockerd(dir: string): Promise<{ host: string; stop(): Promise<void> }> {
  const sock = join(dir, 'docker.sock');
  const child: ChildProcess = spawn(
    DOCKERD,
    [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${sock}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=overlay2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const host = `unix://${sock}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`dockerd exited: ${log.slice(-2000)}`);
    const ok = await run(DOCKER, ['-H', host, 'version']).then(() => true, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
    if (i === 99) throw new Error(`dockerd did not start: ${log.slice(-2000)}`);
  }
  return {
    host,
    async stop() {
      child.kill('SIGTERM');
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
    },
  };
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-build-'));
  const ctx = join(work, 'ctx');
  await run('mkdir', ['-p', ctx]);
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
  await writeFile(join(ctx, 'file'), 'the copied file\n');

  const fixture = await buildBusyboxImage();
  const images = staticImageSource({
    'busybox:latest': {
      id: fixture.config.digest,
      config: fixture.config.json as unknown as ImageConfig,
      layers: [bytesLayer(fixture.layer.bytes, fixture.diffId, fixture.layer.mediaType)],
    },
  });
  const builder = await openBuilder({ root: join(work, 'berth'), executor: createRuncExecutor(), images });
  const results: Record<string, { cold: number[]; cached: number[] }> = {};
  let dockerd: { host: string; stop(): Promise<void> } | undefined;
  try {
    // Warm-up: unpack the base image once, as a daemon that has pulled it would have.
    await builder.build({ context: ctx, noCache: true });
    const berth = { cold: [] as number[], cached: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      berth.cold.push(await time(() => builder.build({ context: ctx, noCache: true, tags: ['bench:berth'] })));
      berth.cached.push(await time(() => builder.build({ context: ctx, tags: ['bench:berth'] })));
    }
    results.berth = berth;

    if ((await exists(DOCKER)) && (await exists(DOCKERD))) {
      dockerd = await startDockerd(join(work, 'docker'));
      const archive = join(work, 'busybox.tar');
      await builder.build({ context: ctx, dockerfileText: 'FROM busybox\n', tags: ['busybox:latest'], output: { type: 'docker-archive', dest: archive } });
      await run(DOCKER, ['-H', dockerd.host, 'load', '-i', archive]);
      for (const [name, buildkit] of [['docker legacy', '0'], ['docker buildkit', '1']] as const) {
        const env = { ...process.env, DOCKER_BUILDKIT: buildkit, DOCKER_HOST: dockerd.host };
        const args = (noCache: boolean) => ['build', ...(noCache ? ['--no-cache'] : []), '--network=none', '-q', '-t', 'bench:docker', ctx];
        const ok = await run(DOCKER, args(true), { env }).then(
          () => true,
          (e: Error & { stderr?: string }) => {
            console.error(`${name}: skipped: ${e.stderr ?? e.message}`);
            return false;
          },
        );
        if (!ok) continue;
        const r = { cold: [] as number[], cached: [] as number[] };
        for (let i = 0; i < RUNS; i++) {
          r.cold.push(await time(() => run(DOCKER, args(true), { env })));
          r.cached.push(await time(() => run(DOCKER, args(false), { env })));
        }
        results[name] = r;
      }
    } else {
      console.error('docker.io is not installed: berth figures only');
    }
  } finally {
    await dockerd?.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }

  const b = results.berth as { cold: number[]; cached: number[] };
  const lines: string[] = [];
  lines.push(`| builder | cold (--no-cache) median | cached median | cold ratio vs berth | cached ratio vs berth |`);
  lines.push(`|---|---|---|---|---|`);
  for (const [name, r] of Object.entries(results)) {
    const cold = median(r.cold);
    const cached = median(r.cached);
    const ratio = (x: number, y: number) => (name === 'berth' ? '—' : `${(x / y).toFixed(2)}×`);
    lines.push(`| ${name} | ${cold.toFixed(3)} s | ${cached.toFixed(3)} s | ${ratio(cold, median(b.cold))} | ${ratio(cached, median(b.cached))} |`);
  }
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Debian 12 VM`;
  const report = [
    '',
    `## Dockerfile build (bench/build.ts) — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machine}. ${RUNS} runs per case. Dockerfile: \`FROM busybox\` / \`RUN echo hi > /a\` / \`COPY file /b\`.`,
    'Cold = `--no-cache` with the base image present; cached = rebuild with nothing changed. Ratio = docker time / berth time (> 1: berth faster).',
    'berth: in-process `Builder.build` with the runc test executor (a real container per RUN); docker: the `docker build` CLI against a private dockerd 20.10 (docker.io).',
    `Load average at the end of the run: ${loadavg().map((l) => l.toFixed(1)).join(' / ')} (1/5/15 min).`,
    '',
    ...lines,
    '',
  ].join('\n');
  console.log(report);
  await appendFile(join(import.meta.dirname, 'RESULTS.md'), report);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
