import { describe, expect, it } from 'vitest';
import { allocateAddress, cidrsOverlap, formatIp, makePool, newIpamState, parseCidr, parseIp, releaseAddresses } from './ipam.js';

describe('address arithmetic', () => {
  it('round-trips IPv4 and IPv6 text', () => {
    for (const s of ['10.0.0.1', '255.255.255.255', '::1', 'fd00::2', '2001:db8::1:0:0:1', 'fe80::fc:ff:fe00:1']) {
      expect(formatIp(parseIp(s))).toBe(s);
    }
    expect(formatIp(parseIp('2001:0db8:0000:0000:0000:0000:0000:0001'))).toBe('2001:db8::1');
    expect(formatIp(parseIp('::ffff:1.2.3.4'))).toBe('::ffff:102:304');
  });
  it('canonicalises subnets and detects overlap', () => {
    expect(parseCidr('10.1.2.3/16').base).toBe(parseIp('10.1.0.0').value);
    expect(cidrsOverlap(parseCidr('10.1.0.0/16'), parseCidr('10.1.200.0/24'))).toBe(true);
    expect(cidrsOverlap(parseCidr('10.1.0.0/16'), parseCidr('10.2.0.0/16'))).toBe(false);
    expect(cidrsOverlap(parseCidr('fd00::/64'), parseCidr('10.0.0.0/8'))).toBe(false);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/invalid subnet/);
  });
});

describe('IPAM', () => {
  it('hands out every usable address once, skipping network, gateway and broadcast', () => {
    const s = newIpamState([makePool('10.9.0.0/29')]);
    const got = new Set<string>();
    for (let i = 0; i < 5; i++) got.add(allocateAddress(s, 4, `ep${i}`));
    expect([...got].sort()).toEqual(['10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
    expect(() => allocateAddress(s, 4, 'ep9')).toThrow(/no available IPv4 address/);
  });
  it('does not reuse a released address before the range wraps', () => {
    const s = newIpamState([makePool('10.9.0.0/24')]);
    const a = allocateAddress(s, 4, 'a');
    releaseAddresses(s, 'a');
    const b = allocateAddress(s, 4, 'b');
    expect(b).not.toBe(a);
  });
  it('honours static addresses, ip-range and a custom gateway', () => {
    const s = newIpamState([makePool('10.9.0.0/24', '10.9.0.254', '10.9.0.128/25')]);
    expect(allocateAddress(s, 4, 'x')).toBe('10.9.0.128');
    expect(allocateAddress(s, 4, 'y', '10.9.0.7')).toBe('10.9.0.7');
    expect(() => allocateAddress(s, 4, 'z', '10.9.0.7')).toThrow(/already in use/);
    expect(() => allocateAddress(s, 4, 'z', '10.9.0.254')).toThrow(/already in use/);
    expect(() => allocateAddress(s, 4, 'z', '10.8.0.1')).toThrow(/not a usable address/);
    expect(() => makePool('10.9.0.0/24', '10.10.0.1')).toThrow(/not in subnet/);
    expect(() => makePool('10.9.0.0/24', undefined, '10.9.1.0/25')).toThrow(/not inside subnet/);
  });
  it('allocates IPv6 from a /64', () => {
    const s = newIpamState([makePool('fd12:3456:789a::/64')]);
    expect(allocateAddress(s, 6, 'a')).toBe('fd12:3456:789a::2');
    expect(allocateAddress(s, 6, 'b', 'fd12:3456:789a::abcd')).toBe('fd12:3456:789a::abcd');
  });
});
