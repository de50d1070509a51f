/**
 * Starts berthd for the compatibility suite as a child process, from source (tsx resolves the
 * @berth/* packages through the root tsconfig's paths), on a temporary socket, data root, exec
 * root, bridge, nftables table and cgroup parent, so it never touches another daemon's state.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('../../..', import.meta.url).pathname;
const tsx = join(root, 'packages/daemon/node_modules/.bin/tsx');
const bin = join(root, 'packages/daemon/src/bin.ts');

export interface BerthdInstance {
  dir: string;
  socket: string;
  dataRoot: string;
  execRoot: string;
  /** DOCKER_HOST plus a private DOCKER_CONFIG for the docker CLI. */
  env: NodeJS.ProcessEnv;
  readonly pid: number;
  /** Everything berthd wrote on stderr so far. */
  log(): Promise<string>;
  /** SIGKILL, no cleanup (containers keep running). */
  kill(): Promise<void>;
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Starts berthd again on the same socket and state. */
  restart(): Promise<void>;
  /** Removes every container berthd knows, then stops it and deletes its state. */
  destroy(): Promise<void>;
}

export async function startBerthd(extraArgs: string[] = []): Promise<BerthdInstance> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-compat-'));
  const tag = randomBytes(3).toString('hex');
  const socket = join(dir, 'berth.sock');
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const logFile = join(dir, 'berthd.log');
  // A /24 in 10.200-254.x.0 that this run alone uses (other engineers' tests share the host).
  const subnet = `10.${200 + (Number.parseInt(tag.slice(0, 2), 16) % 54)}.${Number.parseInt(tag.slice(2, 4), 16)}.1/24`;
  const args = [
    '--tsconfig', join(root, 'tsconfig.json'), bin,
    '-H', `unix://${socket}`,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'berthd.pid'),
    '--bridge', `bc${tag}`,
    '--bip', subnet,
    '--bridge-prefix', `bc${tag.slice(0, 2)}-`,
    '--firewall-table', `berthc${tag}`,
    '--cgroup-parent', `berth-compat-${tag}`,
    '--log-level', 'debug',
    ...extraArgs,
  ];
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const { open } = await import('node:fs/promises');
    const out = await open(logFile, 'a');
    child = spawn(tsx, args, { cwd: root, stdio: ['ignore', out.fd, out.fd], detached: false });
    await out.close();
    const started = Date.now();
    while (Date.now() - started < 90_000) {
      if (child.exitCode !== null) throw new Error(`berthd exited with ${child.exitCode}:\n${await readFile(logFile, 'utf8')}`);
      // Ready when the API answers (a SIGKILLed daemon leaves its socket file behind).
      if (existsSync(socket) && (await ping(socket))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    throw new Error(`berthd did not start in 90 s:\n${await readFile(logFile, 'utf8')}`);
  };
  try {
    await launch();
  } catch (error) {
    // Leave nothing behind: the daemon (tsx's child) by its pidfile, then the state.
    const pid = Number.parseInt(await readFile(join(dir, 'berthd.pid'), 'utf8').catch(() => '0'), 10);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await run('ip', ['link', 'del', `bc${tag}`]).catch(() => undefined);
    await run('nft', ['delete', 'table', 'inet', `berthc${tag}`]).catch(() => undefined);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: join(dir, 'docker-config'),
    DOCKER_CLI_HINTS: 'false',
  };
  delete env['DOCKER_API_VERSION'];
  const waitExit = (c: ChildProcess): Promise<number | null> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.exitCode) : new Promise((r) => c.once('exit', (code) => r(code)));
  const instance: BerthdInstance = {
    dir,
    socket,
    dataRoot,
    execRoot,
    env,
    get pid() {
      return child?.pid ?? 0;
    },
    log: () => readFile(logFile, 'utf8'),
    async kill() {
      if (!child) return;
      const c = child;
      const exited = waitExit(c);
      c.kill('SIGKILL');
      // tsx runs berthd as its child: kill the real daemon too, by the pid it wrote.
      const pid = Number.parseInt(await readFile(join(dir, 'berthd.pid'), 'utf8').catch(() => '0'), 10);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 50));
      }
      await exited;
      child = undefined;
    },
    async stop() {
      if (!child) return null;
      const c = child;
      const exited = waitExit(c);
      const pid = Number.parseInt(await readFile(join(dir, 'berthd.pid'), 'utf8').catch(() => '0'), 10);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      } else {
        c.kill('SIGTERM');
      }
      const code = await exited;
      child = undefined;
      return code;
    },
    async restart() {
      await launch();
    },
    async destroy() {
      if (child) {
        const ids = await run('docker', ['ps', '-aq'], { env }).then((r) => r.stdout.split('\n').filter(Boolean), () => []);
        if (ids.length > 0) await run('docker', ['rm', '-f', ...ids], { env }).catch(() => undefined);
        const nets = await run('docker', ['network', 'ls', '-q', '--filter', 'type=custom'], { env }).then((r) => r.stdout.split('\n').filter(Boolean), () => []);
        if (nets.length > 0) await run('docker', ['network', 'rm', ...nets], { env }).catch(() => undefined);
        await instance.stop();
      }
      // The default bridge and the firewall table belong to this run only.
      await run('ip', ['link', 'del', `bc${tag}`]).catch(() => undefined);
      await run('nft', ['delete', 'table', 'inet', `berthc${tag}`]).catch(() => undefined);
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      // The cgroup parent of this run's containers (empty once they are gone), in every hierarchy.
      await run('sh', ['-c', `for c in /sys/fs/cgroup/berth-compat-${tag} /sys/fs/cgroup/*/berth-compat-${tag}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \\; ; done; true`]).catch(() => undefined);
    },
  };
  return instance;
}

/** Unmounts everything mounted under `dir` (netns bind mounts and the like), deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const target of mounts) {
    await run('umount', [target]).catch(() => run('umount', ['-l', target]).catch(() => undefined));
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Runs the docker CLI; never throws on a non-zero exit. */
export async function docker(
  env: NodeJS.ProcessEnv,
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number; extraEnv?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { env: { ...env, ...options.extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + 9 : -1), stdout, stderr });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
