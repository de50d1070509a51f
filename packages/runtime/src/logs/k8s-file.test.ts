import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLogTime, readLogs, rotateLog } from './k8s-file.js';

describe('k8s-file logs', () => {
  it('parses conmon timestamps with offsets to nanoseconds', () => {
    expect(parseLogTime('2026-11-28T04:06:22.819706830+00:00')).toBe(BigInt(Date.UTC(2026, 10, 28, 4, 6, 22)) * 1_000_000n + 819_706_830n);
    expect(parseLogTime('2026-11-28T06:06:22.000000001+02:00')).toBe(BigInt(Date.UTC(2026, 10, 28, 4, 6, 22)) * 1_000_000n + 1n);
    expect(parseLogTime('2026-11-28T04:06:22Z')).toBe(BigInt(Date.UTC(2026, 10, 28, 4, 6, 22)) * 1_000_000n);
    expect(() => parseLogTime('yesterday')).toThrow(/bad log timestamp/);
  });

  it('merges partial records, reads rotated files oldest first and skips garbage', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
    try {
      const log = path.join(dir, 'ctr.log');
      await writeFile(log, '2026-01-01T00:00:01.000000000+00:00 stdout F one\n');
      await rotateLog(log, 3);
      await writeFile(
        log,
        [
          '2026-01-01T00:00:02.000000000+00:00 stdout P tw',
          'not a record',
          '2026-01-01T00:00:02.500000000+00:00 stderr F err',
          '2026-01-01T00:00:03.000000000+00:00 stdout F o',
          '2026-01-01T00:00:04.000000000+00:00 stdout P tail-without-newline',
          '',
        ].join('\n'),
      );
      const out: string[] = [];
      for await (const e of readLogs(log, 3, {}, async () => true)) out.push(`${e.stream}:${e.complete ? 'F' : 'P'}:${e.data.toString()}`);
      expect(out).toEqual(['stdout:F:one\n', 'stderr:F:err\n', 'stdout:F:two\n', 'stdout:P:tail-without-newline']);
      // rotation drops beyond maxFiles
      await rotateLog(log, 2);
      await writeFile(log, '');
      const kept: string[] = [];
      for await (const e of readLogs(log, 2, {}, async () => true)) kept.push(e.data.toString());
      expect(kept).toEqual(['err\n', 'two\n', 'tail-without-newline']); // "one" was in the file dropped
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads a large log a bounded batch at a time, as the consumer pulls', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
    try {
      const log = path.join(dir, 'ctr.log');
      const record = (i: number, word: string): string => `2026-01-01T00:00:01.000000000+00:00 stdout F ${word} ${String(i).padStart(6, '0')}\n`;
      const count = 100_000; // ~6.5 MB
      const long = 'x'.repeat(3 * 1024 * 1024); // one line longer than a batch
      await writeFile(log, Array.from({ length: count }, (_, i) => record(i, 'original')).join('') + `2026-01-01T00:00:02.000000000+00:00 stdout F ${long}\n`);
      const entries = readLogs(log, 1, {}, async () => true)[Symbol.asyncIterator]();
      const first = await entries.next();
      expect(first.value?.data.toString()).toBe('original 000000\n');
      // Rewrite the second half of the file in place. A reader that loaded the whole file at the
      // first pull would still hand out the old text; a bounded one reads the new bytes.
      const { open } = await import('node:fs/promises');
      const fh = await open(log, 'r+');
      const from = count / 2;
      const offset = Buffer.byteLength(record(0, 'original')) * from;
      await fh.write(Array.from({ length: count - from }, (_, i) => record(from + i, 'modified')).join(''), offset);
      await fh.close();
      const rest: string[] = [];
      for (let e = await entries.next(); !e.done; e = await entries.next()) rest.push(e.value.data.toString());
      expect(rest).toHaveLength(count);
      expect(rest[0]).toBe('original 000001\n');
      expect(rest[from - 2]).toBe('original 049999\n');
      expect(rest[from - 1]).toBe('modified 050000\n');
      expect(rest[count - 2]).toBe('modified 099999\n');
      expect(rest[count - 1]).toBe(`${long}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
