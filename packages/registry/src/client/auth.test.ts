import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate, TokenCache } from './auth.js';

describe('parseWwwAuthenticate', () => {
  it('parses a Docker Hub bearer challenge', () => {
    expect(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
      },
    ]);
  });

  it('parses basic, escaped quotes, unquoted values and several challenges', () => {
    expect(parseWwwAuthenticate('Basic realm="a \\"quoted\\" realm"')).toEqual([{ scheme: 'basic', params: { realm: 'a "quoted" realm' } }]);
    expect(parseWwwAuthenticate('Bearer realm=https://x/token, error=insufficient_scope')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://x/token', error: 'insufficient_scope' } },
    ]);
    const two = parseWwwAuthenticate('Basic realm="r", Bearer realm="https://t",service="s"');
    expect(two.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(two[1]?.params).toEqual({ realm: 'https://t', service: 's' });
  });
});

describe('TokenCache', () => {
  it('keys tokens by host and scope set, and expires them early', () => {
    const cache = new TokenCache();
    cache.set('r.example', ['repository:a:pull', 'repository:b:pull'], 'tok', 300);
    expect(cache.get('r.example', ['repository:b:pull', 'repository:a:pull'])).toBe('tok');
    expect(cache.get('r.example', ['repository:a:pull'])).toBeUndefined();
    expect(cache.get('other.example', ['repository:a:pull', 'repository:b:pull'])).toBeUndefined();
    cache.set('r.example', ['s'], 'short', 1);
    // A 1 s token is kept for half its life at most.
    expect(cache.get('r.example', ['s'])).toBe('short');
    cache.delete('r.example', ['s']);
    expect(cache.get('r.example', ['s'])).toBeUndefined();
  });
});
