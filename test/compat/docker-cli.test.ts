/**
 * The real docker CLI (28.x) against berthd: the commands of issue 6's Done-when list, with the
 * exit codes docker gives. One berthd for the file, on its own socket, data root and network.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../support/privileged.js';
import { docker, startBerthd, type BerthdInstance } from './support/berthd.js';
import { COMPAT_PASSWORD, COMPAT_USER, pushBusybox, startBerthRegistry, startDockerRegistry, type TestRegistry } from './support/registry.js';

describePrivileged('compat: the docker CLI against berthd', () => {
  let berthd: BerthdInstance;
  let debianRegistry: TestRegistry;
  let berthRegistry: TestRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[], options: Parameters<typeof docker>[2] = {}) => docker(env, args, options);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-compat-work-'));
    [berthd, debianRegistry, berthRegistry] = await Promise.all([startBerthd(), startDockerRegistry(), startBerthRegistry()]);
    env = berthd.env;
    const image = await pushBusybox(debianRegistry.host, 'library/busybox', 'latest');
    await pushBusybox(berthRegistry.host, 'team/busybox', '1', { username: COMPAT_USER, password: COMPAT_PASSWORD }, image);
  }, 180_000);

  afterAll(async () => {
    await berthd?.destroy();
    await debianRegistry?.close();
    await berthRegistry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('version and info talk to berthd at API 1.44', async () => {
    const version = await cli(['version', '--format', '{{.Server.APIVersion}} {{.Client.APIVersion}}']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe('1.44 1.44');
    const info = await cli(['info', '--format', '{{.OSType}} {{.Swarm.LocalNodeState}} {{.DockerRootDir}}']);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout.trim()).toBe(`linux inactive ${berthd.dataRoot}`);
  });

  it('pulls from the Debian registry, tags, lists and runs `docker run --rm busybox echo hi`', async () => {
    const ref = `${debianRegistry.host}/library/busybox:latest`;
    const pull = await cli(['pull', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain('Pulling from library/busybox');
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect(pull.stdout.trim().split('\n').at(-1)).toBe(ref);
    expect((await cli(['tag', ref, 'busybox:latest'])).code).toBe(0);
    const images = await cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stdout.split('\n')).toEqual(expect.arrayContaining(['busybox:latest', ref]));
    const run = await cli(['run', '--rm', 'busybox', 'echo', 'hi']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('hi\n');
    expect((await cli(['ps', '-aq'])).stdout.trim()).toBe('');
  });

  it('builds with the legacy builder (DOCKER_BUILDKIT=0 and the default without buildx)', async () => {
    const ctxDir = join(work, 'build');
    await mkdir(ctxDir, { recursive: true });
    await writeFile(join(ctxDir, 'Dockerfile'), 'FROM busybox\nARG WHO=nobody\nRUN echo "built for $WHO" > /built.txt && echo step-output\nCMD ["cat", "/built.txt"]\n');
    const legacy = await cli(['build', '-t', 'built:1', '--build-arg', 'WHO=compat', ctxDir], { extraEnv: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
    expect(legacy.code, legacy.stderr).toBe(0);
    expect(legacy.stdout).toContain('Step 2/4 : ARG WHO=nobody');
    expect(legacy.stdout).toContain('step-output');
    expect(legacy.stdout).toMatch(/Successfully built [0-9a-f]{12}/);
    expect(legacy.stdout).toContain('Successfully tagged built:1');
    expect((await cli(['run', '--rm', 'built:1'])).stdout).toBe('built for compat\n');
    const defaultEnv = { ...env };
    delete defaultEnv['DOCKER_BUILDKIT'];
    const quiet = await docker(defaultEnv, ['build', '-q', '-t', 'built:2', ctxDir], { timeoutMs: 120_000 });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const broken = join(work, 'broken');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'Dockerfile'), 'FROM busybox\nRUN exit 9\n');
    const failed = await cli(['build', broken], { extraEnv: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
    expect(failed.code).toBe(1);
  });

  it('gives the exit codes docker gives: own code, 125, 126, 127, 137', async () => {
    expect((await cli(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3'])).code).toBe(3);
    const missing = await cli(['run', '--rm', 'busybox', 'no-such-binary']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('executable file not found');
    expect((await cli(['run', '--rm', 'busybox', '/etc/passwd'])).code).toBe(126);
    const noImage = await cli(['run', '--rm', `${debianRegistry.host}/nothing/here:1`, 'true']);
    expect(noImage.code).toBe(125);
    const killed = await cli(['run', '-d', '--name', 'killme', 'busybox', 'sleep', '100']);
    expect(killed.code, killed.stderr).toBe(0);
    const waiter = cli(['wait', 'killme']);
    expect((await cli(['kill', 'killme'])).code).toBe(0);
    expect((await waiter).stdout.trim()).toBe('137');
    expect((await cli(['inspect', '-f', '{{.State.ExitCode}}', 'killme'])).stdout.trim()).toBe('137');
    expect((await cli(['rm', 'killme'])).code).toBe(0);
  });

  it('pipes stdin with -i (half-close) and allocates a TTY with -t under a pseudo-terminal', async () => {
    const piped = await cli(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toBe('line one\nline two\ndone\n');
    // `script` gives the CLI a terminal, as a user's shell would.
    const tty = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('script', ['-qec', "docker run -it --rm busybox sh -c 'tty; exit 4'", '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end();
    });
    expect(tty.code).toBe(4);
    expect(tty.out).toMatch(/\/dev\/pts\/\d+/);
    // The CLI sends its terminal's size (HostConfig.ConsoleSize): the pty has it from the start.
    const size = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('script', ['-qec', "stty rows 31 cols 101; docker run -it --rm busybox sh -c 'stty size'", '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end();
    });
    expect(size.code, size.out).toBe(0);
    expect(size.out).toContain('31 101');
  });

  it('runs -d with --name, -p, -v, -e, -w, -u and serves through the published port', async () => {
    const site = join(work, 'site');
    await mkdir(site, { recursive: true });
    await writeFile(join(site, 'index.html'), 'hello from berth\n');
    const run = await cli([
      'run', '-d', '--name', 'web', '-p', '127.0.0.1::8080', '-v', `${site}:/www:ro`, '-e', 'GREETING=hi there',
      '-w', '/www', '-u', '1000:1000', 'busybox', 'sh', '-c', 'echo "$GREETING from $(pwd) as $(id -u)"; exec httpd -f -p 8080 -h /www',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    const port = (await cli(['port', 'web', '8080/tcp'])).stdout.trim();
    expect(port).toMatch(/^127\.0\.0\.1:\d+$/);
    let body = '';
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch(`http://${port}/index.html`).then((r) => r.text(), () => '');
      if (body === '') await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe('hello from berth\n');
    const logs = await cli(['logs', 'web']);
    expect(logs.stdout).toBe('hi there from /www as 1000\n');
  });

  it('lists with ps filters and --format, and inspects', async () => {
    const byName = await cli(['ps', '--filter', 'name=web', '--format', '{{.Names}} {{.Image}} {{.Status}}']);
    expect(byName.stdout.trim()).toMatch(/^web busybox Up /);
    const exited = await cli(['ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}']);
    expect(exited.stdout).not.toContain('web');
    const bad = await cli(['ps', '--filter', 'bogus=1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid filter 'bogus'");
    const inspect = JSON.parse((await cli(['inspect', 'web'])).stdout) as Record<string, unknown>[];
    expect(inspect[0]).toMatchObject({ Name: '/web', State: { Status: 'running', Running: true }, Config: { Image: 'busybox', WorkingDir: '/www', User: '1000:1000' } });
    const missing = await cli(['inspect', 'no-such-thing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such object: no-such-thing');
  });

  it('follows logs with -f, -t and --tail', async () => {
    expect((await cli(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; done; sleep 1; echo late; sleep 100'])).code).toBe(0);
    const follow = spawn('docker', ['logs', '-f', '-t', '--tail', '2', 'ticker'], { env });
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 100 && !out.includes('late'); i++) await new Promise((r) => setTimeout(r, 100));
    follow.kill('SIGTERM');
    const lines = out.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['line2', 'line3', 'late']);
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z /);
    expect((await cli(['rm', '-f', 'ticker'])).code).toBe(0);
  });

  it('execs with and without -it and passes the exit code', async () => {
    const plain = await cli(['exec', 'web', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    expect(plain.code).toBe(5);
    expect(plain.stdout).toBe('out\n');
    expect(plain.stderr).toBe('err\n');
    const withStdin = await cli(['exec', '-i', 'web', 'cat'], { input: 'through exec\n' });
    expect(withStdin.stdout).toBe('through exec\n');
    const tty = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('script', ['-qec', "docker exec -it web sh -c 'tty; exit 2'", '/dev/null'], { env });
      let o = '';
      child.stdout.on('data', (d: Buffer) => (o += d.toString()));
      child.on('close', (code) => resolve({ code, out: o }));
    });
    expect(tty.code).toBe(2);
    expect(tty.out).toMatch(/\/dev\/pts\/\d+/);
  });

  it('copies files both ways with docker cp', async () => {
    const src = join(work, 'in.txt');
    await writeFile(src, 'copied in\n');
    const cpIn = await cli(['cp', src, 'web:/tmp/in.txt']);
    expect(cpIn.code, cpIn.stderr).toBe(0);
    expect((await cli(['exec', 'web', 'cat', '/tmp/in.txt'])).stdout).toBe('copied in\n');
    const out = join(work, 'hostname');
    const cpOut = await cli(['cp', 'web:/etc/hostname', out]);
    expect(cpOut.code, cpOut.stderr).toBe(0);
    const id = (await cli(['inspect', '-f', '{{.Id}}', 'web'])).stdout.trim();
    expect((await readFile(out, 'utf8')).trim()).toBe(id.slice(0, 12));
    const missing = await cli(['cp', 'web:/no/such/file', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Could not find the file /no/such/file in container');
  });

  it('stops, starts, restarts, pauses, unpauses and force-removes', async () => {
    expect((await cli(['pause', 'web'])).code).toBe(0);
    expect((await cli(['inspect', '-f', '{{.State.Status}}', 'web'])).stdout.trim()).toBe('paused');
    expect((await cli(['unpause', 'web'])).code).toBe(0);
    expect((await cli(['stop', '-t', '1', 'web'])).code).toBe(0);
    expect((await cli(['inspect', '-f', '{{.State.Status}} {{.State.Running}}', 'web'])).stdout.trim()).toBe('exited false');
    expect((await cli(['start', 'web'])).code).toBe(0);
    const pid1 = (await cli(['inspect', '-f', '{{.State.Pid}}', 'web'])).stdout.trim();
    expect((await cli(['restart', '-t', '1', 'web'])).code).toBe(0);
    const pid2 = (await cli(['inspect', '-f', '{{.State.Pid}}', 'web'])).stdout.trim();
    expect(pid2).not.toBe(pid1);
    const rmRunning = await cli(['rm', 'web']);
    expect(rmRunning.code).toBe(1);
    expect(rmRunning.stderr).toContain('container is running');
    expect((await cli(['rm', '-f', 'web'])).code).toBe(0);
    expect((await cli(['inspect', 'web'])).code).toBe(1);
  });

  it('keeps a container\'s logs across starts and restarts', async () => {
    const run = await cli(['run', '-d', '--name', 'twice', 'busybox', 'sh', '-c', 'echo run-$(cat /proc/sys/kernel/random/uuid | cut -c1-8)']);
    expect(run.code, run.stderr).toBe(0);
    const waitExited = async (): Promise<void> => {
      expect((await cli(['wait', 'twice'])).stdout.trim()).toBe('0');
    };
    await waitExited();
    const first = (await cli(['logs', 'twice'])).stdout;
    expect(first).toMatch(/^run-[0-9a-f]{8}\n$/);
    expect((await cli(['start', 'twice'])).code).toBe(0);
    await waitExited();
    expect((await cli(['restart', '-t', '1', 'twice'])).code).toBe(0);
    await waitExited();
    const all = (await cli(['logs', 'twice'])).stdout.trim().split('\n');
    expect(all).toHaveLength(3);
    expect(`${all[0]}\n`).toBe(first);
    expect(new Set(all).size).toBe(3);
    expect((await cli(['rm', 'twice'])).code).toBe(0);
  });

  it('applies --restart, --memory and --health-cmd', async () => {
    expect((await cli(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1'])).code).toBe(0);
    let count = '';
    for (let i = 0; i < 150; i++) {
      count = (await cli(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky'])).stdout.trim();
      if (count === '2 exited') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(count).toBe('2 exited');
    const mem = await cli(['run', '--rm', '--memory', '64m', 'busybox', 'sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes']);
    expect(mem.stdout.trim()).toBe('67108864');
    expect((await cli(['run', '-d', '--name', 'healthy', '--health-cmd', 'test -e /tmp', '--health-interval', '1s', 'busybox', 'sleep', '100'])).code).toBe(0);
    let health = '';
    for (let i = 0; i < 100 && health !== 'healthy'; i++) {
      health = (await cli(['inspect', '-f', '{{.State.Health.Status}}', 'healthy'])).stdout.trim();
      if (health !== 'healthy') await new Promise((r) => setTimeout(r, 200));
    }
    expect(health).toBe('healthy');
    expect((await cli(['ps', '--filter', 'health=healthy', '--format', '{{.Names}} {{.Status}}'])).stdout.trim()).toMatch(/^healthy Up .*\(healthy\)$/);
    expect((await cli(['rm', '-f', 'flaky', 'healthy'])).code).toBe(0);
  });

  it('maps host devices with --device and reports the host\'s cgroups in info', async () => {
    const run = await cli(['run', '--rm', '--device', '/dev/null:/dev/berth-null:rw', 'busybox', 'sh', '-c', 'stat -c %t:%T /dev/berth-null && echo x > /dev/berth-null && echo written']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('1:3\nwritten\n');
    const missing = await cli(['run', '--rm', '--device', '/dev/berth-no-such-device', 'busybox', 'true']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('/dev/berth-no-such-device');
    const version = (await cli(['info', '--format', '{{.CgroupVersion}}'])).stdout.trim();
    expect(version).toBe(existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1');
  });

  it('manages networks and volumes', async () => {
    expect((await cli(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n')).toEqual(expect.arrayContaining(['bridge', 'host', 'none']));
    expect((await cli(['network', 'create', 'compatnet'])).code).toBe(0);
    expect((await cli(['run', '-d', '--name', 'server', '--network', 'compatnet', 'busybox', 'sleep', '100'])).code).toBe(0);
    const ping = await cli(['run', '--rm', '--network', 'compatnet', 'busybox', 'ping', '-c', '1', '-W', '2', 'server']);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    expect((await cli(['rm', '-f', 'server'])).code).toBe(0);
    expect((await cli(['network', 'rm', 'compatnet'])).code).toBe(0);
    expect((await cli(['volume', 'create', 'compatvol'])).stdout.trim()).toBe('compatvol');
    // Docker's layout: <data-root>/volumes/<name>/_data.
    const mountpoint = await cli(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'compatvol']);
    expect(mountpoint.stdout.trim()).toBe(join(berthd.dataRoot, 'volumes/compatvol/_data'));
    expect((await cli(['run', '--rm', '-v', 'compatvol:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f'])).code).toBe(0);
    expect((await cli(['run', '--rm', '-v', 'compatvol:/data', 'busybox', 'cat', '/data/f'])).stdout).toBe('kept\n');
    expect((await cli(['volume', 'ls', '--format', '{{.Name}}'])).stdout).toContain('compatvol');
    expect((await cli(['volume', 'rm', 'compatvol'])).code).toBe(0);
  });

  it('streams events with filters', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    expect((await cli(['run', '--rm', '--name', 'evented', 'busybox', 'true'])).code).toBe(0);
    const events = await cli(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=evented', '--format', '{{.Action}}']);
    expect(events.stdout.trim().split('\n')).toEqual(expect.arrayContaining(['create', 'attach', 'start', 'die', 'destroy']));
  });

  it('logs in, pushes to and pulls from the berth registry with credentials', async () => {
    const bad = await cli(['login', '-u', COMPAT_USER, '--password-stdin', berthRegistry.host], { input: 'wrong' });
    expect(bad.code).toBe(1);
    const login = await cli(['login', '-u', COMPAT_USER, '--password-stdin', berthRegistry.host], { input: COMPAT_PASSWORD });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('Login Succeeded');
    const target = `${berthRegistry.host}/team/pushed:2`;
    expect((await cli(['tag', 'busybox', target])).code).toBe(0);
    const push = await cli(['push', target]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/2: digest: sha256:[0-9a-f]{64} size: \d+/);
    expect((await cli(['rmi', target])).stdout).toContain(`Untagged: ${target}`);
    const pull = await cli(['pull', target]);
    expect(pull.code, pull.stderr).toBe(0);
    // The tag was removed, the layer was not: docker says the layer exists and the tag is new.
    expect(pull.stdout).toContain('Already exists');
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${target}`);
  });

  it('shows system df and prunes', async () => {
    expect((await cli(['run', '--name', 'leftover', 'busybox', 'true'])).code).toBe(0);
    const df = await cli(['system', 'df', '--format', '{{.Type}} {{.TotalCount}}']);
    expect(df.code, df.stderr).toBe(0);
    expect(df.stdout).toMatch(/Images \d+/);
    expect(df.stdout).toContain('Containers 1');
    const prune = await cli(['container', 'prune', '-f']);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toContain('Deleted Containers:');
    expect((await cli(['ps', '-aq'])).stdout.trim()).toBe('');
    expect((await cli(['system', 'prune', '-f'])).code).toBe(0);
  });

  it('answers /_ping with the headers clients read, and moby version errors', async () => {
    const head = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const req = request({ socketPath: berthd.socket, path: '/_ping', method: 'HEAD' }, (res) => {
        res.resume();
        resolve(res.headers);
      });
      req.on('error', reject);
      req.end();
    });
    expect(head).toMatchObject({ 'api-version': '1.44', ostype: 'linux', 'docker-experimental': 'false', 'builder-version': '1', swarm: 'inactive' });
    const old = await cli(['version'], { extraEnv: { DOCKER_API_VERSION: '1.12' } });
    expect(old.stderr).toContain('client version 1.12 is too old. Minimum supported API version is 1.24');
  });
});
