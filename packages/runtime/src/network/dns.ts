import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdir, readFile, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { NetworkCommandError } from './errors.js';

/**
 * Name resolution on user-defined networks through Debian's `aardvark-dns` (Podman's server).
 *
 * Why aardvark-dns and not a server in berthd: it runs as its own daemonised process, so name
 * resolution keeps working while berthd restarts or after it crashed — a server inside the daemon
 * would stop with it. It answers A/AAAA for the containers of the network the query arrives on
 * (so names do not leak across networks), forwards everything else to the host's resolvers from
 * /etc/resolv.conf, and reloads its configuration on SIGHUP. The engine only writes one file per
 * network into `<runDir>/dns/` (atomically) and signals it; `reconcile()` restarts it if it is gone.
 * File format (aardvark-dns 1.4): first line the listening gateway IPs, comma-separated; then one
 * line per container: `<id> <ipv4s> <ipv6s> <names>` (comma-separated lists).
 */

export interface DnsRecord {
  id: string;
  ipv4: string[];
  ipv6: string[];
  names: string[];
}

export interface DnsNetwork {
  id: string;
  gateways: string[];
  records: DnsRecord[];
}

const PID_FILE = 'aardvark.pid';

export class DnsService {
  constructor(
    readonly binary: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** The pid of our running server, checked against /proc so a recycled pid is not signalled. */
  async pid(): Promise<number | undefined> {
    const text = await readFile(join(this.dir, PID_FILE), 'utf8').catch(() => undefined);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const args = cmdline.split('\0');
    return args.some((a) => a.endsWith('aardvark-dns')) && args.includes(this.dir) ? pid : undefined;
  }

  /**
   * Writes the configuration of every network (removing files of networks not listed) and makes
   * the server match it: started, reloaded (SIGHUP) or stopped when no network needs it.
   * Returns true when a server process was started.
   */
  async update(networks: DnsNetwork[]): Promise<boolean> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const wanted = new Set(networks.map((n) => n.id));
    for (const f of await readdir(this.dir)) {
      if (f !== PID_FILE && !f.startsWith('.') && !wanted.has(f)) await unlink(join(this.dir, f)).catch(() => undefined);
    }
    for (const n of networks) {
      const lines = [n.gateways.join(',')];
      for (const r of n.records) lines.push(`${r.id} ${r.ipv4.join(',')} ${r.ipv6.join(',')} ${r.names.join(',')}`);
      await writeFileAtomic(join(this.dir, n.id), lines.join('\n') + '\n', 0o644);
    }
    const pid = await this.pid();
    if (networks.length === 0) {
      if (pid !== undefined) process.kill(pid, 'SIGTERM');
      return false;
    }
    if (pid !== undefined) {
      process.kill(pid, 'SIGHUP');
      return false;
    }
    await this.start();
    return true;
  }

  private start(): Promise<void> {
    return new Promise((resolve, reject) => {
      // It daemonises itself (the first process exits once the server runs) and logs to syslog.
      const child = spawn(this.binary, ['--config', this.dir, '-p', String(this.port), 'run'], {
        stdio: 'ignore',
        detached: true,
      });
      child.on('error', (e) => reject(new NetworkCommandError(this.binary, e.message, { cause: e })));
      child.on('exit', (code) => {
        if (code === 0) resolve();
        else reject(new NetworkCommandError(`${this.binary} --config ${this.dir} run`, `exited with ${code}`));
      });
    });
  }

  async stop(): Promise<void> {
    const pid = await this.pid();
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
  }
}

/**
 * Asks `server` for the A record of `name` until it answers with an address or `timeoutMs`
 * passes. Used after a reload so a container never starts before its name resolves.
 */
export async function waitForName(server: string, port: number, name: string, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await queryA(server, port, name, 200)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function queryA(server: string, port: number, name: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 0xffff);
    const labels = name.split('.').filter(Boolean);
    const qname = Buffer.concat([
      ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
      Buffer.from([0]),
    ]);
    const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    const packet = Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1])]);
    const sock = createSocket(server.includes(':') ? 'udp6' : 'udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('error', () => done(false));
    sock.on('message', (msg) => {
      if (msg.length >= 12 && msg.readUInt16BE(0) === id) done(msg.readUInt16BE(6) > 0);
    });
    sock.send(packet, port, server);
  });
}
