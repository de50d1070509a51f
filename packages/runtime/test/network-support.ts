import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { writeFile } from 'node:fs/promises';

/** Helpers shared by the network and volume integration tests (real namespaces, real busybox). */

export const uniq = (): string => randomBytes(3).toString('hex');

/** A random private /24 unlikely to collide with other tests running on this machine. */
export function randomSubnet(): { subnet: string; gateway: string; prefix: string } {
  const a = 100 + Math.floor(Math.random() * 150);
  const b = Math.floor(Math.random() * 256);
  return { subnet: `10.${a}.${b}.0/24`, gateway: `10.${a}.${b}.1`, prefix: `10.${a}.${b}.` };
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function exec(argv: string[], timeoutMs = 20_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * Runs busybox inside a network namespace, as a process of a container on it would: with the
 * container's /etc/resolv.conf (bind-mounted in a private mount namespace) when given. Killed
 * after `timeoutMs` (busybox 1.35's `wget -T` crashes, so timeouts are enforced from outside).
 */
export async function inNetns(netns: string, args: string[], resolvConf?: string, timeoutMs = 10_000): Promise<ExecResult> {
  if (resolvConf === undefined) return exec(['nsenter', `--net=${netns}`, '/bin/busybox', ...args], timeoutMs);
  const file = `/tmp/berth-test-resolv-${uniq()}`;
  await writeFile(file, resolvConf);
  try {
    return await exec([
      'nsenter', `--net=${netns}`, 'unshare', '--mount', '--propagation', 'private', '/bin/busybox', 'sh', '-c',
      `mount --bind ${file} /etc/resolv.conf && exec /bin/busybox "$@"`, 'sh', ...args,
    ], timeoutMs);
  } finally {
    await exec(['rm', '-f', file]);
  }
}

/** A busybox httpd serving `dir` on `port` inside the namespace; resolves once it answers. */
export async function startHttpd(netns: string, dir: string, port = 80): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${netns}`, '/bin/busybox', 'httpd', '-f', '-p', String(port), '-h', dir], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    const r = await exec(['nsenter', `--net=${netns}`, '/bin/busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`], 2000);
    if (r.code === 0) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`httpd in ${netns} did not come up`);
}

export function stopProcess(child: ChildProcess | undefined): void {
  if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
}

/** The host's own first non-loopback IPv4 address (eth0 here). */
export function hostAddress(exclude: (ifname: string) => boolean): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (exclude(name)) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no host IPv4 address');
}

export async function httpGet(url: string, timeoutMs = 5000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return res.text();
}

/** Links whose name starts with `prefix` (to prove cleanup). */
export async function linksWithPrefix(prefix: string): Promise<string[]> {
  const r = await exec(['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

/** Best-effort removal of everything a test manager could have left (runs even after failures). */
export async function forceCleanup(opts: { table: string; linkPrefixes: string[]; runDir: string }): Promise<void> {
  await exec(['nft', 'delete', 'table', 'inet', opts.table]);
  const r = await exec(['ip', '-j', 'link', 'show']);
  const links = JSON.parse(r.stdout) as { ifname: string; master?: string }[];
  const ours = (n: string | undefined): boolean => n !== undefined && opts.linkPrefixes.some((p) => n.startsWith(p));
  for (const l of links) if (ours(l.master)) await exec(['ip', 'link', 'del', l.ifname]);
  for (const l of links) if (ours(l.ifname)) await exec(['ip', 'link', 'del', l.ifname]);
  const pid = await exec(['cat', `${opts.runDir}/dns/server.pid`]);
  if (pid.code === 0 && /^\d+$/.test(pid.stdout.trim())) {
    const cmd = await exec(['cat', `/proc/${pid.stdout.trim()}/cmdline`]);
    if (cmd.stdout.includes(opts.runDir)) process.kill(Number(pid.stdout.trim()), 'SIGTERM');
  }
  const ns = await exec(['sh', '-c', `ls ${opts.runDir}/netns 2>/dev/null`]);
  for (const f of ns.stdout.split('\n').filter(Boolean)) await exec(['umount', `${opts.runDir}/netns/${f}`]);
  await exec(['umount', `${opts.runDir}/netns`]);
}
