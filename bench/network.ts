/**
 * Container start with the default bridge network vs `--network none`, for berth (and docker /
 * podman when installed). Run as root: `bash bench/network.sh` (bundles this file with esbuild and
 * runs it with node). Prints medians and the ratio; append the figures to bench/RESULTS.md.
 *
 * One "start" is what `docker run --rm busybox true` does: networking set up, container created,
 * started, waited for, deleted, networking torn down. The network share of it is measured on its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NetworkManager, openRuntime } from '@berth/runtime';
import type { ContainerSpec } from '@berth/runtime';
import { buildBusyboxRootfs } from '../test/support/busybox.js';

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const ms = (n: number): string => `${n.toFixed(1)} ms`;

async function benchBerth(root: string, lower: string): Promise<void> {
  const tag = randomBytes(2).toString('hex');
  const runtime = await openRuntime({ stateDir: join(root, 'rt'), cgroupParent: `berth-bench-${tag}` });
  const net = await NetworkManager.open({
    stateDir: join(root, 'net'),
    runDir: join(root, 'run'),
    firewallTable: `berth_bench_${tag}`,
    bridgePrefix: `bb${tag}-`,
    defaultBridge: { name: `bb${tag}0`, subnet: `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}.0/24` },
  });
  await net.reconcile([]);
  const results: Record<string, { total: number[]; network: number[] }> = { none: { total: [], network: [] }, bridge: { total: [], network: [] } };
  try {
    let n = 0;
    for (let round = 0; round < ROUNDS + 2; round++) {
      for (const mode of ['none', 'bridge'] as const) {
        const id = `bench-${tag}-${n++}`;
        const t0 = performance.now();
        const setup = await net.setupContainer({ containerId: id, networkMode: mode });
        const t1 = performance.now();
        const spec: ContainerSpec = {
          id,
          rootfs: { path: lower },
          config: { Cmd: ['true'] },
          netns: setup.netns,
          ...(setup.hosts !== undefined ? { hosts: setup.hosts } : {}),
          ...(setup.resolvConf !== undefined ? { resolvConf: setup.resolvConf } : {}),
        };
        await runtime.create(spec);
        await runtime.start(id);
        await runtime.wait(id);
        await runtime.delete(id, { force: true });
        const t2 = performance.now();
        await net.teardownContainer(id);
        const t3 = performance.now();
        if (round >= 2) {
          results[mode]?.total.push(t3 - t0);
          results[mode]?.network.push(t1 - t0 + (t3 - t2));
        }
      }
    }
  } finally {
    await net.destroy();
    await runtime.close();
  }
  const none = results.none ?? { total: [], network: [] };
  const bridge = results.bridge ?? { total: [], network: [] };
  console.log(`berth  (${ROUNDS} rounds, busybox true, runc via conmon)`);
  console.log(`  --network none    median ${ms(median(none.total))}  (networking ${ms(median(none.network))})`);
  console.log(`  --network bridge  median ${ms(median(bridge.total))}  (networking ${ms(median(bridge.network))})`);
  console.log(`  bridge/none ratio ${(median(bridge.total) / median(none.total)).toFixed(2)}; bridge adds ${ms(median(bridge.total) - median(none.total))}`);
}

/**
 * The reference engines, when present and working: the image is the same busybox root filesystem,
 * imported (`<cli> import`), since no registry with busybox is reachable from this VM.
 */
function benchCli(cli: 'docker' | 'podman', rootfs: string): void {
  try {
    execFileSync(cli, ['info'], { stdio: 'ignore' });
  } catch {
    console.log(`${cli}: not usable here (not installed or no daemon) — skipped`);
    return;
  }
  const image = `localhost/berth-bench-busybox:${randomBytes(3).toString('hex')}`;
  execFileSync('sh', ['-c', `tar -C '${rootfs}' -c . | ${cli} import - ${image}`], { stdio: 'ignore' });
  try {
    benchCliRuns(cli, image);
  } catch (e) {
    console.log(`${cli}: failed — ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`);
  } finally {
    execFileSync(cli, ['rmi', '-f', image], { stdio: 'ignore' });
  }
}

function benchCliRuns(cli: 'docker' | 'podman', image: string): void {
  const time = (args: string[]): number => {
    const t0 = performance.now();
    execFileSync(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return performance.now() - t0;
  };
  const none: number[] = [];
  const bridge: number[] = [];
  // crun 1.8 refuses this host's hybrid cgroups; podman runs with runc like berth does. Its
  // default nofile/nproc limits are above this host's hard limits, which runc cannot set here.
  const rt = cli === 'podman' ? ['--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'] : [];
  for (let i = 0; i < ROUNDS + 2; i++) {
    const a = time(['run', ...rt, '--rm', '--network', 'none', image, 'true']);
    const b = time(['run', ...rt, '--rm', image, 'true']);
    if (i >= 2) {
      none.push(a);
      bridge.push(b);
    }
  }
  console.log(`${cli}: none ${ms(median(none))}, bridge ${ms(median(bridge))}, ratio ${(median(bridge) / median(none)).toFixed(2)}`);
}

const root = await mkdtemp(join(tmpdir(), 'berth-bench-net-'));
try {
  const lower = join(root, 'lower');
  await mkdir(lower);
  await buildBusyboxRootfs(lower);
  console.log(`network start benchmark, ${new Date().toISOString()}, ${ROUNDS} rounds after 2 warm-up`);
  await benchBerth(root, lower);
  benchCli('docker', lower);
  benchCli('podman', lower);
} finally {
  await rm(root, { recursive: true, force: true });
}
