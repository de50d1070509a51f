/**
 * @berth/runtime against the raw OCI runtime: create+start+wait+delete of `true` through the
 * library (conmon monitor, bundle generation, cgroups, logs) vs `runc run` of the same rootfs,
 * and docker/podman `run --rm` when they are installed. Then the host memory each idle container
 * adds (the monitor's RSS and PSS: conmon for berth and podman, containerd-shim-runc-v2 for docker).
 * docker is Debian's dockerd started privately for the run (bench/support/dockerd.ts: own data
 * root, socket, no bridge or iptables, hence `--network none`) with the busybox fixture loaded.
 * Run as root: `bash bench/runtime.sh`. Prints medians and ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRuntime } from '@berth/runtime';
import { loadBusybox } from '../test/compat/support/images.js';
import { buildBusyboxImage, buildBusyboxRootfs, writeOciLayout } from '../test/support/busybox.js';
import { haveDockerd, startDockerd, type PrivateDockerd } from './support/dockerd.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const IDLE = Number(process.env.IDLE ?? 10);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const which = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

async function kib(pid: number, file: string, key: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/${file}`, 'utf8').catch(() => '');
  return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-bench-rt-'));
  const rootfs = join(root, 'rootfs');
  await mkdir(rootfs);
  await buildBusyboxRootfs(rootfs);
  const tag = randomBytes(3).toString('hex');
  const runtime = await openRuntime({ stateDir: join(root, 'state'), cgroupParent: `berth-bench-${tag}` });
  const oci = runtime.ociRuntime;
  console.log(`OCI runtime: ${oci.name} ${oci.version} (spec ${oci.specVersion}) — ${oci.reason}`);
  const load = async (): Promise<string> => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(`load average at start: ${await load()}`);

  // The raw runtime's bundle: `runc spec` defaults, the same rootfs, `true`.
  const bundle = join(root, 'raw');
  await mkdir(bundle);
  execFileSync(oci.path, ['spec', '--bundle', bundle]);
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] }; root: { path: string; readonly: boolean }; linux: { cgroupsPath?: string } };
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  spec.root = { path: rootfs, readonly: true };
  const rawRoot = join(root, 'raw-state');

  const berth: number[] = [];
  const phases = { create: [] as number[], start: [] as number[], wait: [] as number[], delete: [] as number[] };
  const raw: number[] = [];
  const docker: number[] = [];
  const podman: number[] = [];
  let dockerd: PrivateDockerd | undefined;
  let dockerWhyNot = 'dockerd (docker.io) not installed';
  const dockerRun = ['run', '--rm', '--network', 'none', 'busybox', 'true'];
  const dockerShims: number[] = [];
  // podman with its own storage under root, the busybox image loaded from an OCI layout, runc
  // (its default crun refuses this host) and cgroupfs (no systemd here).
  const podmanArgs = ['--root', join(root, 'podman'), '--runroot', join(root, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--runtime', oci.path, '--events-backend', 'none'];
  // podman asks for nofile/nproc limits above this host's hard limits unless told otherwise.
  const podmanRun = ['run', '--rm', '--pull', 'never', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  const layoutDir = `/tmp/berth-bench-layout-${tag}`; // lower case: podman names the image after the path
  let podmanImage = '';
  let podmanWhyNot = 'not installed';
  if (which('podman')) {
    await writeOciLayout(layoutDir, await buildBusyboxImage(), 'bench');
    const pull = spawnSync('podman', [...podmanArgs, 'pull', '-q', `oci:${layoutDir}:bench`], { encoding: 'utf8' });
    podmanImage = spawnSync('podman', [...podmanArgs, 'images', '-q'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] ?? '';
    const probe = spawnSync('podman', [...podmanArgs, ...podmanRun, podmanImage, 'true'], { encoding: 'utf8' });
    if (pull.status !== 0 || probe.status !== 0) {
      podmanWhyNot = `installed but fails here: ${(probe.stderr || pull.stderr).trim().split('\n').at(-1)}`;
      podmanImage = '';
    }
  }
  const hasPodman = podmanImage !== '';
  try {
    if (haveDockerd() && which('docker')) {
      try {
        dockerd = await startDockerd(join(root, 'dockerd'));
        await loadBusybox(dockerd.env);
        const probe = spawnSync('docker', dockerRun, { env: dockerd.env, encoding: 'utf8' });
        if (probe.status !== 0) throw new Error(probe.stderr.trim().split('\n').at(-1));
        const version = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { env: dockerd.env, encoding: 'utf8' }).stdout.trim();
        console.log(`docker: private dockerd ${version} (pid ${dockerd.pid}), busybox fixture loaded`);
      } catch (error) {
        dockerWhyNot = `installed but fails here: ${error instanceof Error ? error.message : String(error)}`;
        await dockerd?.stop();
        dockerd = undefined;
      }
    }
    const dockerEnv = dockerd?.env;
    for (let i = 0; i < ROUNDS + 2; i++) {
      const warm = i < 2;
      const id = `bench-${tag}-${i}`;
      let t = now();
      const t0 = t;
      await runtime.create({ id, rootfs: { path: rootfs }, config: { Cmd: ['/bin/true'] }, hostConfig: { ReadonlyRootfs: true } });
      const t1 = now();
      await runtime.start(id);
      const t2 = now();
      const exit = await runtime.wait(id);
      const t3 = now();
      await runtime.delete(id);
      if (exit.exitCode !== 0) throw new Error(`true exited ${exit.exitCode}`);
      if (!warm) {
        berth.push(now() - t);
        phases.create.push(t1 - t0);
        phases.start.push(t2 - t1);
        phases.wait.push(t3 - t2);
        phases.delete.push(now() - t3);
      }

      spec.linux.cgroupsPath = `/berth-bench-${tag}/raw-${i}`;
      await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
      t = now();
      const r = spawnSync(oci.path, ['--root', rawRoot, 'run', '--bundle', bundle, `raw-${tag}-${i}`], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`${oci.name} run exited ${r.status}`);
      if (!warm) raw.push(now() - t);

      if (dockerEnv) {
        t = now();
        const d = spawnSync('docker', dockerRun, { stdio: 'ignore', env: dockerEnv });
        if (d.status !== 0) throw new Error(`docker run exited ${d.status}`);
        if (!warm) docker.push(now() - t);
      }
      if (hasPodman) {
        t = now();
        spawnSync('podman', [...podmanArgs, ...podmanRun, podmanImage, 'true'], { stdio: 'ignore' });
        if (!warm) podman.push(now() - t);
      }
    }
    const mb = median(berth);
    const mr = median(raw);
    console.log(`\ncreate+start+wait+delete of \`true\`, median of ${ROUNDS}:`);
    console.log(`  berth (library, conmon)   ${mb.toFixed(1)} ms`);
    console.log(`  ${oci.name} run (raw)            ${mr.toFixed(1)} ms`);
    console.log(`  ratio berth / raw         ${(mb / mr).toFixed(2)}×`);
    console.log(`  berth phases (medians): ${Object.entries(phases).map(([k, v]) => `${k} ${median(v).toFixed(1)} ms`).join(', ')}`);
    if (dockerEnv) console.log(`  docker run --rm --network none ${median(docker).toFixed(1)} ms (ratio berth/docker ${(mb / median(docker)).toFixed(2)}×)`);
    else console.log(`  docker: ${dockerWhyNot} — not measured`);
    if (hasPodman) console.log(`  podman run --rm           ${median(podman).toFixed(1)} ms (ratio berth/podman ${(mb / median(podman)).toFixed(2)}×)`);
    else console.log(`  podman: ${podmanWhyNot} — not measured`);

    // Memory each idle container adds on the host: its monitor (conmon); the container's own
    // process (sleep) is the workload, not the engine's cost.
    const ids: string[] = [];
    for (let i = 0; i < IDLE; i++) {
      const id = `idle-${tag}-${i}`;
      await runtime.create({ id, rootfs: { path: rootfs }, config: { Cmd: ['sleep', '3600'] }, hostConfig: { ReadonlyRootfs: true } });
      await runtime.start(id);
      ids.push(id);
    }
    await new Promise((r) => setTimeout(r, 500));
    // RSS = RssAnon (the monitor's own) + RssFile (pages of conmon and its libraries, shared by
    // every monitor and counted in each one's RSS).
    const memory = async (pids: number[]): Promise<string> => {
      let rss = 0;
      let pss = 0;
      let anon = 0;
      for (const pid of pids) {
        rss += await kib(pid, 'status', 'VmRSS');
        anon += await kib(pid, 'status', 'RssAnon');
        pss += await kib(pid, 'smaps_rollup', 'Pss');
      }
      const mib = (k: number): string => (k / pids.length / 1024).toFixed(2);
      return `RSS ${mib(rss)} MiB (anon ${mib(anon)}, file ${mib(rss - anon)}), PSS ${mib(pss)} MiB`;
    };
    const monitors: number[] = [];
    for (const id of ids) monitors.push((await runtime.state(id)).monitorPid);
    console.log(`\nper idle container (${IDLE} running \`sleep\`), its monitor (conmon; docker: containerd-shim-runc-v2):`);
    console.log(`  berth: ${await memory(monitors)}`);
    console.log(`  node process using the library: RSS ${(process.memoryUsage().rss / 1048576).toFixed(1)} MiB (shared by all containers)`);
    for (const id of ids) await runtime.delete(id, { force: true });
    if (hasPodman) {
      const pids: number[] = [];
      for (let i = 0; i < IDLE; i++) {
        const run = podmanRun.filter((a) => a !== '--rm');
        const r = spawnSync('podman', [...podmanArgs, ...run, '-d', podmanImage, 'sleep', '3600'], { encoding: 'utf8' });
        const cid = r.stdout.trim();
        pids.push(Number(spawnSync('podman', [...podmanArgs, 'inspect', '--format', '{{.State.ConmonPid}}', cid], { encoding: 'utf8' }).stdout.trim()));
      }
      await new Promise((r) => setTimeout(r, 500));
      console.log(`  podman (its conmon): ${await memory(pids)}`);
      spawnSync('podman', [...podmanArgs, 'rm', '-af', '-t', '0'], { stdio: 'ignore' });
    }
    if (dockerd && dockerEnv) {
      // docker's per-container monitor is a containerd-shim-runc-v2: the parent of the container's
      // pid 1. dockerd and containerd also grow a little per container: their RSS before/after.
      const daemons = [dockerd.pid, await dockerd.containerdPid()].filter((p): p is number => p !== undefined);
      const daemonRss = async (): Promise<number> => {
        let sum = 0;
        for (const pid of daemons) sum += await kib(pid, 'status', 'VmRSS');
        return sum;
      };
      const before = await daemonRss();
      for (let i = 0; i < IDLE; i++) {
        const r = spawnSync('docker', ['run', '-d', '--network', 'none', 'busybox', 'sleep', '3600'], { env: dockerEnv, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`docker run -d failed: ${r.stderr.trim()}`);
        const pid = Number(spawnSync('docker', ['inspect', '--format', '{{.State.Pid}}', r.stdout.trim()], { env: dockerEnv, encoding: 'utf8' }).stdout.trim());
        const shim = await kib(pid, 'status', 'PPid');
        const comm = (await readFile(`/proc/${shim}/comm`, 'utf8').catch(() => '')).trim();
        if (!comm.startsWith('containerd-shim')) throw new Error(`parent of docker container pid ${pid} is ${shim} (${comm}), not a containerd shim`);
        dockerShims.push(shim);
      }
      await new Promise((r) => setTimeout(r, 500));
      const after = await daemonRss();
      console.log(`  docker (its containerd-shim-runc-v2, ${new Set(dockerShims).size} shims): ${await memory(dockerShims)}`);
      console.log(`  docker daemons (dockerd pid ${daemons[0]}, containerd pid ${daemons[1] ?? '?'}): RSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MiB, +${((after - before) / IDLE / 1024).toFixed(2)} MiB per container`);
    }
    console.log(`\nload average at end: ${await load()}`);
  } finally {
    // Its containers, dockerd and its containerd (by PID), the mounts under its data root.
    await dockerd?.stop().catch((error: unknown) => console.error(`stopping dockerd: ${String(error)}`));
    for (const pid of dockerShims) {
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm.startsWith('containerd-shim')) spawnSync('kill', ['-KILL', String(pid)]);
    }
    for (const c of await runtime.list()) await runtime.delete(c.id, { force: true }).catch(() => undefined);
    await runtime.close();
    for (const ctl of ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc', 'systemd', 'unified']) {
      const d = `/sys/fs/cgroup/${ctl}/berth-bench-${tag}`;
      if (existsSync(d)) spawnSync('rmdir', [d]);
    }
    if (which('podman')) {
      spawnSync('podman', [...podmanArgs, 'rm', '-af'], { stdio: 'ignore' });
      spawnSync('podman', [...podmanArgs, 'rmi', '-af'], { stdio: 'ignore' });
    }
    // podman leaves its storage's overlay directory mounted (and may mount it again meanwhile)
    for (let i = 0; i < 5; i++) {
      const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(root));
      if (mounts.length === 0) break;
      for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
    }
    await rm(root, { recursive: true, force: true });
    await rm(layoutDir, { recursive: true, force: true });
  }
}

await main();
