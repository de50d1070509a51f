import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { RegistryApp, type AccessLogEntry } from './app.js';
import { Htpasswd, TokenIssuer } from './auth.js';
import type { GarbageCollectionOptions, GarbageCollectionReport } from './gc.js';
import type { StorageDriver } from './storage/driver.js';
import { FilesystemDriver } from './storage/filesystem.js';
import { prepareManifestValidators } from './manifest-check.js';

export interface RegistryServerOptions {
  /** Root directory of the filesystem driver (ignored when `storage` is given). */
  root: string;
  /** A storage driver other than the filesystem one. */
  storage?: StorageDriver;
  /** The filesystem driver's fsync policy (default true); see FilesystemDriverOptions. */
  fsync?: boolean;
  /** Path of an htpasswd file (bcrypt entries); enables authentication. */
  htpasswd?: string;
  /** `basic` (default with htpasswd) or `token` (bearer challenge flow with a `/token` endpoint). */
  auth?: 'basic' | 'token';
  /** PEM certificate and key (contents, not paths): serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Structured access log: one entry per finished request. */
  log?: (entry: AccessLogEntry) => void;
}

/** A node http(s) server running the registry, with its app at hand for GC and tests. */
export type RegistryHttpServer = (http.Server | https.Server) & { readonly registry: RegistryApp };

/**
 * Builds (does not start) a registry server. Storage is initialised before the first request is
 * served. Call `listen` yourself, or use `serveRegistry`.
 */
export function createRegistryServer(options: RegistryServerOptions): RegistryHttpServer {
  const driver = options.storage ?? new FilesystemDriver(options.root, options.fsync === undefined ? {} : { fsync: options.fsync });
  const htpasswd = options.htpasswd ? Htpasswd.fromFile(options.htpasswd) : undefined;
  const app = new RegistryApp({
    driver,
    ...(htpasswd ? { htpasswd } : {}),
    ...(options.auth === 'token' ? { tokens: new TokenIssuer() } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const serverOptions: http.ServerOptions = { keepAliveTimeout: 30_000, requestTimeout: 0 };
  const server = options.tls
    ? https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, app.handle)
    : http.createServer(serverOptions, app.handle);
  return Object.assign(server, { registry: app });
}

export interface ServeRegistryOptions {
  /** `host:port`; port 0 picks a free one. Default `127.0.0.1:5000`. */
  addr?: string;
  root: string;
  htpasswd?: string;
  auth?: 'basic' | 'token';
  /** Paths of a PEM certificate and key. */
  tlsCert?: string;
  tlsKey?: string;
  storage?: StorageDriver;
  /** The filesystem driver's fsync policy (default true). */
  fsync?: boolean;
  /** Access log: a function, `'json'` (JSON lines on stdout, the default) or `false`. */
  log?: ((entry: AccessLogEntry) => void) | 'json' | false;
  /** Run online GC every `intervalMs` (default: hourly); `false` turns it off. */
  gc?: (GarbageCollectionOptions & { intervalMs?: number }) | false;
  /** How long `close()` waits for in-flight requests before cutting them off (default 10 s). */
  shutdownTimeoutMs?: number;
}

export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  port: number;
  server: RegistryHttpServer;
  collectGarbage(options?: GarbageCollectionOptions): Promise<GarbageCollectionReport>;
  /** Graceful shutdown: stop accepting, let in-flight requests finish (up to the timeout), close. */
  close(): Promise<void>;
}

/** Starts a registry server; what `berth registry serve` runs. */
export async function serveRegistry(options: ServeRegistryOptions): Promise<RunningRegistry> {
  const { host, port } = parseAddr(options.addr ?? '127.0.0.1:5000');
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new TypeError('serveRegistry: tlsCert and tlsKey go together');
  }
  const log =
    options.log === false
      ? undefined
      : typeof options.log === 'function'
        ? options.log
        : (entry: AccessLogEntry) => process.stdout.write(`${JSON.stringify(entry)}\n`);
  const server = createRegistryServer({
    root: options.root,
    ...(options.storage ? { storage: options.storage } : {}),
    ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
    ...(options.htpasswd ? { htpasswd: options.htpasswd } : {}),
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.tlsCert && options.tlsKey
      ? { tls: { cert: readFileSync(options.tlsCert), key: readFileSync(options.tlsKey) } }
      : {}),
    ...(log ? { log } : {}),
  });
  await server.registry.init();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Compile the manifest validators now rather than during the first push (unref'd: a server
  // closed right away does not wait for it).
  setTimeout(prepareManifestValidators, 0).unref();
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const scheme = options.tlsCert ? 'https' : 'http';

  let timer: NodeJS.Timeout | undefined;
  if (options.gc !== false) {
    const gcOptions = options.gc ?? {};
    timer = setInterval(() => {
      server.registry.collectGarbage(gcOptions).catch((error: unknown) => console.error('registry: gc failed', error));
    }, gcOptions.intervalMs ?? 60 * 60_000);
    timer.unref();
  }

  let closing: Promise<void> | undefined;
  return {
    url: `${scheme}://${urlHost}:${address.port}`,
    port: address.port,
    server,
    collectGarbage: (o) => server.registry.collectGarbage(o),
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive connections busy now become idle when their response ends; close them then.
        server.closeIdleConnections();
        const sweeper = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => server.closeAllConnections(), options.shutdownTimeoutMs ?? 10_000);
        deadline.unref();
        await done;
        clearInterval(sweeper);
        clearTimeout(deadline);
      })();
      return closing;
    },
  };
}

function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new TypeError(`invalid listen address ${addr} (expected host:port)`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!);
  return { host, port: Number(m[3]) };
}
