import { posix } from 'node:path';

/**
 * `.dockerignore` with Docker's semantics (moby/patternmatcher and its ignorefile reader):
 * lines starting with `#` are comments; whitespace is trimmed; `!` marks an exception; patterns
 * are cleaned (`./a` → `a`, `a/` → `a`) and a leading `/` is dropped; `*` and `?` never match
 * `/`; `**` matches any number of directories (also none); a pattern that matches a directory
 * also matches everything below it; the last matching pattern wins.
 */

export interface IgnorePattern {
  /** The cleaned pattern without `!`. */
  pattern: string;
  exclusion: boolean;
}

/** Parses .dockerignore text into cleaned patterns. */
export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  const lines = text.replace(/^\ufeff/, '').split('\n');
  for (const rawLine of lines) {
    if (rawLine.startsWith('#')) continue;
    let pattern = rawLine.trim();
    if (pattern === '') continue;
    const exclusion = pattern.startsWith('!');
    if (exclusion) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = posix.normalize(pattern);
      if (pattern.length > 1 && pattern.endsWith('/')) pattern = pattern.slice(0, -1);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push({ pattern, exclusion });
  }
  return out;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

class CompiledPattern {
  readonly exclusion: boolean;
  private readonly cleaned: string;
  private matchType: MatchType = 'exact';
  private regexp?: RegExp;
  private invalid = false;

  constructor(p: IgnorePattern) {
    this.exclusion = p.exclusion;
    this.cleaned = p.pattern;
    this.compile();
  }

  private compile(): void {
    let re = '^';
    const chars = Array.from(this.cleaned);
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i] ?? '';
      const start = i;
      if (ch === '*') {
        if (chars[i + 1] === '*') {
          i++;
          if (chars[i + 1] === '/') i++;
          if (i + 1 >= chars.length) {
            if (this.matchType === 'exact') this.matchType = 'prefix';
            else {
              re += '.*';
              this.matchType = 'regexp';
            }
          } else {
            re += '(.*/)?';
            this.matchType = 'regexp';
          }
          // "**" at the very start: a suffix match, as patternmatcher does.
          if (start === 0) this.matchType = 'suffix';
        } else {
          re += '[^/]*';
          this.matchType = 'regexp';
        }
      } else if (ch === '?') {
        re += '[^/]';
        this.matchType = 'regexp';
      } else if ('.+()|{}$^'.includes(ch)) {
        re += `\\${ch}`;
      } else if (ch === '\\') {
        const next = chars[i + 1];
        if (next !== undefined) {
          i++;
          re += /[a-zA-Z0-9]/.test(next) ? next : `\\${next}`;
        } else re += '\\\\';
      } else if (ch === '[' || ch === ']') {
        re += ch;
        this.matchType = 'regexp';
      } else {
        re += ch;
      }
    }
    re += '$';
    if (this.matchType === 'regexp') {
      try {
        this.regexp = new RegExp(re, 'su');
      } catch {
        this.invalid = true;
      }
    }
  }

  match(path: string): boolean {
    switch (this.matchType) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      default:
        return !this.invalid && (this.regexp?.test(path) ?? false);
    }
  }
}

/** A compiled .dockerignore. Paths are relative to the context root, `/`-separated. */
export class IgnoreMatcher {
  private readonly patterns: CompiledPattern[];
  /** True when some pattern is an exception: an ignored directory may still hold kept files. */
  readonly hasExceptions: boolean;

  constructor(patterns: IgnorePattern[]) {
    this.patterns = patterns.filter((p) => p.pattern !== '').map((p) => new CompiledPattern(p));
    this.hasExceptions = this.patterns.some((p) => p.exclusion);
  }

  static fromText(text: string): IgnoreMatcher {
    return new IgnoreMatcher(parseDockerignore(text));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether `path` (or one of its parent directories) is excluded, the last match winning. */
  ignores(path: string): boolean {
    const file = posix.normalize(path).replace(/^\/+/, '').replace(/\/+$/, '');
    if (file === '' || file === '.') return false;
    const parent = posix.dirname(file);
    const parentDirs = parent === '.' ? [] : parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      if (!match) {
        for (let i = 0; i < parentDirs.length; i++) {
          if (pattern.match(parentDirs.slice(0, i + 1).join('/'))) {
            match = true;
            break;
          }
        }
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }
}
