/**
 * Streamed container output against a client that stops reading. For `GET /containers/{id}/logs?
 * follow=1` berthd must stop pulling entries from the container's log (as Docker blocks its log
 * reader), and for `POST /containers/{id}/attach` stop taking the container's output, rather than
 * queueing everything in memory for that client; once the client reads again it gets every byte
 * in order. berthd runs in this process (so the test can count what a route takes from the
 * runtime) on its own socket, data root, bridge and firewall table, with real busybox containers.
 */
import { expect, it } from 'vitest';
import type { LogEntry, LogReadOptions } from '@berth/runtime';
import type { Socket } from 'node:net';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker } from '../../../../test/compat/support/berthd.js';
import { call, chunkedBody, countAttachOutput, settled, stalledClient, usePrivateDaemon } from '../../../../test/support/stalled-client.js';
import { parseFrames } from '../api/stdcopy.js';

const LINES = 60_000;
const PAD = 'x'.repeat(90);
/** What the container prints, byte for byte (about 6 MB). */
const expected = Array.from({ length: LINES }, (_, i) => `line-${i}-${PAD}\n`).join('') + 'END\n';

describePrivileged('container output to a client that stops reading (logs follow, attach)', () => {
  const d = usePrivateDaemon('logs-bp');

  it('logs follow: stops pulling from the log while the client is stalled, then delivers every byte in order', async () => {
    const script = `i=0; while [ $i -lt ${LINES} ]; do echo "line-$i-${PAD}"; i=$((i+1)); done; echo END; exec sleep 600`;
    const started = await docker(d.env, ['run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', script]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    // Wait until the whole output is in the log file.
    for (let i = 0; i < 300; i++) {
      const tail = await call(d.socketPath, 'GET', `/v1.44/containers/${id}/logs?stdout=1&tail=1`);
      if (tail.body.subarray(8).toString() === 'END\n') break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // Count what the logs route pulls from the runtime's reader (the real one, passed through).
    const runtime = d.daemon.services.runtime;
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
      client = await stalledClient(d.socketPath, `GET /v1.44/containers/${id}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n`);
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
      const killed = await call(d.socketPath, 'POST', `/v1.44/containers/${id}/kill`);
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
    const created = await docker(d.env, ['create', '--name', 'loud', 'busybox', 'sh', '-c', script]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();

    // Count what the attach route takes from the session's stdout (the real one, passed through).
    const counted = countAttachOutput(d.daemon.services.runtime);
    const taken = counted.taken;
    let client: Socket | undefined;
    try {
      // Attach as the CLI does (upgrade to a raw stream) before the container starts; read nothing.
      client = await stalledClient(
        d.socketPath,
        `POST /v1.44/containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`,
      );
      const sock = client;
      await new Promise((r) => setTimeout(r, 300));
      const start = await call(d.socketPath, 'POST', `/v1.44/containers/${id}/start`);
      expect(start.status).toBe(204);
      const whilePaused = await settled(taken);
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
      counted.restore();
    }
  }, 120_000);
});
