/**
 * What only a daemon process can show: a SIGKILLed berthd restarted finds every container as
 * Docker's live-restore would, and a container holding the daemon's socket and the docker CLI
 * drives the API from inside (what testcontainers' ryuk reaper needs).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../support/privileged.js';
import { docker, startBerthd, type BerthdInstance } from './support/berthd.js';
import { loadBusybox } from './support/images.js';

const DOCKER_BINARY = '/usr/local/bin/docker';

describePrivileged('compat: live-restore and the daemon socket inside a container', () => {
  let berthd: BerthdInstance;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[], options: Parameters<typeof docker>[2] = {}) => docker(env, args, options);
  const inspect = async (name: string, format: string): Promise<string> => (await cli(['inspect', '-f', format, name])).stdout.trim();

  beforeAll(async () => {
    berthd = await startBerthd();
    env = berthd.env;
    await loadBusybox(env, 'busybox:latest');
  }, 180_000);

  afterAll(async () => {
    await berthd?.destroy();
  }, 120_000);

  it('a container with the socket and the docker CLI bind-mounted lists, creates and removes containers', async () => {
    const script = [
      'set -e',
      'docker ps --format "{{.Names}}" | grep -x reaper',
      'docker create --name made-inside --label reaped=yes busybox true',
      'docker ps -a --filter label=reaped=yes --format "{{.Names}}"',
      'docker rm made-inside',
      'echo inside-done',
    ].join('\n');
    const run = await cli([
      'run', '--rm', '--name', 'reaper',
      // `-v <socket>:/var/run/docker.sock`, as ryuk and other reapers are started.
      '-v', `${berthd.socket}:/var/run/docker.sock`,
      '--mount', `type=bind,source=${DOCKER_BINARY},target=/usr/local/bin/docker,readonly`,
      '-e', 'DOCKER_CONFIG=/tmp/docker-config', '-e', 'PATH=/usr/local/bin:/bin',
      'busybox', 'sh', '-c', script,
    ]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('reaper\n');
    expect(run.stdout).toContain('made-inside\n');
    expect(run.stdout).toContain('inside-done\n');
    expect((await cli(['ps', '-a', '--filter', 'label=reaped=yes', '-q'])).stdout.trim()).toBe('');
  });

  it('after SIGKILL and a restart, every container is as live-restore leaves it', async () => {
    const start = async (args: string[]): Promise<void> => {
      const r = await cli(['run', '-d', ...args]);
      expect(r.code, r.stderr).toBe(0);
    };
    await start(['--name', 'p-no', 'busybox', 'sleep', '1000']);
    await start(['--name', 'p-always', '--restart', 'always', 'busybox', 'sleep', '1000']);
    await start(['--name', 'p-unless', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    await start(['--name', 'p-onfail', '--restart', 'on-failure:3', 'busybox', 'sleep', '1000']);
    // These exit while the daemon is down: the first stays exited, the second is restarted.
    await start(['--name', 'p-ends', 'busybox', 'sh', '-c', 'echo bye; sleep 2; exit 4']);
    await start(['--name', 'p-ends-always', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 2; exit 1']);
    // Stopped by hand: unless-stopped must not come back, always comes back only with the daemon.
    await start(['--name', 'p-stopped-unless', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    expect((await cli(['stop', '-t', '1', 'p-stopped-unless'])).code).toBe(0);
    expect((await cli(['create', '--name', 'p-created', 'busybox', 'true'])).code).toBe(0);

    const running = ['p-no', 'p-always', 'p-unless', 'p-onfail'];
    const pids = new Map<string, string>();
    for (const name of running) pids.set(name, await inspect(name, '{{.State.Pid}}'));
    for (const pid of pids.values()) expect(Number(pid)).toBeGreaterThan(0);
    const before = (await cli(['ps', '-a', '--format', '{{.ID}} {{.Names}}'])).stdout.trim().split('\n').sort();

    await berthd.kill();
    for (const pid of pids.values()) expect(() => process.kill(Number(pid), 0)).not.toThrow();
    await new Promise((r) => setTimeout(r, 3500));
    await berthd.restart();

    const after = (await cli(['ps', '-a', '--format', '{{.ID}} {{.Names}}'])).stdout.trim().split('\n').sort();
    expect(after).toEqual(before);
    for (const name of running) {
      expect(await inspect(name, '{{.State.Status}} {{.State.Pid}}')).toBe(`running ${pids.get(name)}`);
    }
    expect(await inspect('p-ends', '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 4');
    expect((await cli(['logs', 'p-ends'])).stdout).toBe('bye\n');
    let endsAlways = '';
    for (let i = 0; i < 50; i++) {
      endsAlways = await inspect('p-ends-always', '{{.State.Status}}');
      if (endsAlways === 'running' || endsAlways === 'restarting') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(['running', 'restarting']).toContain(endsAlways);
    expect(await inspect('p-stopped-unless', '{{.State.Status}}')).toBe('exited');
    expect(await inspect('p-created', '{{.State.Status}}')).toBe('created');

    // The restored containers are fully managed again: stop reaches them and records the exit.
    expect((await cli(['stop', '-t', '1', 'p-no'])).code).toBe(0);
    expect(await inspect('p-no', '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 137');
    const exec = await cli(['exec', 'p-always', 'echo', 'still here']);
    expect(exec.stdout).toBe('still here\n');
  });

  it('stops gracefully on SIGTERM, leaving containers running, and comes back', async () => {
    const pid = await inspect('p-always', '{{.State.Pid}}');
    expect(await berthd.stop()).toBe(0);
    expect(() => process.kill(Number(pid), 0)).not.toThrow();
    await berthd.restart();
    expect(await inspect('p-always', '{{.State.Status}} {{.State.Pid}}')).toBe(`running ${pid}`);
  });
});
