import { randomUUID } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { shareDirWithGroup } from './socket-dir.js';
import { openImageService, type ImageService } from '@berth/image';
import { NetworkManager, VolumeStore, openRuntime, type Runtime } from '@berth/runtime';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import { registryHost } from '@berth/oci-spec';
import { createApiServer } from './api/server.js';
import { Router } from './api/router.js';
import type { AuthBody } from './api/types.js';
import { DaemonError } from './errors.js';
import { ContainerService } from './engine/containers.js';
import { ExecService } from './engine/exec.js';
import type { ImageBuilder } from './engine/build.js';
import { openLegacyBuilder } from './engine/legacy-builder.js';
import { createLogger, type LogLevel, type Logger } from './logger.js';
import { registerContainerRoutes } from './routes/containers.js';
import type { DaemonServices } from './routes/context.js';
import { registerExecRoutes } from './routes/exec.js';
import { registerImageRoutes } from './routes/images.js';
import { registerNetworkRoutes } from './routes/networks.js';
import { registerAttachWebSocketRoute } from './routes/attach-ws.js';
import { registerDistributionRoutes } from './routes/distribution.js';
import { registerImageSearchRoute } from './routes/image-search.js';
import { registerSystemRoutes } from './routes/system.js';
import { ContainerStore } from './state/container-store.js';
import { EventBus } from './state/events.js';
import { writeFileAtomic } from './state/atomic.js';

export const DEFAULT_SOCKET = '/run/berth/berth.sock';
export const DEFAULT_DATA_ROOT = '/var/lib/berth';
export const DEFAULT_EXEC_ROOT = '/run/berth';

export interface DaemonTlsOptions {
  /** Require client certificates signed by `ca` (`--tlsverify`). */
  verify: boolean;
  ca?: string;
  cert: string;
  key: string;
}

export interface DaemonOptions {
  /** `unix:///path` or `tcp://host:port`; default `unix:///run/berth/berth.sock`. */
  hosts?: string[];
  dataRoot?: string;
  execRoot?: string;
  pidfile?: string;
  /** OCI runtime for containers that name none (`runc`, `crun` or a path). */
  defaultRuntime?: string;
  /** Containers keep running when the daemon stops (default true). */
  liveRestore?: boolean;
  logLevel?: LogLevel;
  /** TLS for tcp:// listeners. */
  tls?: DaemonTlsOptions;
  /** Allow plain-HTTP tcp:// listeners on non-loopback addresses. */
  allowInsecureTcp?: boolean;
  /** Group owning unix sockets (default `berth` when it exists). */
  group?: string;
  insecureRegistries?: string[];
  labels?: string[];
  /** Where the daemon's own log goes (default: stderr at `logLevel`). */
  logger?: Logger;
  /** Parent cgroup of containers (default `berth`). */
  cgroupParent?: string;
  /** Network manager overrides (tests use a unique bridge, firewall table and subnet). */
  network?: {
    bridgeName?: string;
    subnet?: string;
    gateway?: string;
    firewallTable?: string;
    bridgePrefix?: string;
  };
  /** The builder for `POST /build`, when the embedding program has one. */
  builder?: ImageBuilder;
}

export interface RunningDaemon {
  /** Listening addresses: `unix:///…` and `tcp://host:port` (with the port actually bound). */
  readonly addresses: string[];
  readonly services: DaemonServices;
  /** Stops listening and releases the daemon's resources; containers keep running (live-restore). */
  close(): Promise<void>;
}

async function groupId(name: string): Promise<number | undefined> {
  try {
    const text = await readFile('/etc/group', 'utf8');
    for (const line of text.split('\n')) {
      const [group, , gid] = line.split(':');
      if (group === name && gid !== undefined) return Number.parseInt(gid, 10);
    }
  } catch {
    // no /etc/group: leave the socket root-owned
  }
  return undefined;
}

/** True when something accepts connections on the unix socket. */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

