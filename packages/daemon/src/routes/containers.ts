import { spawn } from 'node:child_process';
import { lstat, readlink, stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { basename, dirname, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { EndpointSettings } from '@berth/runtime';
import { drained, pipeStdin, writeOrWait, type ApiContext, type HijackedStream } from '../api/context.js';
import { parseDetachKeys } from '../api/detach-keys.js';
import { boolValue, intValue, parseFilters, type Filters } from '../api/query.js';
import type { Router } from '../api/router.js';
import { validateContainerCreate, validateContainerUpdate } from '../api/schemas.js';
import { frame } from '../api/stdcopy.js';
import { versionAtLeast } from '../api/version.js';
import { ConflictError, DaemonError, InvalidParameterError } from '../errors.js';
import type { WaitCondition } from '../engine/containers.js';
import { resolveInRoot, withRootfs } from '../engine/rootfs.js';
import { extractToContainer, withContainerFrozen } from '../engine/archive.js';
import { humanDuration, parseTimestamp, rfc3339Nano } from '../engine/time.js';
import { ZERO_TIME, type ContainerRecord } from '../state/container-store.js';
import type { DaemonServices } from './context.js';

const RAW = 'application/vnd.docker.raw-stream';
const MULTIPLEXED = 'application/vnd.docker.multiplexed-stream';

/** Content type of attach/logs/exec output: raw for a TTY, multiplexed (framed) otherwise from 1.42. */
export function streamContentType(tty: boolean, version: string): string {
  return !tty && versionAtLeast(version, '1.42') ? MULTIPLEXED : RAW;
}

function statusText(record: ContainerRecord): string {
  const st = record.State;
  const now = Date.now();
  if (st.Status === 'removing') return 'Removal In Progress';
  if (st.Dead) return 'Dead';
  if (st.Restarting) return `Restarting (${st.ExitCode}) ${humanDuration(now - Date.parse(st.FinishedAt))} ago`;
  if (st.Running) {
    let text = `Up ${humanDuration(now - Date.parse(st.StartedAt))}`;
    if (st.Paused) text += ' (Paused)';
    else if (st.Health && st.Health.Status !== 'none') text += st.Health.Status === 'starting' ? ' (health: starting)' : ` (${st.Health.Status})`;
    return text;
  }
  if (st.StartedAt === ZERO_TIME) return 'Created';
  return `Exited (${st.ExitCode}) ${humanDuration(now - Date.parse(st.FinishedAt))} ago`;
}

function portList(s: DaemonServices, record: ContainerRecord): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  for (const [key, bindings] of Object.entries(s.containers.ports(record))) {
    const [port, proto = 'tcp'] = key.split('/');
    const privatePort = Number.parseInt(port ?? '0', 10);
    if (!bindings || bindings.length === 0) {
      out.push({ PrivatePort: privatePort, Type: proto });
      continue;
    }
    for (const b of bindings) {
      out.push({ IP: b.HostIp || '0.0.0.0', PrivatePort: privatePort, PublicPort: Number.parseInt(b.HostPort ?? '0', 10), Type: proto });
    }
  }
  return out;
}

function mountsJson(record: ContainerRecord): Record<string, unknown>[] {
  return record.Mounts.map((m) => ({
    Type: m.Type,
    ...(m.Name ? { Name: m.Name } : {}),
    Source: m.Source,
    Destination: m.Destination,
    ...(m.Driver ? { Driver: m.Driver } : {}),
    Mode: m.Mode,
    RW: m.RW,
    Propagation: m.Propagation,
  }));
}

function networksJson(record: ContainerRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const configured = record.NetworkingConfig.EndpointsConfig ?? {};
  const liveNetworks = record.State.Running ? (record.NetworkSettings?.Networks ?? {}) : {};
  const names = new Set([...Object.keys(configured), ...Object.keys(liveNetworks)]);
  for (const name of names) {
    const cfg = configured[name] ?? {};
    const live: Partial<EndpointSettings> = liveNetworks[name] ?? {};
    out[name] = {
      IPAMConfig: cfg.IPAMConfig ?? null,
      Links: cfg.Links ?? null,
      Aliases: cfg.Aliases ?? null,
      MacAddress: live.MacAddress ?? '',
      DriverOpts: cfg.DriverOpts ?? null,
      NetworkID: live.NetworkID ?? '',
      EndpointID: live.EndpointID ?? '',
      Gateway: live.Gateway ?? '',
      IPAddress: live.IPAddress ?? '',
      IPPrefixLen: live.IPPrefixLen ?? 0,
      IPv6Gateway: live.IPv6Gateway ?? '',
      GlobalIPv6Address: live.GlobalIPv6Address ?? '',
      GlobalIPv6PrefixLen: live.GlobalIPv6PrefixLen ?? 0,
      DNSNames: live.DNSNames ?? null,
    };
  }
  return out;
}

/** One row of `GET /containers/json`. */
export function containerSummary(s: DaemonServices, record: ContainerRecord): Record<string, unknown> {
  return {
    Id: record.Id,
    Names: [record.Name],
    Image: record.Config.Image ?? '',
    ImageID: record.Image,
    Command: [record.Path, ...record.Args].join(' '),
    Created: Math.floor(Date.parse(record.Created) / 1000),
    Ports: portList(s, record),
    Labels: record.Config.Labels ?? {},
    State: record.State.Status,
    Status: statusText(record),
    HostConfig: { NetworkMode: record.HostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: networksJson(record) },
    Mounts: mountsJson(record),
  };
}

/** `GET /containers/{id}/json`. */
export function containerInspect(s: DaemonServices, record: ContainerRecord): Record<string, unknown> {
  const networks = networksJson(record) as Record<string, Record<string, unknown>>;
  const primary = networks[record.HostConfig.NetworkMode ?? 'bridge'] ?? networks['bridge'] ?? {};
  const host = record.HostConfig;
  return {
    Id: record.Id,
    Created: record.Created,
    Path: record.Path,
    Args: record.Args,
    State: record.State,
    Image: record.Image,
    ResolvConfPath: record.ResolvConfPath,
    HostnamePath: record.HostnamePath,
    HostsPath: record.HostsPath,
    LogPath: record.LogPath,
    Name: record.Name,
    RestartCount: record.RestartCount,
    Driver: record.Driver,
    Platform: record.Platform,
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      Binds: host.Binds ?? null,
      ContainerIDFile: host.ContainerIDFile ?? '',
      LogConfig: { Type: 'k8s-file', Config: {} },
      NetworkMode: host.NetworkMode ?? 'bridge',
      PortBindings: host.PortBindings ?? {},
      RestartPolicy: { Name: host.RestartPolicy?.Name || 'no', MaximumRetryCount: host.RestartPolicy?.MaximumRetryCount ?? 0 },
      AutoRemove: host.AutoRemove ?? false,
      VolumeDriver: host.VolumeDriver ?? '',
      VolumesFrom: host.VolumesFrom ?? null,
      ConsoleSize: host.ConsoleSize ?? [0, 0],
      CapAdd: host.CapAdd ?? null,
      CapDrop: host.CapDrop ?? null,
      // Docker's default when none was asked for: private on cgroup v2, host on v1.
      CgroupnsMode: host.CgroupnsMode || (s.runtime.cgroupVersion === 2 ? 'private' : 'host'),
      Dns: host.Dns ?? [],
      DnsOptions: host.DnsOptions ?? [],
      DnsSearch: host.DnsSearch ?? [],
      ExtraHosts: host.ExtraHosts ?? null,
      GroupAdd: host.GroupAdd ?? null,
      IpcMode: host.IpcMode || 'private',
      Cgroup: host.Cgroup ?? '',
      Links: host.Links ?? null,
      OomScoreAdj: host.OomScoreAdj ?? 0,
      PidMode: host.PidMode ?? '',
      Privileged: host.Privileged ?? false,
      PublishAllPorts: host.PublishAllPorts ?? false,
      ReadonlyRootfs: host.ReadonlyRootfs ?? false,
      SecurityOpt: host.SecurityOpt ?? null,
      Tmpfs: host.Tmpfs ?? undefined,
      UTSMode: host.UTSMode ?? '',
      UsernsMode: host.UsernsMode ?? '',
      ShmSize: host.ShmSize || 67108864,
      Sysctls: host.Sysctls ?? undefined,
      Runtime: host.Runtime || s.info.defaultRuntime || s.runtime.ociRuntime.name,
      Isolation: '',
      CpuShares: host.CpuShares ?? 0,
      Memory: host.Memory ?? 0,
      NanoCpus: host.NanoCpus ?? 0,
      CgroupParent: '',
      BlkioWeight: host.BlkioWeight ?? 0,
      BlkioDeviceReadBps: host.BlkioDeviceReadBps ?? [],
      BlkioDeviceWriteBps: host.BlkioDeviceWriteBps ?? [],
      BlkioDeviceReadIOps: host.BlkioDeviceReadIOps ?? [],
      BlkioDeviceWriteIOps: host.BlkioDeviceWriteIOps ?? [],
      MemorySwappiness: host.MemorySwappiness ?? null,
      CpuPeriod: host.CpuPeriod ?? 0,
      CpuQuota: host.CpuQuota ?? 0,
      CpusetCpus: host.CpusetCpus ?? '',
      CpusetMems: host.CpusetMems ?? '',
      MemoryReservation: host.MemoryReservation ?? 0,
      MemorySwap: host.MemorySwap ?? 0,
      OomKillDisable: host.OomKillDisable ?? false,
      PidsLimit: host.PidsLimit ?? null,
      Ulimits: host.Ulimits ?? [],
      Mounts: host.Mounts ?? undefined,
      Init: host.Init ?? null,
      MaskedPaths: [],
      ReadonlyPaths: [],
    },
    GraphDriver: { Name: 'overlay2', Data: null },
    Mounts: mountsJson(record),
    Config: {
      Hostname: record.Config.Hostname || record.Id.slice(0, 12),
      Domainname: record.Config.Domainname ?? '',
      User: record.Config.User ?? '',
      AttachStdin: record.Config.AttachStdin ?? false,
      AttachStdout: record.Config.AttachStdout ?? false,
      AttachStderr: record.Config.AttachStderr ?? false,
      ...(record.Config.ExposedPorts && Object.keys(record.Config.ExposedPorts).length > 0 ? { ExposedPorts: record.Config.ExposedPorts } : {}),
      Tty: record.Config.Tty ?? false,
      OpenStdin: record.Config.OpenStdin ?? false,
      StdinOnce: record.Config.StdinOnce ?? false,
      Env: record.Config.Env ?? [],
      Cmd: record.Config.Cmd ?? null,
      ...(record.Config.Healthcheck ? { Healthcheck: record.Config.Healthcheck } : {}),
      Image: record.Config.Image ?? '',
      Volumes: record.Config.Volumes && Object.keys(record.Config.Volumes).length > 0 ? record.Config.Volumes : null,
      WorkingDir: record.Config.WorkingDir ?? '',
      Entrypoint: record.Config.Entrypoint ?? null,
      OnBuild: null,
      Labels: record.Config.Labels ?? {},
      ...(record.Config.StopSignal ? { StopSignal: record.Config.StopSignal } : {}),
      ...(typeof record.Config.StopTimeout === 'number' ? { StopTimeout: record.Config.StopTimeout } : {}),
    },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      SandboxKey: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: s.containers.ports(record),
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: primary['EndpointID'] ?? '',
      Gateway: primary['Gateway'] ?? '',
      GlobalIPv6Address: primary['GlobalIPv6Address'] ?? '',
      GlobalIPv6PrefixLen: primary['GlobalIPv6PrefixLen'] ?? 0,
      IPAddress: primary['IPAddress'] ?? '',
      IPPrefixLen: primary['IPPrefixLen'] ?? 0,
      IPv6Gateway: primary['IPv6Gateway'] ?? '',
      MacAddress: primary['MacAddress'] ?? '',
      Networks: networks,
    },
  };
}

