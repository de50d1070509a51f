/**
 * Image pull: berth's pull (parallel downloads, unpack overlapping download, into the content
 * store and overlay snapshots) against the reference pipeline `skopeo copy docker://… oci:…`
 * followed by `umoci unpack`, and `docker pull` against a private dockerd (Debian's docker.io,
 * /usr/sbin/dockerd, when installed) started here on a temp socket, data root and exec root with
 * `--bridge=none --iptables=false --insecure-registry <registry>`, spoken to over its API socket
 * and stopped by PID at the end. The registry is Docker's reference registry
 * (/usr/bin/docker-registry) on loopback, in its own process.
 *
 * Images (built here from random bytes, pushed once):
 *   - big:   one layer with a 256 MiB file, half random, half text (gzip level 1)
 *   - files: one layer holding 1000 files of 1–64 KiB
 * Each pipeline pulls each image RUNS times into fresh directories, interleaved round by round
 * (berth, skopeo+umoci, docker, berth, …); medians, the ratio reference / berth (> 1 means berth
 * is faster) and the median of the per-round ratios are printed and appended to bench/RESULTS.md.
 *
 * Run: bash bench/image.sh   (as root: berth unpacks with owners and overlay whiteouts)
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { hostArchitecture } from '../test/support/busybox.js';
import { openImageService, packTar } from '@berth/image';
import type { TarWriteEntry } from '@berth/image';
import { RegistryClient } from '@berth/registry';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 256);
const FILES = 1000;

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c);
  return Buffer.concat(chunks);
}
const file = (path: string, data: Buffer): TarWriteEntry => ({
  header: { path, type: 'file', mode: 0o644, size: data.length, mtime: 1_700_000_000 },
  body: async function* () {
    yield data;
  },
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function startReferenceRegistry(dir: string): Promise<{ host: string; stop(): Promise<void> }> {
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function pushImage(host: string, repo: string, layerTar: Buffer): Promise<void> {
  const layer = gzipSync(layerTar, { level: 1 });
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: hostArchitecture(),
      os: 'linux',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [sha(layerTar)] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'bench' }],
    }),
  );
  const layerDesc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length };
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [layerDesc] }));
  const client = new RegistryClient({});
  const ref = `${host}/${repo}`;
  await client.pushBlob(ref, layerDesc, (o) => Readable.from([layer.subarray(o)]));
  await client.pushBlob(ref, configDesc, (o) => Readable.from([config.subarray(o)]));
  await client.pushManifest(ref, manifest, 'application/vnd.oci.image.manifest.v1+json');
  console.log(`  pushed ${repo}: layer ${(layer.length / 2 ** 20).toFixed(1)} MiB compressed, ${(layerTar.length / 2 ** 20).toFixed(1)} MiB tar`);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** One Docker Engine API call over a unix socket; resolves with the status once the body is read. */
