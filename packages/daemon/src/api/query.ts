import { InvalidParameterError } from '../errors.js';

/**
 * moby's httputils.BoolValue: anything but "", "0", "no", "false" and "none" is true
 * (the CLI sends `1`, dockerode sends `true`).
 */
export function boolValue(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null) return false;
  const value = raw.trim().toLowerCase();
  return !(value === '' || value === '0' || value === 'no' || value === 'false' || value === 'none');
}

/** moby's BoolValueOrDefault: the default when the parameter is absent or empty. */
export function boolValueOrDefault(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  return boolValue(query, name);
}

/** An integer query parameter; absent or empty gives the fallback, anything else not integral is a 400. */
export function intValue(query: URLSearchParams, name: string, fallback: number): number;
export function intValue(query: URLSearchParams, name: string, fallback: number | undefined): number | undefined;
export function intValue(query: URLSearchParams, name: string, fallback: number | undefined): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new InvalidParameterError(`invalid value for ${name}: ${raw}`);
  return Number.parseInt(raw, 10);
}

/** Filters as moby's filters.Args: a key maps to a set of values. */
export class Filters {
  readonly #args: Map<string, Set<string>>;

  constructor(args: Map<string, Set<string>> = new Map()) {
    this.#args = args;
  }

  has(key: string): boolean {
    return (this.#args.get(key)?.size ?? 0) > 0;
  }

  get(key: string): string[] {
    return [...(this.#args.get(key) ?? [])];
  }

  keys(): string[] {
    return [...this.#args.keys()].filter((k) => this.has(k));
  }

  /** Rejects keys the endpoint does not know, like moby's Validate (400 "invalid filter 'x'"). */
  validate(accepted: readonly string[]): void {
    for (const key of this.keys()) {
      if (!accepted.includes(key)) throw new InvalidParameterError(`invalid filter '${key}'`);
    }
  }

  /** True when the key is absent, or when one of its values matches. */
  match(key: string, test: (value: string) => boolean): boolean {
    const values = this.#args.get(key);
    if (!values || values.size === 0) return true;
    for (const value of values) if (test(value)) return true;
    return false;
  }

  /** Label filters: every `key` or `key=value` entry must hold. */
  matchLabels(key: string, labels: Record<string, string> | null | undefined): boolean {
    const values = this.#args.get(key);
    if (!values || values.size === 0) return true;
    const have = labels ?? {};
    for (const spec of values) {
      const eq = spec.indexOf('=');
      if (eq < 0) {
        if (!(spec in have)) return false;
      } else if (have[spec.slice(0, eq)] !== spec.slice(eq + 1)) return false;
    }
    return true;
  }

  /** Boolean-valued filters such as dangling=true. */
  boolean(key: string): boolean | undefined {
    const values = this.get(key);
    if (values.length === 0) return undefined;
    const v = values[0]!.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new InvalidParameterError(`invalid filter '${key}=${values[0]}'`);
  }
}

/**
 * Parses the `filters` query parameter in both forms moby's FromJSON accepts: the map form
 * `{"label":{"a=b":true}}` the CLI sends and the legacy array form `{"label":["a=b"]}` that
 * dockerode and testcontainers send.
 */
export function parseFilters(raw: string | null): Filters {
  const args = new Map<string, Set<string>>();
  if (raw === null || raw.trim() === '') return new Filters(args);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (cause) {
    throw new InvalidParameterError(`invalid filters: ${raw}`, { cause });
  }
  if (parsed === null) return new Filters(args);
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidParameterError(`invalid filters: ${raw}`);
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const set = new Set<string>();
    if (Array.isArray(value)) {
      for (const v of value) {
        if (typeof v !== 'string') throw new InvalidParameterError(`invalid filters: ${raw}`);
        set.add(v);
      }
    } else if (value !== null && typeof value === 'object') {
      for (const [v, on] of Object.entries(value as Record<string, unknown>)) if (on) set.add(v);
    } else {
      throw new InvalidParameterError(`invalid filters: ${raw}`);
    }
    args.set(key, set);
  }
  return new Filters(args);
}
