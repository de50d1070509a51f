import type { Readable, Writable } from 'node:stream';
import type { BerthClient, CallOptions } from '../client.js';
import { ClientError, NotFoundError } from '../errors.js';
import type { ContainerCreateBody } from '../types/container.js';
import type { ProgressMessage } from '../types/image.js';
import { pullImage } from './pull.js';

export interface RunOptions extends CallOptions {
  name?: string;
  platform?: string;
  /** Pull when the daemon says "No such image" (default), or never. */
  pull?: 'missing' | 'never';
  onPull?: (message: ProgressMessage) => void;
  /** Where the container's output goes; when omitted it is collected into the result. */
  stdout?: Writable;
  stderr?: Writable;
  /** Sent as the container's stdin (the body gets OpenStdin/StdinOnce); ended → stdin EOF. */
  stdin?: Readable;
  /** Start and return without waiting (`run -d`). */
  detach?: boolean;
}

export interface RunResult {
  id: string;
  /** The container's exit code (undefined when detached). */
  statusCode?: number;
  /** Collected output when no stdout/stderr writable was given. */
  stdout: string;
  stderr: string;
  warnings: string[];
}

/** Why `start` failed, as the docker CLI turns it into an exit code: 127 not found, 126 cannot run, 125 else. */
export function startFailureExitCode(message: string): 125 | 126 | 127 {
  if (/executable file not found|no such file or directory/i.test(message)) return 127;
  if (/permission denied/i.test(message)) return 126;
  return 125;
}

/** `start` failed: `exitCode` is what `docker run` would exit with. */
export class StartError extends ClientError {
  readonly exitCode: number;
  readonly containerId: string;
  constructor(containerId: string, message: string, options?: { cause?: unknown }) {
    super('START_FAILED', 'invalid', message, options);
    this.exitCode = startFailureExitCode(message);
    this.containerId = containerId;
  }
}

/**
 * docker run, built only from the endpoints, in docker's order: create (pull on "No such image" and
 * create again) → attach → wait (registered) → start → pump output → exit code. With `HostConfig.AutoRemove`
 * the wait condition is `removed`, so the container is gone when this resolves.
 */
export async function runContainer(client: BerthClient, body: ContainerCreateBody, options: RunOptions = {}): Promise<RunResult> {
  const call: CallOptions = { signal: options.signal, timeout: options.timeout };
  const attachStdin = options.stdin !== undefined && !options.detach;
  const createBody: ContainerCreateBody = {
    AttachStdout: !options.detach,
    AttachStderr: !options.detach,
    AttachStdin: attachStdin,
    OpenStdin: attachStdin || body.OpenStdin,
    StdinOnce: attachStdin || body.StdinOnce,
    ...body,
  };
  let created;
  try {
    created = await client.containers.create(createBody, { ...call, name: options.name, platform: options.platform });
  } catch (error) {
    if (!(error instanceof NotFoundError) || !/no such image/i.test(error.message) || options.pull === 'never') throw error;
    await pullImage(client, body.Image, { ...call, platform: options.platform, onProgress: options.onPull });
    created = await client.containers.create(createBody, { ...call, name: options.name, platform: options.platform });
  }
  const id = created.Id;
  const result: RunResult = { id, stdout: '', stderr: '', warnings: created.Warnings ?? [] };

  if (options.detach) {
    await startOrThrow(client, id, call);
    return result;
  }
  const session = await client.containers.attach(id, { stdin: attachStdin, stdout: true, stderr: true, tty: body.Tty ?? false, signal: options.signal });
  const wait = client.containers.waitFor(id, { condition: body.HostConfig?.AutoRemove ? 'removed' : 'next-exit', signal: options.signal });
  await wait.waiting;
  const pump = (async () => {
    for await (const frame of session.output) {
      const target = frame.stream === 'stderr' ? options.stderr : options.stdout;
      if (target) {
        if (!target.write(frame.data)) await new Promise((r) => target.once('drain', r));
      } else if (frame.stream === 'stderr') result.stderr += frame.data.toString('utf8');
      else result.stdout += frame.data.toString('utf8');
    }
  })();
  pump.catch(() => undefined);
  try {
    await startOrThrow(client, id, call);
  } catch (error) {
    session.close();
    throw error;
  }
  if (options.stdin && attachStdin) {
    options.stdin.pipe(session.stdin as Writable);
  }
  const waited = await wait.result;
  await pump.catch(() => undefined);
  session.close();
  result.statusCode = waited.StatusCode;
  return result;
}

async function startOrThrow(client: BerthClient, id: string, call: CallOptions): Promise<void> {
  try {
    await client.containers.start(id, call);
  } catch (error) {
    throw new StartError(id, (error as Error).message, { cause: error });
  }
}
