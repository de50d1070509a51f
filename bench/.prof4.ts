/**
 * Image pull: berth's pull (parallel downloads, unpack overlapping download, into the content
 * store and overlay snapshots) against the reference pipeline `skopeo copy docker://… oci:…`
 * followed by `umoci unpack`, and `docker pull` when a dockerd is reachable. The registry is
 * Docker's reference registry (/usr/bin/docker-registry) on loopback, in its own process.
 *
 * Images (built here from random bytes, pushed once):
 *   - big:   one layer with a 256 MiB file, half random, half text (gzip level 1)
 *   - files: one layer holding 1000 files of 1–64 KiB
 * Each pipeline pulls each image RUNS times into fresh directories (alternating pipelines);
 * medians, and the ratio reference / berth (> 1 means berth is faster), are printed and
 * appended to bench/RESULTS.md.
 *
 * Run: bash bench/image.sh   (as root: berth unpacks with owners and overlay whiteouts)
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
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

async function dockerAvailable(): Promise<boolean> {
  return run('docker', ['version', '--format', '{{.Server.Version}}']).then(() => true, () => false);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-prof-'));
  const registry = await startReferenceRegistry(work);
  try {
    const data = randomBytes(128 * 2 ** 20);
    await pushImage(registry.host, 'p/big:1', await tarOf([file('big.bin', data)]));
    for (let k = 0; k < 2; k++) {
      const t = Date.now();
      const svc = await openImageService({ root: join(work, `r${k}`) });
      await svc.pull(`${registry.host}/p/big:1`, { onProgress: (e) => { if (e.type === 'layer' && e.phase !== 'downloading') console.log(' ', Date.now() - t, e.phase); } });
      console.log('berth pull', Date.now() - t, 'ms');
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
