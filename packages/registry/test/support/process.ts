import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const TSX = join(here, '../../node_modules/.bin/tsx');
const TSCONFIG = join(here, '../../../../tsconfig.json');
const ENTRY = join(here, 'serve-process.ts');

export interface RegistryProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Pid of the node process serving (tsx's child), for CPU accounting; the tsx pid if none. */
  serverPid: number;
  output(): string;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `serve-process.ts` (a `berth registry serve` equivalent) in a child process. */
export async function startRegistryProcess(options: { root: string; addr?: string; htpasswd?: string; quiet?: boolean; fsync?: boolean }): Promise<RegistryProcess> {
  const args = ['--tsconfig', TSCONFIG, ENTRY, '--root', options.root, '--addr', options.addr ?? '127.0.0.1:0'];
  if (options.htpasswd) args.push('--htpasswd', options.htpasswd);
  if (options.quiet !== false) args.push('--quiet');
  if (options.fsync === false) args.push('--no-fsync');
  const child = spawn(TSX, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`registry process did not start: ${out}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registry process exited with ${code}: ${out}`));
    });
  });
  const port = Number(new URL(url).port);
  return {
    child,
    pid: child.pid!,
    url,
    port,
    host: `127.0.0.1:${port}`,
    serverPid: childPids(child.pid!)[0] ?? child.pid!,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (exited) return;
      // tsx runs node as a child; signal the whole tree by sending to tsx, which forwards
      // SIGTERM/SIGINT, but for SIGKILL the grandchild must be killed directly.
      if (signal === 'SIGKILL') {
        for (const pid of childPids(child.pid!)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      try {
        process.kill(child.pid!, signal);
      } catch {
        // already gone
      }
      await exit;
    },
  };
}


/** CPU time (user + system, seconds) a process has used so far, all threads, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Direct children of a pid, from /proc (Linux). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // raced with exit
    }
  }
  return out;
}
