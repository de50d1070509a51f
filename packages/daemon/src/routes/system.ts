import { cpus, hostname, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { detectCgroups } from '@berth/runtime';
import type { CgroupInfo } from '@berth/runtime';
import type { ApiContext } from '../api/context.js';
import { boolValue, parseFilters } from '../api/query.js';
import type { Router } from '../api/router.js';
import { validateAuth } from '../api/schemas.js';
import { API_VERSION, ENGINE_VERSION, MIN_API_VERSION } from '../api/version.js';
import { DaemonError, InvalidParameterError } from '../errors.js';
import { parseTimestamp } from '../engine/time.js';
import type { EngineEvent } from '../state/events.js';
import type { DaemonServices } from './context.js';
import { containerSummary } from './containers.js';

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}

function operatingSystem(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    if (m) return m[1]!;
  } catch {
    // fall through
  }
  return 'Linux';
}

function ping(ctx: ApiContext): void {
  ctx.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  ctx.setHeader('Pragma', 'no-cache');
  ctx.setHeader('Builder-Version', '1');
  ctx.setHeader('Swarm', 'inactive');
  ctx.send(200, 'OK');
}

export function registerSystemRoutes(router: Router, s: DaemonServices): void {
  router.add('GET', '/_ping', ping);
  router.add('HEAD', '/_ping', ping);

  router.add('GET', '/version', (ctx) => {
    const details = {
      ApiVersion: API_VERSION,
      Arch: goArch(),
      BuildTime: '2026-01-01T00:00:00.000000000+00:00',
      Experimental: 'false',
      GitCommit: 'berth',
      GoVersion: `node${process.versions.node}`,
      KernelVersion: release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: 'linux',
    };
    ctx.sendJson(200, {
      Platform: { Name: 'berth' },
      Components: [{ Name: 'Engine', Version: ENGINE_VERSION, Details: details }],
      Version: ENGINE_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'berth',
      GoVersion: `node${process.versions.node}`,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: release(),
      BuildTime: details.BuildTime,
    });
  });

  let cgroups: CgroupInfo | undefined;
  router.add('GET', '/info', async (ctx) => {
    // What this host's cgroups can limit, found once (what `docker info` reports and warns about).
    cgroups ??= detectCgroups();
    const all = s.containers.store.all();
    const images = await s.images.list().catch(() => []);
    const runtime = s.runtime.ociRuntime;
    ctx.sendJson(200, {
      ID: s.info.id,
      Containers: all.length,
      ContainersRunning: all.filter((c) => c.State.Running && !c.State.Paused).length,
      ContainersPaused: all.filter((c) => c.State.Paused).length,
      ContainersStopped: all.filter((c) => !c.State.Running).length,
      Images: images.length,
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', 'extfs']],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['k8s-file'] },
      MemoryLimit: cgroups.controllers.includes('memory'),
      SwapLimit: cgroups.swapAccounting,
      CpuCfsPeriod: cgroups.controllers.includes('cpu'),
      CpuCfsQuota: cgroups.controllers.includes('cpu'),
      CPUShares: cgroups.controllers.includes('cpu'),
      CPUSet: cgroups.controllers.includes('cpuset'),
      PidsLimit: cgroups.controllers.includes('pids'),
      IPv4Forwarding: true,
      Debug: s.info.debug,
      NFd: 0,
      OomKillDisable: false,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'k8s-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: String(cgroups.version),
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: operatingSystem(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: {
        IndexConfigs: {
          'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true },
        },
        InsecureRegistryCIDRs: ['127.0.0.0/8', '::1/128'],
        Mirrors: [],
      },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      GenericResources: null,
      DockerRootDir: s.info.dataRoot,
      HttpProxy: process.env['HTTP_PROXY'] ?? '',
      HttpsProxy: process.env['HTTPS_PROXY'] ?? '',
      NoProxy: process.env['NO_PROXY'] ?? '',
      Name: hostname(),
      Labels: s.info.labels,
      ExperimentalBuild: false,
      ServerVersion: ENGINE_VERSION,
      Runtimes: { [runtime.name]: { path: runtime.path } },
      DefaultRuntime: s.info.defaultRuntime || runtime.name,
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: s.info.liveRestore,
      Isolation: '',
      InitBinary: 'tini',
      ContainerdCommit: { ID: '' },
      RuncCommit: { ID: runtime.version },
      InitCommit: { ID: '' },
      SecurityOptions: ['name=seccomp,profile=builtin'],
      CDISpecDirs: [],
      Warnings: [],
    });
  });

  router.add('GET', '/events', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    filters.validate(['container', 'event', 'image', 'label', 'type', 'network', 'volume', 'daemon', 'scope', 'node', 'plugin', 'service', 'secret', 'config']);
    const since = ctx.query.get('since');
    const until = ctx.query.get('until');
    const sinceNs = since ? parseTimestamp(since) : undefined;
    const untilNs = until ? parseTimestamp(until) : undefined;
    if (since && sinceNs === undefined) throw new InvalidParameterError(`invalid value for since: ${since}`);
    if (until && untilNs === undefined) throw new InvalidParameterError(`invalid value for until: ${until}`);
    const match = (e: EngineEvent): boolean =>
      filters.match('type', (v) => v === e.Type) &&
      filters.match('event', (v) => v === e.Action || e.Action.startsWith(`${v}:`)) &&
      filters.match('container', (v) => e.Type === 'container' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes['name'] === v)) &&
      filters.match('image', (v) => e.Actor.Attributes['image'] === v || (e.Type === 'image' && e.Actor.ID === v)) &&
      filters.match('network', (v) => e.Type === 'network' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes['name'] === v)) &&
      filters.match('volume', (v) => e.Type === 'volume' && e.Actor.ID === v) &&
      filters.matchLabels('label', e.Actor.Attributes);
    const out = ctx.stream('application/json');
    const write = (e: EngineEvent): void => {
      if (untilNs !== undefined && BigInt(e.timeNano) > untilNs) return;
      if (match(e)) out.write(JSON.stringify(e) + '\n');
    };
    let unsubscribe = (): void => undefined;
    const finished = new Promise<void>((resolve) => {
      const end = (): void => {
        unsubscribe();
        clearTimeout(timer);
        resolve();
      };
      let timer: NodeJS.Timeout | undefined;
      if (sinceNs !== undefined) for (const e of s.events.since(sinceNs)) write(e);
      if (untilNs !== undefined) {
        const wait = Number((untilNs - BigInt(Date.now()) * 1_000_000n) / 1_000_000n);
        if (wait <= 0) return end();
        timer = setTimeout(end, wait);
      }
      unsubscribe = s.events.subscribe(write);
      ctx.connection.once('close', end);
    });
    await finished;
    out.end();
  });

  router.add('GET', '/system/df', async (ctx) => {
    const usage = await s.images.diskUsage();
    const images = await s.images.list({ all: true });
    const records = s.containers.store.all();
    const volumes = await s.volumes.list({}, { withUsage: true });
    const layerSize = new Map(usage.containers.map((c) => [c.id, c.size]));
    ctx.sendJson(200, {
      LayersSize: usage.snapshots + usage.content,
      Images: images.map((img) => ({
        ...img,
        Containers: records.filter((r) => r.Image === img.Id).length,
      })),
      Containers: records.map((r) => ({ ...containerSummary(s, r), SizeRw: layerSize.get(r.Id) ?? 0, SizeRootFs: 0 })),
      Volumes: volumes.map((v) => ({ ...v, UsageData: v.UsageData ?? { Size: -1, RefCount: -1 } })),
      BuildCache: [],
    });
  });

  router.add('POST', '/auth', async (ctx) => {
    const body = await ctx.json(validateAuth);
    if (!s.login) throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'registry login is not available');
    ctx.sendJson(200, await s.login.login(body));
  });

  void boolValue;
}
