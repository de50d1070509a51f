import { isIP } from 'node:net';
import { NetworkError } from './errors.js';

/** An address family and value; IPv4 and IPv6 share the arithmetic through bigint. */
export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

/** A subnet in canonical form (host bits cleared). */
export interface Cidr {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

const bits = (family: 4 | 6): number => (family === 4 ? 32 : 128);

export function parseIp(text: string): IpAddress {
  const kind = isIP(text);
  if (kind === 4) {
    const parts = text.split('.').map(Number);
    let value = 0n;
    for (const p of parts) value = (value << 8n) | BigInt(p);
    return { family: 4, value };
  }
  if (kind === 6) {
    let s = text;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (v4?.[1] !== undefined) {
      const n = parseIp(v4[1]).value;
      s = `${s.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head = '', tail] = s.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
    let value = 0n;
    for (const g of [...h, ...fill, ...t]) value = (value << 16n) | BigInt(parseInt(g, 16));
    return { family: 6, value };
  }
  throw new NetworkError('INVALID_ADDRESS', 'invalid', `invalid IP address: ${text}`);
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // Compress the longest run of zero groups (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export function parseCidr(text: string): Cidr {
  const [addr, len] = text.split('/');
  if (addr === undefined || len === undefined || !/^\d+$/.test(len)) {
    throw new NetworkError('INVALID_SUBNET', 'invalid', `invalid subnet: ${text}`);
  }
  let ip: IpAddress;
  try {
    ip = parseIp(addr);
  } catch (e) {
    throw new NetworkError('INVALID_SUBNET', 'invalid', `invalid subnet: ${text}`, { cause: e });
  }
  const prefix = Number(len);
  if (prefix > bits(ip.family)) throw new NetworkError('INVALID_SUBNET', 'invalid', `invalid subnet: ${text}`);
  return { family: ip.family, base: ip.value & mask(ip.family, prefix), prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const total = BigInt(bits(family));
  const all = (1n << total) - 1n;
  return (all >> (total - BigInt(prefix))) << (total - BigInt(prefix));
}

/** Number of addresses in the subnet. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bits(c.family) - c.prefix);
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  return c.family === ip.family && (ip.value & mask(c.family, c.prefix)) === c.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(a.family, p)) === (b.base & mask(b.family, p));
}

/**
 * One pool of a network: the subnet, the part of it handed to containers (`ipRange`, default the
 * whole subnet) and the gateway (default the first address of the subnet).
 */
export interface IpamPool {
  subnet: string;
  ipRange?: string;
  gateway: string;
}

/**
 * Persistent allocation state of one network. `allocated` maps an address to its owner (an
 * endpoint id, or `gateway`); `cursor` remembers the last address handed out per family so that
 * freed addresses are reused only after the range wrapped — a late packet for a removed container
 * does not reach its successor (Docker's IPAM behaves the same).
 */
export interface IpamState {
  pools: IpamPool[];
  allocated: Record<string, string>;
  cursor: { v4?: string; v6?: string };
}

/** Builds the pool of a subnet, checking that gateway and range lie inside it. */
export function makePool(subnet: string, gateway?: string, ipRange?: string): IpamPool {
  const c = parseCidr(subnet);
  if (c.family === 4 && c.prefix > 30) {
    throw new NetworkError('INVALID_SUBNET', 'invalid', `subnet ${subnet} is too small (at most /30)`);
  }
  if (c.family === 6 && c.prefix > 126) {
    throw new NetworkError('INVALID_SUBNET', 'invalid', `subnet ${subnet} is too small (at most /126)`);
  }
  const gw = gateway !== undefined && gateway !== '' ? parseIp(gateway) : { family: c.family, value: c.base + 1n };
  if (!cidrContains(c, gw)) {
    throw new NetworkError('INVALID_GATEWAY', 'invalid', `gateway ${gateway} is not in subnet ${subnet}`);
  }
  const pool: IpamPool = { subnet: formatCidr(c), gateway: formatIp(gw) };
  if (ipRange !== undefined && ipRange !== '') {
    const r = parseCidr(ipRange);
    if (r.family !== c.family || r.prefix < c.prefix || !cidrContains(c, { family: r.family, value: r.base })) {
      throw new NetworkError('INVALID_IP_RANGE', 'invalid', `ip-range ${ipRange} is not inside subnet ${subnet}`);
    }
    pool.ipRange = formatCidr(r);
  }
  return pool;
}

export function newIpamState(pools: IpamPool[]): IpamState {
  const allocated: Record<string, string> = {};
  for (const p of pools) allocated[p.gateway] = 'gateway';
  return { pools, allocated, cursor: {} };
}

/** The pool of a family, if the network has one. */
export function poolOf(state: IpamState, family: 4 | 6): IpamPool | undefined {
  return state.pools.find((p) => parseCidr(p.subnet).family === family);
}

/**
 * Allocates an address of `family` to `owner`. With `requested`, that exact address (it must lie
 * in the subnet and be free); otherwise the next free one after the cursor inside the range,
 * skipping the subnet's network and (IPv4) broadcast addresses. Mutates `state`; the caller
 * persists it before handing the address out.
 */
export function allocateAddress(state: IpamState, family: 4 | 6, owner: string, requested?: string): string {
  const pool = poolOf(state, family);
  if (pool === undefined) {
    throw new NetworkError('NO_POOL', 'invalid', `the network has no IPv${family} subnet`);
  }
  const subnet = parseCidr(pool.subnet);
  const first = subnet.base;
  const last = subnet.base + cidrSize(subnet) - 1n;
  const reserved = (v: bigint): boolean => v === first || (family === 4 && v === last);
  if (requested !== undefined && requested !== '') {
    const ip = parseIp(requested);
    if (!cidrContains(subnet, ip) || reserved(ip.value)) {
      throw new NetworkError('INVALID_ADDRESS', 'invalid', `address ${requested} is not a usable address of subnet ${pool.subnet}`);
    }
    const text = formatIp(ip);
    const holder = state.allocated[text];
    if (holder !== undefined && holder !== owner) {
      throw new NetworkError('ADDRESS_IN_USE', 'conflict', `address ${text} is already in use`);
    }
    state.allocated[text] = owner;
    return text;
  }
  const range = pool.ipRange !== undefined ? parseCidr(pool.ipRange) : subnet;
  const lo = range.base;
  const hi = range.base + cidrSize(range) - 1n;
  const key = family === 4 ? 'v4' : 'v6';
  const cursorText = state.cursor[key];
  let start = lo;
  if (cursorText !== undefined) {
    const c = parseIp(cursorText).value;
    if (c >= lo && c < hi) start = c + 1n;
  }
  // Sparse IPv6 ranges are huge; a bounded scan is enough because allocations are few.
  const span = hi - lo + 1n;
  const limit = span < 1_000_000n ? span : 1_000_000n;
  let v = start;
  for (let i = 0n; i < limit; i++) {
    if (!reserved(v)) {
      const text = formatIp({ family, value: v });
      if (state.allocated[text] === undefined) {
        state.allocated[text] = owner;
        state.cursor[key] = text;
        return text;
      }
    }
    v = v === hi ? lo : v + 1n;
  }
  throw new NetworkError('POOL_EXHAUSTED', 'unavailable', `no available IPv${family} address in ${pool.ipRange ?? pool.subnet}`);
}

/** Releases every address held by `owner`. */
export function releaseAddresses(state: IpamState, owner: string): void {
  for (const [ip, holder] of Object.entries(state.allocated)) {
    if (holder === owner) delete state.allocated[ip];
  }
}
