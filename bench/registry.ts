/**
 * Registry throughput: berth's registry server against Docker's reference registry
 * (distribution 2.8, /usr/bin/docker-registry), both on loopback in their own processes with
 * fresh temp storage, skopeo as the client for both.
 *
 * Images (skopeo `dir:` layouts built here from random bytes):
 *   - big:   one 256 MiB layer (gzip stored-mode, so skopeo passes it through without recompressing)
 *   - files: one layer holding 1000 files of 1–64 KiB
 * Each image is pushed and pulled RUNS times per server (alternating servers, fresh storage per
 * run); the median MB/s and the ratio berth / reference are printed and written to the registry
 * section of bench/RESULTS.md (replacing the previous one), with the load average seen during the run,
 * and so is each server's median CPU time (user + system of the serving process, from /proc) per
 * operation — the steadier figure when other work shares the machine.
 *
 * Run: bash bench/registry.sh   (or packages/registry/node_modules/.bin/tsx --tsconfig tsconfig.json bench/registry.ts)
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { startDockerRegistry } from '../packages/registry/test/support/docker-registry.js';
import { processCpuSeconds, startRegistryProcess } from '../packages/registry/test/support/process.js';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 256);
const FILES = 1000;

interface Blob {
  digest: string;
  bytes: Buffer;
  mediaType: string;
}
const blob = (mediaType: string, bytes: Buffer): Blob => ({
  mediaType,
  bytes,
  digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
});

/** A tar archive (ustar) of the given files, built in memory. */
function tar(files: Array<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${f.data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function writeDirImage(dir: string, layerTarGz: Buffer, diffId: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const layer = blob('application/vnd.oci.image.layer.v1.tar+gzip', layerTarGz);
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } })),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }],
    }),
  );
  for (const b of [layer, config]) await writeFile(join(dir, b.digest.slice(7)), b.bytes);
  await writeFile(join(dir, 'manifest.json'), manifest);
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  return layer.bytes.length + config.bytes.length + manifest.length;
}

