import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { compare } from 'bcryptjs';
import { RegistryError } from '../errors.js';

/** One access the request needs, in the token-scope vocabulary (`repository:name:pull`). */
export interface AccessRequest {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export interface AuthResult {
  /** The authenticated user, or undefined for anonymous access (allowed only without htpasswd). */
  user?: string;
}

/**
 * Checks htpasswd users. Only bcrypt entries are accepted (as in Docker's reference registry).
 * bcrypt is deliberately slow, so successful checks are remembered for a few minutes by a hash
 * of user and password; a changed file is picked up on the next reload.
 */
export class Htpasswd {
  private readonly users = new Map<string, string>();
  private readonly verified = new Map<string, number>();
  private static readonly CACHE_MS = 5 * 60_000;

  constructor(text: string) {
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (!/^\$2[aby]\$\d\d\$/.test(hash)) {
        throw new RegistryError('HTPASSWD_INVALID', `htpasswd entry for ${user} is not bcrypt (only bcrypt is supported)`, {
          category: 'invalid',
        });
      }
      this.users.set(user, hash);
    }
  }

  static fromFile(file: string): Htpasswd {
    return new Htpasswd(readFileSync(file, 'utf8'));
  }

  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined) return false;
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    const until = this.verified.get(key);
    if (until !== undefined && until > Date.now()) return true;
    // bcryptjs reads $2y$ as $2a$; they are the same algorithm.
    const ok = await compare(password, hash.replace(/^\$2y\$/, '$2a$'));
    if (ok) this.verified.set(key, Date.now() + Htpasswd.CACHE_MS);
    return ok;
  }
}

export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Claims inside a bearer token this server issued. */
interface TokenClaims {
  sub: string;
  aud: string;
  exp: number;
  /** `access` tokens authorise requests; `refresh` tokens (identity tokens) only buy access tokens. */
  typ: 'access' | 'refresh';
  access: AccessRequest[];
}

/**
 * Issues and checks the bearer tokens of the token-auth mode: an HMAC-signed JSON claim set
 * (`base64url(claims).base64url(mac)`) with the key made at start-up, so tokens die with the
 * process. Tokens grant what the user asked for in `scope` — every authenticated user may do
 * everything; the mode exists for clients that need the challenge flow, not for per-repo ACLs.
 */
export class TokenIssuer {
  private readonly key = randomBytes(32);
  readonly service: string;
  readonly lifetimeSeconds: number;

  constructor(service = 'berth-registry', lifetimeSeconds = 300) {
    this.service = service;
    this.lifetimeSeconds = lifetimeSeconds;
  }

  issue(user: string, access: AccessRequest[]): { token: string; expiresIn: number; issuedAt: string } {
    const token = this.sign({ sub: user, aud: this.service, exp: Math.floor(Date.now() / 1000) + this.lifetimeSeconds, typ: 'access', access });
    return { token, expiresIn: this.lifetimeSeconds, issuedAt: new Date().toISOString() };
  }

  /** A long-lived refresh token (what `docker login` stores as an identity token). */
  issueRefresh(user: string, lifetimeSeconds = 30 * 24 * 3600): string {
    return this.sign({ sub: user, aud: this.service, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds, typ: 'refresh', access: [] });
  }

  private sign(claims: TokenClaims): string {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const mac = createHmac('sha256', this.key).update(body).digest('base64url');
    return `${body}.${mac}`;
  }

  /** The user a valid refresh token was issued to, or undefined. */
  verifyRefresh(token: string): string | undefined {
    const claims = this.decode(token);
    return claims?.typ === 'refresh' ? claims.sub : undefined;
  }

  /** The claims of a valid, unexpired access token, or undefined. */
  verify(token: string): TokenClaims | undefined {
    const claims = this.decode(token);
    return claims?.typ === 'access' ? claims : undefined;
  }

  private decode(token: string): TokenClaims | undefined {
    const dot = token.indexOf('.');
    if (dot < 0) return undefined;
    const body = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = createHmac('sha256', this.key).update(body).digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenClaims;
      if (claims.aud !== this.service || claims.exp * 1000 < Date.now()) return undefined;
      return claims;
    } catch {
      return undefined;
    }
  }
}

/** Parses `repository:foo/bar:pull,push` scopes (several may be space-separated or repeated). */
export function parseScopes(scopes: string[]): AccessRequest[] {
  const out: AccessRequest[] = [];
  for (const scope of scopes.flatMap((s) => s.split(' '))) {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    const type = scope.slice(0, first);
    if (type !== 'repository' && type !== 'registry') continue;
    out.push({ type, name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) });
  }
  return out;
}

export function formatScope(access: AccessRequest): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

/** True when the granted set covers every action of `need`. `*` grants all actions. */
export function accessGranted(granted: AccessRequest[], need: AccessRequest): boolean {
  return need.actions.every((action) =>
    granted.some(
      (g) =>
        g.type === need.type && g.name === need.name && (g.actions.includes(action) || g.actions.includes('*')),
    ),
  );
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}