function dockerApi(socket: string, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface PrivateDockerd {
  pull(ref: string): Promise<void>;
  remove(ref: string): Promise<void>;
  stop(): Promise<void>;
}

/** A dockerd of our own (temp socket, data root, exec root; no bridge, no iptables), or undefined. */
async function startDockerd(dir: string, registryHost: string): Promise<PrivateDockerd | undefined> {
  const dockerd = '/usr/sbin/dockerd';
  if (process.env.BENCH_NO_DOCKER === '1' || !existsSync(dockerd)) return undefined;
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const config = join(dir, 'daemon.json');
  await writeFile(config, '{}\n');
  const child = spawn(
    dockerd,
    [
      '--host', `unix://${socket}`,
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '--config-file', config,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--insecure-registry', registryHost,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (log.length < 1 << 16) log += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    const ok = await dockerApi(socket, 'GET', '/_ping').then((r) => r.status === 200, () => false);
    if (ok) {
      return {
        async pull(ref) {
          const at = ref.lastIndexOf(':');
          const res = await dockerApi(socket, 'POST', `/images/create?fromImage=${encodeURIComponent(ref.slice(0, at))}&tag=${encodeURIComponent(ref.slice(at + 1))}`);
          if (res.status !== 200 || res.body.includes('"error"')) throw new Error(`docker pull ${ref}: ${res.status} ${res.body.slice(-500)}`);
        },
        async remove(ref) {
          await dockerApi(socket, 'DELETE', `/images/${encodeURIComponent(ref)}?force=1`);
        },
        stop,
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  console.log(`  dockerd did not start; docker pull skipped:\n${log.slice(-2000)}`);
  return undefined;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-image-'));
  const registry = await startReferenceRegistry(work);
  try {
    console.log(`image pull bench: registry ${registry.host} (docker-registry), runs=${RUNS}`);
    const half = Math.floor((BIG_MIB * 2 ** 20) / 2);
    const text = Buffer.alloc(half);
    const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
    for (let i = 0; i < half; i += line.length) line.copy(text, i);
    await pushImage(registry.host, 'bench/big:1', await tarOf([file('big.bin', Buffer.concat([randomBytes(half), text]))]));
    const files: TarWriteEntry[] = [];
    for (let i = 0; i < FILES; i++) files.push(file(`d${i % 10}/f${i}`, randomBytes(1024 + Math.floor(Math.random() * 63 * 1024))));
    await pushImage(registry.host, 'bench/files:1', await tarOf(files));

    const docker = await startDockerd(join(work, 'dockerd'), registry.host);
    const load0 = loadavg()[0] ?? 0;
    const rows: string[] = [];
    try {
      for (const image of ['big', 'files']) {
        const ref = `${registry.host}/bench/${image}:1`;
        const berth: number[] = [];
        const reference: number[] = [];
        const dockerTimes: number[] = [];
        const refRatios: number[] = [];
        const dockerRatios: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const root = join(work, `berth-${image}-${i}`);
          const b = await timed(async () => {
            const svc = await openImageService({ root });
            const t0 = Date.now();
            const seen = new Set<string>();
            await svc.pull(ref, {
              onProgress: (e) => {
                if (process.env.BENCH_VERBOSE !== '1') return;
                const key = e.type === 'layer' ? `${e.type}:${e.phase}` : e.type;
                if (seen.has(key)) return;
                seen.add(key);
                console.log(`    +${Date.now() - t0} ms ${key}`);
              },
            });
          });
          berth.push(b);
          await rm(root, { recursive: true, force: true });
          if (process.env.BENCH_BERTH_ONLY === '1') continue;
          const layout = join(work, `oci-${image}-${i}`);
          const bundle = join(work, `bundle-${image}-${i}`);
          const r = await timed(async () => {
            await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:latest`]);
            await run('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
          });
          reference.push(r);
          refRatios.push(r / b);
          await rm(layout, { recursive: true, force: true });
          await rm(bundle, { recursive: true, force: true });
          if (docker) {
            const d = await timed(() => docker.pull(ref));
            dockerTimes.push(d);
            dockerRatios.push(d / b);
            await docker.remove(ref);
          }
        }
        const b = median(berth);
        const r = reference.length ? median(reference) : Number.NaN;
        const d = dockerTimes.length ? median(dockerTimes) : Number.NaN;
        const what = image === 'big' ? `1 layer, ${BIG_MIB} MiB file` : `1 layer, ${FILES} files`;
        const refCell = reference.length ? `${r.toFixed(2)} s | ${(r / b).toFixed(2)}× (per round ${median(refRatios).toFixed(2)}×)` : 'skipped | –';
        const dockerCell = docker ? `${d.toFixed(2)} s | ${(d / b).toFixed(2)}× (per round ${median(dockerRatios).toFixed(2)}×)` : 'not installed | –';
        console.log(`${image}: berth ${berth.map((x) => x.toFixed(2)).join(' ')} s; skopeo+umoci ${reference.map((x) => x.toFixed(2)).join(' ')} s; docker ${dockerTimes.map((x) => x.toFixed(2)).join(' ')} s`);
        rows.push(`| ${what} | ${b.toFixed(2)} s | ${refCell} | ${dockerCell} |`);
      }
    } finally {
      await docker?.stop();
    }
    const load1 = loadavg()[0] ?? 0;
    const now = new Date().toISOString();
    const header = [
      '',
      `## Image pull (bench/image.ts) — ${now.slice(0, 10)} ${now.slice(11, 16)} UTC`,
      '',
      `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Debian 12 VM; load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end.`,
      `Registry: docker-registry on loopback; median of ${RUNS} rounds, the three pipelines interleaved round by round; fresh directories per run.`,
      'berth = registry → content store + unpacked overlay snapshots; skopeo + umoci = `skopeo copy docker://… oci:…` + `umoci unpack`; docker = `POST /images/create` on a private Debian dockerd (overlay2). Ratios = reference / berth (> 1: berth faster).',
      '',
      '| image | berth | skopeo + umoci | vs skopeo+umoci | docker pull | vs docker |',
      '|---|---|---|---|---|---|',
    ];
    const text2 = [...header, ...rows, ''].join('\n');
    console.log(text2);
    if (process.env.BENCH_NO_RESULTS !== '1') await appendFile(join(process.cwd(), 'bench', 'RESULTS.md'), text2);
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
