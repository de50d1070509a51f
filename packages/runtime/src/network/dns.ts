import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { dnsServerMain } from './dns-server.js';
import type { DnsServerConfig } from './dns-server.js';
import { NetworkCommandError } from './errors.js';

/**
 * Name resolution on user-defined networks: a small DNS server of our own (dns-server.ts), run
 * as a detached process of its own, one per engine.
 *
 * Why its own process: containers must keep resolving names while berthd restarts or after it
 * crashed — a server inside the daemon would stop with it. The process outlives berthd; the
 * next berthd finds it through its pid file and `reconcile()` starts it again if it is gone.
 *
 * Why not Debian's aardvark-dns (1.4, Podman's server, tried first): it re-creates every socket
 * on each SIGHUP reload, so queries of all containers are lost whenever any container starts or
 * stops (containers/aardvark-dns#389, fixed only in later releases). Ours keeps the sockets of
 * unchanged networks across reloads.
 *
 * The engine writes one JSON file per network into `<runDir>/dns/` (atomically) and signals
 * SIGHUP; the server answers A/AAAA from the records of the network a query arrives on, only to
 * clients inside that network, and relays other names to the host's resolvers.
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
  subnets: string[];
  internal: boolean;
  records: DnsRecord[];
}

const PID_FILE = 'server.pid';

export class DnsService {
  constructor(
    /** The node binary that runs the server. */
    readonly node: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** The pid of our running server, checked against /proc so a recycled pid is not signalled. */
  async pid(): Promise<number | undefined> {
    const text = await readFile(join(this.dir, PID_FILE), 'utf8').catch(() => undefined);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.split('\0').includes(this.dir) ? pid : undefined;
  }

  /**
   * Writes the configuration of every network (removing files of networks not listed) and makes
   * the server match it: started, reloaded (SIGHUP) or stopped when no network needs it.
   * Returns true when a server process was started.
   */
  async update(networks: DnsNetwork[]): Promise<boolean> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const wanted = new Set(networks.map((n) => `${n.id}.json`));
    for (const f of await readdir(this.dir)) {
      if (f.endsWith('.json') && !wanted.has(f)) await unlink(join(this.dir, f)).catch(() => undefined);
    }
    for (const n of networks) {
      const cfg: DnsServerConfig = {
        gateways: n.gateways,
        subnets: n.subnets,
        internal: n.internal,
        records: n.records.map((r) => ({ ipv4: r.ipv4, ipv6: r.ipv6, names: r.names })),
      };
      await writeFileAtomic(join(this.dir, `${n.id}.json`), JSON.stringify(cfg), 0o644, false);
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

  private async start(): Promise<void> {
    await unlink(join(this.dir, PID_FILE)).catch(() => undefined);
    // Bundlers (esbuild under tsx/vitest, tsup) may wrap functions in a `__name(fn, "name")`
    // helper that a plain `node -e` process does not define: define it as the identity.
    const source = `var __name = (f) => f;\n(${dnsServerMain.toString()})(require, process.argv[1], ${this.port})`;
    const child = spawn(this.node, ['-e', source, this.dir], { stdio: 'ignore', detached: true });
    child.unref();
    const failed = new Promise<never>((_, reject) => {
      child.on('error', (e) => reject(new NetworkCommandError('dns server', e.message, { cause: e })));
      child.on('exit', (code) => reject(new NetworkCommandError('dns server', `exited with ${code} on start`)));
    });
    failed.catch(() => undefined);
    // Ready once it wrote its pid file (after binding its sockets).
    for (let i = 0; i < 250; i++) {
      if ((await this.pid()) === child.pid) return;
      await Promise.race([new Promise((r) => setTimeout(r, 20)), failed]);
    }
    throw new NetworkCommandError('dns server', `did not start within 5 s (config ${this.dir})`);
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
    await new Promise((r) => setTimeout(r, 10));
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
