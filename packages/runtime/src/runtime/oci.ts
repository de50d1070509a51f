import { constants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { detectCgroups, removeCgroup } from '../cgroups/cgroups.js';
import { RuntimeCommandError, RuntimeUnavailableError } from '../errors.js';
import { runCommand, runtimeMessage } from './process.js';
import type { OciRuntimeInfo } from './types.js';

export type OciStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

function which(name: string): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

async function describe(binary: string): Promise<{ version: string; specVersion: string }> {
  const r = await runCommand(binary, ['--version'], { timeoutMs: 10_000 });
  const version = /version\s+(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
  const specVersion = /spec:\s*(\S+)/.exec(r.stdout)?.[1] ?? '1.0.0';
  return { version, specVersion };
}

/**
 * Runs a throwaway container (a bind-mounted static tini printing its version) with `binary`; the
 * runtime's error when it cannot (crun 1.8 on a hybrid cgroup host: "cgroups in hybrid mode not
 * supported"), or undefined when it works.
 */
async function probe(binary: string, workDir: string, specVersion: string): Promise<string | undefined> {
  const init = ['/usr/bin/tini-static', '/usr/bin/catatonit'].find((p) => existsSync(p));
  if (!init) return undefined; // nothing static to run: assume it works, a real create will tell
  await mkdir(workDir, { recursive: true });
  const dir = await mkdtemp(path.join(workDir, 'probe-'));
  const id = `berth-probe-${path.basename(dir).slice(6)}`;
  const root = path.join(dir, 'state');
  try {
    await mkdir(path.join(dir, 'rootfs'), { recursive: true });
    const config = {
      ociVersion: specVersion,
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/init', '--version'], env: ['PATH=/'], cwd: '/' },
      root: { path: 'rootfs', readonly: true },
      mounts: [
        { destination: '/init', type: 'bind', source: init, options: ['rbind', 'ro'] },
        { destination: '/proc', type: 'proc', source: 'proc' },
      ],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }], cgroupsPath: `/berth-probe/${id}` },
    };
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    const r = await runCommand(binary, ['--root', root, 'run', '--bundle', dir, id], { timeoutMs: 30_000 });
    await runCommand(binary, ['--root', root, 'delete', '--force', id]).catch(() => undefined);
    const cgroups = detectCgroups();
    await removeCgroup(cgroups, `/berth-probe/${id}`);
    await removeCgroup(cgroups, '/berth-probe', { recursive: false });
    if (r.code === 0) return undefined;
    return runtimeMessage(r.stderr || r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * runc's start handshake: a blocking open of the fifo (it returns once init has opened the write
 * end), then read to EOF (init writes one byte and closes its end by exec'ing the user's process).
 * While the open waits, init is checked every 50 ms; when it is gone, a non-blocking writer of our
 * own ends the wait, and the read then finds nothing — "already dead", as runc reports it.
 */
async function readExecFifo(fifo: string, isAlive: () => Promise<boolean>): Promise<Buffer> {
  let timer: NodeJS.Timeout | undefined;
  let opened = false;
  const check = (): void => {
    timer = setTimeout(() => {
      void isAlive()
        .catch(() => false)
        .then(async (alive) => {
          if (opened) return;
          if (alive) return check();
          const unblock = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
          await unblock?.close();
        })
        .catch(() => undefined);
    }, 50);
  };
  check();
  let fh;
  try {
    fh = await open(fifo, constants.O_RDONLY);
  } finally {
    opened = true;
    clearTimeout(timer);
  }
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(64), 0, 64, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

const detected = new Map<string, Promise<OciRuntimeInfo>>();

/**
 * Chooses the OCI runtime: `preferred` when given (refused with the runtime's words if it does not
 * work here), else crun when it works, else runc. Results are cached per process.
 */
export function detectOciRuntime(options: { preferred?: string; workDir: string }): Promise<OciRuntimeInfo> {
  const key = options.preferred ?? '';
  let p = detected.get(key);
  if (!p) {
    p = detect(options.preferred, options.workDir);
    detected.set(key, p);
    p.catch(() => detected.delete(key));
  }
  return p;
}

async function detect(preferred: string | undefined, workDir: string): Promise<OciRuntimeInfo> {
  const candidates = preferred ? [preferred] : ['crun', 'runc'];
  const refused: string[] = [];
  for (const name of candidates) {
    const bin = which(name);
    if (!bin) {
      refused.push(`${name}: not installed`);
      continue;
    }
    const { version, specVersion } = await describe(bin);
    const error = await probe(bin, workDir, specVersion);
    if (error === undefined) {
      const why = refused.length > 0 ? ` (${refused.join('; ')})` : '';
      return {
        name: path.basename(bin),
        path: bin,
        version,
        specVersion,
        reason: preferred ? `${name} was asked for and runs containers here` : `${path.basename(bin)} ${version} runs containers here${why}`,
      };
    }
    refused.push(`${name} ${version} refused: ${error}`);
  }
  throw new RuntimeUnavailableError(`no OCI runtime works on this host: ${refused.join('; ')}`);
}

/** One OCI runtime binary with its own state root (`--root`). */
export class OciRuntimeBinary {
  constructor(
    readonly info: OciRuntimeInfo,
    readonly root: string,
  ) {}

  async run(args: string[], what: string, input?: string): Promise<string> {
    const r = await runCommand(this.info.path, ['--root', this.root, ...args], { input, timeoutMs: 60_000 });
    if (r.code !== 0) throw new RuntimeCommandError(`${this.info.name} ${what} failed: ${runtimeMessage(r.stderr || r.stdout)}`);
    return r.stdout;
  }

  /**
   * Starts a created container. For runc this is what `runc start` itself does — open the
   * container's `exec.fifo` for reading (runc's init blocks opening its write end until then),
   * read init's byte, remove the fifo — without starting another ~30 ms Go process. `isAlive`
   * tells whether init still exists (runc's init dies with the container, leaving the fifo behind).
   * Other runtimes, or a runc whose state lacks the fifo, get `<runtime> start`.
   */
  async start(id: string, isAlive: () => Promise<boolean>): Promise<void> {
    const fifo = path.join(this.root, id, 'exec.fifo');
    if (this.info.name !== 'runc' || !existsSync(fifo)) {
      await this.run(['start', id], `start ${id}`);
      return;
    }
    let data: Buffer;
    try {
      data = await readExecFifo(fifo, isAlive);
    } catch (cause) {
      throw new RuntimeCommandError(`${this.info.name} start ${id} failed: ${(cause as Error).message}`, { cause });
    }
    if (data.length === 0) throw new RuntimeCommandError(`${this.info.name} start ${id} failed: container process is already dead`);
    await rm(fifo, { force: true });
  }

  /** The runtime's view, or undefined when it does not know the container. */
  async state(id: string): Promise<{ status: OciStatus; pid: number } | undefined> {
    const r = await runCommand(this.info.path, ['--root', this.root, 'state', id], { timeoutMs: 30_000 });
    if (r.code !== 0) return undefined;
    try {
      const s = JSON.parse(r.stdout) as { status: OciStatus; pid?: number };
      return { status: s.status, pid: s.pid ?? 0 };
    } catch {
      return undefined;
    }
  }

  async list(): Promise<string[]> {
    const r = await runCommand(this.info.path, ['--root', this.root, 'list', '--format', 'json'], { timeoutMs: 30_000 });
    if (r.code !== 0) return [];
    try {
      return ((JSON.parse(r.stdout || '[]') as { id: string }[] | null) ?? []).map((c) => c.id);
    } catch {
      return [];
    }
  }
}
