import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { familiarString, tryParseReference, isBerthError } from '@berth/oci-spec';
import type { ImageInspect, ImageService } from '@berth/image';
import { namespaceModes } from '@berth/runtime';
import type { ContainerInfo, ContainerSpec, ExitStatus, Mount, MountRequest, NetworkManager, PortMap, Runtime, VolumeStore } from '@berth/runtime';
import type { ContainerCreateBody, ContainerConfig, EndpointSettings, HostConfig } from '../api/types.js';
import {
  ConflictError,
  DaemonError,
  InvalidParameterError,
  NoSuchImageError,
  NotModifiedError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { ZERO_TIME, type ContainerRecord, type ContainerStore } from '../state/container-store.js';
import type { EventBus } from '../state/events.js';
import { HealthMonitor } from './health.js';
import { generateName, VALID_NAME } from './names.js';
import { RestartPolicyManager } from './restart.js';

export interface ContainerServiceDeps {
  store: ContainerStore;
  runtime: Runtime;
  images: ImageService;
  events: EventBus;
  log: Logger;
  networks: NetworkManager;
  volumes: VolumeStore;
  /** The OCI runtime used when a container names none. */
  defaultRuntime?: string;
}

/** An attach that arrived before the runtime container existed (the `docker run` order). */
type PendingAttach = (runtimeReady: boolean) => Promise<void>;

/** In-memory state of one container's current run. */
interface Live {
  /** Resolves once the exit of the current run has been recorded. */
  exited?: Promise<void>;
  pendingAttaches: PendingAttach[];
  health?: HealthMonitor;
  /** Serialises start/stop/remove of one container. */
  lock: Promise<void>;
  stopping: boolean;
}

export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

function randomId(): string {
  return randomBytes(32).toString('hex');
}

function imageNameForError(ref: string): string {
  const parsed = tryParseReference(ref);
  return parsed ? familiarString(parsed) : ref;
}

/** Maps a start failure to Docker's wording so the CLI picks 127/126/125. */
function startError(id: string, cause: unknown): DaemonError {
  const message = cause instanceof Error ? cause.message : String(cause);
  const lower = message.toLowerCase();
  const invalid =
    lower.includes('executable file not found') || lower.includes('no such file or directory') || lower.includes('permission denied');
  return new DaemonError(
    'START_FAILED',
    invalid ? 'invalid' : 'internal',
    `failed to create task for container ${id}: OCI runtime create failed: ${message}`,
    { cause },
  );
}

function startExitCode(message: string): number {
  const lower = message.toLowerCase();
  if (lower.includes('executable file not found') || lower.includes('no such file or directory')) return 127;
  if (lower.includes('permission denied')) return 126;
  return 128;
}

function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) out.set(e.split('=')[0]!, e);
  return [...out.values()];
}

/**
 * Containers as the Engine API sees them: the daemon's registry of names and IDs over the
 * runtime's containers. One runtime container (same ID) exists per run: it is created at start,
 * and deleted before the next start or at removal.
 */
export class ContainerService {
  readonly #deps: ContainerServiceDeps;
  readonly #live = new Map<string, Live>();
  readonly #stopping = new AbortController();
  readonly #signals = new EventEmitter();
  readonly restarts: RestartPolicyManager;

  constructor(deps: ContainerServiceDeps) {
    this.#deps = deps;
    this.#signals.setMaxListeners(0);
    this.restarts = new RestartPolicyManager((record) => this.#restartByPolicy(record), deps.log);
  }

  get store(): ContainerStore {
    return this.#deps.store;
  }

  #liveOf(id: string): Live {
    let live = this.#live.get(id);
    if (!live) {
      live = { pendingAttaches: [], lock: Promise.resolve(), stopping: false };
      this.#live.set(id, live);
    }
    return live;
  }

