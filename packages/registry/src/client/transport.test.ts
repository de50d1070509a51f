import { describe, expect, it } from 'vitest';
import { isConnectionError, isLoopbackHost, retryAfterMs } from './transport.js';
import { normaliseAuthKey } from './credentials.js';

describe('isLoopbackHost', () => {
  it('allows plain HTTP only for localhost and loopback addresses', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'registry.localhost']) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ['registry-1.docker.io', '10.0.0.1:5000', 'localhost.example.com', '[fe80::1]:5000', '128.0.0.1']) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const inTwo = new Date(Date.now() + 2000).toUTCString();
    expect(retryAfterMs(inTwo)).toBeGreaterThan(0);
    expect(retryAfterMs(inTwo)).toBeLessThanOrEqual(2000);
  });
});

describe('isConnectionError', () => {
  it('recognises resets through cause chains', () => {
    expect(isConnectionError(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }))).toBe(true);
    expect(isConnectionError(new Error('nope'))).toBe(false);
  });
});

describe('normaliseAuthKey', () => {
  it('files Docker Hub under one key and strips schemes and paths', () => {
    expect(normaliseAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normaliseAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(normaliseAuthKey('http://LocalHost:5000/v2/')).toBe('localhost:5000');
  });
});
