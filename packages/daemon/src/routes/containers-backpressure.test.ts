/**
 * Streamed container output against a client that stops reading. For `GET /containers/{id}/logs?
 * follow=1` berthd must stop pulling entries from the container's log (as Docker blocks its log
 * reader), and for `POST /containers/{id}/attach` stop taking the container's output, rather than
 * queueing everything in memory for that client; once the client reads again it gets every byte
 * in order. berthd runs in this process (so the test can count what a route takes from the
 * runtime) on its own socket, data root, bridge and firewall table, with real busybox containers.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { AttachOptions, AttachSession, LogEntry, LogReadOptions } from '@berth/runtime';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker, unmountUnder } from '../../../../test/compat/support/berthd.js';
import { loadBusybox } from '../../../../test/compat/support/images.js';
import { parseFrames } from '../api/stdcopy.js';
import { startDaemon, type RunningDaemon } from '../daemon.js';
import { createLogger } from '../logger.js';

const run = promisify(execFile);

const LINES = 60_000;
const PAD = 'x'.repeat(90);
/** What the container prints, byte for byte (about 6 MB). */
const expected = Array.from({ length: LINES }, (_, i) => `line-${i}-${PAD}\n`).join('') + 'END\n';

/** One request on the daemon's socket; the whole body. */
function call(socketPath: string, method: string, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

/** A raw connection to the daemon's socket that sends `head` and then reads nothing. */
async function stalledClient(socketPath: string, head: string): Promise<Socket> {
  const sock = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.pause();
  sock.write(head);
  return sock;
}

/** Waits until `count()` stops growing (and is not zero), then one more second. */
async function settled(count: () => number): Promise<number> {
  let last = -1;
  for (let i = 0; i < 40 && (count() === 0 || count() !== last); i++) {
    last = count();
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 1000));
  return count();
}

/** Decodes an HTTP/1.1 response with a chunked body (as read off the wire) into its body. */
function chunkedBody(raw: Buffer): Buffer {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) throw new Error(`no HTTP head in ${raw.length} bytes`);
  const head = raw.subarray(0, headEnd).toString();
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
  expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
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

