import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../errors.js';
import { DetachKeyMatcher, parseDetachKeys } from './detach-keys.js';

describe('parseDetachKeys', () => {
  it('reads ctrl-<c> and single characters as moby does; empty means ctrl-p,ctrl-q', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys(null)]).toEqual([16, 17]);
    expect([...parseDetachKeys('')]).toEqual([16, 17]);
    expect([...parseDetachKeys('ctrl-x,x')]).toEqual([24, 120]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,a,\\')]).toEqual([0, 27, 28, 29, 30, 31, 97, 92]);
  });

  it('refuses anything else (an invalid-parameter error, a 400)', () => {
    for (const bad of ['ctrl-', 'ctrl-P', 'ctrl-1', 'shift-a', 'ab', 'ctrl-p,', 'é']) {
      let caught: unknown;
      try {
        parseDetachKeys(bad);
      } catch (error) {
        caught = error;
      }
      expect(caught, bad).toBeInstanceOf(InvalidParameterError);
      expect((caught as Error).message, bad).toContain('Invalid detach keys');
    }
  });
});

describe('DetachKeyMatcher', () => {
  const feed = (keys: string, chunks: string[]): { forwarded: string; detached: boolean } => {
    const m = new DetachKeyMatcher(parseDetachKeys(keys));
    let forwarded = '';
    for (const c of chunks) {
      const r = m.push(Buffer.from(c, 'latin1'));
      forwarded += r.forward.toString('latin1');
      if (r.detached) return { forwarded, detached: true };
    }
    return { forwarded, detached: false };
  };

  it('detaches on the sequence across chunks and drops what follows it', () => {
    expect(feed('ctrl-p,ctrl-q', ['ab\x10', '\x11cd'])).toEqual({ forwarded: 'ab', detached: true });
    expect(feed('ctrl-x,x', ['\x18', 'x'])).toEqual({ forwarded: '', detached: true });
    expect(feed('ctrl-a', ['xy\x01z'])).toEqual({ forwarded: 'xy', detached: true });
  });

  it('passes a partial sequence on, held bytes first, when the next byte does not continue it', () => {
    expect(feed('ctrl-x,x', ['\x18', 'y\n'])).toEqual({ forwarded: '\x18y\n', detached: false });
    expect(feed('a,b,c', ['ab', 'd'])).toEqual({ forwarded: 'abd', detached: false });
    // A mismatch that starts the sequence again is held again.
    expect(feed('ctrl-p,ctrl-q', ['\x10\x10', '\x11'])).toEqual({ forwarded: '\x10', detached: true });
    // Held bytes stay held at the end of a chunk.
    expect(feed('ctrl-p,ctrl-q', ['ab\x10'])).toEqual({ forwarded: 'ab', detached: false });
  });
});
