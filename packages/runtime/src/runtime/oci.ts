import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
