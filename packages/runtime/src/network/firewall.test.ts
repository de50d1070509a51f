import { describe, expect, it } from 'vitest';
import { renderRuleset } from './firewall.js';

describe('renderRuleset', () => {
  const script = renderRuleset('berth', {
    networks: [
      { bridge: 'berth0', subnets: ['172.30.0.0/16'], internal: false },
      { bridge: 'berth-aaa', subnets: ['10.5.0.0/24', 'fd00:5::/64'], internal: false },
      { bridge: 'berth-int', subnets: ['10.6.0.0/24'], internal: true },
    ],
    ports: [
      { containerId: 'c0ffee000000aa', bridge: 'berth0', proto: 'tcp', hostIp: '', hostPort: 32768, containerIp: '172.30.0.2', containerPort: 80, subnet: '172.30.0.0/16' },
      { containerId: 'c0ffee000000aa', bridge: 'berth0', proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerIp: '172.30.0.2', containerPort: 53, subnet: '172.30.0.0/16' },
    ],
  });
  it('replaces only its own table, in one transaction', () => {
    expect(script.startsWith('table inet berth {}\ndelete table inet berth\ntable inet berth {')).toBe(true);
    expect(script).not.toMatch(/flush ruleset/);
  });
  it('masquerades non-internal subnets, isolates bridges, seals internal networks', () => {
    expect(script).toContain('iifname "berth0" oifname != "berth0" ip saddr 172.30.0.0/16 masquerade');
    expect(script).toContain('iifname "berth-aaa" oifname != "berth-aaa" ip6 saddr fd00:5::/64 masquerade');
    expect(script).not.toContain('ip saddr 10.6.0.0/24 masquerade');
    expect(script).toContain('iifname "berth0" oifname { "berth-aaa", "berth-int" } drop');
    expect(script).toContain('iifname "berth-int" oifname != "berth-int" drop');
  });
  it('publishes ports with per-container comments', () => {
    expect(script).toContain('meta nfproto ipv4 tcp dport 32768 dnat ip to 172.30.0.2:80 comment "c:c0ffee000000"');
    expect(script).toContain('ip daddr 127.0.0.1 udp dport 5353 dnat ip to 172.30.0.2:53 comment "c:c0ffee000000"');
  });
});
