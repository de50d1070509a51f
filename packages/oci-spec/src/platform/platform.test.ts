import { describe, expect, it } from 'vitest';
import { MediaType } from '../media-type.js';
import type { Descriptor, Platform } from '../types/image.js';
import {
  InvalidPlatformError,
  formatPlatform,
  hostPlatform,
  isAttestationManifest,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from './platform.js';

describe('parsePlatform / formatPlatform', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/amd64/v1', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }, 'linux/amd64/v3'],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm/v6'],
    ['linux/arm/7', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
    ['linux/i386', { os: 'linux', architecture: '386' }, 'linux/386'],
    ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }, 'linux/s390x'],
    ['arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }, 'windows/amd64'],
  ])('%s', (input, platform, formatted) => {
    expect(parsePlatform(input)).toEqual(platform);
    expect(formatPlatform(parsePlatform(input))).toBe(formatted);
  });

  it('a lone OS means that OS on the host architecture', () => {
    expect(parsePlatform('linux')).toEqual(hostPlatform());
  });

  it.each(['', 'linux/', '/amd64', 'linux/amd64/v8/x', 'linux/am d64', 'nonsense'])('rejects %j', (input) => {
    expect(() => parsePlatform(input)).toThrow(InvalidPlatformError);
  });

  it('normalizePlatform keeps os.version and features', () => {
    expect(normalizePlatform({ os: 'windows', architecture: 'x86_64', 'os.version': '10.0.17763.1' })).toEqual({
      os: 'windows',
      architecture: 'amd64',
      'os.version': '10.0.17763.1',
    });
  });
});

describe('hostPlatform', () => {
  it('maps node names to OCI names', () => {
    const host = hostPlatform();
    const expectedArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
    expect(host.os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
    expect(host.architecture).toBe(expectedArch[process.arch] ?? process.arch);
  });
});

describe('platformMatches', () => {
  const p = (s: string): Platform => parsePlatform(s);
  it.each([
    ['linux/amd64', 'linux/amd64', true],
    ['linux/amd64', 'linux/x86_64', true],
    ['linux/amd64', 'linux/arm64', false],
    ['linux/amd64', 'windows/amd64', false],
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm/v7', 'linux/arm/v6', true],
    ['linux/arm/v6', 'linux/arm/v7', false],
    ['linux/amd64/v3', 'linux/amd64', true],
    ['linux/amd64', 'linux/amd64/v3', false],
  ])('want %s, have %s → %s', (want, have, result) => {
    expect(platformMatches(p(want), p(have))).toBe(result);
  });
});

describe('selectManifest', () => {
  const d = (n: number, platform?: Platform, annotations?: Record<string, string>): Descriptor => {
    const desc: Descriptor = {
      mediaType: MediaType.ImageManifest,
      digest: `sha256:${n.toString(16).padStart(64, '0')}`,
      size: 100 + n,
    };
    if (platform) desc.platform = platform;
    if (annotations) desc.annotations = annotations;
    return desc;
  };
  const amd64 = d(1, { os: 'linux', architecture: 'amd64' });
  const armv6 = d(2, { os: 'linux', architecture: 'arm', variant: 'v6' });
  const armv7 = d(3, { os: 'linux', architecture: 'arm', variant: 'v7' });
  const arm64 = d(4, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const att = d(5, { os: 'unknown', architecture: 'unknown' }, {
    'vnd.docker.reference.digest': amd64.digest,
    'vnd.docker.reference.type': 'attestation-manifest',
  });

  it('chooses by platform and prefers the exact variant', () => {
    const index = { manifests: [att, armv6, amd64, armv7, arm64] };
    expect(selectManifest(index, parsePlatform('linux/amd64'))).toBe(amd64);
    expect(selectManifest(index, parsePlatform('linux/arm/v7'))).toBe(armv7);
    expect(selectManifest(index, parsePlatform('linux/arm64'))).toBe(arm64);
    expect(selectManifest({ manifests: [armv6, amd64] }, parsePlatform('linux/arm/v7'))).toBe(armv6);
    expect(selectManifest(index, parsePlatform('linux/s390x'))).toBeUndefined();
  });

  it('never chooses attestation manifests', () => {
    expect(selectManifest({ manifests: [att] }, parsePlatform('linux/amd64'))).toBeUndefined();
    expect(isAttestationManifest(att)).toBe(true);
    expect(isAttestationManifest(amd64)).toBe(false);
  });

  it('takes a platform-less entry only when nothing matches better', () => {
    const bare = d(6);
    expect(selectManifest({ manifests: [bare, amd64] }, parsePlatform('linux/amd64'))).toBe(amd64);
    expect(selectManifest({ manifests: [bare, arm64] }, parsePlatform('linux/amd64'))).toBe(bare);
  });

  it('defaults to the host platform', () => {
    const host = hostPlatform();
    const mine = d(7, host);
    expect(selectManifest({ manifests: [att, d(8, { os: 'plan9', architecture: 'sparc' }), mine] })).toBe(mine);
  });
});
