import type { Readable, Writable } from 'node:stream';
import { drained, pipeStdin } from '../api/context.js';
import { parseDetachKeys } from '../api/detach-keys.js';
import { boolValue } from '../api/query.js';
import type { Router } from '../api/router.js';
import { versionAtLeast } from '../api/version.js';
import { acceptWebSocket, checkHandshake, type WebSocketConnection } from '../api/websocket.js';
import { InvalidParameterError } from '../errors.js';
import type { DaemonServices } from './context.js';

/**
 * `GET /containers/{id}/attach/ws`: attach over a WebSocket (moby `wsContainersAttach`).
 * Output is never multiplexed, TTY or not: each chunk of the container's stdout/stderr is one
 * message, binary from API 1.28 on and text before. Incoming messages are the container's stdin.
 * Before 1.42 all three streams are attached whatever the query says (moby's rule); from 1.42
 * `stdin`, `stdout` and `stderr` choose. The server closes with 1000 when the container's output
 * ends (it exited); a client that closes first detaches, the container keeps running. So does a
 * client that types the detach keys (`detachKeys`, default ctrl-p,ctrl-q; watched for on a TTY
 * only, as Docker does): the server then closes with 1000. A container that does not read its
 * stdin makes berthd stop reading the websocket until it does.
 */
export function registerAttachWebSocketRoute(router: Router, s: DaemonServices): void {
  router.add('GET', '/containers/:id/attach/ws', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    if (!ctx.isUpgrade) throw new InvalidParameterError('this endpoint needs a websocket upgrade (Connection: Upgrade, Upgrade: websocket)');
    checkHandshake(ctx.headers);
    let useStdin = true;
    let useStdout = true;
    let useStderr = true;
    if (versionAtLeast(ctx.version, '1.42')) {
      useStdin = boolValue(ctx.query, 'stdin');
      useStdout = boolValue(ctx.query, 'stdout');
      useStderr = boolValue(ctx.query, 'stderr');
    }
    const logs = boolValue(ctx.query, 'logs');
    const streamMode = boolValue(ctx.query, 'stream');
    const binary = versionAtLeast(ctx.version, '1.28');
    const detachKeys = parseDetachKeys(ctx.query.get('detachKeys'));

    // From here on the connection speaks WebSocket: errors go to the log and end in a close frame.
    const ws = acceptWebSocket(ctx.connection, ctx.headers);
    s.containers.event(record, 'attach');
    try {
      if (logs && record.RuntimeCreated) {
        for await (const entry of s.runtime.logs(record.Id, { stdout: useStdout, stderr: useStderr })) {
          if (!ws.send(entry.data, binary)) await drained(ws.socket);
        }
      }
      if (streamMode) await attachLive(s, record.Id, ws, { stdin: useStdin, stdout: useStdout, stderr: useStderr, binary, openStdin: record.Config.OpenStdin ?? false, detachKeys: record.Config.Tty ? detachKeys : null });
    } catch (error) {
      s.log.debug(`attach/ws to ${record.Id.slice(0, 12)}: ${(error as Error).message}`);
      ws.close(1011, (error as Error).message.slice(0, 120));
    } finally {
      s.containers.event(record, 'detach');
      ws.close(1000);
    }
  });
}

interface LiveOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  binary: boolean;
  openStdin: boolean;
  /** The detach sequence to watch stdin for, or null. */
  detachKeys: Buffer | null;
}

/**
 * Joins the container's stdio (waiting for start when it has not started, as `docker run`'s
 * attach does) and pumps until its output ends or the client goes away.
 */
async function attachLive(s: DaemonServices, id: string, ws: WebSocketConnection, o: LiveOptions): Promise<void> {
  let finished: Promise<void> = Promise.resolve();
  const connected = s.containers.attachWhenReady(id, async (ready) => {
    if (!ready || ws.socket.destroyed) return;
    const session = await s.runtime.attach(id, { stdin: o.stdin && o.openStdin, stdout: o.stdout, stderr: o.stderr });
    // Pump in the background: a held-back attach resolves before start goes on.
    finished = pump(ws, session, o);
  });
  const gone = ws.closed.then(() => 'gone' as const);
  if ((await Promise.race([connected.then(() => 'connected' as const), gone])) === 'gone') return;
  await finished;
}

async function pump(
  ws: WebSocketConnection,
  session: { stdin: Writable | null; stdout: Readable; stderr: Readable; close(): void },
  o: LiveOptions,
): Promise<void> {
  const forward = (source: Readable, enabled: boolean): Promise<void> => {
    const ended = new Promise<void>((resolve) => {
      source.once('end', resolve);
      source.once('close', resolve);
      source.once('error', () => resolve());
    });
    if (!enabled) {
      source.resume();
      return ended;
    }
    source.on('data', (chunk: Buffer) => {
      if (!ws.send(chunk, o.binary) && !ws.socket.destroyed) {
        source.pause();
        void drained(ws.socket).then(() => source.resume());
      }
    });
    return ended;
  };
  const output = Promise.all([forward(session.stdout, o.stdout), forward(session.stderr, o.stderr)]);
  const sink = session.stdin;
  if (o.stdin && sink) {
    pipeStdin(ws.input, sink, {
      detachKeys: o.detachKeys,
      // Detached: end this attach (the container keeps running); the output ends with it.
      onDetach: () => {
        session.close();
        ws.close(1000);
      },
    });
  } else {
    ws.input.resume();
  }
  const result = await Promise.race([output.then(() => 'done' as const), ws.closed.then(() => 'gone' as const)]);
  if (result === 'gone') session.close();
}
