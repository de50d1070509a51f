import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { accessGranted, Htpasswd, parseBasicAuthorization, parseScopes, TokenIssuer } from './auth.js';
import { parseRangeHeader } from './app.js';

describe('Htpasswd', () => {
  it('verifies bcrypt entries ($2y$ as written by htpasswd -B too) and refuses others', async () => {
    const hash = bcrypt.hashSync('secret', 4).replace(/^\$2[ab]\$/, '$2y$');
    const file = new Htpasswd(`# comment\nalice:${hash}\n`);
    expect(await file.verify('alice', 'secret')).toBe(true);
    expect(await file.verify('alice', 'secret')).toBe(true);
    expect(await file.verify('alice', 'wrong')).toBe(false);
    expect(await file.verify('bob', 'secret')).toBe(false);
    expect(() => new Htpasswd('carol:{SHA}abc=')).toThrow(/not bcrypt/);
  });

  it('parses Basic authorization headers', () => {
    expect(parseBasicAuthorization(`Basic ${Buffer.from('u:p:with:colons').toString('base64')}`)).toEqual({ user: 'u', password: 'p:with:colons' });
    expect(parseBasicAuthorization('Bearer x')).toBeUndefined();
    expect(parseBasicAuthorization(undefined)).toBeUndefined();
  });
});

describe('TokenIssuer', () => {
  it('issues tokens that carry the granted scopes and rejects forged ones', () => {
    const issuer = new TokenIssuer('svc', 60);
    const access = parseScopes(['repository:a/b:pull,push', 'registry:catalog:*']);
    expect(access).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    const { token } = issuer.issue('alice', access);
    const claims = issuer.verify(token);
    expect(claims?.sub).toBe('alice');
    expect(accessGranted(claims!.access, { type: 'repository', name: 'a/b', actions: ['pull'] })).toBe(true);
    expect(accessGranted(claims!.access, { type: 'repository', name: 'a/c', actions: ['pull'] })).toBe(false);
    expect(accessGranted(claims!.access, { type: 'repository', name: 'a/b', actions: ['delete'] })).toBe(false);
    expect(issuer.verify(`${token.split('.')[0]}.AAAA`)).toBeUndefined();
    expect(new TokenIssuer('svc').verify(token)).toBeUndefined();
  });
});

describe('parseRangeHeader', () => {
  it('handles the single-range forms and refuses unsatisfiable ones', () => {
    expect(parseRangeHeader('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRangeHeader('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRangeHeader('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRangeHeader('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRangeHeader('bytes=100-', 100)).toBeUndefined();
    expect(parseRangeHeader('bytes=5-1', 100)).toBeUndefined();
    expect(parseRangeHeader('items=0-1', 100)).toBeUndefined();
  });
});