async function skopeo(args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 * 1024 * 1024 });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** POST an upload session, then stream the file in one PUT (what a light client does). */
async function curlPush(host: string, repo: string, file: string, digest: string): Promise<number> {
  return timed(async () => {
    const { stdout } = await run('curl', ['-sf', '-D', '-', '-o', '/dev/null', '-X', 'POST', `http://${host}/v2/${repo}/blobs/uploads/`]);
    const location = /^location:\s*(\S+)/im.exec(stdout)?.[1];
    if (!location) throw new Error(`no Location from ${host}: ${stdout}`);
    const url = new URL(location, `http://${host}`);
    url.searchParams.set('digest', digest);
    await run('curl', ['-sf', '-o', '/dev/null', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', file, url.toString()]);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Server {
  host: string;
  /** The serving process, whose CPU time (user + system) is sampled around each operation. */
  pid: number;
  stop(): Promise<void>;
}

type Kind = 'berth' | 'berth-nofsync' | 'reference';
const KINDS: Kind[] = ['berth', 'berth-nofsync', 'reference'];

async function startServer(kind: Kind, scratch: string): Promise<Server> {
  if (kind === 'reference') {
    const r = await startDockerRegistry();
    return { host: r.host, pid: r.child.pid!, stop: () => r.stop() };
  }
  const root = await mkdtemp(join(scratch, 'berth-root-'));
  const p = await startRegistryProcess({ root, quiet: true, fsync: kind === 'berth' });
  return {
    host: p.host,
    pid: p.serverPid,
    async stop() {
      await p.kill('SIGTERM');
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Replaces the registry section of RESULTS.md (from its `## registry` heading to the next `## `
 * heading) with `section`, or appends it when there is none. Notes written under the table by
 * hand go with the old section; add them again after a run.
 */
async function writeSection(file: URL, section: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const start = text.search(/^## registry\b/m);
  if (start < 0) {
    await writeFile(file, `${text.replace(/\n*$/, '\n')}${section}`);
    return;
  }
  const rest = text.slice(start + 1).search(/^## /m);
  const end = rest < 0 ? text.length : start + 1 + rest;
  await writeFile(file, `${text.slice(0, start).replace(/\n*$/, '\n')}${section.replace(/^\n/, '\n')}\n${text.slice(end)}`);
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'berth-bench-registry-'));
  try {
    console.log(`building images in ${scratch} …`);
    const bigTar = tar([{ name: 'random.bin', data: randomBytes(BIG_MIB * 1024 * 1024) }]);
    const bigSize = await writeDirImage(join(scratch, 'big'), gzipSync(bigTar, { level: 0 }), `sha256:${createHash('sha256').update(bigTar).digest('hex')}`);
    const files = Array.from({ length: FILES }, (_, i) => ({
      name: `files/f${String(i).padStart(4, '0')}.bin`,
      data: randomBytes(1024 + Math.floor(Math.random() * 63 * 1024)),
    }));
    const warmTar = tar([{ name: 'warm.bin', data: randomBytes(8 * 1024 * 1024) }]);
    await writeDirImage(join(scratch, 'warmup'), gzipSync(warmTar, { level: 0 }), `sha256:${createHash('sha256').update(warmTar).digest('hex')}`);
    const filesTar = tar(files);
    const filesSize = await writeDirImage(join(scratch, 'files'), gzipSync(filesTar, { level: 0 }), `sha256:${createHash('sha256').update(filesTar).digest('hex')}`);
    const bigLayerDigest = (JSON.parse(await readFile(join(scratch, 'big', 'manifest.json'), 'utf8')) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const bigLayerPath = join(scratch, 'big', bigLayerDigest.slice(7));
    const bigLayerSize = (await stat(bigLayerPath)).size;
    const images = [
      { name: 'big', label: `${BIG_MIB} MiB single layer`, size: bigSize },
      { name: 'files', label: `${FILES}-file layer`, size: filesSize },
    ];

    const results = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    const loads: number[] = [];
    const record = (key: string, seconds: number, serverCpu?: number): void => {
      results.set(key, [...(results.get(key) ?? []), seconds]);
      if (serverCpu !== undefined) cpu.set(key, [...(cpu.get(key) ?? []), serverCpu]);
      loads.push(loadavg()[0]!);
    };
    for (let i = 0; i < RUNS; i++) {
      // Rotate the order so that no server always runs first (or last) in a round.
      const order = KINDS.map((_, k) => KINDS[(k + i) % KINDS.length]!);
      for (const kind of order) {
        const server = await startServer(kind, scratch);
        try {
          // Warm-up (both servers alike): a small push and pull, so a just-started process is
          // measured at its steady state rather than while its JIT warms up.
          const warm = `docker://${server.host}/bench/warmup:run${i}`;
          await skopeo(['copy', '--dest-tls-verify=false', `dir:${join(scratch, 'warmup')}`, warm]);
          await skopeo(['copy', '--src-tls-verify=false', warm, `dir:${join(scratch, `warm-pull-${kind}-${i}`)}`]);
          await rm(join(scratch, `warm-pull-${kind}-${i}`), { recursive: true, force: true });
          // Server-bound figures: one blob pushed (POST + streamed PUT) and pulled with curl,
          // a client much lighter than skopeo, so the server's own cost shows.
          const rawRepo = `bench/raw${i}`;
          const c0 = processCpuSeconds(server.pid);
          const rawPush = await curlPush(server.host, rawRepo, bigLayerPath, bigLayerDigest);
          const c1 = processCpuSeconds(server.pid);
          const rawPull = await timed(() => run('curl', ['-sf', '-o', '/dev/null', `http://${server.host}/v2/${rawRepo}/blobs/${bigLayerDigest}`]));
          record(`${kind}/raw/push`, rawPush, c1 - c0);
          record(`${kind}/raw/pull`, rawPull, processCpuSeconds(server.pid) - c1);
          console.log(`run ${i + 1}/${RUNS} ${kind.padEnd(13)} raw   push ${rawPush.toFixed(2)} s  pull ${rawPull.toFixed(2)} s (curl)`);
          for (const image of images) {
            const ref = `docker://${server.host}/bench/${image.name}:run${i}`;
            const c0 = processCpuSeconds(server.pid);
            const push = await skopeo(['copy', '--dest-tls-verify=false', `dir:${join(scratch, image.name)}`, ref]);
            const c1 = processCpuSeconds(server.pid);
            const dst = join(scratch, `pull-${kind}-${image.name}-${i}`);
            const pull = await skopeo(['copy', '--src-tls-verify=false', ref, `dir:${dst}`]);
            const c2 = processCpuSeconds(server.pid);
            await rm(dst, { recursive: true, force: true });
            record(`${kind}/${image.name}/push`, push, c1 - c0);
            record(`${kind}/${image.name}/pull`, pull, c2 - c1);
            console.log(`run ${i + 1}/${RUNS} ${kind.padEnd(13)} ${image.name.padEnd(5)} push ${push.toFixed(2)} s  pull ${pull.toFixed(2)} s`);
          }
        } finally {
          await server.stop();
        }
      }
    }

    const rows: string[] = [];
    const mbps = (bytes: number, s: number): number => bytes / 1e6 / s;
    const row = (label: string, op: string, key: string, bytes: number): string => {
      const [b, n, r] = KINDS.map((kind) => median(results.get(`${kind}/${key}/${op}`)!)) as [number, number, number];
      const cell = (s: number): string => `${mbps(bytes, s).toFixed(1)} MB/s (${s.toFixed(2)} s)`;
      return `| ${label} | ${op} | ${cell(b)} | ${cell(n)} | ${cell(r)} | ${(r / b).toFixed(2)}× | ${(r / n).toFixed(2)}× |`;
    };
    for (const image of images) for (const op of ['push', 'pull']) rows.push(row(image.label, op, image.name, image.size));
    for (const op of ['push', 'pull']) rows.push(row(`${BIG_MIB} MiB blob, curl client`, op, 'raw', bigLayerSize));
    // Server CPU per operation (user + system of the serving process): steadier than wall time
    // on a shared machine, and what the server itself can change.
    const cpuRow = (label: string, op: string, key: string): string => {
      const [b, n, r] = KINDS.map((kind) => median(cpu.get(`${kind}/${key}/${op}`)!)) as [number, number, number];
      return `| ${label} | ${op} | ${b.toFixed(2)} s | ${n.toFixed(2)} s | ${r.toFixed(2)} s | ${(b / r).toFixed(2)} | ${(n / r).toFixed(2)} |`;
    };
    const cpuRows: string[] = [];
    for (const image of images) for (const op of ['push', 'pull']) cpuRows.push(cpuRow(image.label, op, image.name));
    for (const op of ['push', 'pull']) cpuRows.push(cpuRow(`${BIG_MIB} MiB blob, curl client`, op, 'raw'));
    const cpuTable = [
      '| image | op | berth CPU (fsync) | berth CPU (fsync off) | docker-registry CPU | berth / ref | fsync-off / ref |',
      '|---|---|---|---|---|---|---|',
      ...cpuRows,
    ].join('\n');
    const header = [
      '| image | op | berth (fsync, default) | berth (fsync off) | docker-registry 2.8 | berth / ref | berth fsync-off / ref |',
      '|---|---|---|---|---|---|---|',
    ];
    const table = [...header, ...rows].join('\n');
    console.log(`\n${table}\n`);
    console.log(`server CPU per operation (median, user + system):\n${cpuTable}\n`);
    const load = `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (1-minute load average, sampled after each measurement)`;
    console.log(`load average during the run: ${load}`);
    const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform} ${process.version}`;
    const section = [
      '',
      `## registry — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `bench/registry.ts: skopeo ${(await run('skopeo', ['--version'])).stdout.trim().replace('skopeo version ', '')} as the client for both servers, each in its own process on loopback with fresh storage per run, warmed up with an 8 MiB push/pull; berth runs twice, with its default fsync-before-rename commits and with \`fsync: false\` (the reference registry never fsyncs); medians of ${RUNS} runs (push = \`skopeo copy dir: → docker://\`, pull = the reverse; the curl rows push one blob with POST + a streamed PUT and pull it with GET, to show the servers' own cost). Machine: ${machine}. Load average during the run: ${load}.`,
      '',
      table,
      '',
      'Server CPU per operation (median user + system seconds of the serving process, from /proc; lower is better):',
      '',
      cpuTable,
      '',
    ].join('\n');
    if (!process.env.BENCH_NO_WRITE) await writeSection(new URL('./RESULTS.md', import.meta.url), section);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
