/**
 * `berth daemon` (berthd in the CLI's own process, which exits only when its event loop drains):
 * SIGTERM with a running container exits promptly under live-restore and leaves the container
 * running; the socket's directory (the exec root) is reachable by the socket's group (0710).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describePrivileged } from '../support/privileged.js';
import { docker, unmountUnder } from './support/berthd.js';
import { loadBusybox } from './support/images.js';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const tsx = join(root, 'packages/daemon/node_modules/.bin/tsx');
const cliBin = join(root, 'packages/cli/src/bin.ts');

describePrivileged('compat: berth daemon shuts down promptly with live-restore', () => {
  const tag = randomBytes(3).toString('hex');
  let dir = '';
  let child: ChildProcess | undefined;
  let containerPid = 0;

  const args = (): string[] => [
    '--tsconfig', join(root, 'tsconfig.json'), cliBin, 'daemon',
    '-H', `unix://${join(dir, 'exec', 'berth.sock')}`,
    '-G', 'daemon',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--bridge', `bs${tag}`,
    '--bip', `10.${200 + (Number.parseInt(tag.slice(0, 2), 16) % 54)}.${Number.parseInt(tag.slice(2, 4), 16)}.1/24`,
    '--bridge-prefix', `bs${tag.slice(0, 2)}-`,
    '--firewall-table', `berths${tag}`,
    '--cgroup-parent', `berth-shutdown-${tag}`,
    '--pidfile', join(dir, 'berthd.pid'),
  ];
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_HOST: `unix://${join(dir, 'exec', 'berth.sock')}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' });
  const launch = async (): Promise<ChildProcess> => {
    const c = spawn(tsx, args(), { cwd: root, stdio: 'ignore' });
    for (let i = 0; i < 450; i++) {
      if (c.exitCode !== null) throw new Error(`berth daemon exited with ${c.exitCode}`);
      if ((await docker(env(), ['version'])).code === 0) return c;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('berth daemon did not start in 90 s');
  };
  const exitWithin = (c: ChildProcess, ms: number): Promise<boolean> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve(true)
      : new Promise((resolve) => {
          const t = setTimeout(() => resolve(false), ms);
          c.once('exit', () => {
            clearTimeout(t);
            resolve(true);
          });
        });

  afterAll(async () => {
    if (dir === '') return;
    try {
      if (!child || child.exitCode !== null || child.signalCode !== null) child = await launch().catch(() => undefined);
      if (child) {
        await docker(env(), ['rm', '-f', 'kept']);
        child.kill('SIGKILL');
        await exitWithin(child, 10_000);
      }
    } finally {
      // tsx runs the daemon as its child and cannot pass SIGKILL on: end the daemon by its pidfile.
      const pid = Number.parseInt(await readFile(join(dir, 'berthd.pid'), 'utf8').catch(() => '0'), 10);
      if (pid > 0 && existsSync(`/proc/${pid}`)) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 200 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
      }
      if (containerPid > 0 && existsSync(`/proc/${containerPid}`)) process.kill(containerPid, 'SIGKILL');
      await run('ip', ['link', 'del', `bs${tag}`]).catch(() => undefined);
      await run('nft', ['delete', 'table', 'inet', `berths${tag}`]).catch(() => undefined);
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      await run('sh', ['-c', `for c in /sys/fs/cgroup/berth-shutdown-${tag} /sys/fs/cgroup/*/berth-shutdown-${tag}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \\; ; done; true`]).catch(() => undefined);
    }
  }, 120_000);

  it('makes the exec root 0710 for the socket group, exits within seconds of SIGTERM and leaves the container running', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-shutdown-'));
    child = await launch();
    const exec = await stat(join(dir, 'exec'));
    expect(exec.mode & 0o777).toBe(0o710);
    expect(exec.gid).toBe(1); // the `daemon` group given with -G
    const sock = await stat(join(dir, 'exec', 'berth.sock'));
    expect([sock.mode & 0o777, sock.gid]).toEqual([0o660, 1]);
    expect((await stat(join(dir, 'exec', 'runtime'))).mode & 0o777).toBe(0o700);

    await loadBusybox(env(), 'busybox:latest');
    const started = await docker(env(), ['run', '-d', '--name', 'kept', 'busybox', 'sleep', '600']);
    expect(started.code, started.stderr).toBe(0);
    containerPid = Number.parseInt((await docker(env(), ['inspect', '-f', '{{.State.Pid}}', 'kept'])).stdout.trim(), 10);
    expect(containerPid).toBeGreaterThan(0);

    // tsx forwards SIGTERM to the CLI process it runs.
    child.kill('SIGTERM');
    expect(await exitWithin(child, 10_000)).toBe(true);
    expect(existsSync(`/proc/${containerPid}`)).toBe(true);
    expect((await readFile(`/proc/${containerPid}/cmdline`, 'utf8')).split('\0')[0]).toBe('sleep');
  }, 180_000);
});
