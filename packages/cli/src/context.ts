import type { BerthClient } from '@berth/client';

/** What a command implementation gets: streams, the chosen daemon host and a lazily made client. */
export interface Cli {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
  /** -H/--host, else undefined (the client then reads BERTH_HOST, DOCKER_HOST, the default socket). */
  readonly host: string | undefined;
  client(): Promise<BerthClient>;
  /** Closes the client's pooled connections if one was made. */
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

export function createCli(host: string | undefined): Cli {
  let client: Promise<BerthClient> | undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    // A getter: touching process.stdin builds its stream (and loads fs streams) — most commands never read it.
    get stdin() {
      return process.stdin;
    },
    host,
    client() {
      client ??= import('@berth/client').then(({ BerthClient }) => new BerthClient({ host, jsonTransport: 'http', userAgent: 'berth-cli/0.1.0' }));
      return client;
    },
    async dispose() {
      if (client) (await client.catch(() => undefined))?.close();
    },
    out(text) {
      process.stdout.write(text);
    },
    err(text) {
      process.stderr.write(text);
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
