/**
 * The client → container direction of attach: a container that does not read its stdin makes
 * berthd stop reading the client (the hijacked connection, the websocket) instead of queueing the
 * client's input without bound, and once the container exits the client is not left hanging; and
 * detach keys (`detachKeys`, on a TTY) over the websocket attach and the hijacked one. berthd runs
 * in this process (so the test can count what a route hands to the container's stdin) on its own
 * socket, data root, bridge and firewall table, with real busybox containers.
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AttachOptions, AttachSession } from '@berth/runtime';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker } from '../../../../test/compat/support/berthd.js';
import { call, settled, usePrivateDaemon } from '../../../../test/support/stalled-client.js';

/** What the client tries to send to a container that never reads its stdin. */
const INPUT_BYTES = 32 * 1024 * 1024;
/** Pipes, socket buffers and high-water marks hold a few hundred KB at most. */
const BOUND = 2 * 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stands between a route and the container's real stdin, keeping the real one's backpressure:
 * `offered()` is every byte the route has handed to stdin so far, taken on or still queued here.
 */
function countingStdin(real: Writable): { stdin: Writable; offered: () => number } {
  let passed = 0;
  // The chunk being passed on: `writableLength` counts it until its callback.
  let current = 0;
  const stdin = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      passed += chunk.length;
      current = chunk.length;
      const done = (): void => {
        current = 0;
        callback();
      };
      if (real.write(chunk)) done();
      else real.once('drain', done);
    },
    final(callback) {
      real.end();
      callback();
    },
    destroy(error, callback) {
      real.destroy();
      callback(error);
    },
  });
  real.once('close', () => stdin.destroy());
  real.on('error', () => undefined);
  stdin.on('error', () => undefined);
  return { stdin, offered: () => passed - current + stdin.writableLength };
}

/** An upgraded (raw) attach connection as the CLI opens it; the head bytes are consumed. */
async function rawAttach(socketPath: string, path: string): Promise<{ sock: Socket; output: () => string; ended: Promise<void> }> {
  const sock = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.write(`POST ${path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
  const all = (): string => Buffer.concat(chunks).toString('latin1');
  for (let i = 0; i < 200 && !all().includes('\r\n\r\n'); i++) await sleep(25);
  expect(all()).toMatch(/^HTTP\/1\.1 101 UPGRADED\r\n/);
  return { sock, output: () => all().slice(all().indexOf('\r\n\r\n') + 4), ended };
}

interface WsSession {
  socket: WebSocket;
  output: () => string;
  closed: Promise<number>;
  waitFor(text: string): Promise<void>;
}

function openWs(socketPath: string, path: string): Promise<WsSession> {
  const socket = new WebSocket(`ws+unix://${socketPath}:${path}`);
  const chunks: Buffer[] = [];
  socket.on('message', (data: Buffer) => chunks.push(Buffer.from(data)));
  const output = (): string => Buffer.concat(chunks).toString('latin1');
  const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        output,
        closed,
        waitFor: async (text) => {
          for (let i = 0; i < 400 && !output().includes(text); i++) await sleep(50);
          if (!output().includes(text)) throw new Error(`no ${JSON.stringify(text)} within 20 s; got ${JSON.stringify(output())}`);
        },
      }),
    );
  });
}