async function checkPidfile(path: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (Number.isFinite(pid) && pid > 0 && pid !== process.pid) {
    try {
      process.kill(pid, 0);
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('berth') || cmdline.includes('daemon')) {
        throw new DaemonError('PIDFILE_IN_USE', 'conflict', `pid file found, ensure berthd is not running or delete ${path}`);
      }
    } catch (error) {
      if (error instanceof DaemonError) throw error;
    }
  }
}

function registryLogin(insecure: string[]) {
  return {
    async login(auth: AuthBody): Promise<{ Status: string; IdentityToken: string }> {
      let address = auth.serveraddress || 'https://index.docker.io/v1/';
      address = address.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      if (address === 'index.docker.io') address = 'docker.io';
      let username = auth.username;
      let password = auth.password;
      if (!username && auth.auth) {
        const plain = Buffer.from(auth.auth, 'base64').toString('utf8');
        username = plain.slice(0, plain.indexOf(':'));
        password = plain.slice(plain.indexOf(':') + 1);
      }
      const client = new RegistryClient({
        insecure,
        credentials: new StaticCredentials({
          [address]: {
            ...(username ? { username } : {}),
            ...(password ? { password } : {}),
            ...(auth.identitytoken ? { identityToken: auth.identitytoken } : {}),
          },
        }),
      });
      let ok = false;
      let cause: unknown;
      try {
        ok = await client.ping(address);
      } catch (error) {
        cause = error;
      }
      if (!ok) {
        const reason = cause instanceof Error ? `: ${cause.message}` : '';
        throw new DaemonError(
          'LOGIN_FAILED',
          'unauthorized',
          `login attempt to https://${registryHost(address)}/v2/ failed with status: 401 Unauthorized${reason}`,
          { cause },
        );
      }
      return { Status: 'Login Succeeded', IdentityToken: '' };
    },
  };
}

/**
 * Starts berthd: opens the libraries over the data root, reconciles containers left by an
 * earlier daemon (live-restore), then serves the Engine API on every host.
 */
