import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('../../', import.meta.url));
export const BERTH_BIN = join(pkg, 'dist/bin.cjs');

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function fresh(): boolean {
  const sources = Math.max(newest(join(pkg, 'src')), newest(join(pkg, '../client/src')));
  return existsSync(BERTH_BIN) && statSync(BERTH_BIN).mtimeMs >= sources;
}

/**
 * Builds the bundled `berth` (tsup, client then cli) when dist is missing or older than the sources of
 * cli and client. Test files run in parallel: a lock directory makes one of them build while the
 * others wait, so no test runs the bin while tsup is rewriting dist.
 */
export function ensureBuiltCli(): void {
  if (fresh()) return;
  if (existsSync(BERTH_BIN)) {
    // Rebuilding here would pull dist from under test files running in parallel; `pnpm build`
    // (which scripts/test.sh runs first) is what refreshes it.
    console.warn(`${BERTH_BIN} is older than the sources; testing it as built (run pnpm build to refresh)`);
    return;
  }
  const lock = join(pkg, 'node_modules', '.berth-cli-build.lock');
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`waited 5 minutes for ${lock}; remove it if no build is running`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    if (fresh()) return;
    // The bin bundles the client from its dist, so the client is built first.
    for (const dir of [join(pkg, '../client'), pkg]) {
      const r = spawnSync('npx', ['tsup'], { cwd: dir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`building ${dir} failed:\n${r.stdout}\n${r.stderr}`);
    }
  } finally {
    rmdirSync(lock);
  }
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with an optional stdin, capturing everything; never rejects on a non-zero exit. */
export function runCommand(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
