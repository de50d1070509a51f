import { describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../state/container-store.js';
import { nextDelay, shouldRestart } from './restart.js';

function record(name: string, max = 0, manual = false, restarts = 0): ContainerRecord {
  return {
    HostConfig: { RestartPolicy: { Name: name as 'always', MaximumRetryCount: max } },
    HasBeenManuallyStopped: manual,
    RestartCount: restarts,
  } as ContainerRecord;
}

describe('restart policies', () => {
  it('no never restarts', () => {
    expect(shouldRestart(record('no'), 1)).toBe(false);
    expect(shouldRestart(record(''), 1)).toBe(false);
  });

  it('always and unless-stopped restart unless stopped by hand', () => {
    expect(shouldRestart(record('always'), 0)).toBe(true);
    expect(shouldRestart(record('unless-stopped'), 0)).toBe(true);
    expect(shouldRestart(record('always', 0, true), 0)).toBe(false);
    expect(shouldRestart(record('unless-stopped', 0, true), 0)).toBe(false);
  });

  it('on-failure restarts non-zero exits up to the maximum', () => {
    expect(shouldRestart(record('on-failure'), 0)).toBe(false);
    expect(shouldRestart(record('on-failure'), 1)).toBe(true);
    expect(shouldRestart(record('on-failure', 2, false, 1), 1)).toBe(true);
    expect(shouldRestart(record('on-failure', 2, false, 2), 1)).toBe(false);
  });

  it("doubles the delay from 100 ms up to a minute, and resets after a 10 s run (Docker's back-off)", () => {
    let delay = 0;
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      delay = nextDelay(delay, 50);
      seen.push(delay);
    }
    expect(seen.slice(0, 5)).toEqual([100, 200, 400, 800, 1600]);
    expect(seen.at(-1)).toBe(60_000);
    expect(nextDelay(60_000, 10_000)).toBe(100);
  });
});
