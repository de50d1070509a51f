import { ConnectionError, DaemonError, NotFoundError, StartError, StreamError, DEFAULT_HOST } from '@berth/client';
import { TemplateError } from './format/template.js';

/** Turns an error into the message docker users expect and a hint of what to do, plus the exit code. */
export function describeError(error: unknown, host: string | undefined): { message: string; exitCode: number } {
  const daemonHost = host ?? process.env.BERTH_HOST ?? process.env.DOCKER_HOST ?? DEFAULT_HOST;
  if (error instanceof ConnectionError) {
    return {
      exitCode: 1,
      message:
        `Cannot connect to the berth daemon at ${error.host}: ${(error.message.match(/\(([^)]+)\)$/) ?? [])[1] ?? error.message}.\n` +
        `Is berthd running? Start it with \`berth daemon\` as root (it listens on ${DEFAULT_HOST} by default; add \`&\` or run it under a service manager),\n` +
        `or point -H / BERTH_HOST at a daemon that is running (now: ${daemonHost}).`,
    };
  }
  if (error instanceof StartError) {
    return { exitCode: error.exitCode, message: `berth: Error response from daemon: ${error.message}` };
  }
  if (error instanceof NotFoundError && /no such image/i.test(error.message)) {
    return {
      exitCode: 1,
      message: `Error response from daemon: ${error.message}\n(looked in the image store of the daemon at ${daemonHost}; \`berth images\` lists what it has, \`berth pull NAME\` fetches an image)`,
    };
  }
  if (error instanceof DaemonError) return { exitCode: 1, message: `Error response from daemon: ${error.message}` };
  if (error instanceof StreamError) return { exitCode: 1, message: error.message };
  if (error instanceof TemplateError) return { exitCode: 1, message: `${error.message}` };
  const e = error as Error;
  return { exitCode: 1, message: `berth: ${e?.message ?? String(error)}` };
}
