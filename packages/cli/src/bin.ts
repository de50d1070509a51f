import { writeOut } from './context.js';
import { main } from './main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    exitWhenIdle();
  },
  (error: unknown) => {
    writeOut(2, `berth: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
    exitWhenIdle();
  },
);

/**
 * The command is done: the process normally ends by itself now (pooled keep-alive sockets are
 * unreferenced). Should anything still hold the event loop — a response a failed command never
 * read — end anyway on the next turn instead of waiting for the daemon to close it. Output is
 * written by then: stdout and stderr writes are synchronous on Linux for files, pipes and TTYs.
 */
function exitWhenIdle(): void {
  setTimeout(() => process.exit(), 0).unref();
}