  /** Runs `fn` after every earlier locked operation on the container has finished. */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const live = this.#liveOf(id);
    const previous = live.lock;
    let release!: () => void;
    live.lock = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #attributes(record: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(record.Config.Labels ?? {}),
      image: record.Config.Image ?? '',
      name: record.Name.slice(1),
      ...extra,
    };
  }

  #event(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.#deps.events.publish('container', action, record.Id, this.#attributes(record, extra));
  }

  async #inspectImage(ref: string): Promise<ImageInspect> {
    try {
      return await this.#deps.images.inspect(ref);
    } catch (error) {
      if (isBerthError(error) && error.category === 'not-found') throw new NoSuchImageError(imageNameForError(ref), { cause: error });
      throw error;
    }
  }

  // ---- create -------------------------------------------------------------------------------

  async create(name: string | undefined, body: ContainerCreateBody): Promise<{ Id: string; Warnings: string[] }> {
    const imageRef = body.Image ?? '';
    if (imageRef === '') throw new InvalidParameterError('config.Image must not be empty');
    if (name !== undefined && name !== '' && !VALID_NAME.test(name)) {
      throw new InvalidParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const host: HostConfig = { ...(body.HostConfig ?? {}) };
    const restartName = host.RestartPolicy?.Name ?? '';
    if (host.AutoRemove && restartName !== '' && restartName !== 'no') {
      throw new InvalidParameterError("conflicting options: cannot specify both --restart and --rm");
    }
    if (restartName !== 'on-failure' && (host.RestartPolicy?.MaximumRetryCount ?? 0) > 0) {
      throw new InvalidParameterError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    }
    if (host.Memory !== undefined && host.Memory > 0 && host.Memory < 6 * 1024 * 1024) {
      throw new InvalidParameterError('Minimum memory limit allowed is 6MB');
    }
    for (const key of Object.keys(host.PortBindings ?? {})) {
      if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(key)) throw new InvalidParameterError(`invalid port specification: "${key}"`);
    }
    try {
      namespaceModes({ PidMode: host.PidMode ?? '', IpcMode: host.IpcMode ?? '', UTSMode: host.UTSMode ?? '', CgroupnsMode: host.CgroupnsMode ?? '' });
    } catch (error) {
      throw new InvalidParameterError((error as Error).message);
    }
    if (host.UTSMode === 'host' && body.Hostname) throw new InvalidParameterError('Conflicting options: hostname and the UTS mode');

    const image = await this.#inspectImage(imageRef);
    const config = this.#mergeConfig(body, image);
    if ((config.Entrypoint ?? []).length === 0 && (config.Cmd ?? []).length === 0) {
      throw new InvalidParameterError('no command specified');
    }

    const id = randomId();
    let fullName: string;
    if (name !== undefined && name !== '') {
      fullName = name.startsWith('/') ? name : `/${name}`;
      this.#deps.store.reserveName(fullName, id);
    } else {
      fullName = '';
      for (let retry = 0; retry < 10 && fullName === ''; retry++) {
        const candidate = `/${generateName(retry)}`;
        try {
          this.#deps.store.reserveName(candidate, id);
          fullName = candidate;
        } catch {
          // taken; try another
        }
      }
      if (fullName === '') fullName = `/${id.slice(0, 12)}`;
    }

    const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    const networkMode = !host.NetworkMode || host.NetworkMode === 'default' ? 'bridge' : host.NetworkMode;
    host.NetworkMode = networkMode;
    const endpoints: Record<string, EndpointSettings> = {};
    for (const [net, settings] of Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {})) {
      endpoints[net === 'default' ? 'bridge' : net] = settings ?? {};
    }
    if (Object.keys(endpoints).length === 0 && networkMode !== 'host' && networkMode !== 'none' && !networkMode.startsWith('container:')) {
      endpoints[networkMode] = {};
    }
    const record: ContainerRecord = {
      Id: id,
      Name: fullName,
      Created: new Date().toISOString(),
      Path: command[0] ?? '',
      Args: command.slice(1),
      Config: config,
      HostConfig: host,
      NetworkingConfig: { EndpointsConfig: endpoints },
      Image: image.Id,
      State: {
        Status: 'created',
        Running: false,
        Paused: false,
        Restarting: false,
        OOMKilled: false,
        Dead: false,
        Pid: 0,
        ExitCode: 0,
        Error: '',
        StartedAt: ZERO_TIME,
        FinishedAt: ZERO_TIME,
      },
      RestartCount: 0,
      HasBeenManuallyStopped: false,
      RuntimeCreated: false,
      Mounts: [],
      OciMounts: [],
      NetworkSettings: null,
      LogPath: '',
      ResolvConfPath: '',
      HostnamePath: '',
      HostsPath: '',
      Driver: 'overlay2',
      Platform: 'linux',
    };
    if (config.Healthcheck && (config.Healthcheck.Test ?? [])[0] !== 'NONE' && (config.Healthcheck.Test ?? []).length > 0) {
      record.State.Health = { Status: 'starting', FailingStreak: 0, Log: [] };
    }
    try {
      const rootfs = await this.#deps.images.prepareRootfs(id, image.Id);
      const volumesFrom = (host.VolumesFrom ?? []).map((spec) => {
        const [ref = '', mode] = spec.split(':');
        const other = this.#deps.store.get(ref);
        return mode ? `${other.Id}:${mode}` : other.Id;
      });
      const prepared = await this.#deps.volumes.prepareMounts({
        containerId: id,
        rootfs,
        imageVolumes: config.Volumes ?? null,
        binds: host.Binds ?? [],
        mounts: (host.Mounts ?? []) as MountRequest[],
        tmpfs: host.Tmpfs ?? {},
        volumesFrom,
      });
      record.Mounts = prepared.mountPoints;
      record.OciMounts = prepared.mounts;
      await this.#deps.store.add(record);
    } catch (error) {
      this.#deps.store.releaseName(fullName);
      await this.#deps.volumes.releaseMounts(id, { removeAnonymous: true }).catch(() => undefined);
      await this.#deps.images.removeRootfs(id).catch(() => undefined);
      throw error;
    }
    for (const point of record.Mounts) {
      if (point.Type === 'volume' && point.Name) this.#deps.events.publish('volume', 'create', point.Name, { driver: 'local' });
    }
    this.#event(record, 'create');
    this.#deps.log.info(`created container ${id.slice(0, 12)} (${fullName.slice(1)}) from ${imageRef}`);
    return { Id: id, Warnings: [] };
  }

  /** The container's config: the request's fields over the image's, as moby's merge does. */
  #mergeConfig(body: ContainerCreateBody, image: ImageInspect): ContainerConfig {
    const img = image.Config;
    const config: ContainerConfig = {
      Hostname: body.Hostname ?? '',
      Domainname: body.Domainname ?? '',
      User: body.User || img.User || '',
      AttachStdin: body.AttachStdin ?? false,
      AttachStdout: body.AttachStdout ?? false,
      AttachStderr: body.AttachStderr ?? false,
      ExposedPorts: { ...(img.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) },
      Tty: body.Tty ?? false,
      OpenStdin: body.OpenStdin ?? false,
      StdinOnce: body.StdinOnce ?? false,
      Env: mergeEnv(img.Env ?? [], body.Env ?? []),
      Cmd: null,
      Image: body.Image ?? '',
      Volumes: { ...(img.Volumes ?? {}), ...(body.Volumes ?? {}) },
      WorkingDir: body.WorkingDir || img.WorkingDir || '',
      Entrypoint: null,
      OnBuild: null,
      Labels: { ...(img.Labels ?? {}), ...(body.Labels ?? {}) },
    };
    if (body.Entrypoint && body.Entrypoint.length > 0) {
      config.Entrypoint = body.Entrypoint;
      config.Cmd = body.Cmd && body.Cmd.length > 0 ? body.Cmd : null;
    } else {
      config.Entrypoint = img.Entrypoint && img.Entrypoint.length > 0 ? img.Entrypoint : null;
      config.Cmd = body.Cmd && body.Cmd.length > 0 ? body.Cmd : img.Cmd && img.Cmd.length > 0 ? img.Cmd : null;
    }
    const health = body.Healthcheck ?? img.Healthcheck;
    if (health) {
      const merged = { ...(img.Healthcheck ?? {}), ...(body.Healthcheck ?? {}) };
      if (!body.Healthcheck?.Test || body.Healthcheck.Test.length === 0) merged.Test = img.Healthcheck?.Test ?? [];
      config.Healthcheck = merged;
    }
    const stopSignal = body.StopSignal || img.StopSignal;
    if (stopSignal) config.StopSignal = stopSignal;
    if (body.StopTimeout !== undefined && body.StopTimeout !== null) config.StopTimeout = body.StopTimeout;
    if (body.Shell) config.Shell = body.Shell;
    return config;
  }

  // ---- start --------------------------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const record = this.#deps.store.get(ref);
    let failed = false;
    try {
      await this.#locked(record.Id, async () => {
        if (record.State.Paused) throw new ConflictError('cannot start a paused container, try unpause instead');
        if (record.State.Running) throw new NotModifiedError();
        if (record.State.Status === 'removing' || record.State.Dead) {
          throw new ConflictError(`container is marked for removal and cannot be started`);
        }
        record.HasBeenManuallyStopped = false;
        this.restarts.cancel(record.Id);
        failed = true;
        await this.#startRun(record);
        failed = false;
      });
    } finally {
      // As moby does: a container with AutoRemove that failed to start is removed (the CLI's
      // `run --rm` waits for the removal before it reports the start error).
      if (failed && record.HostConfig.AutoRemove) {
        await this.remove(record.Id, { force: true, volumes: true }).catch(() => undefined);
      }
    }
  }

  /** `container:<name or id>` → `container:<full id>` (the runtime knows containers by id). */
  #namespaceOf(mode: string): string {
    if (!mode.startsWith('container:')) return mode;
    return `container:${this.#deps.store.get(mode.slice('container:'.length)).Id}`;
  }

  #spec(record: ContainerRecord, rootfs: Mount[], net: { netns: ContainerSpec['netns']; hosts?: string; resolvConf?: string; hostname?: string }): ContainerSpec {
    const c = record.Config;
    const h = record.HostConfig;
    const spec: ContainerSpec = {
      id: record.Id,
      name: record.Name.slice(1),
      rootfs: { mounts: rootfs },
      config: {
        Env: c.Env ?? [],
        Entrypoint: c.Entrypoint ?? null,
        Cmd: c.Cmd ?? null,
        ...(c.User ? { User: c.User } : {}),
        ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
        ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
        ...(typeof c.StopTimeout === 'number' ? { StopTimeout: c.StopTimeout } : {}),
        ...(c.Labels ? { Labels: c.Labels } : {}),
      },
      hostConfig: {
        Privileged: h.Privileged ?? false,
        ReadonlyRootfs: h.ReadonlyRootfs ?? false,
        CapAdd: h.CapAdd ?? [],
        CapDrop: h.CapDrop ?? [],
        SecurityOpt: h.SecurityOpt ?? [],
        Ulimits: h.Ulimits ?? [],
        Init: h.Init ?? false,
        ...(h.ShmSize ? { ShmSize: h.ShmSize } : {}),
        Sysctls: h.Sysctls ?? {},
        // Tmpfs mounts are part of OciMounts (the volume store planned them).
        Tmpfs: {},
        GroupAdd: h.GroupAdd ?? [],
        ...(h.OomScoreAdj ? { OomScoreAdj: h.OomScoreAdj } : {}),
        ...(h.OomKillDisable ? { OomKillDisable: true } : {}),
        ...(h.Memory ? { Memory: h.Memory } : {}),
        ...(h.MemorySwap ? { MemorySwap: h.MemorySwap } : {}),
        ...(h.MemoryReservation ? { MemoryReservation: h.MemoryReservation } : {}),
        ...(h.NanoCpus ? { NanoCpus: h.NanoCpus } : {}),
        ...(h.CpuShares ? { CpuShares: h.CpuShares } : {}),
        ...(h.CpuPeriod ? { CpuPeriod: h.CpuPeriod } : {}),
        ...(h.CpuQuota ? { CpuQuota: h.CpuQuota } : {}),
        ...(h.CpusetCpus ? { CpusetCpus: h.CpusetCpus } : {}),
        ...(h.CpusetMems ? { CpusetMems: h.CpusetMems } : {}),
        ...(h.PidsLimit ? { PidsLimit: h.PidsLimit } : {}),
        ...(h.BlkioWeight ? { BlkioWeight: h.BlkioWeight } : {}),
        ...(h.BlkioDeviceReadBps?.length ? { BlkioDeviceReadBps: h.BlkioDeviceReadBps } : {}),
        ...(h.BlkioDeviceWriteBps?.length ? { BlkioDeviceWriteBps: h.BlkioDeviceWriteBps } : {}),
        ...(h.BlkioDeviceReadIOps?.length ? { BlkioDeviceReadIOps: h.BlkioDeviceReadIOps } : {}),
        ...(h.BlkioDeviceWriteIOps?.length ? { BlkioDeviceWriteIOps: h.BlkioDeviceWriteIOps } : {}),
        ...(h.MemorySwappiness !== undefined && h.MemorySwappiness !== null && h.MemorySwappiness >= 0 ? { MemorySwappiness: h.MemorySwappiness } : {}),
        ...(h.Devices?.length ? { Devices: h.Devices } : {}),
        ...(h.DeviceCgroupRules?.length ? { DeviceCgroupRules: h.DeviceCgroupRules } : {}),
        ...(h.PidMode ? { PidMode: this.#namespaceOf(h.PidMode) } : {}),
        ...(h.IpcMode ? { IpcMode: this.#namespaceOf(h.IpcMode) } : {}),
        ...(h.UTSMode ? { UTSMode: h.UTSMode } : {}),
        ...(h.CgroupnsMode ? { CgroupnsMode: h.CgroupnsMode } : {}),
      },
      tty: c.Tty ?? false,
      // `docker run -t` sends the terminal's size: the pty has it before the process starts.
      ...(c.Tty && (h.ConsoleSize?.[0] ?? 0) > 0 && (h.ConsoleSize?.[1] ?? 0) > 0
        ? { consoleSize: { height: h.ConsoleSize?.[0] ?? 0, width: h.ConsoleSize?.[1] ?? 0 } }
        : {}),
      openStdin: c.OpenStdin ?? false,
      stdinOnce: c.StdinOnce ?? false,
      netns: net.netns ?? 'none',
      mounts: record.OciMounts,
      hostname: net.hostname || c.Hostname || record.Id.slice(0, 12),
      ...(c.Domainname ? { domainname: c.Domainname } : {}),
      ...(net.hosts !== undefined ? { hosts: net.hosts } : {}),
      ...(net.resolvConf !== undefined ? { resolvConf: net.resolvConf } : {}),
    };
    const runtimeName = h.Runtime || this.#deps.defaultRuntime;
    if (runtimeName) spec.runtime = runtimeName;
    return spec;
  }

  /** Creates and starts the runtime container of a new run; caller holds the lock. */
  async #startRun(record: ContainerRecord): Promise<void> {
    const { runtime, images, networks } = this.#deps;
    const live = this.#liveOf(record.Id);
    if (record.RuntimeCreated) {
      // The earlier runs' logs stay: `docker logs` after a restart shows them all.
      await runtime.delete(record.Id, { force: true, keepLogs: true }).catch(() => undefined);
      record.RuntimeCreated = false;
    }
    const rootfs = await images.prepareRootfs(record.Id, record.Image);
    // A setup left by a daemon that died mid-start would make setupContainer refuse.
    await networks.teardownContainer(record.Id).catch(() => undefined);
    const portBindings: PortMap = {};
    for (const [k, v] of Object.entries(record.HostConfig.PortBindings ?? {})) {
      portBindings[k.includes('/') ? k : `${k}/tcp`] = (v ?? []).map((b) => ({ HostIp: b.HostIp ?? '', HostPort: b.HostPort ?? '' }));
    }
    const endpoints: Record<string, { Aliases?: string[]; IPAMConfig?: { IPv4Address?: string; IPv6Address?: string }; MacAddress?: string }> = {};
    for (const [name, ep] of Object.entries(record.NetworkingConfig.EndpointsConfig ?? {})) {
      endpoints[name] = {
        ...(ep?.Aliases ? { Aliases: ep.Aliases } : {}),
        ...(ep?.IPAMConfig ? { IPAMConfig: { ...(ep.IPAMConfig.IPv4Address ? { IPv4Address: ep.IPAMConfig.IPv4Address } : {}), ...(ep.IPAMConfig.IPv6Address ? { IPv6Address: ep.IPAMConfig.IPv6Address } : {}) } } : {}),
        ...(ep?.MacAddress ? { MacAddress: ep.MacAddress } : {}),
      };
    }
    let networkMode = record.HostConfig.NetworkMode ?? 'bridge';
    if (networkMode.startsWith('container:')) networkMode = `container:${this.#deps.store.get(networkMode.slice(10)).Id}`;
    // The network namespace (a few processes) is set up while the runtime mounts the root
    // filesystem and resolves the user; the runtime waits for it before it writes the bundle.
    const setup = networks.setupContainer({
      containerId: record.Id,
      name: record.Name.slice(1),
      ...(record.Config.Hostname ? { hostname: record.Config.Hostname } : {}),
      ...(record.Config.Domainname ? { domainname: record.Config.Domainname } : {}),
      networkMode,
      endpoints,
      portBindings,
      publishAllPorts: record.HostConfig.PublishAllPorts ?? false,
      exposedPorts: record.Config.ExposedPorts ?? {},
      dns: record.HostConfig.Dns ?? [],
      dnsSearch: record.HostConfig.DnsSearch ?? [],
      dnsOptions: record.HostConfig.DnsOptions ?? [],
      extraHosts: record.HostConfig.ExtraHosts ?? [],
    });
    const network = setup.then((s) => ({
      netns: s.netns,
      ...(s.hosts !== undefined ? { hosts: s.hosts } : {}),
      ...(s.resolvConf !== undefined ? { resolvConf: s.resolvConf } : {}),
      hostname: s.hostname || record.Config.Hostname || record.Id.slice(0, 12),
    }));
    let info: ContainerInfo;
    try {
      info = await runtime.create(this.#spec(record, rootfs, { netns: 'none' }), { network });
      record.NetworkSettings = (await setup).settings;
    } catch (error) {
      // A network that could not be set up fails the start with its own error (this await
      // rethrows it); anything else is the runtime's, in Docker's words.
      await setup;
      await networks.teardownContainer(record.Id).catch(() => undefined);
      const err = startError(record.Id, error);
      record.State.Error = err.message;
      record.State.ExitCode = startExitCode(err.message);
      record.State.Status = record.State.StartedAt === ZERO_TIME ? 'created' : 'exited';
      await this.#deps.store.save(record);
      this.#failPendingAttaches(live);
      throw err;
    }
    record.RuntimeCreated = true;
    record.LogPath = info.logPath;
    // Attaches that arrived before the runtime container existed connect now, before the
    // process runs, so no output is lost.
    const pending = live.pendingAttaches.splice(0);
    await Promise.all(pending.map((connect) => connect(true).catch(() => undefined)));
    try {
      await runtime.start(record.Id);
    } catch (error) {
      await runtime.delete(record.Id, { force: true, keepLogs: true }).catch(() => undefined);
      record.RuntimeCreated = false;
      await networks.teardownContainer(record.Id).catch(() => undefined);
      const err = startError(record.Id, error);
      record.State.Error = err.message;
      record.State.ExitCode = startExitCode(err.message);
      await this.#deps.store.save(record);
      throw err;
    }
    // The pid is the one create reported (pid 1 does not change at start); asking the runtime
    // again would only add a round trip, and a process like `true` may be gone already.
    const startedAt = new Date();
    record.State = {
      ...record.State,
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: info.pid,
      ExitCode: 0,
      Error: '',
      StartedAt: startedAt.toISOString(),
      FinishedAt: ZERO_TIME,
    };
    if (record.State.Health) record.State.Health = { Status: 'starting', FailingStreak: 0, Log: [] };
    await this.#deps.store.save(record);
    this.#event(record, 'start');
    this.#deps.log.info(`started container ${record.Id.slice(0, 12)} pid ${record.State.Pid}`);
    this.#watch(record);
  }

  #failPendingAttaches(live: Live): void {
    const pending = live.pendingAttaches.splice(0);
    for (const connect of pending) void connect(false).catch(() => undefined);
  }

  /** Follows the current run until it exits, then records the exit and applies the policies. */
  #watch(record: ContainerRecord): void {
    const live = this.#liveOf(record.Id);
    this.#startHealth(record);
    live.exited = this.#deps.runtime
      .wait(record.Id, { signal: this.#stopping.signal })
      .then(
        (status) => this.#onExit(record, status),
        async (error: unknown) => {
          // Shutdown (live-restore): stop following, record nothing; the next daemon re-attaches.
          if (this.#stopping.signal.aborted) return;
          this.#deps.log.warn(`lost track of container ${record.Id.slice(0, 12)}: ${String(error)}`);
          await this.#onExit(record, { exitCode: 255, oomKilled: false, finishedAt: new Date() });
        },
      )
      .catch((error: unknown) => this.#deps.log.error(`recording exit of ${record.Id.slice(0, 12)}: ${String(error)}`));
  }

  #startHealth(record: ContainerRecord): void {
    const live = this.#liveOf(record.Id);
    live.health?.stop();
    live.health = undefined;
    const test = record.Config.Healthcheck?.Test ?? [];
    if (test.length === 0 || test[0] === 'NONE') return;
    live.health = new HealthMonitor(record, this.#deps.runtime, {
      onChange: async (status) => {
        await this.#deps.store.save(record);
        this.#event(record, `health_status: ${status}`);
      },
      onProbe: async () => {
        await this.#deps.store.save(record);
      },
    });
    live.health.start();
  }

  async #onExit(record: ContainerRecord, status: ExitStatus): Promise<void> {
    const live = this.#liveOf(record.Id);
    live.health?.stop();
    live.health = undefined;
    if (!this.#deps.store.find(record.Id)) return;
    const startedAt = Date.parse(record.State.StartedAt);
    record.State = {
      ...record.State,
      Status: 'exited',
      Running: false,
      Paused: false,
      Restarting: false,
      OOMKilled: status.oomKilled,
      Pid: 0,
      ExitCode: status.exitCode,
      FinishedAt: status.finishedAt.toISOString(),
    };
    const autoRemove = record.HostConfig.AutoRemove === true && !live.stopping;
    // An auto-removed container's network goes with the rest of it in remove(), and its record
    // is deleted there: writing the record now would be a write nobody reads (a daemon that dies
    // in between finds it exited on start and removes it then).
    if (!autoRemove) {
      await this.#deps.networks.teardownContainer(record.Id).catch(() => undefined);
      await this.#deps.store.save(record);
    }
    if (status.oomKilled) this.#event(record, 'oom');
    this.#event(record, 'die', { exitCode: String(status.exitCode) });
    this.#deps.log.info(`container ${record.Id.slice(0, 12)} exited with ${status.exitCode}`);
    this.#signals.emit(`exit:${record.Id}`, status.exitCode);

    if (autoRemove) {
      await this.remove(record.Id, { force: true, volumes: true }).catch(async (error: unknown) => {
        this.#deps.log.warn(`auto-removing ${record.Id.slice(0, 12)}: ${String(error)}`);
        await this.#deps.networks.teardownContainer(record.Id).catch(() => undefined);
        if (this.#deps.store.find(record.Id)) await this.#deps.store.save(record).catch(() => undefined);
      });
      return;
    }
    if (!live.stopping && !record.HasBeenManuallyStopped) {
      const ranFor = Number.isNaN(startedAt) ? 0 : status.finishedAt.getTime() - startedAt;
      if (this.restarts.schedule(record, status.exitCode, ranFor)) {
        record.State.Restarting = true;
        record.State.Status = 'restarting';
        await this.#deps.store.save(record);
      }
    }
  }

  async #restartByPolicy(record: ContainerRecord): Promise<void> {
    if (!this.#deps.store.find(record.Id)) return;
    await this.#locked(record.Id, async () => {
      if (record.State.Running || record.HasBeenManuallyStopped) return;
      record.RestartCount += 1;
      try {
        await this.#startRun(record);
        this.#event(record, 'restart');
      } catch (error) {
        record.State.Restarting = false;
        record.State.Status = 'exited';
        await this.#deps.store.save(record);
        this.#deps.log.warn(`restarting ${record.Id.slice(0, 12)} failed: ${String(error)}`);
      }
    });
  }

  // ---- stop / kill / restart / pause --------------------------------------------------------

  async stop(ref: string, options: { timeout?: number; signal?: string } = {}): Promise<void> {
    const record = this.#deps.store.get(ref);
    await this.#locked(record.Id, async () => {
      record.HasBeenManuallyStopped = true;
      this.restarts.cancel(record.Id);
      if (record.State.Restarting) {
        record.State.Restarting = false;
        record.State.Status = 'exited';
        await this.#deps.store.save(record);
        return;
      }
      if (!record.State.Running) {
        await this.#deps.store.save(record);
        throw new NotModifiedError();
      }
      await this.#stopRun(record, options);
    });
  }

  async #stopRun(record: ContainerRecord, options: { timeout?: number; signal?: string }): Promise<void> {
    const live = this.#liveOf(record.Id);
    await this.#deps.store.save(record);
    const timeout = options.timeout ?? record.Config.StopTimeout ?? 10;
    const stopSignal = options.signal || record.Config.StopSignal || 'SIGTERM';
    this.#event(record, 'kill', { signal: signalNumber(stopSignal) });
    if (record.State.Paused) await this.#deps.runtime.unpause(record.Id).catch(() => undefined);
    await this.#deps.runtime.stop(record.Id, { timeout: timeout < 0 ? 31_536_000 : timeout, signal: stopSignal });
    await live.exited;
    this.#event(record, 'stop');
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const record = this.#deps.store.get(ref);
    if (!record.State.Running) {
      throw new ConflictError(`cannot kill container: ${ref}: container ${record.Id} is not running`);
    }
    const normal = signal.toUpperCase().replace(/^SIG/, '');
    const stopSignal = (record.Config.StopSignal || 'SIGTERM').toUpperCase().replace(/^SIG/, '');
    if (normal === 'KILL' || normal === '9' || normal === stopSignal) {
      record.HasBeenManuallyStopped = true;
      this.restarts.cancel(record.Id);
      await this.#deps.store.save(record);
    }
    try {
      await this.#deps.runtime.kill(record.Id, signal);
    } catch (error) {
      throw new ConflictError(`cannot kill container: ${ref}: ${(error as Error).message}`, { cause: error });
    }
    this.#event(record, 'kill', { signal: signalNumber(signal) });
    if (normal === 'KILL' || normal === '9') await this.#liveOf(record.Id).exited;
  }

  async restart(ref: string, options: { timeout?: number; signal?: string } = {}): Promise<void> {
    const record = this.#deps.store.get(ref);
    await this.#locked(record.Id, async () => {
      this.restarts.cancel(record.Id);
      const live = this.#liveOf(record.Id);
      if (record.State.Running) {
        live.stopping = true;
        try {
          await this.#stopRun(record, options);
        } finally {
          live.stopping = false;
        }
      }
      record.HasBeenManuallyStopped = false;
      await this.#startRun(record);
      this.#event(record, 'restart');
    });
  }

  async pause(ref: string): Promise<void> {
    const record = this.#deps.store.get(ref);
    if (!record.State.Running) throw new ConflictError(`container ${record.Id} is not running`);
    if (record.State.Paused) throw new ConflictError(`container ${record.Id} is already paused`);
    await this.#deps.runtime.pause(record.Id);
    record.State.Paused = true;
    record.State.Status = 'paused';
    await this.#deps.store.save(record);
    this.#event(record, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const record = this.#deps.store.get(ref);
    if (!record.State.Paused) throw new ConflictError(`container ${record.Id} is not paused`);
    await this.#deps.runtime.unpause(record.Id);
    record.State.Paused = false;
    record.State.Status = 'running';
    await this.#deps.store.save(record);
    this.#event(record, 'unpause');
  }

  // ---- wait / remove ------------------------------------------------------------------------

  /**
   * Resolves when the condition holds. The promise is created synchronously (the listener is
   * registered before this returns), so a `start` issued after the call cannot be missed.
   */
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): Promise<WaitResult> {
    const record = this.#deps.store.get(ref);
    const id = record.Id;
    const result = (code: number): WaitResult => ({ StatusCode: code, Error: null });
    if (condition === 'not-running' && !record.State.Running && !record.State.Restarting) {
      return Promise.resolve(result(record.State.ExitCode));
    }
    return new Promise<WaitResult>((resolve) => {
      let lastExit = record.State.ExitCode;
      const cleanup = (): void => {
        this.#signals.off(`exit:${id}`, onExit);
        this.#signals.off(`removed:${id}`, onRemoved);
        signal?.removeEventListener('abort', onAbort);
      };
      const onExit = (code: number): void => {
        lastExit = code;
        if (condition === 'removed') return;
        cleanup();
        resolve(result(code));
      };
      const onRemoved = (): void => {
        cleanup();
        resolve(result(lastExit));
      };
      const onAbort = (): void => {
        cleanup();
        resolve(result(-1));
      };
      this.#signals.on(`exit:${id}`, onExit);
      this.#signals.on(`removed:${id}`, onRemoved);
      signal?.addEventListener('abort', onAbort);
    });
  }

  async remove(ref: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = this.#deps.store.get(ref);
    await this.#locked(record.Id, async () => {
      if (!this.#deps.store.find(record.Id)) return;
      if ((record.State.Running || record.State.Paused) && !options.force) {
        throw new ConflictError(
          `cannot remove container "${record.Name}": container is running: stop the container before removing or force remove`,
        );
      }
      const live = this.#liveOf(record.Id);
      this.restarts.cancel(record.Id);
      record.HasBeenManuallyStopped = true;
      live.health?.stop();
      if (record.State.Running || record.State.Paused) {
        live.stopping = true;
        this.#event(record, 'kill', { signal: '9' });
        await this.#deps.runtime.kill(record.Id, 'SIGKILL').catch(() => undefined);
        await Promise.race([live.exited, new Promise((r) => setTimeout(r, 10_000))]);
      }
      record.State.Status = 'removing';
      // The runtime container (also when none exists: that drops logs kept across a failed
      // restart) and the network namespace are independent: tear both down at once.
      const [deleted] = await Promise.allSettled([
        this.#deps.runtime.delete(record.Id, { force: true }).catch((error: unknown) => {
          if (!(isBerthError(error) && error.category === 'not-found')) throw error;
        }),
        this.#deps.networks.teardownContainer(record.Id).catch(() => undefined),
      ]);
      if (deleted.status === 'rejected') throw deleted.reason;
      record.RuntimeCreated = false;
      // Volumes and the container layer, once nothing has them mounted.
      const [, layer] = await Promise.allSettled([
        this.#deps.volumes.releaseMounts(record.Id, { removeAnonymous: Boolean(options.volumes) }).catch((error: unknown) =>
          this.#deps.log.warn(`releasing mounts of ${record.Id.slice(0, 12)}: ${String(error)}`),
        ),
        this.#deps.images.removeRootfs(record.Id),
      ]);
      if (layer.status === 'rejected') throw layer.reason;
      await this.#deps.store.remove(record);
      this.#failPendingAttaches(live);
      this.#event(record, 'destroy');
      this.#deps.log.info(`removed container ${record.Id.slice(0, 12)}`);
      this.#signals.emit(`removed:${record.Id}`);
    });
    this.#live.delete(record.Id);
  }

  async rename(ref: string, newName: string): Promise<void> {
    if (!VALID_NAME.test(newName)) {
      throw new InvalidParameterError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const record = this.#deps.store.get(ref);
    const oldName = record.Name;
    await this.#deps.store.rename(record, newName.startsWith('/') ? newName : `/${newName}`);
    this.#event(record, 'rename', { oldName });
  }

  // ---- attach -------------------------------------------------------------------------------

  /**
   * Connects a client to the container's stdio. Before the runtime container exists (the
   * `docker run` order: attach, wait, start) the connection is held until start.
   */
  attachWhenReady(ref: string, connect: (ready: boolean) => Promise<void>): Promise<void> {
    const record = this.#deps.store.get(ref);
    if (record.State.Running || record.State.Paused) return connect(true);
    if (record.State.Restarting) {
      throw new ConflictError(`You cannot attach to a restarting container, wait until it is running`);
    }
    const live = this.#liveOf(record.Id);
    return new Promise<void>((resolve, reject) => {
      live.pendingAttaches.push(async (ready) => {
        try {
          await connect(ready);
          resolve();
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  event(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.#event(record, action, extra);
  }

  // ---- daemon start -------------------------------------------------------------------------

  /**
   * Reconciles the registry with the runtime after a daemon start (live-restore): running
   * containers keep running and are watched again; those that stopped while the daemon was away
   * get their exit recorded and their restart policy applied.
   */
  async restore(): Promise<void> {
    const known = new Map<string, ContainerInfo>();
    for (const info of await this.#deps.runtime.list().catch(() => [] as ContainerInfo[])) known.set(info.id, info);
    for (const record of this.#deps.store.all()) {
      const info = known.get(record.Id);
      known.delete(record.Id);
      if (record.State.Status === 'removing') {
        await this.remove(record.Id, { force: true }).catch(() => undefined);
        continue;
      }
      if (info && (info.status === 'running' || info.status === 'paused')) {
        record.RuntimeCreated = true;
        record.State.Running = true;
        record.State.Paused = info.status === 'paused';
        record.State.Status = info.status;
        record.State.Restarting = false;
        record.State.Pid = info.pid;
        await this.#deps.store.save(record);
        this.#watch(record);
        this.#deps.log.info(`restored running container ${record.Id.slice(0, 12)} pid ${info.pid}`);
        continue;
      }
      const wasRunning = record.State.Running || record.State.Restarting;
      if (info) record.RuntimeCreated = true;
      if (wasRunning) {
        const exitCode = info?.exitCode ?? 255;
        record.State = {
          ...record.State,
          Status: 'exited',
          Running: false,
          Paused: false,
          Restarting: false,
          Pid: 0,
          ExitCode: exitCode,
          OOMKilled: info?.oomKilled ?? false,
          FinishedAt: (info?.finishedAt ?? new Date()).toISOString(),
        };
        await this.#deps.store.save(record);
        this.#deps.log.info(`container ${record.Id.slice(0, 12)} exited with ${exitCode} while the daemon was down`);
        if (record.HostConfig.AutoRemove) {
          await this.remove(record.Id, { force: true }).catch(() => undefined);
          continue;
        }
      }
      const policy = record.HostConfig.RestartPolicy?.Name ?? 'no';
      const restartOnBoot =
        !record.HasBeenManuallyStopped &&
        (policy === 'always' ||
          policy === 'unless-stopped' ||
          (policy === 'on-failure' && wasRunning && record.State.ExitCode !== 0 &&
            ((record.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0) === 0 || record.RestartCount < (record.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0))));
      if (restartOnBoot && record.State.StartedAt !== ZERO_TIME) {
        await this.#locked(record.Id, () => this.#startRun(record)).catch((error: unknown) =>
          this.#deps.log.warn(`restarting ${record.Id.slice(0, 12)} on daemon start: ${String(error)}`),
        );
      }
    }
    // Runtime containers that no record owns are leftovers of creates that never finished.
    for (const orphan of known.keys()) {
      if (!/^[0-9a-f]{64}$/.test(orphan)) continue;
      this.#deps.log.warn(`removing orphaned runtime container ${orphan.slice(0, 12)}`);
      await this.#deps.runtime.delete(orphan, { force: true }).catch(() => undefined);
    }
  }

  /** On shutdown: stop health checks and timers; containers keep running (live-restore). */
  /**
   * Stops following running containers' exits (each holds an inotify watch and a poll timer that
   * keep the event loop alive), so a live-restore shutdown lets the process exit.
   */
  releaseWatchers(): void {
    this.#stopping.abort();
  }

  async shutdown(): Promise<void> {
    this.restarts.cancelAll();
    for (const live of this.#live.values()) live.health?.stop();
  }

  get runtime(): Runtime {
    return this.#deps.runtime;
  }

  get images(): ImageService {
    return this.#deps.images;
  }

  /** `NetworkSettings.Ports` of inspect: empty unless running. */
  ports(record: ContainerRecord): PortMap {
    if (!record.State.Running || !record.NetworkSettings) return {};
    return record.NetworkSettings.Ports;
  }
}

const signalNumbers: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20,
  TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31,
};

function signalNumber(signal: string): string {
  if (/^\d+$/.test(signal)) return signal;
  const n = signalNumbers[signal.toUpperCase().replace(/^SIG/, '')];
  return n === undefined ? signal : String(n);
}
