/** One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header (RFC 7235: several challenges, quoted or token params). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  const param = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m?.[1]) break;
    pos = re.lastIndex;
    const challenge: Challenge = { scheme: m[1].toLowerCase(), params: {} };
    while (pos < header.length) {
      param.lastIndex = pos;
      const p = param.exec(header);
      if (!p?.[1]) break;
      // A bare token followed by '=' is a param; a token followed by space is the next scheme.
      challenge.params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
      pos = param.lastIndex;
    }
    challenges.push(challenge);
    while (header[pos] === ',' || header[pos] === ' ') pos++;
  }
  return challenges;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * Bearer tokens per (host, scope set), kept until shortly before they expire. A token for a
 * wider scope is not reused for a narrower one: registries scope tokens exactly, and the cache
 * key is the sorted scope list.
 */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  static key(host: string, scopes: string[]): string {
    return `${host}|${[...scopes].sort().join(' ')}`;
  }

  get(host: string, scopes: string[]): string | undefined {
    const key = TokenCache.key(host, scopes);
    const hit = this.tokens.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt <= Date.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return hit.token;
  }

  set(host: string, scopes: string[], token: string, expiresInSeconds: number): void {
    // Expire 10 s early (or at half-life for very short tokens) to avoid racing the registry's clock.
    const margin = Math.min(10, expiresInSeconds / 2);
    this.tokens.set(TokenCache.key(host, scopes), { token, expiresAt: Date.now() + (expiresInSeconds - margin) * 1000 });
  }

  delete(host: string, scopes: string[]): void {
    this.tokens.delete(TokenCache.key(host, scopes));
  }
}
