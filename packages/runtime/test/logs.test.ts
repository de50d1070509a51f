import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LogEntry } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { createHarness } from './harness.js';
import type { Harness } from './harness.js';

async function all(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}
const text = (es: LogEntry[]): string[] => es.map((e) => `${e.stream}:${e.data.toString()}`);

describePrivileged('runtime: logs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keeps stdout and stderr apart with nanosecond timestamps; since, until, tail, follow', async () => {
    const spec = await h.spec(['sh', '-c', 'echo a; echo b >&2; sleep 0.3; echo c; printf partial']);
    await h.runtime.create(spec);
    const t0 = BigInt(Date.now()) * 1_000_000n;
    await h.runtime.start(spec.id);
    const followed = await all(h.runtime.logs(spec.id, { follow: true }));
    expect(text(followed)).toEqual(['stdout:a\n', 'stderr:b\n', 'stdout:c\n', 'stdout:partial']);
    expect(followed.at(-1)?.complete).toBe(false);
    const times = followed.map((e) => e.time);
    expect(times[0]).toBeGreaterThan(t0 - 1_000_000_000n);
    expect(times[2]! - times[1]!).toBeGreaterThan(200_000_000n); // the 0.3 s sleep, in ns
    expect(times.some((t) => t % 1000n !== 0n)).toBe(true); // sub-microsecond digits are there

    const c = followed[2]!.time;
    expect(text(await all(h.runtime.logs(spec.id, { since: c })))).toEqual(['stdout:c\n', 'stdout:partial']);
    expect(text(await all(h.runtime.logs(spec.id, { until: c })))).toEqual(['stdout:a\n', 'stderr:b\n']);
    expect(text(await all(h.runtime.logs(spec.id, { tail: 2 })))).toEqual(['stdout:c\n', 'stdout:partial']);
    expect(text(await all(h.runtime.logs(spec.id, { stderr: false })))).toEqual(['stdout:a\n', 'stdout:c\n', 'stdout:partial']);
    expect(text(await all(h.runtime.logs(spec.id, { stdout: false })))).toEqual(['stderr:b\n']);
    expect(await all(h.runtime.logs(spec.id, { tail: 0 }))).toEqual([]);
    await h.runtime.delete(spec.id);
  });

  it('keeps the logs for the next container of the same id with delete({ keepLogs })', async () => {
    const first = await h.spec(['echo', 'first']);
    await h.runtime.create(first);
    await h.runtime.start(first.id);
    await h.runtime.wait(first.id);
    await h.runtime.delete(first.id, { keepLogs: true });
    const second = { ...(await h.spec(['echo', 'second'])), id: first.id };
    await h.runtime.create(second);
    await h.runtime.start(second.id);
    await h.runtime.wait(second.id);
    expect(text(await all(h.runtime.logs(second.id)))).toEqual(['stdout:first\n', 'stdout:second\n']);
    // A plain delete drops them: the next container of that id starts with an empty log.
    await h.runtime.delete(second.id);
    const third = { ...(await h.spec(['echo', 'third'])), id: first.id };
    await h.runtime.create(third);
    await h.runtime.start(third.id);
    await h.runtime.wait(third.id);
    expect(text(await all(h.runtime.logs(third.id)))).toEqual(['stdout:third\n']);
    await h.runtime.delete(third.id, { keepLogs: true });
    expect(existsSync(`${h.stateDir}/kept-logs/${first.id}/ctr.log`)).toBe(true);
    // Deleting an id whose container is gone still drops the logs kept for it.
    await expect(h.runtime.delete(third.id)).rejects.toThrow(/no such container/i);
    expect(existsSync(`${h.stateDir}/kept-logs/${first.id}`)).toBe(false);
  });

  it('rotates by size and keeps the configured number of files, losing nothing recent', async () => {
    const line = 'x'.repeat(90);
    const spec = await h.spec(['sh', '-c', `i=0; while [ $i -lt 60 ]; do echo "$i ${line}"; i=$((i+1)); sleep 0.03; done`], {
      logs: { maxSize: 1024, maxFiles: 3 },
    });
    const info = await h.runtime.create(spec);
    await h.runtime.start(spec.id);
    const done = h.runtime.wait(spec.id);
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      await h.runtime.rotateLogs();
      await new Promise((r) => setTimeout(r, 50));
    }
    await h.runtime.rotateLogs();
    expect(existsSync(`${info.logPath}.1`)).toBe(true);
    expect(existsSync(`${info.logPath}.2`)).toBe(true);
    expect(existsSync(`${info.logPath}.3`)).toBe(false);
    const entries = await all(h.runtime.logs(spec.id));
    const numbers = entries.map((e) => Number(e.data.toString().split(' ')[0]));
    expect(numbers.at(-1)).toBe(59);
    expect(numbers[0]).toBeGreaterThan(0); // the oldest were rotated away
    for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBe(numbers[i - 1]! + 1); // no gap, no reorder
    await h.runtime.delete(spec.id);
  });
});
