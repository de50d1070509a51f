import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('../../', import.meta.url));
export const BERTH_BIN = join(pkg, 'dist/bin.js');

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds the bundled `berth` (tsup, client then cli) when dist is missing or older than the sources of cli and client. */
export function ensureBuiltCli(): void {
  const sources = Math.max(newest(join(pkg, 'src')), newest(join(pkg, '../client/src')));
  if (existsSync(BERTH_BIN) && statSync(BERTH_BIN).mtimeMs >= sources) return;
  // The bin bundles the client from its dist, so the client is built first.
  for (const dir of [join(pkg, '../client'), pkg]) {
    const r = spawnSync('npx', ['tsup'], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building ${dir} failed:\n${r.stdout}\n${r.stderr}`);
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
