import { main } from './main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`berth: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
