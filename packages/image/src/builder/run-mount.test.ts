import { describe, expect, it } from 'vitest';
import { goDuration } from './builder.js';
import { InvalidBuildError } from './errors.js';
import { parseChmod } from './fs/copy.js';
import { parseRunMount } from './run-mount.js';

describe('parseRunMount', () => {
  it('reads BuildKit field names and defaults', () => {
    expect(parseRunMount('type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000')).toEqual({
      type: 'cache', target: '/root/.cache', id: 'pip', sharing: 'locked', mode: 0o700, uid: 1000, readonly: false, required: false,
    });
    expect(parseRunMount('target=/src,source=app,rw')).toMatchObject({ type: 'bind', target: '/src', source: 'app', readonly: false });
    expect(parseRunMount('type=bind,dst=/src')).toMatchObject({ readonly: true });
    expect(parseRunMount('type=secret,id=npmrc')).toMatchObject({ type: 'secret', id: 'npmrc', target: '/run/secrets/npmrc', readonly: true });
    expect(parseRunMount('type=secret,target=/root/.npmrc,required')).toMatchObject({ id: '.npmrc', required: true });
    expect(parseRunMount('type=tmpfs,target=/t,size=64m')).toMatchObject({ size: 64 * 1024 * 1024 });
    expect(parseRunMount('type=cache,target=/c')).toMatchObject({ id: '/c' });
    expect(parseRunMount('"type=bind","target=/a,b"')).toMatchObject({ target: '/a,b' });
  });
  it.each(['type=nfs,target=/x', 'type=bind', 'type=cache,target=/c,sharing=wild', 'type=bind,target=/x,bogus=1', 'type=tmpfs,target=/t,size=lots'])(
    'refuses %s',
    (value) => {
      expect(() => parseRunMount(value)).toThrow(InvalidBuildError);
    },
  );
});

describe('parseChmod', () => {
  it('applies octal and symbolic modes', () => {
    expect(parseChmod('0755')(0o644, false)).toBe(0o755);
    expect(parseChmod('u+x')(0o644, false)).toBe(0o744);
    expect(parseChmod('go-rwx')(0o777, true)).toBe(0o700);
    expect(parseChmod('a=r,u+w')(0o777, false)).toBe(0o644);
    expect(parseChmod('a+X')(0o644, true)).toBe(0o755);
    expect(parseChmod('a+X')(0o644, false)).toBe(0o644);
    expect(() => parseChmod('x+q')).toThrow(InvalidBuildError);
  });
});

describe('goDuration (history text like Docker)', () => {
  it.each([
    [0, '0s'],
    [10e9, '10s'],
    [90e9, '1m30s'],
    [3600e9, '1h0m0s'],
    [1.5e9, '1.5s'],
    [500e6, '500ms'],
  ])('%d ns → %s', (ns, text) => {
    expect(goDuration(ns)).toBe(text);
  });
});
