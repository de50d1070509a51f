/**
 * berthd vs Debian's dockerd, in the same run: `GET /_ping` and `GET /containers/json`
 * throughput over the unix socket (keep-alive, concurrency 8), and `docker run --rm busybox true`
 * end to end through the docker CLI, berthd and dockerd interleaved run by run. Prints medians and
 * ratios; appends them to bench/RESULTS.md.
 *
 * dockerd (docker.io) runs privately (bench/support/dockerd.ts): own data root, socket and exec
 * root, `--bridge=none --iptables=false` so it leaves the host's network alone; `docker run` is
 * therefore measured with `--network none` on both daemons (and berthd's default bridge is shown
 * as well).
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { docker, startBerthd, unmountUnder } from '../test/compat/support/berthd.js';
import { loadBusybox } from '../test/compat/support/images.js';
import { DOCKERD, startDockerd, type PrivateDockerd } from './support/dockerd.js';

const run = promisify(execFile);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 10);
const CONCURRENCY = 8;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Requests per second for `path`, 8 keep-alive connections for SECONDS. */
async function throughput(socketPath: string, path: string): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await new Promise<void>((resolve, reject) => {
        const req = request({ socketPath, path, agent, method: 'GET' }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode}`));
          res.resume();
          res.once('end', () => resolve());
        });
        req.once('error', reject);
        req.end();
      });
      count++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  return count / elapsed;
}

async function timeRun(env: NodeJS.ProcessEnv, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await docker(env, ['run', '--rm', ...args, 'busybox', 'true']);
  if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

interface Figures {
  ping: number;
  list: number;
  runNone: number;
  runBridge?: number;
}

async function measureApi(socket: string, env: NodeJS.ProcessEnv): Promise<Pick<Figures, 'ping' | 'list'>> {
  for (let i = 0; i < 3; i++) {
    const r = await docker(env, ['create', '--network', 'none', '--label', 'bench=daemon', 'busybox', 'true']);
    if (r.code !== 0) throw new Error(`docker create failed: ${r.stderr}`);
  }
  await throughput(socket, '/_ping'); // warm-up
  const pings: number[] = [];
  const lists: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    pings.push(await throughput(socket, '/_ping'));
    lists.push(await throughput(socket, '/containers/json?all=1'));
  }
  return { ping: median(pings), list: median(lists) };
}

/**
 * `docker run --rm` against each daemon, interleaved run by run (berthd, dockerd, berthd with its
 * bridge), so that load from elsewhere on the machine weighs on both alike; the ratio is the
 * median of the per-round ratios.
 */
async function measureRuns(berthEnv: NodeJS.ProcessEnv, refEnv: NodeJS.ProcessEnv | undefined): Promise<{ none: number; bridge: number; ref?: number; ratio?: number }> {
  await timeRun(berthEnv, ['--network', 'none']); // warm-up
  await timeRun(berthEnv, []);
  if (refEnv) await timeRun(refEnv, ['--network', 'none']);
  const none: number[] = [];
  const bridge: number[] = [];
  const ref: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    none.push(await timeRun(berthEnv, ['--network', 'none']));
    if (refEnv) {
      ref.push(await timeRun(refEnv, ['--network', 'none']));
      ratios.push(none.at(-1)! / ref.at(-1)!);
    }
    bridge.push(await timeRun(berthEnv, []));
  }
  return {
    none: median(none),
    bridge: median(bridge),
    ...(refEnv ? { ref: median(ref), ratio: median(ratios) } : {}),
  };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-daemon-'));
  const berthd = await startBerthd(['--log-level', 'warn']);
  let dockerd: PrivateDockerd | undefined;
  let berth: Figures;
  let ref: Figures | undefined;
  let dockerdVersion = '';
  let runs: Awaited<ReturnType<typeof measureRuns>>;
  try {
    await loadBusybox(berthd.env);
    const haveDockerd = await run('test', ['-x', DOCKERD]).then(() => true, () => false);
    if (haveDockerd) {
      dockerd = await startDockerd(join(work, 'dockerd'));
      dockerdVersion = (await docker(dockerd.env, ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
      await loadBusybox(dockerd.env);
    }
    const api = await measureApi(berthd.socket, berthd.env);
    const refApi = dockerd ? await measureApi(dockerd.socket, dockerd.env) : undefined;
    runs = await measureRuns(berthd.env, dockerd?.env);
    berth = { ...api, runNone: runs.none, runBridge: runs.bridge };
    if (refApi && runs.ref !== undefined) ref = { ...refApi, runNone: runs.ref };
  } finally {
    if (dockerd) await dockerd.stop(); // its containers, dockerd and containerd by PID, its mounts
    await berthd.destroy();
    await unmountUnder(work);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  const load = (await run('cat', ['/proc/loadavg'])).stdout.split(' ')[0];
  const fmt = (n: number): string => n.toFixed(0);
  const ratio = (a: number, b: number | undefined): string => (b === undefined ? 'n/a' : `${(a / b).toFixed(2)}×`);
  const rows = [
    `| GET /_ping (req/s, higher is better) | ${fmt(berth.ping)} | ${ref ? fmt(ref.ping) : 'n/a'} | ${ratio(berth.ping, ref?.ping)} |`,
    `| GET /containers/json (req/s) | ${fmt(berth.list)} | ${ref ? fmt(ref.list) : 'n/a'} | ${ratio(berth.list, ref?.list)} |`,
    `| docker run --rm --network none busybox true (s, lower is better) | ${berth.runNone.toFixed(3)} | ${ref ? ref.runNone.toFixed(3) : 'n/a'} | ${runs.ratio === undefined ? 'n/a' : `${runs.ratio.toFixed(2)}×`} |`,
    `| docker run --rm busybox true, berthd default bridge (s) | ${berth.runBridge?.toFixed(3) ?? 'n/a'} | — | — |`,
  ];
  const text = [
    '',
    `## berthd vs dockerd (bench/daemon.ts) — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${cpus().length} cores, Debian 12 VM; load average ${load} at the end of the run (other engineers' suites share the cores).`,
    `Throughput: ${CONCURRENCY} keep-alive connections over the unix socket, ${SECONDS} s per round, median of ${ROUNDS} rounds, 3 created containers listed.`,
    `docker run: the docker CLI 28.2 end to end, median of ${RUNS} runs, berthd and dockerd interleaved run by run; its ratio is the median of the per-run ratios. dockerd: Debian docker.io ${dockerdVersion || '(not installed)'} with --bridge=none --iptables=false, hence --network none on both.`,
    'Ratio = berthd ÷ dockerd.',
    '',
    '| measure | berthd | dockerd | ratio |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(text);
  if (process.env['BENCH_NO_WRITE'] !== '1') await appendFile(new URL('./RESULTS.md', import.meta.url), text);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
