import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { NetworkError } from './errors.js';
import type { PortBinding, PortMap } from './types.js';

export type PortProto = 'tcp' | 'udp' | 'sctp';

/** One published port as the engine stores it: a single host port to a single container port. */
export interface PublishedPort {
  proto: PortProto;
  /** '' means every address (shown as both 0.0.0.0 and :: in inspect). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

/** A request for one container port before host ports are chosen. */
export interface PortRequest {
  proto: PortProto;
  hostIp: string;
  /** [lo, hi]; [0, 0] = any free port. */
  hostRange: [number, number];
  containerPort: number;
}

function parseRange(text: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m?.[1]) throw new NetworkError('INVALID_PORT', 'invalid', `invalid ${what}: ${text}`);
  const lo = Number(m[1]);
  const hi = m[2] !== undefined ? Number(m[2]) : lo;
  if (lo > hi || hi > 65535) throw new NetworkError('INVALID_PORT', 'invalid', `invalid ${what}: ${text}`);
  return [lo, hi];
}

function parseProto(text: string | undefined, spec: string): PortProto {
  const p = (text ?? 'tcp').toLowerCase();
  if (p !== 'tcp' && p !== 'udp' && p !== 'sctp') {
    throw new NetworkError('INVALID_PORT', 'invalid', `invalid protocol in port spec: ${spec}`);
  }
  return p;
}

/**
 * Parses one `docker run -p` value — `[ip:][hostPort[-hi]:]containerPort[-hi][/proto]`, with
 * `[v6]` brackets for IPv6 host addresses — into the Engine API's `ExposedPorts`/`PortBindings`
 * shape: `{"80/tcp": [{HostIp: "127.0.0.1", HostPort: "8080"}]}`. Ranges expand one key per port.
 */
export function parsePublishSpec(spec: string): PortMap {
  let rest = spec;
  let proto: PortProto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = parseProto(rest.slice(slash + 1), spec);
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6?.[1] !== undefined && v6[2] !== undefined) {
    hostIp = v6[1];
    rest = v6[2];
  }
  const parts = rest.split(':');
  let hostPart = '';
  let ctrPart: string;
  if (parts.length === 1) ctrPart = parts[0] ?? '';
  else if (parts.length === 2) [hostPart, ctrPart] = [parts[0] ?? '', parts[1] ?? ''];
  else if (parts.length === 3 && hostIp === '') [hostIp, hostPart, ctrPart] = [parts[0] ?? '', parts[1] ?? '', parts[2] ?? ''];
  else throw new NetworkError('INVALID_PORT', 'invalid', `invalid port spec: ${spec}`);
  const [clo, chi] = parseRange(ctrPart, 'container port');
  const host = hostPart === '' ? undefined : parseRange(hostPart, 'host port');
  if (host && host[1] - host[0] !== chi - clo && host[0] !== host[1] && clo !== chi) {
    throw new NetworkError('INVALID_PORT', 'invalid', `port ranges do not match in: ${spec}`);
  }
  const out: PortMap = {};
  for (let p = clo; p <= chi; p++) {
    let hostPort = '';
    if (host) {
      if (clo === chi) hostPort = host[0] === host[1] ? String(host[0]) : `${host[0]}-${host[1]}`;
      else hostPort = String(host[0] + (p - clo));
    }
    out[`${p}/${proto}`] = [{ HostIp: hostIp, HostPort: hostPort }];
  }
  return out;
}

/** Splits a PortMap key `"80/tcp"`. */
export function parsePortKey(key: string): { port: number; proto: PortProto } {
  const [p, proto] = key.split('/');
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new NetworkError('INVALID_PORT', 'invalid', `invalid container port: ${key}`);
  }
  return { port, proto: parseProto(proto, key) };
}

/** Turns `PortBindings` (+ `-P` over the exposed ports) into requests. */
export function portRequests(bindings: PortMap | undefined, publishAll: boolean, exposed: Record<string, unknown> | undefined): PortRequest[] {
  const out: PortRequest[] = [];
  const seen = new Set<string>();
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const { port, proto } = parsePortKey(key);
    seen.add(`${port}/${proto}`);
    for (const b of list ?? [{ HostIp: '', HostPort: '' }]) {
      const hp = b.HostPort ?? '';
      const hostRange: [number, number] = hp === '' || hp === '0' ? [0, 0] : parseRange(hp, 'host port');
      out.push({ proto, hostIp: normalizeHostIp(b.HostIp ?? ''), hostRange, containerPort: port });
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parsePortKey(key);
      if (seen.has(`${port}/${proto}`)) continue;
      out.push({ proto, hostIp: '', hostRange: [0, 0], containerPort: port });
    }
  }
  return out;
}

function normalizeHostIp(ip: string): string {
  return ip === '0.0.0.0' ? '' : ip.replace(/^\[|\]$/g, '');
}

/** True when a host socket can bind the port now (nothing on the host listens on it). */
export function canBind(proto: PortProto, hostIp: string, port: number): Promise<boolean> {
  const addr = hostIp === '' ? '0.0.0.0' : hostIp;
  if (proto === 'udp') {
    return new Promise((resolve) => {
      const s = createSocket(addr.includes(':') ? 'udp6' : 'udp4');
      s.on('error', () => resolve(false));
      s.bind(port, addr, () => s.close(() => resolve(true)));
    });
  }
  if (proto === 'sctp') return Promise.resolve(true);
  return new Promise((resolve) => {
    const srv = createServer();
    srv.on('error', () => resolve(false));
    srv.listen({ port, host: addr, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Inspect form: a binding on every address shows both `0.0.0.0` and `::`, as Docker does. */
export function bindingsOf(p: PublishedPort): PortBinding[] {
  const port = String(p.hostPort);
  if (p.hostIp === '' || p.hostIp === '::') {
    return p.hostIp === '::' ? [{ HostIp: '::', HostPort: port }] : [
      { HostIp: '0.0.0.0', HostPort: port },
      { HostIp: '::', HostPort: port },
    ];
  }
  return [{ HostIp: p.hostIp, HostPort: port }];
}