/** Resolves with `value`, or rejects after `ms` saying what did not happen. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what} did not happen within ${ms} ms`)))]);
}

describePrivileged('attach stdin: backpressure from the container to the client, and detach keys', () => {
  const d = usePrivateDaemon('stdin-bp');

  /** Wraps the runtime's attach so the test sees what the route writes into stdin. */
  function countAttachStdin(): { offered: () => number; restore: () => void } {
    const runtime = d.daemon.services.runtime;
    const original = runtime.attach;
    let counter: (() => number) | undefined;
    runtime.attach = async function (this: typeof runtime, cid: string, options?: AttachOptions): Promise<AttachSession> {
      const session = await original.call(this, cid, options);
      if (!session.stdin) return session;
      const counted = countingStdin(session.stdin);
      counter = counted.offered;
      return { ...session, stdin: counted.stdin };
    };
    return { offered: () => counter?.() ?? 0, restore: () => (runtime.attach = original) };
  }

  it('hijacked attach: stops reading a client whose input the container does not read; its exit ends the attach', async () => {
    const started = await docker(d.env, ['run', '-d', '-i', '--name', 'deaf-raw', 'busybox', 'sleep', '300']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const counting = countAttachStdin();
    let client: Socket | undefined;
    try {
      const attached = await rawAttach(d.socketPath, `/v1.44/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
      client = attached.sock;
      // Hand the whole input to the client socket at once; it sends as fast as berthd reads.
      const block = Buffer.alloc(64 * 1024, 0x61);
      for (let sent = 0; sent < INPUT_BYTES; sent += block.length) client.write(block);
      const offered = await settled(counting.offered);
      const leftOnClient = client.writableLength;
      expect(offered, `berthd handed ${offered} of ${INPUT_BYTES} input bytes to a stdin nobody reads`).toBeLessThan(BOUND);
      expect(leftOnClient, `the client still holds ${leftOnClient} bytes: berthd took the rest`).toBeGreaterThan(INPUT_BYTES - BOUND);

      // The container exits: the paused client side must not keep the attach open.
      const killed = await call(d.socketPath, 'POST', `/v1.44/containers/${id}/kill`);
      expect(killed.status).toBe(204);
      await within(attached.ended, 15_000, 'the attach connection closing after the container exited');
    } finally {
      client?.destroy();
      counting.restore();
    }
  }, 120_000);

  it('websocket attach: stops reading a client whose input the container does not read; its exit closes the websocket', async () => {
    const started = await docker(d.env, ['run', '-d', '-i', '--name', 'deaf-ws', 'busybox', 'sleep', '300']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const counting = countAttachStdin();
    let ws: WsSession | undefined;
    try {
      ws = await openWs(d.socketPath, `/v1.44/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1`);
      const block = Buffer.alloc(64 * 1024, 0x62);
      for (let sent = 0; sent < INPUT_BYTES; sent += block.length) ws.socket.send(block, { binary: true });
      const offered = await settled(counting.offered);
      const leftOnClient = ws.socket.bufferedAmount;
      expect(offered, `berthd handed ${offered} of ${INPUT_BYTES} input bytes to a stdin nobody reads`).toBeLessThan(BOUND);
      expect(leftOnClient, `the client still holds ${leftOnClient} bytes: berthd took the rest`).toBeGreaterThan(INPUT_BYTES - BOUND);

      const killed = await call(d.socketPath, 'POST', `/v1.44/containers/${id}/kill`);
      expect(killed.status).toBe(204);
      expect(await within(ws.closed, 15_000, 'the websocket closing after the container exited')).toBe(1000);
    } finally {
      ws?.socket.terminate();
      counting.restore();
    }
  }, 120_000);

  it('websocket attach: detachKeys across messages closes the websocket, the container keeps running; a partial sequence is passed on', async () => {
    const started = await docker(d.env, ['run', '-d', '-i', '-t', '--name', 'cat-ws', 'busybox', 'cat']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const ws = await openWs(d.socketPath, `/v1.44/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,x`);
    try {
      ws.socket.send(Buffer.from('hello\n'), { binary: true });
      // The terminal echoes the line, then cat prints it.
      await ws.waitFor('hello\r\nhello\r\n');
      // ctrl-x then y is not the sequence: both bytes reach cat, which prints them raw (the
      // terminal's own echo shows ctrl-x as "^X").
      ws.socket.send(Buffer.from([0x18]), { binary: true });
      await sleep(200);
      ws.socket.send(Buffer.from('y\n'), { binary: true });
      await ws.waitFor('\x18y\r\n');
      // ctrl-x, then x in a second message: detach.
      ws.socket.send(Buffer.from([0x18]), { binary: true });
      await sleep(200);
      ws.socket.send(Buffer.from('x'), { binary: true });
      expect(await within(ws.closed, 10_000, 'the websocket closing on the detach keys')).toBe(1000);
    } finally {
      ws.socket.terminate();
    }
    const inspect = await call(d.socketPath, 'GET', `/v1.44/containers/${id}/json`);
    expect((JSON.parse(inspect.body.toString()) as { State: { Running: boolean } }).State.Running).toBe(true);

    // The default sequence is ctrl-p,ctrl-q; cat still answers a new attach.
    const again = await openWs(d.socketPath, `/v1.44/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1`);
    try {
      again.socket.send(Buffer.from('again\n'), { binary: true });
      await again.waitFor('again\r\nagain\r\n');
      again.socket.send(Buffer.from([0x10, 0x11]), { binary: true });
      expect(await within(again.closed, 10_000, 'the websocket closing on ctrl-p,ctrl-q')).toBe(1000);
    } finally {
      again.socket.terminate();
    }
    const after = await call(d.socketPath, 'GET', `/v1.44/containers/${id}/json`);
    expect((JSON.parse(after.body.toString()) as { State: { Running: boolean } }).State.Running).toBe(true);

    // A sequence that is not one is refused before the upgrade, as Docker does.
    await expect(openWs(d.socketPath, `/v1.44/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,bogus`)).rejects.toMatchObject({ statusCode: 400 });
  }, 120_000);

  it('hijacked attach: detachKeys ends the attach, the container keeps running', async () => {
    const started = await docker(d.env, ['run', '-d', '-i', '-t', '--name', 'cat-raw', 'busybox', 'cat']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const attached = await rawAttach(d.socketPath, `/v1.44/containers/${id}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,x`);
    try {
      attached.sock.write('hello\n');
      for (let i = 0; i < 400 && !attached.output().includes('hello\r\nhello\r\n'); i++) await sleep(50);
      expect(attached.output()).toContain('hello\r\nhello\r\n');
      attached.sock.write(Buffer.from([0x18]));
      await sleep(200);
      attached.sock.write('x');
      await within(attached.ended, 10_000, 'the attach connection closing on the detach keys');
    } finally {
      attached.sock.destroy();
    }
    const inspect = await call(d.socketPath, 'GET', `/v1.44/containers/${id}/json`);
    expect((JSON.parse(inspect.body.toString()) as { State: { Running: boolean } }).State.Running).toBe(true);
  }, 120_000);
});
