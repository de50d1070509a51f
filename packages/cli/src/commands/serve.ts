import type { Cli, Opts } from '../context.js';
import { ExitError } from '../context.js';

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/** `berth daemon [berthd flags]`: runs berthd in this process until SIGINT/SIGTERM. Loaded only here. */
export async function daemon(cli: Cli, args: string[]): Promise<number> {
  const mod = await import('@berth/daemon');
  let parsed: ReturnType<typeof mod.parseDaemonArgs>;
  try {
    parsed = mod.parseDaemonArgs(args);
  } catch (error) {
    if (error instanceof mod.DaemonArgsError) throw new ExitError(125, `berth daemon: ${error.message}\n\n${mod.DAEMON_USAGE}`);
    throw error;
  }
  if (parsed.help) {
    cli.out(`${mod.DAEMON_USAGE}\n`);
    return 0;
  }
  if (parsed.version) {
    cli.out(`berthd version ${mod.ENGINE_VERSION} (API ${mod.API_VERSION})\n`);
    return 0;
  }
  const running = await mod.startDaemon(parsed.options);
  cli.err(`berthd listening on ${running.addresses.join(', ')} (Ctrl-C stops it; containers keep running)\n`);
  await untilSignal();
  await running.close();
  return 0;
}

/** `berth registry serve --addr --root [--htpasswd] [--tls-cert --tls-key]`. */
export async function registry(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const mod = await import('@berth/registry');
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new ExitError(125, 'berth registry serve: --tls-cert and --tls-key go together');
  const server = await mod.serveRegistry({
    addr: String(opts.addr ?? '127.0.0.1:5000'),
    root: String(opts.root),
    ...(opts.htpasswd ? { htpasswd: String(opts.htpasswd) } : {}),
    ...(opts.tlsCert ? { tlsCert: String(opts.tlsCert), tlsKey: String(opts.tlsKey) } : {}),
  });
  cli.err(`registry serving ${String(opts.root)} at ${server.url} (Ctrl-C stops it)\n`);
  await untilSignal();
  await server.close();
  return 0;
}