describePrivileged('container output to a client that stops reading (logs follow, attach)', () => {
  let dir = '';
  let daemon: RunningDaemon | undefined;
  let socketPath = '';
  let env: NodeJS.ProcessEnv = {};
  const tag = randomBytes(3).toString('hex');
  const bridge = `bl${tag}`;
  const table = `berthl${tag}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-logs-bp-'));
    socketPath = join(dir, 'berth.sock');
    daemon = await startDaemon({
      hosts: [`unix://${socketPath}`],
      dataRoot: join(dir, 'data'),
      execRoot: join(dir, 'exec'),
      cgroupParent: `berth-logs-${tag}`,
      network: {
        bridgeName: bridge,
        subnet: `10.${200 + (Number.parseInt(tag.slice(0, 2), 16) % 54)}.${Number.parseInt(tag.slice(2, 4), 16)}.1/24`,
        firewallTable: table,
        bridgePrefix: `bl${tag.slice(0, 2)}-`,
      },
      logger: createLogger('error'),
    });
    env = { ...process.env, DOCKER_HOST: `unix://${socketPath}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
    delete env['DOCKER_API_VERSION'];
    await loadBusybox(env);
  }, 120_000);

  afterAll(async () => {
    if (daemon) {
      const ids = await docker(env, ['ps', '-aq']).then((r) => r.stdout.split('\n').filter(Boolean));
      if (ids.length > 0) await docker(env, ['rm', '-f', ...ids]);
      await daemon.close();
    }
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    await run('nft', ['delete', 'table', 'inet', table]).catch(() => undefined);
    if (dir) {
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    }
    await run('sh', ['-c', `for c in /sys/fs/cgroup/berth-logs-${tag} /sys/fs/cgroup/*/berth-logs-${tag}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \\; ; done; true`]).catch(() => undefined);
  }, 120_000);

  it('logs follow: stops pulling from the log while the client is stalled, then delivers every byte in order', async () => {
    const script = `i=0; while [ $i -lt ${LINES} ]; do echo "line-$i-${PAD}"; i=$((i+1)); done; echo END; exec sleep 600`;
    const started = await docker(env, ['run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', script]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    // Wait until the whole output is in the log file.
    for (let i = 0; i < 300; i++) {
      const tail = await call(socketPath, 'GET', `/v1.44/containers/${id}/logs?stdout=1&tail=1`);
      if (tail.body.subarray(8).toString() === 'END\n') break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // Count what the logs route pulls from the runtime's reader (the real one, passed through).
    const runtime = daemon!.services.runtime;
    const original = runtime.logs;
    let pulled = 0;
    runtime.logs = async function* (this: typeof runtime, cid: string, options?: LogReadOptions): AsyncGenerator<LogEntry> {
      for await (const entry of original.call(this, cid, options)) {
        pulled += entry.data.length;
        yield entry;
      }
    };
    let client: Socket | undefined;
    try {
      // The client sends its request, then reads nothing.
      client = await stalledClient(socketPath, `GET /v1.44/containers/${id}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n`);
      const sock = client;
      // Let the daemon run for a while: without backpressure it reads the whole log at once.
      const whilePaused = await settled(() => pulled);
      expect(whilePaused).toBeGreaterThan(0);
      // Socket buffers and the stream's high-water mark hold a few hundred KB; the log is ~6 MB.
      expect(whilePaused, `the route pulled ${whilePaused} of ${expected.length} log bytes for a client that reads nothing`).toBeLessThan(1024 * 1024);

      // Now the client reads; the container stops, so the followed stream ends.
      const chunks: Buffer[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        sock.on('data', (c: Buffer) => chunks.push(c));
        sock.once('end', resolve);
        sock.once('error', reject);
      });
      sock.resume();
      const received = (): number => chunks.reduce((n, c) => n + c.length, 0);
      for (let i = 0; i < 300 && received() < expected.length; i++) await new Promise((r) => setTimeout(r, 50));
      const killed = await call(socketPath, 'POST', `/v1.44/containers/${id}/kill`);
      expect(killed.status).toBe(204);
      await ended;

      const { frames, rest } = parseFrames(chunkedBody(Buffer.concat(chunks)));
      expect(rest.length).toBe(0);
      expect(frames.every((f) => f.stream === 1)).toBe(true);
      const text = Buffer.concat(frames.map((f) => f.payload)).toString();
      expect(text.length).toBe(expected.length);
      expect(text === expected, 'the followed log differs from what the container printed').toBe(true);
    } finally {
      client?.destroy();
      runtime.logs = original;
    }
  }, 120_000);

  it('attach: stops taking the container\'s output while the client is stalled, then delivers every byte in order', async () => {
    const script = `i=0; while [ $i -lt ${LINES} ]; do echo "line-$i-${PAD}"; i=$((i+1)); done; echo END; exec sleep 600`;
    const created = await docker(env, ['create', '--name', 'loud', 'busybox', 'sh', '-c', script]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();

    // Count what the attach route takes from the session's stdout (the real one, passed through).
    const runtime = daemon!.services.runtime;
    const original = runtime.attach;
    let taken = 0;
    runtime.attach = async function (this: typeof runtime, cid: string, options?: AttachOptions): Promise<AttachSession> {
      const session = await original.call(this, cid, options);
      const counted = new PassThrough({
        transform(chunk: Buffer, _encoding, callback) {
          taken += chunk.length;
          callback(null, chunk);
        },
      });
      session.stdout.pipe(counted);
      return { ...session, stdout: counted };
    };
    let client: Socket | undefined;
    try {
      // Attach as the CLI does (upgrade to a raw stream) before the container starts; read nothing.
      client = await stalledClient(
        socketPath,
        `POST /v1.44/containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`,
      );
      const sock = client;
      await new Promise((r) => setTimeout(r, 300));
      const start = await call(socketPath, 'POST', `/v1.44/containers/${id}/start`);
      expect(start.status).toBe(204);
      const whilePaused = await settled(() => taken);
      // Pipes, socket buffers and high-water marks hold a few hundred KB; the output is ~6 MB.
      expect(whilePaused, `the route took ${whilePaused} of ${expected.length} output bytes for a client that reads nothing`).toBeLessThan(1024 * 1024);

      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.resume();
      const raw = (): Buffer => Buffer.concat(chunks);
      for (let i = 0; i < 600 && !raw().subarray(-4).equals(Buffer.from('END\n')); i++) await new Promise((r) => setTimeout(r, 50));
      const all = raw();
      const headEnd = all.indexOf('\r\n\r\n');
      expect(all.subarray(0, headEnd).toString()).toMatch(/^HTTP\/1\.1 101 UPGRADED\r\n/);
      const { frames, rest } = parseFrames(all.subarray(headEnd + 4));
      expect(rest.length).toBe(0);
      expect(frames.every((f) => f.stream === 1)).toBe(true);
      const text = Buffer.concat(frames.map((f) => f.payload)).toString();
      expect(text.length).toBe(expected.length);
      expect(text === expected, 'the attached output differs from what the container printed').toBe(true);
    } finally {
      client?.destroy();
      runtime.attach = original;
    }
  }, 120_000);
});
