import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ApiContext } from './context.js';
import { responseHeaders } from './headers.js';
import type { Router } from './router.js';
import { splitVersion } from './version.js';

/**
 * The HTTP server of the Engine API. Plain requests go through `request`; requests carrying
 * `Upgrade: tcp` (attach, exec start from the CLI) come through `upgrade`, where the handler gets
 * the raw socket and writes `101 UPGRADED` itself. Both share routing, versioning and errors.
 */
export function createApiServer(router: Router, log: Logger, existing?: Server): Server {
  const server = existing ?? createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 60_000 });

  const dispatch = async (
    req: IncomingMessage,
    res: ServerResponse | undefined,
    upgrade: { socket: Duplex; head: Buffer } | undefined,
  ): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://berth');
    let ctx: ApiContext | undefined;
    try {
      const { version, path } = splitVersion(url.pathname);
      ctx = new ApiContext({ method, path, version, query: url.searchParams, req, res, upgrade });
      const match = router.match(method, path);
      if (!match) {
        ctx.sendJson(404, { message: 'page not found' });
        return;
      }
      ctx.params = match.params;
      log.debug(`${method} ${req.url ?? ''}`);
      await match.handler(ctx);
    } catch (error) {
      const { status, message } = describeError(error);
      if (status >= 500) log.error(`${method} ${req.url ?? ''}: ${message}`);
      else log.debug(`${method} ${req.url ?? ''}: ${status} ${message}`);
      if (!ctx) ctx = new ApiContext({ method, path: url.pathname, version: '', query: url.searchParams, req, res, upgrade });
      if (ctx.responded) {
        // Headers already sent: the only thing left is to close the stream.
        if (res && !res.writableEnded) res.end();
        if (upgrade && !upgrade.socket.destroyed) upgrade.socket.end();
        return;
      }
      if (status === 304) ctx.send(304);
      else ctx.sendJson(status, { message });
    }
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    for (const [k, v] of Object.entries(responseHeaders())) res.setHeader(k, v);
    void dispatch(req, res, undefined);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    void dispatch(req, undefined, { socket, head });
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
