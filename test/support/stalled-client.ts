/**
 * For tests of berthd against a client that stops reading: berthd in the test's own process (so
 * a test can count what a route takes from the runtime) on its own socket, data root, bridge,
 * firewall table and cgroup parent, with the busybox image loaded; a raw client that sends a
 * request and then reads nothing; and decoders for what it finally reads.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { promisify } from 'node:util';
import type { AttachOptions, AttachSession, Runtime } from '../../packages/runtime/src/index.js';
import { startDaemon, type RunningDaemon } from '../../packages/daemon/src/daemon.js';
import { createLogger } from '../../packages/daemon/src/logger.js';
import { docker, unmountUnder } from '../compat/support/berthd.js';
import { loadBusybox } from '../compat/support/images.js';

const run = promisify(execFile);

export interface PrivateDaemon {
  daemon: RunningDaemon;
  socketPath: string;
  /** For the docker CLI: DOCKER_HOST and a private DOCKER_CONFIG. */
  env: NodeJS.ProcessEnv;
  /** Removes the containers, then the daemon, its bridge, firewall table, mounts, cgroups and files. */
  close(): Promise<void>;
}

/** Starts berthd in this process with everything of its own; `name` tags what it creates. */
export async function startPrivateDaemon(name: string): Promise<PrivateDaemon> {
  const tag = randomBytes(3).toString('hex');
  const bridge = `b${name.slice(0, 1)}${tag}`;
  const table = `berth${name.slice(0, 1)}${tag}`;
  const cgroupParent = `berth-${name}-${tag}`;
  const dir = await mkdtemp(join(tmpdir(), `berth-${name}-`));
  const socketPath = join(dir, 'berth.sock');
  let daemon: RunningDaemon | undefined;
  const close = async (): Promise<void> => {
    if (daemon) {
      const ids = await docker(env, ['ps', '-aq']).then((r) => r.stdout.split('\n').filter(Boolean));
      if (ids.length > 0) await docker(env, ['rm', '-f', ...ids]);
      await daemon.close();
    }
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    await run('nft', ['delete', 'table', 'inet', table]).catch(() => undefined);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
    await run('sh', ['-c', `for c in /sys/fs/cgroup/${cgroupParent} /sys/fs/cgroup/*/${cgroupParent}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \\; ; done; true`]).catch(() => undefined);
  };
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socketPath}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
  delete env['DOCKER_API_VERSION'];
  try {
    daemon = await startDaemon({
      hosts: [`unix://${socketPath}`],
      dataRoot: join(dir, 'data'),
      execRoot: join(dir, 'exec'),
      cgroupParent,
      network: {
        bridgeName: bridge,
        subnet: `10.${200 + (Number.parseInt(tag.slice(0, 2), 16) % 54)}.${Number.parseInt(tag.slice(2, 4), 16)}.1/24`,
        firewallTable: table,
        bridgePrefix: `b${name.slice(0, 1)}${tag.slice(0, 2)}-`,
      },
      logger: createLogger('error'),
    });
    await loadBusybox(env);
  } catch (error) {
    await close();
    throw error;
  }
  return { daemon, socketPath, env, close };
}

/** One request on the daemon's socket (with a JSON body, if given); the whole answer. */
export function call(socketPath: string, method: string, path: string, json?: unknown): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = json === undefined ? {} : { 'Content-Type': 'application/json' };
    const req = request({ socketPath, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(json === undefined ? undefined : JSON.stringify(json));
  });
}

/** A raw connection to the daemon's socket that sends `head` (and `body`) and then reads nothing. */
export async function stalledClient(socketPath: string, head: string, body?: Buffer): Promise<Socket> {
  const sock = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.pause();
  sock.write(head);
  if (body) sock.write(body);
  return sock;
}

/** Waits until `count()` stops growing (and is not zero), then one more second. */
export async function settled(count: () => number): Promise<number> {
  let last = -1;
  for (let i = 0; i < 40 && (count() === 0 || count() !== last); i++) {
    last = count();
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 1000));
  return count();
}

/** Decodes an HTTP/1.1 200 response with a chunked body (as read off the wire) into its body. */
export function chunkedBody(raw: Buffer): Buffer {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) throw new Error(`no HTTP head in ${raw.length} bytes`);
  const head = raw.subarray(0, headEnd).toString();
  if (!/^HTTP\/1\.1 200 /.test(head)) throw new Error(`not a 200 answer: ${head.split('\r\n')[0]}`);
  if (!head.toLowerCase().includes('transfer-encoding: chunked')) throw new Error('the answer is not chunked');
  const parts: Buffer[] = [];
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error('truncated chunked body');
    const size = Number.parseInt(raw.subarray(at, lineEnd).toString(), 16);
    if (size === 0) break;
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Everything a paused client socket receives once it reads again, until the daemon ends it. */
export function readToEnd(sock: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise<Buffer>((resolve, reject) => {
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('end', () => resolve(Buffer.concat(chunks)));
    sock.once('error', reject);
    sock.resume();
  });
}

/**
 * Wraps `runtime.attach` so a test sees how much of a session's stdout its reader has taken (the
 * real stream, passed through with its backpressure); `restore()` puts the original back.
 */
export function countAttachOutput(runtime: Runtime): { taken: () => number; restore: () => void } {
  const original = runtime.attach;
  let taken = 0;
  runtime.attach = async function (this: Runtime, id: string, options?: AttachOptions): Promise<AttachSession> {
    const session = await original.call(this, id, options);
    const counted = new PassThrough({
      transform(chunk: Buffer, _encoding, callback) {
        taken += chunk.length;
        callback(null, chunk);
      },
    });
    session.stdout.pipe(counted);
    return { ...session, stdout: counted };
  };
  return {
    taken: () => taken,
    restore: () => {
      runtime.attach = original;
    },
  };
}

/**
 * A private berthd for the tests of one describe block: started before them, closed (with all it
 * made) after them. The returned view reads the running daemon.
 */
export function usePrivateDaemon(name: string): PrivateDaemon {
  let d: PrivateDaemon | undefined;
  beforeAll(async () => {
    d = await startPrivateDaemon(name);
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  }, 120_000);
  const running = (): PrivateDaemon => {
    if (!d) throw new Error(`the private berthd "${name}" did not start`);
    return d;
  };
  return {
    get daemon() {
      return running().daemon;
    },
    get socketPath() {
      return running().socketPath;
    },
    get env() {
      return running().env;
    },
    close: () => running().close(),
  };
}
