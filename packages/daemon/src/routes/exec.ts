import type { Router } from '../api/router.js';
import { intValue } from '../api/query.js';
import { validateExecCreate, validateExecStart } from '../api/schemas.js';
import { parseDetachKeys } from '../api/detach-keys.js';
import { frame } from '../api/stdcopy.js';
import { ExecStartError } from '@berth/runtime';
import { ConflictError, DaemonError, InvalidParameterError } from '../errors.js';
import type { DaemonServices } from './context.js';
import { pumpSession, streamContentType } from './containers.js';

export function registerExecRoutes(router: Router, s: DaemonServices): void {
  router.add('POST', '/containers/:id/exec', async (ctx) => {
    const body = await ctx.json(validateExecCreate, { required: true });
    parseDetachKeys(body.DetachKeys); // a bad value is a 400 here, as with Docker
    const exec = s.execs.create(ctx.param('id'), body);
    ctx.sendJson(201, { Id: exec.ID });
  });

  router.add('POST', '/exec/:id/start', async (ctx) => {
    const exec = s.execs.get(ctx.param('id'));
    const body = await ctx.jsonPrefix(validateExecStart);
    if (exec.Started) throw new ConflictError(`Error: Exec command ${exec.ID} has already run`);
    const tty = body.Tty ?? exec.Config.Tty ?? false;
    const consoleSize = body.ConsoleSize ?? exec.Config.ConsoleSize ?? null;
    if (body.Detach) {
      const session = await s.execs.start(exec, tty);
      await session.started.catch((error: unknown) => {
        throw new DaemonError('EXEC_START_FAILED', 'internal', ociExecFailed(error));
      });
      ctx.send(200);
      return;
    }
    const stream = ctx.hijack(streamContentType(tty, ctx.version));
    try {
      const session = await s.execs.start(exec, tty);
      await session.started;
      if (tty && consoleSize && consoleSize.length === 2 && (consoleSize[0] ?? 0) > 0) {
        await session.resize({ rows: consoleSize[0]!, cols: consoleSize[1]! }).catch(() => undefined);
      }
      const result = await pumpSession(stream, session, tty, {
        stdin: exec.Config.AttachStdin ?? false,
        stdout: exec.Config.AttachStdout ?? true,
        stderr: exec.Config.AttachStderr ?? true,
        // As moby: the detach keys of the exec (else ctrl-p,ctrl-q), on a TTY only.
        detachKeys: tty ? parseDetachKeys(exec.Config.DetachKeys) : null,
      });
      // ExitCode must be final before the stream closes: clients read /exec/{id}/json right after.
      // A client that detached leaves the process running: nothing to wait for.
      if (result !== 'detached') await exec.done;
    } catch (error) {
      // As moby: the error on the stream (stdout), the exit code (126) in /exec/{id}/json.
      const message = Buffer.from(`${ociExecFailed(error)}\r\n`);
      if (!stream.output.destroyed) stream.output.write(tty ? message : frame('stdout', message));
      await exec.done;
    }
    stream.end();
  });

  router.add('POST', '/exec/:id/resize', async (ctx) => {
    const exec = s.execs.get(ctx.param('id'));
    const h = intValue(ctx.query, 'h', 0);
    const w = intValue(ctx.query, 'w', 0);
    if (h < 0 || w < 0) throw new InvalidParameterError('invalid height or width');
    if (!exec.session) throw new ConflictError(`exec ${exec.ID} is not running`);
    await exec.session.resize({ rows: h, cols: w });
    ctx.send(200);
  });

  router.add('GET', '/exec/:id/json', (ctx) => {
    ctx.sendJson(200, s.execs.inspect(s.execs.get(ctx.param('id'))));
  });
}

/** moby's words for a process the OCI runtime could not start (containerd's "unknown" error). */
function ociExecFailed(error: unknown): string {
  const message = (error as Error).message;
  return error instanceof ExecStartError ? `OCI runtime exec failed: ${message}: unknown` : message;
}
