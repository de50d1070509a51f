import { existsSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { LogEntry, LogReadOptions } from '../runtime/types.js';

/**
 * conmon's k8s-file log: one record per line, `<RFC 3339 time with ns> <stdout|stderr> <P|F> <bytes>`,
 * P for a partial line (cut at conmon's buffer size or at exit without newline), F for the end of
 * a line. Rotation keeps `<log>`, `<log>.1` … `<log>.<maxFiles-1>` (oldest last).
 */

/** `2026-11-28T04:06:22.819706830+00:00` → ns since the epoch. */
export function parseLogTime(s: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw new Error(`bad log timestamp: ${s}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  const frac = (m[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

interface RawRecord {
  time: bigint;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  data: Buffer;
}

function parseRecord(line: Buffer): RawRecord | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(0x20, s2 + 1);
  if (s3 < 0) return undefined;
  const stream = line.subarray(s1 + 1, s2).toString();
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  let time: bigint;
  try {
    time = parseLogTime(line.subarray(0, s1).toString());
  } catch {
    return undefined;
  }
  return { time, stream, partial: line[s2 + 1] === 0x50 /* P */, data: line.subarray(s3 + 1) };
}

export function logFiles(logPath: string, maxFiles: number): string[] {
  const files: string[] = [];
  for (let i = Math.max(1, maxFiles) - 1; i >= 1; i--) {
    if (existsSync(`${logPath}.${i}`)) files.push(`${logPath}.${i}`);
  }
  files.push(logPath);
  return files;
}

/** Shifts `<log>.k` → `<log>.k+1` and `<log>` → `<log>.1`; the caller then asks conmon to reopen. */
export async function rotateLog(logPath: string, maxFiles: number): Promise<void> {
  if (maxFiles <= 1) {
    await rm(`${logPath}.1`, { force: true });
  }
  for (let i = maxFiles - 1; i >= 1; i--) {
    const from = i === 1 ? logPath : `${logPath}.${i - 1}`;
    const to = `${logPath}.${i}`;
    if (existsSync(from)) await rename(from, to);
  }
  if (maxFiles <= 1) await rm(`${logPath}.1`, { force: true });
}

const toNs = (t: bigint | Date | undefined): bigint | undefined =>
  t === undefined ? undefined : typeof t === 'bigint' ? t : BigInt(t.getTime()) * 1_000_000n;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How many bytes of lines one `LineReader.read()` returns at most (plus one read's worth). */
const BATCH_BYTES = 1024 * 1024;

/**
 * Reads lines from a file handle from an offset; keeps an incomplete last line for later. One
 * `read()` returns a bounded batch, so a consumer that stops pulling (a stalled `logs -f` client)
 * leaves the rest of the file on disk rather than in memory.
 */
class LineReader {
  private pending = Buffer.alloc(0);
  private offset = 0;
  /** The last `read()` reached the end of the file (as it was then). */
  atEnd = false;
  constructor(readonly fh: FileHandle) {}
  async read(): Promise<Buffer[]> {
    const lines: Buffer[] = [];
    const buf = Buffer.allocUnsafe(256 * 1024);
    let size = 0;
    this.atEnd = false;
    while (size < BATCH_BYTES) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) {
        this.atEnd = true;
        break;
      }
      size += bytesRead;
      this.offset += bytesRead;
      let chunk = Buffer.concat([this.pending, buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = chunk.indexOf(0x0a)) >= 0) {
        lines.push(Buffer.from(chunk.subarray(0, nl)));
        chunk = chunk.subarray(nl + 1);
      }
      this.pending = Buffer.from(chunk);
    }
    return lines;
  }

  /** Every complete line up to the end of the file, one bounded batch at a time. */
  async *toEnd(): AsyncGenerator<Buffer[]> {
    do yield await this.read();
    while (!this.atEnd);
  }
}

/**
 * Reads a container's log across its rotated files, merging P records into whole lines. With
 * `follow`, keeps reading the current file (switching when it is rotated) until `isStopped()`
 * reports the container gone and everything written has been read.
 */
export async function* readLogs(
  logPath: string,
  maxFiles: number,
  options: LogReadOptions,
  isStopped: () => Promise<boolean>,
): AsyncGenerator<LogEntry> {
  const wantOut = options.stdout !== false;
  const wantErr = options.stderr !== false;
  const since = toNs(options.since);
  const until = toNs(options.until);
  const partial: Record<'stdout' | 'stderr', { time: bigint; parts: Buffer[] } | undefined> = { stdout: undefined, stderr: undefined };

  const accept = (e: LogEntry): boolean =>
    ((e.stream === 'stdout' && wantOut) || (e.stream === 'stderr' && wantErr)) &&
    (since === undefined || e.time >= since) &&
    (until === undefined || e.time < until);

  function* consume(lines: Buffer[]): Generator<LogEntry> {
    for (const line of lines) {
      const r = parseRecord(line);
      if (!r) continue;
      const p = partial[r.stream];
      if (r.partial) {
        if (p) p.parts.push(r.data);
        else partial[r.stream] = { time: r.time, parts: [r.data] };
        continue;
      }
      const entry: LogEntry = {
        stream: r.stream,
        time: p ? p.time : r.time,
        data: Buffer.concat([...(p ? p.parts : []), r.data, Buffer.from('\n')]),
        complete: true,
      };
      partial[r.stream] = undefined;
      if (accept(entry)) yield entry;
    }
  }
  function* flushPartials(): Generator<LogEntry> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const p = partial[stream];
      if (!p) continue;
      partial[stream] = undefined;
      const entry: LogEntry = { stream, time: p.time, data: Buffer.concat(p.parts), complete: false };
      if (accept(entry)) yield entry;
    }
  }

  const tail = options.tail !== undefined && options.tail >= 0 ? options.tail : undefined;
  const ring: LogEntry[] = [];
  const emitOrKeep = function* (e: LogEntry): Generator<LogEntry> {
    if (tail === undefined) {
      yield e;
      return;
    }
    if (tail === 0) return;
    ring.push(e);
    if (ring.length > tail) ring.shift();
  };

  // History: every rotated file, then the current one (kept open for follow).
  const files = logFiles(logPath, maxFiles);
  let current: { reader: LineReader; ino: number } | undefined;
  const open_: FileHandle[] = [];
  try {
    for (const file of files) {
      let fh: FileHandle;
      try {
        fh = await open(file, 'r');
      } catch {
        continue;
      }
      open_.push(fh);
      const reader = new LineReader(fh);
      for await (const lines of reader.toEnd()) for (const e of consume(lines)) yield* emitOrKeep(e);
      if (file === logPath) {
        current = { reader, ino: (await fh.stat()).ino };
      } else {
        await fh.close();
      }
    }
    if (!options.follow) {
      for (const e of flushPartials()) yield* emitOrKeep(e);
      yield* ring.splice(0);
      await current?.reader.fh.close();
      return;
    }
    yield* ring.splice(0);
    try {
      for (;;) {
        if (options.signal?.aborted) return;
        const stopped = await isStopped();
        if (current) for await (const lines of current.reader.toEnd()) yield* consume(lines);
        // Rotated (or created late)? Drain the old file, then switch to the new one.
        const st = await stat(logPath).catch(() => undefined);
        if (st && (!current || st.ino !== current.ino)) {
          if (current) {
            for await (const lines of current.reader.toEnd()) yield* consume(lines);
            await current.reader.fh.close();
          }
          const fh = await open(logPath, 'r');
          open_.push(fh);
          current = { reader: new LineReader(fh), ino: (await fh.stat()).ino };
          continue;
        }
        if (stopped) {
          if (current) for await (const lines of current.reader.toEnd()) yield* consume(lines);
          yield* flushPartials();
          return;
        }
        await sleep(100);
      }
    } finally {
      await current?.reader.fh.close().catch(() => undefined);
    }
  } finally {
    // Also when the consumer stops early (break out of for-await).
    for (const fh of open_) await fh.close().catch(() => undefined);
  }
}