export async function startDaemon(options: DaemonOptions = {}): Promise<RunningDaemon> {
  const dataRoot = options.dataRoot ?? DEFAULT_DATA_ROOT;
  const execRoot = options.execRoot ?? DEFAULT_EXEC_ROOT;
  const log = options.logger ?? createLogger(options.logLevel ?? 'info');
  const hosts = options.hosts && options.hosts.length > 0 ? options.hosts : [`unix://${DEFAULT_SOCKET}`];
  const liveRestore = options.liveRestore ?? true;
  const insecureRegistries = options.insecureRegistries ?? [];

  // Validate listeners before touching anything.
  const listeners = hosts.map((h) => {
    if (h.startsWith('unix://')) return { kind: 'unix' as const, path: h.slice('unix://'.length) || DEFAULT_SOCKET };
    if (h.startsWith('tcp://')) {
      const url = new URL(h.replace(/^tcp:/, 'http:'));
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = url.port === '' ? (options.tls ? 2376 : 2375) : Number.parseInt(url.port, 10);
      if (options.tls && !options.tls.verify && !isLoopback(host) && !options.allowInsecureTcp) {
        throw new DaemonError(
          'INSECURE_TCP',
          'invalid',
          `refusing to listen on ${h} with --tls but without --tlsverify: anyone who reaches the port could drive the daemon; use --tlsverify with --tlscacert, a loopback address, or --allow-insecure-tcp`,
        );
      }
      if (!options.tls && !isLoopback(host) && !options.allowInsecureTcp) {
        throw new DaemonError(
          'INSECURE_TCP',
          'invalid',
          `refusing to listen on ${h} without TLS: use --tlsverify with --tlscacert/--tlscert/--tlskey, a loopback address, or --allow-insecure-tcp`,
        );
      }
      return { kind: 'tcp' as const, host, port };
    }
    throw new DaemonError('INVALID_HOST', 'invalid', `invalid host ${h}: use unix:///path or tcp://host:port`);
  });

  await mkdir(dataRoot, { recursive: true, mode: 0o710 });
  await mkdir(execRoot, { recursive: true, mode: 0o700 });
  await mkdir(join(dataRoot, 'tmp'), { recursive: true, mode: 0o700 });
  if (options.pidfile) {
    await checkPidfile(options.pidfile);
    await writeFileAtomic(options.pidfile, `${process.pid}\n`, 0o644);
  }

  let idText: string;
  try {
    idText = (await readFile(join(dataRoot, 'engine-id'), 'utf8')).trim();
  } catch {
    idText = randomUUID();
    await writeFileAtomic(join(dataRoot, 'engine-id'), idText);
  }

  const runtime: Runtime = await openRuntime({
    stateDir: join(execRoot, 'runtime'),
    ...(options.defaultRuntime ? { runtime: options.defaultRuntime } : {}),
    ...(options.cgroupParent ? { cgroupParent: options.cgroupParent } : {}),
  });
  log.info(`OCI runtime ${runtime.ociRuntime.name} ${runtime.ociRuntime.version} (${runtime.ociRuntime.reason})`);
  const images: ImageService = await openImageService({ root: join(dataRoot, 'image'), insecure: insecureRegistries });
  const networks = await NetworkManager.open({
    stateDir: join(dataRoot, 'network'),
    runDir: join(execRoot, 'network'),
    ...(options.network?.firewallTable ? { firewallTable: options.network.firewallTable } : {}),
    ...(options.network?.bridgePrefix ? { bridgePrefix: options.network.bridgePrefix } : {}),
    ...(options.network?.bridgeName || options.network?.subnet
      ? {
          defaultBridge: {
            ...(options.network.bridgeName ? { name: options.network.bridgeName } : {}),
            ...(options.network.subnet ? { subnet: options.network.subnet } : {}),
            ...(options.network.gateway ? { gateway: options.network.gateway } : {}),
          },
        }
      : {}),
  });
  const volumes = await VolumeStore.open({ dataRoot });
  const store = await ContainerStore.open(join(dataRoot, 'containers'));
  const events = new EventBus();
  const containers = new ContainerService({
    store,
    runtime,
    images,
    events,
    log,
    networks,
    volumes,
    ...(options.defaultRuntime ? { defaultRuntime: options.defaultRuntime } : {}),
  });
  const execs = new ExecService(store, runtime, events);

  // Reconcile before serving, so the first request sees the restored state.
  const liveIds = (await runtime.list().catch(() => [])).filter((c) => c.status === 'running' || c.status === 'paused').map((c) => c.id);
  const report = await networks.reconcile(liveIds).catch((error: unknown) => {
    log.warn(`network reconcile: ${String(error)}`);
    return undefined;
  });
  if (report && report.removedEndpoints.length > 0) log.info(`network reconcile removed ${report.removedEndpoints.length} stale endpoint(s)`);
  await volumes.reconcile(store.all().map((r) => r.Id)).catch((error: unknown) => log.warn(`volume reconcile: ${String(error)}`));
  await containers.restore();

  const builder =
    options.builder ??
    (await openLegacyBuilder({ root: join(dataRoot, 'builder'), images, runtime, networks, insecure: insecureRegistries }).catch((error: unknown) => {
      log.warn(`the Dockerfile builder is unavailable: ${String(error)}`);
      return undefined;
    }));
  const services: DaemonServices = {
    ...(builder ? { builder } : {}),
    containers,
    execs,
    images,
    runtime,
    events,
    log,
    networks,
    volumes,
    login: registryLogin(insecureRegistries),
    info: {
      id: idText,
      name: 'berthd',
      dataRoot,
      execRoot,
      defaultRuntime: options.defaultRuntime ?? runtime.ociRuntime.name,
      liveRestore,
      startedAt: new Date(),
      debug: options.logLevel === 'debug',
      labels: options.labels ?? [],
      insecureRegistries,
    },
  };

  const router = new Router();
  registerSystemRoutes(router, services);
  registerContainerRoutes(router, services);
  registerExecRoutes(router, services);
  registerImageRoutes(router, services);
  registerNetworkRoutes(router, services);
  registerAttachWebSocketRoute(router, services);
  registerDistributionRoutes(router, services);
  registerImageSearchRoute(router, services);

  const servers: Server[] = [];
  const addresses: string[] = [];
  const sockets: string[] = [];
  const gid = await groupId(options.group ?? 'berth');
  try {
    for (const l of listeners) {
      if (l.kind === 'unix') {
        const server = createApiServer(router, log);
        await mkdir(join(l.path, '..'), { recursive: true, mode: 0o755 });
        if (await stat(l.path).then(() => true, () => false)) {
          if (await socketInUse(l.path)) {
            throw new DaemonError('SOCKET_IN_USE', 'conflict', `another daemon is listening on ${l.path}`);
          }
          await rm(l.path, { force: true });
        }
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(l.path, () => resolve());
        });
        await chmod(l.path, 0o660);
        if (gid !== undefined) await chown(l.path, 0, gid).catch(() => undefined);
        // The group must be able to reach the socket: its directory (the exec root by default,
        // created 0700) becomes 0710 root:<group>. Container state dirs below stay 0700.
        if (gid !== undefined && resolve(dirname(l.path)) === resolve(execRoot)) await shareDirWithGroup(execRoot, gid);
        servers.push(server);
        sockets.push(l.path);
        addresses.push(`unix://${l.path}`);
        log.info(`API listening on ${l.path}`);
      } else {
        let server: Server;
        if (options.tls) {
          const tls = options.tls;
          const tlsServer = createHttpsServer({
            cert: await readFile(tls.cert),
            key: await readFile(tls.key),
            ...(tls.ca ? { ca: await readFile(tls.ca) } : {}),
            requestCert: tls.verify,
            rejectUnauthorized: tls.verify,
          });
          server = createApiServer(router, log, tlsServer as unknown as Server);
        } else {
          server = createApiServer(router, log);
        }
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(l.port, l.host, () => resolve());
        });
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : l.port;
        servers.push(server);
        const shownHost = l.host.includes(':') ? `[${l.host}]` : l.host;
        addresses.push(`tcp://${shownHost}:${port}`);
        log.info(`API listening on ${shownHost}:${port}${options.tls ? ' (TLS)' : ''}`);
      }
    }
  } catch (error) {
    for (const server of servers) server.close();
    await containers.shutdown();
    await runtime.close().catch(() => undefined);
    await images.close().catch(() => undefined);
    throw error;
  }
  events.publish('daemon', 'start', idText, { name: 'berthd' });
  log.info(`berthd started (data root ${dataRoot}, ${store.all().length} container(s))`);

  let closed: Promise<void> | undefined;
  return {
    addresses,
    services,
    close(): Promise<void> {
      closed ??= (async () => {
        log.info('berthd shutting down');
        await Promise.all(
          servers.map(
            (server) =>
              new Promise<void>((resolve) => {
                server.close(() => resolve());
                server.closeAllConnections();
              }),
          ),
        );
        await containers.shutdown();
        if (!liveRestore) {
          for (const record of store.all()) {
            if (record.State.Running) await containers.stop(record.Id, {}).catch(() => undefined);
          }
        }
        containers.releaseWatchers();
        await runtime.close().catch((error: unknown) => log.warn(`closing runtime: ${String(error)}`));
        await images.close().catch((error: unknown) => log.warn(`closing image service: ${String(error)}`));
        for (const path of sockets) await rm(path, { force: true });
        if (options.pidfile) await rm(options.pidfile, { force: true });
        log.info('berthd stopped');
      })();
      return closed;
    },
  };
}