const LIST_FILTERS = ['id', 'name', 'label', 'status', 'ancestor', 'before', 'since', 'exited', 'health', 'network', 'volume', 'publish', 'expose', 'is-task'];

function listContainers(s: DaemonServices, all: boolean, limit: number, filters: Filters): ContainerRecord[] {
  filters.validate(LIST_FILTERS);
  for (const status of filters.get('status')) {
    if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(status)) {
      throw new InvalidParameterError(`invalid filter 'status=${status}'`);
    }
  }
  let records = s.containers.store.all().sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (a.Id < b.Id ? -1 : 1));
  const showAll = all || limit > 0 || filters.has('status') || filters.has('exited');
  const byRef = (ref: string): ContainerRecord | undefined => {
    try {
      return s.containers.store.find(ref);
    } catch {
      return undefined;
    }
  };
  const before = filters.get('before').map(byRef);
  const since = filters.get('since').map(byRef);
  if (filters.has('before') && before.some((r) => !r)) throw new InvalidParameterError(`No such container: ${filters.get('before')[0]}`);
  if (filters.has('since') && since.some((r) => !r)) throw new InvalidParameterError(`No such container: ${filters.get('since')[0]}`);
  records = records.filter((r) => {
    if (!showAll && !r.State.Running) return false;
    if (!filters.match('id', (v) => r.Id.startsWith(v))) return false;
    if (!filters.match('name', (v) => new RegExp(v.replace(/^\//, '')).test(r.Name.slice(1)))) return false;
    if (!filters.matchLabels('label', r.Config.Labels)) return false;
    if (!filters.match('status', (v) => v === r.State.Status)) return false;
    if (!filters.match('exited', (v) => !r.State.Running && r.State.StartedAt !== ZERO_TIME && String(r.State.ExitCode) === v)) return false;
    if (!filters.match('health', (v) => (r.State.Health?.Status ?? 'none') === v)) return false;
    if (!filters.match('ancestor', (v) => r.Config.Image === v || r.Image === v || r.Image.startsWith(`sha256:${v}`) || r.Config.Image === `${v}:latest`)) return false;
    if (!filters.match('network', (v) => Object.keys(r.NetworkingConfig.EndpointsConfig ?? {}).includes(v) || r.HostConfig.NetworkMode === v)) return false;
    if (!filters.match('volume', (v) => r.Mounts.some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
    if (!filters.match('expose', (v) => Object.keys(r.Config.ExposedPorts ?? {}).some((p) => p === v || p === `${v}/tcp`))) return false;
    if (!filters.match('publish', (v) => Object.entries(s.containers.ports(r)).some(([p, b]) => p === v || p === `${v}/tcp` || (b ?? []).some((x) => x.HostPort === v.split('/')[0])))) return false;
    for (const b of before) if (b && Date.parse(r.Created) >= Date.parse(b.Created)) return false;
    for (const x of since) if (x && Date.parse(r.Created) <= Date.parse(x.Created)) return false;
    return true;
  });
  return limit > 0 ? records.slice(0, limit) : records;
}

/**
 * Pipes a runtime attach/exec session into a hijacked stream; resolves when the output ends.
 * A client that does not keep up pauses the session's stdout and stderr until it drains, so
 * the process blocks on its pipe (as with Docker) instead of berthd queueing its output; the
 * other way, a process that does not read its stdin pauses the client's input (`pipeStdin`).
 * With `detachKeys`, typing that sequence calls `detach` and ends the pump ('detached'): the
 * process keeps running and what it writes from then on is read and dropped.
 */
export async function pumpSession(
  stream: HijackedStream,
  session: { stdin: Writable | null; stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream },
  tty: boolean,
  options: { stdin: boolean; stdout: boolean; stderr: boolean; detach?: () => void; detachKeys?: Buffer | null },
): Promise<'done' | 'gone' | 'detached'> {
  const out = stream.output;
  let waiting = false;
  const write = (name: 'stdout' | 'stderr') => (chunk: Buffer) => {
    if (out.destroyed || out.writableEnded) return;
    if (out.write(tty ? chunk : frame(name, chunk)) || waiting) return;
    waiting = true;
    session.stdout.pause();
    session.stderr.pause();
    void drained(out).then(() => {
      waiting = false;
      session.stdout.resume();
      session.stderr.resume();
    });
  };
  const ended = (r: NodeJS.ReadableStream): Promise<void> =>
    new Promise<void>((resolve) => {
      r.once('end', resolve);
      r.once('close', resolve);
      r.once('error', () => resolve());
    });
  const done = Promise.all([ended(session.stdout), ended(session.stderr)]);
  if (options.stdout) session.stdout.on('data', write('stdout'));
  else session.stdout.resume();
  if (options.stderr) session.stderr.on('data', write('stderr'));
  else session.stderr.resume();
  let onDetached: () => void = () => undefined;
  const detached = new Promise<'detached'>((resolve) => {
    onDetached = () => resolve('detached');
  });
  if (options.stdin && session.stdin) {
    pipeStdin(stream.input, session.stdin, {
      detachKeys: options.detachKeys,
      onDetach: () => {
        options.detach?.();
        onDetached();
      },
    });
  } else {
    stream.input.resume();
  }
  const clientGone = stream.closed.then(() => 'gone' as const);
  const result = await Promise.race([done.then(() => 'done' as const), clientGone, detached]);
  if (result === 'gone') options.detach?.();
  if (result === 'detached') {
    // The process runs on; its output has no reader any more.
    for (const s of [session.stdout, session.stderr]) {
      s.removeAllListeners('data');
      s.resume();
    }
  }
  return result;
}

function parseSignalParam(ctx: ApiContext): string | undefined {
  const signal = ctx.query.get('signal');
  return signal === null || signal === '' ? undefined : signal;
}

function timeoutParam(ctx: ApiContext): number | undefined {
  return intValue(ctx.query, 't', undefined);
}

/** Go os.FileMode bits for a stat result (moby's path-stat `mode`). */
function goFileMode(mode: number, isDir: boolean, isLink: boolean): number {
  let m = mode & 0o777;
  if (isDir) m += 2 ** 31;
  if (isLink) m += 2 ** 27;
  if (mode & 0o4000) m += 2 ** 23;
  if (mode & 0o2000) m += 2 ** 22;
  if (mode & 0o1000) m += 2 ** 20;
  return m;
}

async function pathStat(root: string, path: string): Promise<{ host: string; header: string; isDir: boolean }> {
  const host = await resolveInRoot(root, path, false);
  let st;
  try {
    // The root itself may be /proc/<pid>/root (a link): stat it, it is the container's "/".
    st = host === root ? await stat(host) : await lstat(host);
  } catch (cause) {
    throw new DaemonError('NO_SUCH_PATH', 'not-found', `Could not find the file ${path} in container`, { cause });
  }
  const isLink = st.isSymbolicLink();
  const linkTarget = isLink ? await readlink(host) : '';
  const json = {
    name: basename(path) || '/',
    size: st.size,
    mode: goFileMode(st.mode, st.isDirectory(), isLink),
    mtime: st.mtime.toISOString(),
    linkTarget,
  };
  return { host, header: Buffer.from(JSON.stringify(json)).toString('base64'), isDir: st.isDirectory() };
}

function runTar(args: string[], cwd: string): ReturnType<typeof spawn> {
  return spawn('tar', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function tarExit(child: ReturnType<typeof spawn>): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new DaemonError('ARCHIVE_FAILED', 'invalid', `tar failed: ${stderr.trim() || `exit ${code}`}`);
}

/** Freezes a running container while its filesystem is copied from or into (CVE-2018-15664). */
function frozen<T>(s: DaemonServices, record: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  return withContainerFrozen(
    record.State.Running,
    record.State.Paused,
    () => s.runtime.pause(record.Id),
    () => s.runtime.unpause(record.Id),
    fn,
  );
}

export function registerContainerRoutes(router: Router, s: DaemonServices): void {
  const scratch = (): string => `${s.info.dataRoot}/tmp`;

  router.add('GET', '/containers/json', (ctx) => {
    const records = listContainers(s, boolValue(ctx.query, 'all'), intValue(ctx.query, 'limit', 0), parseFilters(ctx.query.get('filters')));
    ctx.sendJson(200, records.map((r) => containerSummary(s, r)));
  });

  router.add('POST', '/containers/create', async (ctx) => {
    const body = await ctx.json(validateContainerCreate, { required: true });
    const name = ctx.query.get('name') ?? undefined;
    ctx.sendJson(201, await s.containers.create(name, body));
  });

  router.add('POST', '/containers/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    filters.validate(['until', 'label', 'label!']);
    const until = filters.get('until')[0];
    const untilNs = until ? parseTimestamp(until) : undefined;
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const r of s.containers.store.all()) {
      if (r.State.Running || r.State.Restarting) continue;
      if (!filters.matchLabels('label', r.Config.Labels)) continue;
      if (filters.get('label!').some((l) => matchesLabel(l, r.Config.Labels))) continue;
      if (untilNs !== undefined && BigInt(Date.parse(r.Created)) * 1_000_000n >= untilNs) continue;
      reclaimed += await s.images.containerLayerSize(r.Id).catch(() => 0);
      await s.containers.remove(r.Id, { force: false, volumes: false });
      deleted.push(r.Id);
    }
    s.events.publish('container', 'prune', '', { reclaimed: String(reclaimed) });
    ctx.sendJson(200, { ContainersDeleted: deleted, SpaceReclaimed: reclaimed });
  });

  router.add('GET', '/containers/:id/json', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const json = containerInspect(s, record);
    if (boolValue(ctx.query, 'size')) {
      json['SizeRw'] = await s.images.containerLayerSize(record.Id).catch(() => 0);
      json['SizeRootFs'] = 0;
    }
    ctx.sendJson(200, json);
  });

  router.add('POST', '/containers/:id/start', async (ctx) => {
    await s.containers.start(ctx.param('id'));
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/stop', async (ctx) => {
    const signal = parseSignalParam(ctx);
    const timeout = timeoutParam(ctx);
    await s.containers.stop(ctx.param('id'), { ...(timeout !== undefined ? { timeout } : {}), ...(signal ? { signal } : {}) });
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/restart', async (ctx) => {
    const signal = parseSignalParam(ctx);
    const timeout = timeoutParam(ctx);
    await s.containers.restart(ctx.param('id'), { ...(timeout !== undefined ? { timeout } : {}), ...(signal ? { signal } : {}) });
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/kill', async (ctx) => {
    await s.containers.kill(ctx.param('id'), parseSignalParam(ctx) ?? 'SIGKILL');
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/pause', async (ctx) => {
    await s.containers.pause(ctx.param('id'));
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/unpause', async (ctx) => {
    await s.containers.unpause(ctx.param('id'));
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/rename', async (ctx) => {
    const name = ctx.query.get('name');
    if (!name) throw new InvalidParameterError('Neither old nor new names may be empty');
    await s.containers.rename(ctx.param('id'), name);
    ctx.noContent();
  });

  router.add('DELETE', '/containers/:id', async (ctx) => {
    await s.containers.remove(ctx.param('id'), { force: boolValue(ctx.query, 'force'), volumes: boolValue(ctx.query, 'v') });
    ctx.noContent();
  });

  router.add('POST', '/containers/:id/wait', async (ctx) => {
    const raw = ctx.query.get('condition') || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(raw)) throw new InvalidParameterError(`invalid condition: "${raw}"`);
    const abort = new AbortController();
    const result = s.containers.wait(ctx.param('id'), raw as WaitCondition, abort.signal);
    // The CLI blocks on the headers before it sends /start: flush them now, answer later.
    const out = ctx.stream('application/json');
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    const answer = await result;
    ctx.connection.off('close', onClose);
    if (!abort.signal.aborted) out.end(JSON.stringify(answer) + '\n');
  });

  router.add('POST', '/containers/:id/resize', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const h = intValue(ctx.query, 'h', 0);
    const w = intValue(ctx.query, 'w', 0);
    if (h < 0 || w < 0) throw new InvalidParameterError('invalid height or width');
    if (!record.State.Running) throw new ConflictError(`Container ${record.Id} is not running`);
    await s.runtime.resize(record.Id, { rows: h, cols: w });
    ctx.send(200);
  });

  router.add('POST', '/containers/:id/attach', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const wantStdin = boolValue(ctx.query, 'stdin');
    const wantStdout = boolValue(ctx.query, 'stdout');
    const wantStderr = boolValue(ctx.query, 'stderr');
    const logs = boolValue(ctx.query, 'logs');
    const streamMode = boolValue(ctx.query, 'stream');
    if (!logs && !streamMode) throw new InvalidParameterError('Bad parameters: you must choose at least one stream');
    const tty = record.Config.Tty ?? false;
    // As with Docker, detach keys are parsed up front (a bad value is a 400) and watched for on a TTY only.
    const detachKeys = parseDetachKeys(ctx.query.get('detachKeys'));
    const stream = ctx.hijack(streamContentType(tty, ctx.version));
    s.containers.event(record, 'attach');
    const output = stream.output;
    try {
      if (logs && record.RuntimeCreated) {
        for await (const entry of s.runtime.logs(record.Id, { stdout: wantStdout, stderr: wantStderr })) {
          if (output.destroyed) break;
          await writeOrWait(output, tty ? entry.data : frame(entry.stream, entry.data));
        }
      }
      if (streamMode) {
        await s.containers.attachWhenReady(record.Id, async (ready) => {
          if (!ready || output.destroyed) {
            // The container never ran (its start failed): nothing will come, end the connection.
            stream.end();
            return;
          }
          const session = await s.runtime.attach(record.Id, {
            stdin: wantStdin && (record.Config.OpenStdin ?? false),
            stdout: wantStdout,
            stderr: wantStderr,
          });
          // Do not hold start up: pump in the background, the attach promise resolves at once.
          void pumpSession(stream, session, tty, {
            stdin: wantStdin,
            stdout: wantStdout,
            stderr: wantStderr,
            detach: () => session.close(),
            detachKeys: tty ? detachKeys : null,
          }).finally(() => {
            s.containers.event(record, 'detach');
            stream.end();
          });
        });
        return;
      }
    } catch (error) {
      if (!output.destroyed) output.write(tty ? Buffer.from(`${(error as Error).message}\n`) : frame('systemerr', Buffer.from((error as Error).message)));
    }
    stream.end();
  });

  router.add('GET', '/containers/:id/logs', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const stdout = boolValue(ctx.query, 'stdout');
    const stderr = boolValue(ctx.query, 'stderr');
    if (!stdout && !stderr) throw new InvalidParameterError('Bad parameters: you must choose at least one stream');
    const follow = boolValue(ctx.query, 'follow');
    const timestamps = boolValue(ctx.query, 'timestamps');
    const tailRaw = ctx.query.get('tail') ?? 'all';
    let tail: number | undefined;
    if (tailRaw !== 'all' && tailRaw !== '') {
      if (!/^-?\d+$/.test(tailRaw)) throw new InvalidParameterError(`invalid value for tail: ${tailRaw}`);
      const n = Number.parseInt(tailRaw, 10);
      tail = n < 0 ? undefined : n;
    }
    const sinceRaw = ctx.query.get('since');
    const untilRaw = ctx.query.get('until');
    const since = sinceRaw && sinceRaw !== '0' ? parseTimestamp(sinceRaw) : undefined;
    const until = untilRaw && untilRaw !== '0' ? parseTimestamp(untilRaw) : undefined;
    if (sinceRaw && sinceRaw !== '0' && since === undefined) throw new InvalidParameterError(`invalid value for since: ${sinceRaw}`);
    if (untilRaw && untilRaw !== '0' && until === undefined) throw new InvalidParameterError(`invalid value for until: ${untilRaw}`);
    const tty = record.Config.Tty ?? false;
    const out = ctx.stream(streamContentType(tty, ctx.version));
    if (!record.RuntimeCreated) {
      out.end();
      return;
    }
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const entries = s.runtime.logs(record.Id, {
        stdout,
        stderr,
        follow: follow && record.State.Running,
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(tail !== undefined ? { tail } : {}),
        signal: abort.signal,
      });
      for await (const entry of entries) {
        if (out.destroyed) break;
        const payload = timestamps ? Buffer.concat([Buffer.from(`${rfc3339Nano(entry.time)} `), entry.data]) : entry.data;
        // A slow client holds the reader here: the log file is not read further until it drains.
        await writeOrWait(out, tty ? payload : frame(entry.stream, payload));
      }
    } catch (error) {
      if (!abort.signal.aborted && !out.destroyed) {
        s.log.debug(`logs of ${record.Id.slice(0, 12)}: ${(error as Error).message}`);
      }
    } finally {
      ctx.connection.off('close', onClose);
    }
    if (!out.destroyed) out.end();
  });

  router.add('GET', '/containers/:id/top', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    if (!record.State.Running) throw new ConflictError(`container ${record.Id} is not running`);
    ctx.sendJson(200, await s.runtime.top(record.Id, ctx.query.get('ps_args') ?? undefined));
  });

  router.add('GET', '/containers/:id/stats', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const streamMode = ctx.query.has('stream') ? boolValue(ctx.query, 'stream') : true;
    const oneShot = boolValue(ctx.query, 'one-shot');
    const sample = async (): Promise<Record<string, unknown>> => {
      if (!record.State.Running) return emptyStats(record);
      const st = await s.runtime.stats(record.Id);
      return statsJson(record, st);
    };
    if (!streamMode) {
      let first = await sample();
      if (!oneShot && record.State.Running) {
        await new Promise((r) => setTimeout(r, 1000));
        const second = await sample();
        second['precpu_stats'] = first['cpu_stats'];
        first = second;
      }
      ctx.sendJson(200, first);
      return;
    }
    const out = ctx.stream('application/json');
    let previous: Record<string, unknown> | undefined;
    let open = true;
    ctx.connection.once('close', () => (open = false));
    while (open && !out.destroyed) {
      const current = await sample().catch(() => emptyStats(record));
      if (previous) current['precpu_stats'] = previous['cpu_stats'];
      await writeOrWait(out, JSON.stringify(current) + '\n');
      previous = current;
      if (!record.State.Running) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (!out.destroyed) out.end();
  });

  router.add('POST', '/containers/:id/update', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const body = await ctx.json(validateContainerUpdate);
    const { RestartPolicy, ...resources } = body;
    if (RestartPolicy) {
      if (record.HostConfig.AutoRemove && RestartPolicy.Name && RestartPolicy.Name !== 'no') {
        throw new InvalidParameterError('Restart policy cannot be updated because AutoRemove is enabled for the container');
      }
      record.HostConfig.RestartPolicy = RestartPolicy;
    }
    const changes = Object.fromEntries(Object.entries(resources).filter(([, v]) => v !== undefined && v !== null));
    if (Object.keys(changes).length > 0 && record.State.Running) await s.runtime.update(record.Id, changes);
    Object.assign(record.HostConfig, changes);
    await s.containers.store.save(record);
    s.containers.event(record, 'update');
    ctx.sendJson(200, { Warnings: [] });
  });

  router.add('GET', '/containers/:id/changes', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    ctx.sendJson(200, await s.images.changes(record.Id));
  });

  router.add('GET', '/containers/:id/export', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    await withRootfs(record, s.runtime, s.images, scratch(), async (root) => {
      const child = runTar(['--numeric-owner', '-cf', '-', '.'], root);
      child.stdin?.end();
      const out = ctx.stream('application/x-tar');
      // Handled from the start: a client that goes away fails the pipeline first, and tar's
      // failure after that must not become an unhandled rejection (which ends the daemon).
      const exit = tarExit(child).catch((e: unknown) => s.log.warn(`export ${record.Id.slice(0, 12)}: ${String(e)}`));
      await pipeline(child.stdout!, out);
      await exit;
    });
    s.containers.event(record, 'export');
  });

  const archiveStat = async (ctx: ApiContext): Promise<void> => {
    const record = s.containers.store.get(ctx.param('id'));
    const path = ctx.query.get('path');
    if (!path) throw new InvalidParameterError('Bad parameters: path must not be empty');
    await frozen(s, record, () => withRootfs(record, s.runtime, s.images, scratch(), async (root) => {
      const st = await pathStat(root, path);
      ctx.setHeader('X-Docker-Container-Path-Stat', st.header);
      if (ctx.method === 'HEAD') {
        ctx.send(200);
        return;
      }
      // A trailing "/." copies the contents of a directory, as moby's archive does.
      const source = path.endsWith('/.') ? st.host : await resolveInRoot(root, path, !path.endsWith('/') ? false : true);
      const name = path.endsWith('/.') ? '.' : basename(source);
      const cwd = path.endsWith('/.') ? source : dirname(source);
      await stat(cwd);
      const child = runTar(['--numeric-owner', '-cf', '-', name], cwd);
      child.stdin?.end();
      const exit = tarExit(child).catch((e: unknown) => s.log.warn(`archive ${record.Id.slice(0, 12)}:${path}: ${String(e)}`));
      const out = ctx.stream('application/x-tar');
      await pipeline(child.stdout!, out);
      await exit;
    }));
  };
  router.add('HEAD', '/containers/:id/archive', archiveStat);
  router.add('GET', '/containers/:id/archive', archiveStat);

  router.add('PUT', '/containers/:id/archive', async (ctx) => {
    const record = s.containers.store.get(ctx.param('id'));
    const path = ctx.query.get('path');
    if (!path) throw new InvalidParameterError('Bad parameters: path must not be empty');
    const noOverwriteDirNonDir = boolValue(ctx.query, 'noOverwriteDirNonDir');
    if (record.HostConfig.ReadonlyRootfs) throw new DaemonError('READ_ONLY', 'forbidden', 'container rootfs is marked read-only');
    const copyUIDGID = boolValue(ctx.query, 'copyUIDGID');
    await frozen(s, record, () => withRootfs(record, s.runtime, s.images, scratch(), async (root) => {
      const target = await resolveInRoot(root, posix.normalize(path));
      let st;
      try {
        // The root itself may be a running container's `/proc/<pid>/root`, a symlink to follow.
        st = target === root ? await stat(target) : await lstat(target);
      } catch (cause) {
        throw new DaemonError('NO_SUCH_PATH', 'not-found', `Could not find the file ${path} in container ${ctx.param('id')}`, { cause });
      }
      if (!st.isDirectory()) throw new InvalidParameterError(`extraction point is not a directory`);
      // Extracted in Node, entry by entry, every path resolved inside the root (CVE-2018-15664).
      await extractToContainer(root, path, ctx.req, { noOverwriteDirNonDir, copyUIDGID });
    }));
    s.containers.event(record, 'extract-to-dir');
    ctx.send(200);
  });
}

