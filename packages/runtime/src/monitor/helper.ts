import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeUnavailableError } from '../errors.js';
import { runCommand } from '../runtime/process.js';

/** Where native/berth-io.c is, from src/monitor (tests) or dist (the built package). */
function helperSource(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../../native/berth-io.c', '../native/berth-io.c']) {
    const p = path.resolve(here, rel);
    if (existsSync(p)) return p;
  }
  throw new RuntimeUnavailableError(`berth-io.c not found next to ${here}`);
}

const built = new Map<string, Promise<string>>();

/**
 * Compiles the native helper (attach to conmon's SOCK_SEQPACKET socket; receive a pty master for
 * TTY exec) with the host's C compiler into `<binDir>/berth-io-<hash>`, once per source version.
 * Needs gcc (or cc) and the libc headers (Debian: gcc, libc6-dev).
 */
export function ensureHelper(binDir: string): Promise<string> {
  let p = built.get(binDir);
  if (!p) {
    p = build(binDir);
    built.set(binDir, p);
    p.catch(() => built.delete(binDir));
  }
  return p;
}

async function build(binDir: string): Promise<string> {
  const src = helperSource();
  const hash = createHash('sha256').update(await readFile(src)).digest('hex').slice(0, 16);
  const out = path.join(binDir, `berth-io-${hash}`);
  if (existsSync(out)) return out;
  await mkdir(binDir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.${process.pid}.tmp`;
  const cc = existsSync('/usr/bin/gcc') ? '/usr/bin/gcc' : 'cc';
  const r = await runCommand(cc, ['-O2', '-static-pie', '-o', tmp, src], { timeoutMs: 120_000 }).then((res) =>
    res.code === 0 ? res : runCommand(cc, ['-O2', '-o', tmp, src], { timeoutMs: 120_000 }),
  ).catch((cause: unknown) => {
    throw new RuntimeUnavailableError(`cannot compile the berth-io helper: ${cc} is missing`, { cause });
  });
  if (r.code !== 0) throw new RuntimeUnavailableError(`cannot compile the berth-io helper with ${cc}: ${r.stderr.trim()}`);
  await chmod(tmp, 0o755);
  await rename(tmp, out);
  return out;
}
