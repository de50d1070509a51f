import { writeSync } from 'node:fs';
import type { BerthClient } from '@berth/client';

/** What a command implementation gets: streams, the chosen daemon host and a lazily made client. */
export interface Cli {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
  /** -H/--host, else undefined (the client then reads BERTH_HOST, DOCKER_HOST, the default socket). */
  readonly host: string | undefined;
  client(): Promise<BerthClient>;
  /** Called when the command is done (the process then exits). */
  dispose(): Promise<void>;
  out(text: string): void;
  err(text: string): void;
}

/** Ends the command with an exit code; `message` (if any) goes to stderr. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
  }
}

let streamsTaken = false;

/**
 * Writes text to stdout (1) or stderr (2). Until a command takes the streams (cli.stdout /
 * cli.stderr, for pipes and live output), text goes out with write(2) on the descriptor: building
 * process.stdout costs a short command a noticeable part of its start-up, and a synchronous write
 * keeps the order of the lines. A full non-blocking pipe (EAGAIN) hands the rest to the stream; a
 * reader that went away (EPIPE, `berth ps | head -1`) ends the output quietly, as docker does.
 */
export function writeOut(fd: 1 | 2, text: string): void {
  let rest: string | Buffer = text;
  if (!streamsTaken) {
    const bytes = Buffer.from(text);
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(fd, bytes, off);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw error;
      rest = bytes.subarray(off);
    }
  }
  (fd === 1 ? process.stdout : process.stderr).write(rest);
}

export function createCli(host: string | undefined): Cli {
  let client: Promise<BerthClient> | undefined;
  return {
    // Getters: touching process.stdout/stderr/stdin builds their streams, which most commands never use.
    get stdout() {
      streamsTaken = true;
      return process.stdout;
    },
    get stderr() {
      streamsTaken = true;
      return process.stderr;
    },
    get stdin() {
      return process.stdin;
    },
    host,
    client() {
      client ??= import('@berth/client').then(({ BerthClient }) => new BerthClient({ host, jsonTransport: 'http', userAgent: 'berth-cli/0.1.0' }));
      return client;
    },
    async dispose() {
      // Nothing to close: the client's transport unrefs a keep-alive connection once it is back in
      // its pool, so the process exits at once. (Destroying the sockets would build process.stderr — net's close
      // path compares the socket with it — for nothing.)
      await client?.catch(() => undefined);
    },
    out(text) {
      writeOut(1, text);
    },
    err(text) {
      writeOut(2, text);
    },
  };
}

/** Options commander parsed (values are strings, booleans or string lists). */
export type Opts = Record<string, unknown>;

export function list(value: unknown): string[] {
  if (value === undefined || value === null || value === false) return [];
  return Array.isArray(value) ? (value as string[]) : [String(value)];
}

/** Collects repeatable options (`-e A -e B`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
