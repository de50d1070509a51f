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
});
