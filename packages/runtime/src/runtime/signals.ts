import { constants } from 'node:os';
import { InvalidSpecError } from '../errors.js';

const SIGNALS = constants.signals as Record<string, number>;

/**
 * `SIGTERM`, `TERM`, `term`, `15`, 15 → 15. Throws `InvalidSpecError` for anything else, so a typo
 * never turns into SIGKILL.
 */
export function parseSignal(signal: string | number): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal > 0 && signal < 65) return signal;
    throw new InvalidSpecError(`invalid signal: ${signal}`);
  }
  const s = signal.trim().toUpperCase();
  if (/^\d+$/.test(s)) return parseSignal(Number(s));
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name);
  if (rt) return 34 + Number(rt[1] ?? 0);
  const n = SIGNALS[name];
  if (n === undefined) throw new InvalidSpecError(`invalid signal: ${signal}`);
  return n;
}
