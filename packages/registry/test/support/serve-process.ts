/**
 * A registry server in its own process, as `berth registry serve` runs it: started by tests
 * (crash test, skopeo) and the benchmark with `tsx`. Usage:
 *   tsx serve-process.ts --root DIR [--addr 127.0.0.1:0] [--htpasswd FILE] [--quiet] [--no-fsync]
 * Prints one line `listening <url>` on stdout once it accepts connections.
 */
import { serveRegistry } from '@berth/registry';

const args = process.argv.slice(2);
function arg(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const root = arg('root');
if (!root) {
  process.stderr.write('serve-process: --root is required\n');
  process.exit(2);
}
const running = await serveRegistry({
  addr: arg('addr') ?? '127.0.0.1:0',
  root,
  ...(arg('htpasswd') ? { htpasswd: arg('htpasswd')! } : {}),
  log: args.includes('--quiet') ? false : 'json',
  ...(args.includes('--no-fsync') ? { fsync: false } : {}),
  gc: false,
});
process.stdout.write(`listening ${running.url}\n`);
const stop = (): void => {
  void running.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
