import { describe, expect, it } from 'vitest';
import { compareVersions, splitVersion } from './version.js';

describe('API versions', () => {
  it('compares numerically', () => {
    expect(compareVersions('1.9', '1.24')).toBe(-1);
    expect(compareVersions('1.44', '1.44')).toBe(0);
    expect(compareVersions('1.50', '1.44')).toBe(1);
  });

  it('routes unversioned paths at the default version', () => {
    expect(splitVersion('/containers/json')).toEqual({ version: '1.44', path: '/containers/json' });
  });

  it('strips accepted versions', () => {
    expect(splitVersion('/v1.24/containers/json')).toEqual({ version: '1.24', path: '/containers/json' });
    expect(splitVersion('/v1.41/_ping')).toEqual({ version: '1.41', path: '/_ping' });
  });

  it("answers moby's exact errors outside 1.24–1.44", () => {
    expect(() => splitVersion('/v1.12/containers/json')).toThrow(
      'client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version',
    );
    expect(() => splitVersion('/v1.50/containers/json')).toThrow('client version 1.50 is too new. Maximum supported API version is 1.44');
  });
});
