import { InvalidParameterError } from '../errors.js';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL_SPECIAL: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };

/**
 * Parses a `detachKeys` value as moby's `term.ToBytes` does: comma-separated keys, each a single
 * character or `ctrl-<c>` with `<c>` one of `a`–`z`, `@`, `[`, `\`, `]`, `^`, `_`. An empty or
 * missing value means the default `ctrl-p,ctrl-q`. Anything else is a 400, as with Docker.
 */
export function parseDetachKeys(spec: string | null | undefined): Buffer {
  const value = spec === null || spec === undefined || spec === '' ? DEFAULT_DETACH_KEYS : spec;
  const codes: number[] = [];
  for (const key of value.split(',')) {
    if (key.length === 1) {
      codes.push(key.charCodeAt(0));
      continue;
    }
    const ctrl = /^ctrl-(.)$/.exec(key);
    const c = ctrl?.[1];
    if (c !== undefined && c >= 'a' && c <= 'z') codes.push(c.charCodeAt(0) - 96);
    else if (c !== undefined && CTRL_SPECIAL[c] !== undefined) codes.push(CTRL_SPECIAL[c]);
    else throw new InvalidParameterError(`Invalid detach keys (${value}) provided`);
  }
  if (codes.some((code) => code > 0x7f)) throw new InvalidParameterError(`Invalid detach keys (${value}) provided`);
  return Buffer.from(codes);
}

/**
 * Watches a stdin byte stream for the detach sequence, across chunk boundaries (moby's
 * `escapeProxy`): bytes that may start the sequence are held back; if the next byte does not
 * continue it they are released ahead of it, and when the sequence completes it is swallowed and
 * whatever follows it in the chunk is dropped (the attach ends there).
 */
export class DetachKeyMatcher {
  readonly #keys: Buffer;
  #matched = 0;

  constructor(keys: Buffer) {
    this.#keys = keys;
  }

  /** The bytes of `chunk` (and of a held-back prefix) to pass on, and whether to detach now. */
  push(chunk: Buffer): { forward: Buffer; detached: boolean } {
    const keys = this.#keys;
    if (keys.length === 0) return { forward: chunk, detached: false };
    if (this.#matched === 0 && !chunk.includes(keys[0]!)) return { forward: chunk, detached: false };
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.#matched > 0 && byte !== keys[this.#matched]) {
        for (let i = 0; i < this.#matched; i++) out.push(keys[i]!);
        this.#matched = 0;
      }
      if (byte === keys[this.#matched]) {
        this.#matched += 1;
        if (this.#matched === keys.length) {
          this.#matched = 0;
          return { forward: Buffer.from(out), detached: true };
        }
      } else {
        out.push(byte);
      }
    }
    return { forward: Buffer.from(out), detached: false };
  }
}
