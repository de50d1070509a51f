#!/usr/bin/env node
import { DAEMON_USAGE, parseDaemonArgs } from './args.js';
import { startDaemon } from './daemon.js';
import { ENGINE_VERSION } from './api/version.js';

/** `berthd`: runs the daemon until SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const parsed = parseDaemonArgs(process.argv.slice(2));
  if (parsed.help) {
    process.stdout.write(DAEMON_USAGE);
    return;
  }
  if (parsed.version) {
    process.stdout.write(`berthd version ${ENGINE_VERSION}\n`);
    return;
  }
  const daemon = await startDaemon(parsed.options);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}, shutting down\n`);
    daemon.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`berthd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
