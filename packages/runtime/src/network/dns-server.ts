/**
 * The DNS server of user-defined networks, run as a process of its own (see dns.ts for why).
 *
 * `dnsServerMain` is self-contained on purpose: `DnsService` starts it as
 * `node -e "(<its source>)(require, <configDir>, <port>)"`, so it may use nothing but its
 * parameters and `require` of Node's built-ins. Keep it that way (no imports, no helpers outside).
 *
 * Per network, one UDP and one TCP socket on each gateway address. A query is answered from the
 * records of the network it arrived on, and only when it comes from inside that network's
 * subnets — a container of another network that sends its query to this gateway learns nothing.
 * Everything else is relayed to the host's resolvers (not for internal networks).
 * On SIGHUP the configuration is re-read and sockets are added or closed by difference: sockets
 * of unchanged networks are never re-created, so no query is lost while containers come and go
 * (aardvark-dns 1.4 re-creates all of them on each reload and drops queries meanwhile).
 */

export interface DnsServerConfig {
  gateways: string[];
  subnets: string[];
  internal: boolean;
  records: { ipv4: string[]; ipv6: string[]; names: string[] }[];
}

type Require = (id: string) => unknown;

export function dnsServerMain(require: Require, configDir: string, port: number): void {
  /* eslint-disable @typescript-eslint/no-explicit-any -- runs as plain JS in its own process */
  const dgram = require('node:dgram') as any;
  const net = require('node:net') as any;
  const fs = require('node:fs') as any;
  const path = require('node:path') as any;

  const PID_FILE = 'server.pid';
  interface Net {
    subnets: { v6: boolean; base: bigint; bits: bigint }[];
    internal: boolean;
    byName: Map<string, { a: string[]; aaaa: string[] }>;
  }
  let networks = new Map<string, Net>();
  const listeners = new Map<string, { udp: any; tcp: any; network: string }>();

  const ipValue = (ip: string): { v6: boolean; value: bigint } => {
    if (net.isIPv4(ip)) return { v6: false, value: ip.split('.').reduce((a: bigint, p: string) => (a << 8n) | BigInt(p), 0n) };
    let s = ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, (_m: string, v4: string) => {
      const n = ipValue(v4).value;
      return `::ffff:${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    });
    if (s.includes('%')) s = s.slice(0, s.indexOf('%'));
    const [head = '', tail] = s.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
    return { v6: true, value: [...h, ...fill, ...t].reduce((a: bigint, g: string) => (a << 16n) | BigInt(parseInt(g, 16)), 0n) };
  };
  const inSubnets = (n: Net, addr: string): boolean => {
    let ip = ipValue(addr);
    // IPv4 clients may show up as ::ffff:a.b.c.d on a dual-stack socket.
    if (ip.v6 && ip.value >> 32n === 0xffffn) ip = { v6: false, value: ip.value & 0xffffffffn };
    return n.subnets.some((s) => s.v6 === ip.v6 && ip.value >> s.bits === s.base >> s.bits);
  };

  const load = (): void => {
    const next = new Map<string, Net>();
    const wanted = new Map<string, string>();
    for (const f of fs.readdirSync(configDir) as string[]) {
      if (!f.endsWith('.json')) continue;
      let cfg: DnsServerConfig;
      try {
        cfg = JSON.parse(fs.readFileSync(path.join(configDir, f), 'utf8'));
      } catch {
        continue;
      }
      const id = f.slice(0, -5);
      const byName = new Map<string, { a: string[]; aaaa: string[] }>();
      for (const r of cfg.records) {
        for (const name of r.names) {
          const key = name.toLowerCase().replace(/\.$/, '');
          const e = byName.get(key) ?? { a: [], aaaa: [] };
          e.a.push(...r.ipv4);
          e.aaaa.push(...r.ipv6);
          byName.set(key, e);
        }
      }
      const subnets = cfg.subnets.map((s) => {
        const [a = '', len = '0'] = s.split('/');
        const ip = ipValue(a);
        return { v6: ip.v6, base: ip.value, bits: BigInt((ip.v6 ? 128 : 32) - Number(len)) };
      });
      next.set(id, { subnets, internal: cfg.internal, byName });
      for (const g of cfg.gateways) wanted.set(g, id);
    }
    networks = next;
    for (const [addr, l] of listeners) {
      if (wanted.get(addr) === l.network) continue;
      l.udp.close();
      l.tcp.close();
      listeners.delete(addr);
    }
    for (const [addr, id] of wanted) if (!listeners.has(addr)) listen(addr, id);
  };

  const upstreams = (): string[] => {
    let text = '';
    try {
      text = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* no resolv.conf: no upstream */
    }
    const out: string[] = [];
    for (const line of text.split('\n')) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      if (m?.[1] !== undefined) out.push(m[1]);
    }
    return out.length > 0 ? out : ['8.8.8.8'];
  };

  /** Parses the question; undefined for anything that is not a standard one-question query. */
  const question = (msg: Buffer): { name: string; type: number; end: number } | undefined => {
    if (msg.length < 12 || (msg[2] ?? 0) & 0x80 || msg.readUInt16BE(4) !== 1) return undefined;
    let off = 12;
    const labels: string[] = [];
    while (off < msg.length) {
      const len = msg[off] ?? 0;
      if (len === 0) break;
      if (len > 63 || off + 1 + len > msg.length) return undefined;
      labels.push(msg.toString('latin1', off + 1, off + 1 + len));
      off += 1 + len;
    }
    if (off + 5 > msg.length) return undefined;
    return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off + 1), end: off + 5 };
  };

  const reply = (msg: Buffer, q: { end: number }, rcode: number, answers: Buffer[]): Buffer => {
    const head = Buffer.alloc(12);
    msg.copy(head, 0, 0, 2);
    head[2] = 0x84 | ((msg[2] ?? 0) & 0x79); // QR, AA, opcode and RD from the query
    head[3] = 0x80 | rcode; // RA
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    return Buffer.concat([head, msg.subarray(12, q.end), ...answers]);
  };

  const record = (type: number, ip: string): Buffer => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(0, 6); // TTL 0: containers come and go
    if (type === 1) {
      rr.writeUInt16BE(4, 10);
      return Buffer.concat([rr, Buffer.from(ip.split('.').map(Number))]);
    }
    const v = ipValue(ip).value;
    const data = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) data.writeUInt16BE(Number((v >> BigInt((7 - i) * 16)) & 0xffffn), i * 2);
    rr.writeUInt16BE(16, 10);
    return Buffer.concat([rr, data]);
  };

  /** Answers locally, or relays; calls `send` once with the response (or never, on total failure). */
  const handle = (network: string, from: string, msg: Buffer, send: (b: Buffer) => void): void => {
    const n = networks.get(network);
    const q = question(msg);
    if (n && q && inSubnets(n, from)) {
      const e = n.byName.get(q.name.replace(/\.$/, ''));
      if (e) {
        const ips = q.type === 1 ? e.a : q.type === 28 ? e.aaaa : [];
        send(reply(msg, q, 0, ips.map((ip) => record(q.type, ip))));
        return;
      }
    }
    if (!n || n.internal) {
      if (q) send(reply(msg, q, n ? 3 : 5, []));
      return;
    }
    const servers = upstreams();
    const attempt = (i: number): void => {
      const server = servers[i];
      if (server === undefined) {
        if (q) send(reply(msg, q, 2, []));
        return;
      }
      const sock = dgram.createSocket(net.isIPv6(server) ? 'udp6' : 'udp4');
      const timer = setTimeout(() => {
        sock.close();
        attempt(i + 1);
      }, 2500);
      sock.on('error', () => {
        clearTimeout(timer);
        sock.close();
        attempt(i + 1);
      });
      sock.on('message', (res: Buffer) => {
        if (res.length < 2 || res.readUInt16BE(0) !== msg.readUInt16BE(0)) return;
        clearTimeout(timer);
        sock.close();
        send(res);
      });
      sock.send(msg, 53, server);
    };
    attempt(0);
  };

  const listen = (addr: string, network: string): void => {
    const udp = dgram.createSocket({ type: net.isIPv6(addr) ? 'udp6' : 'udp4', reuseAddr: true });
    udp.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => {
      // An answer that cannot be sent (the client is gone, a firewall refuses it) is lost alone:
      // with a callback, the error does not reach the socket's 'error' event, which drops it.
      handle(network, rinfo.address, msg, (b) => udp.send(b, rinfo.port, rinfo.address, () => undefined));
    });
    // A gateway that cannot be bound (its bridge is not up yet) is dropped; the next reload retries.
    const drop = (): void => {
      if (listeners.get(addr)?.udp !== udp) return;
      listeners.delete(addr);
      udp.close();
      tcp.close();
    };
    let bound = false;
    udp.once('listening', () => {
      bound = true;
    });
    udp.on('error', () => {
      if (!bound) drop();
    });
    udp.bind(port, addr);
    const tcp = net.createServer((conn: any) => {
      let buf = Buffer.alloc(0);
      conn.on('error', () => undefined);
      conn.setTimeout(10_000, () => conn.destroy());
      conn.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          handle(network, conn.remoteAddress ?? '', Buffer.from(msg), (b) => {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(b.length);
            conn.write(Buffer.concat([len, b]));
          });
        }
      });
    });
    tcp.on('error', drop);
    tcp.listen({ port, host: addr });
    listeners.set(addr, { udp, tcp, network });
  };

  process.on('SIGHUP', () => {
    try {
      load();
    } catch {
      /* keep serving the previous configuration */
    }
  });
  process.on('SIGTERM', () => process.exit(0));
  load();
  fs.writeFileSync(path.join(configDir, PID_FILE), String(process.pid));
  /* eslint-enable @typescript-eslint/no-explicit-any */
}
