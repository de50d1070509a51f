/**
 * A private Debian dockerd (docker.io 20.10) for the benchmarks: its own data root, exec root,
 * socket and pidfile under `dir`, `--bridge=none --iptables=false --ip6tables=false
 * --ip-masq=false` so it leaves the host's network alone (containers run with `--network none`).
 * `stop()` removes its containers, ends dockerd (and the containerd it manages) by PID and
 * unmounts everything under `dir`; the caller removes `dir`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { docker, unmountUnder } from '../../test/compat/support/berthd.js';

export const DOCKERD = '/usr/sbin/dockerd';

export interface PrivateDockerd {
  socket: string;
  /** DOCKER_HOST and a private DOCKER_CONFIG for the docker CLI. */
  env: NodeJS.ProcessEnv;
  readonly pid: number;
  /** The containerd that dockerd started (its child), if found. */
  containerdPid(): Promise<number | undefined>;
  /** Removes every container, SIGTERMs dockerd (SIGKILL after 15 s), then its containerd if left, and unmounts `dir`. */
  stop(): Promise<void>;
}

export const haveDockerd = (): boolean => existsSync(DOCKERD);

/** PIDs whose parent is `ppid` (from /proc/<pid>/stat). */
export async function childrenOf(ppid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ... — comm may hold spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === ppid) out.push(Number(name));
  }
  return out;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

export async function startDockerd(dir: string): Promise<PrivateDockerd> {
  const socket = join(dir, 'docker.sock');
  const child: ChildProcess = spawn(
    DOCKERD,
    ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'), '-H', `unix://${socket}`,
      '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--storage-driver=overlay2'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
  delete env['DOCKER_API_VERSION'];
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const waitExit = (ms: number): Promise<boolean> =>
    exited()
      ? Promise.resolve(true)
      : new Promise((resolve) => {
          const timer = setTimeout(() => resolve(false), ms);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
  let containerd: number | undefined;
  const containerdPid = async (): Promise<number | undefined> => {
    if (containerd !== undefined && alive(containerd)) return containerd;
    if (child.pid === undefined) return undefined;
    for (const pid of await childrenOf(child.pid)) {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'containerd') containerd = pid;
    }
    return containerd;
  };
  const stop = async (): Promise<void> => {
    if (!exited()) {
      await containerdPid();
      const ids = (await docker(env, ['ps', '-aq'], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await docker(env, ['rm', '-f', ...ids], { timeoutMs: 60_000 });
      child.kill('SIGTERM');
      if (!(await waitExit(15_000))) {
        child.kill('SIGKILL');
        await waitExit(5_000);
      }
    }
    // dockerd stops the containerd it started; should it outlive dockerd, end it by its PID.
    if (containerd !== undefined && alive(containerd)) {
      process.kill(containerd, 'SIGTERM');
      for (let i = 0; i < 50 && alive(containerd); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(containerd)) process.kill(containerd, 'SIGKILL');
    }
    await unmountUnder(dir);
  };
  try {
    for (let i = 0; ; i++) {
      if (exited()) throw new Error(`dockerd exited: ${log.slice(-2000)}`);
      if ((await docker(env, ['version'], { timeoutMs: 10_000 })).code === 0) break;
      if (i === 149) throw new Error(`dockerd did not start: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { socket, env, pid: child.pid ?? 0, containerdPid, stop };
}
