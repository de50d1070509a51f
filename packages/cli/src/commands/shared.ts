import type { Filters, Port } from '@berth/client';
import type { Cli } from '../context.js';
import { ExitError, list } from '../context.js';

/** `-f a=b -f a=c -f dangling=true` → `{a:['b','c'], dangling:['true']}`. */
export function parseFilters(values: unknown): Filters | undefined {
  const out: Record<string, string[]> = {};
  for (const item of list(values)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ExitError(125, `invalid argument "${item}" for "-f, --filter" flag: bad format of filter (expected name=value)`);
    const key = item.slice(0, eq);
    (out[key] ??= []).push(item.slice(eq + 1));
  }
  return Object.keys(out).length ? out : undefined;
}

/** `42m`, `1h30m`, `10s` → seconds before now; RFC 3339 or unix seconds as they are. Returns unix seconds as text. */
export function parseTimestamp(value: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  const rel = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(value);
  if (rel && value !== '') {
    const ms = Number(rel[1] ?? 0) * 3_600_000 + Number(rel[2] ?? 0) * 60_000 + Number(rel[3] ?? 0) * 1000 + Number(rel[4] ?? 0);
    return String(Math.floor((now - ms) / 1000));
  }
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw new ExitError(125, `invalid value for timestamp: "${value}" (use RFC 3339, unix seconds, or a duration like 42m)`);
  return String(Math.floor(parsed / 1000));
}

/** docker's Ellipsis: cut to `max` characters ending in `…`. */
export function ellipsis(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return `${chars.slice(0, max - 1).join('')}…`;
}

/** `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp` */
export function formatPorts(ports: Port[] | null | undefined): string {
  if (!ports) return '';
  const v6 = (ip: string | undefined): number => (ip?.includes(':') ? 1 : 0);
  const sorted = [...ports].sort((a, b) => a.PrivatePort - b.PrivatePort || v6(a.IP) - v6(b.IP) || (a.IP ?? '').localeCompare(b.IP ?? ''));
  return sorted
    .map((p) => {
      if (p.PublicPort === undefined || p.PublicPort === 0) return `${p.PrivatePort}/${p.Type}`;
      const ip = p.IP && p.IP.includes(':') ? `[${p.IP}]` : (p.IP ?? '0.0.0.0');
      return `${ip}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`;
    })
    .filter((v, i, a) => a.indexOf(v) === i)
    .join(', ');
}

/** Asks y/N on the terminal (reading a line from stdin). */
export async function confirm(cli: Cli, question: string): Promise<boolean> {
  cli.err(`${question} [y/N] `);
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: cli.stdin });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/**
 * Runs `fn` for every argument like docker does for rm/stop/kill…: prints what `fn` returns
 * (or the argument), reports each failure as `Error response from daemon: …` and exits 1 at the end
 * if any failed.
 */
export async function forEachArg(cli: Cli, args: string[], fn: (arg: string) => Promise<string | void>): Promise<number> {
  let failed = false;
  for (const arg of args) {
    try {
      const printed = await fn(arg);
      cli.out(`${printed ?? arg}\n`);
    } catch (error) {
      failed = true;
      const { describeError } = await import('../errors.js');
      cli.err(`${describeError(error, cli.host).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Reads `KEY=value` lines of an env file (comments and blank lines skipped; bare KEY takes the host's value). */
export function parseEnvFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((l) => (l.includes('=') ? [l] : process.env[l] !== undefined ? [`${l}=${process.env[l]}`] : []));
}
