import { spawn } from 'node:child_process';
import { NetworkCommandError } from './errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs a host binary (never one from a container's filesystem), feeding `input` on stdin.
 * Resolves with its output when it exits 0; throws `NetworkCommandError` naming the command and
 * carrying stderr otherwise (unless `allowFailure`).
 */
export function run(
  argv: string[],
  options: { input?: string; allowFailure?: boolean } = {},
): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new TypeError('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => reject(new NetworkCommandError(argv.join(' '), e.message, { cause: e })));
    child.on('close', (code) => {
      const result = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? -1,
      };
      if (result.code !== 0 && options.allowFailure !== true) {
        const shown = argv.slice(0, 3).join(' ').split('\n')[0] ?? '';
        reject(new NetworkCommandError(shown, result.stderr || result.stdout));
      } else {
        resolve(result);
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
