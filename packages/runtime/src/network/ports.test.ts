import { describe, expect, it } from 'vitest';
import { bindingsOf, parsePublishSpec, portRequests } from './ports.js';

describe('parsePublishSpec', () => {
  it('parses the docker run -p forms', () => {
    expect(parsePublishSpec('80')).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '' }] });
    expect(parsePublishSpec('8080:80')).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
    expect(parsePublishSpec('127.0.0.1:8080:80/udp')).toEqual({ '80/udp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
    expect(parsePublishSpec('127.0.0.1::80')).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    expect(parsePublishSpec('[::1]:8080:80')).toEqual({ '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] });
    expect(parsePublishSpec('8000-8001:80-81')).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8000' }],
      '81/tcp': [{ HostIp: '', HostPort: '8001' }],
    });
    expect(parsePublishSpec('8000-8010:80')).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8000-8010' }] });
  });
  it('refuses nonsense', () => {
    expect(() => parsePublishSpec('80/icmp')).toThrow(/protocol/);
    expect(() => parsePublishSpec('99999')).toThrow(/invalid container port/);
    expect(() => parsePublishSpec('8000-8002:80-81')).toThrow(/do not match/);
  });
});

describe('port requests', () => {
  it('adds -P for exposed ports not bound explicitly and reads HostPort "" / "0" as any', () => {
    const reqs = portRequests({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '0' }] }, true, { '80/tcp': {}, '53/udp': {} });
    expect(reqs).toEqual([
      { proto: 'tcp', hostIp: '', hostRange: [0, 0], containerPort: 80 },
      { proto: 'udp', hostIp: '', hostRange: [0, 0], containerPort: 53 },
    ]);
  });
  it('shows a binding on every address as both 0.0.0.0 and ::', () => {
    expect(bindingsOf({ proto: 'tcp', hostIp: '', hostPort: 32768, containerPort: 80 })).toEqual([
      { HostIp: '0.0.0.0', HostPort: '32768' },
      { HostIp: '::', HostPort: '32768' },
    ]);
  });
});