function matchesLabel(spec: string, labels: Record<string, string> | null | undefined): boolean {
  const have = labels ?? {};
  const eq = spec.indexOf('=');
  return eq < 0 ? spec in have : have[spec.slice(0, eq)] === spec.slice(eq + 1);
}

function emptyStats(record: ContainerRecord): Record<string, unknown> {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    id: record.Id,
    name: record.Name,
    pids_stats: {},
    blkio_stats: { io_service_bytes_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    precpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: {},
  };
}

function statsJson(record: ContainerRecord, st: Awaited<ReturnType<DaemonServices['runtime']['stats']>>): Record<string, unknown> {
  const cpu = {
    cpu_usage: { total_usage: Number(st.cpu.usageNs), usage_in_kernelmode: Number(st.cpu.systemNs), usage_in_usermode: Number(st.cpu.userNs) },
    system_cpu_usage: Number(st.cpu.systemUsageNs),
    online_cpus: st.cpu.onlineCpus,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  };
  return {
    read: st.read.toISOString(),
    preread: ZERO_TIME,
    id: record.Id,
    name: record.Name,
    pids_stats: { current: st.pids.current, limit: st.pids.limit },
    blkio_stats: {
      io_service_bytes_recursive: [
        { major: 0, minor: 0, op: 'read', value: st.blkio.readBytes },
        { major: 0, minor: 0, op: 'write', value: st.blkio.writeBytes },
      ],
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    // No memory limit: the host's memory, as moby reports it (`docker stats` shows "/ 23.5GiB", not
    // the cgroup's "no limit" value of 8 PiB).
    memory_stats: { usage: st.memory.usage, max_usage: st.memory.maxUsage, limit: Math.min(st.memory.limit, totalmem()), stats: { cache: st.memory.cache }, failcnt: st.memory.oomKills },
    networks: Object.fromEntries(
      Object.entries(st.network).map(([name, n]) => [
        name,
        { rx_bytes: n.rxBytes, rx_packets: n.rxPackets, rx_errors: n.rxErrors, rx_dropped: n.rxDropped, tx_bytes: n.txBytes, tx_packets: n.txPackets, tx_errors: n.txErrors, tx_dropped: n.txDropped },
      ]),
    ),
  };
}
