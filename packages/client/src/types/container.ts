/** Engine API 1.44 container shapes (moby api/types/container). Fields the daemon may omit are optional. */

export type Labels = Record<string, string>;

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}
export type PortMap = Record<string, PortBinding[] | null>;

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
  StartInterval?: number;
}

/** The portable part of a container's configuration (also an image's `Config`). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, object>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[];
  Cmd?: string[];
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Entrypoint?: string[];
  NetworkDisabled?: boolean;
  OnBuild?: string[] | null;
  Labels?: Labels;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

export interface RestartPolicy {
  Name?: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount?: number;
}

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Labels; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface Resources {
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  MemoryReservation?: number;
  MemorySwap?: number;
  PidsLimit?: number | null;
  BlkioWeight?: number;
  Ulimits?: { Name: string; Soft: number; Hard: number }[];
}

export interface HostConfig extends Resources {
  Binds?: string[];
  ContainerIDFile?: string;
  LogConfig?: { Type?: string; Config?: Record<string, string> };
  NetworkMode?: string;
  PortBindings?: PortMap;
  RestartPolicy?: RestartPolicy;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[];
  Mounts?: MountSpec[];
  ConsoleSize?: [number, number];
  CapAdd?: string[];
  CapDrop?: string[];
  CgroupnsMode?: 'private' | 'host' | '';
  Dns?: string[];
  DnsOptions?: string[];
  DnsSearch?: string[];
  ExtraHosts?: string[];
  GroupAdd?: string[];
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[];
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[];
  StorageOpt?: Record<string, string>;
  Tmpfs?: Record<string, string>;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string>;
  Runtime?: string;
  Init?: boolean | null;
}

export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  DNSNames?: string[] | null;
}

export interface NetworkingConfig {
  EndpointsConfig?: Record<string, EndpointSettings>;
}

/** Body of `POST /containers/create`. */
export interface ContainerCreateBody extends ContainerConfig {
  Image: string;
  HostConfig?: HostConfig;
  NetworkingConfig?: NetworkingConfig;
}

export interface ContainerCreateOptions {
  name?: string;
  platform?: string;
}

export interface ContainerCreateResponse {
  Id: string;
  Warnings: string[] | null;
}

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: 'tcp' | 'udp' | 'sctp';
}

export interface MountPoint {
  Type?: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export type ContainerStateStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** An item of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: Port[];
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Labels;
  State: ContainerStateStatus | string;
  Status: string;
  HostConfig: { NetworkMode?: string };
  NetworkSettings: { Networks?: Record<string, EndpointSettings> };
  Mounts: MountPoint[];
}

export interface HealthState {
  Status: 'none' | 'starting' | 'healthy' | 'unhealthy' | string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[] | null;
}

export interface ContainerState {
  Status: ContainerStateStatus | string;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

/** `GET /containers/{id}/json`. */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  ResolvConfPath?: string;
  HostnamePath?: string;
  HostsPath?: string;
  LogPath?: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  MountLabel?: string;
  ProcessLabel?: string;
  AppArmorProfile?: string;
  ExecIDs: string[] | null;
  HostConfig: HostConfig;
  Mounts: MountPoint[];
  Config: ContainerConfig;
  NetworkSettings: {
    Bridge?: string;
    SandboxID?: string;
    SandboxKey?: string;
    Ports: PortMap;
    Networks: Record<string, EndpointSettings>;
    IPAddress?: string;
    Gateway?: string;
    MacAddress?: string;
  };
  SizeRw?: number;
  SizeRootFs?: number;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface ContainerWaitResponse {
  StatusCode: number;
  Error?: { Message: string } | null;
}

export interface ContainerTopResponse {
  Titles: string[];
  Processes: string[][];
}

export interface ContainerChange {
  Path: string;
  /** 0 modified, 1 added, 2 deleted. */
  Kind: 0 | 1 | 2;
}

export interface ContainerUpdateBody extends Resources {
  RestartPolicy?: RestartPolicy;
}

export interface ContainerUpdateResponse {
  Warnings: string[] | null;
}

export interface ContainerPruneResponse {
  ContainersDeleted: string[] | null;
  SpaceReclaimed: number;
}

/** `X-Docker-Container-Path-Stat` of the archive endpoints (mode is a Go os.FileMode). */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode?: number; usage_in_usermode?: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data?: { periods: number; throttled_periods: number; throttled_time: number };
}

/** One sample of `GET /containers/{id}/stats`. */
export interface ContainerStats {
  name?: string;
  id?: string;
  read: string;
  preread: string;
  pids_stats?: { current?: number; limit?: number };
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; limit?: number; max_usage?: number; stats?: Record<string, number> };
  blkio_stats?: { io_service_bytes_recursive?: { major: number; minor: number; op: string; value: number }[] | null };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number; rx_packets?: number; tx_packets?: number }>;
}

export interface CommitOptions {
  container: string;
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  pause?: boolean;
  changes?: string[];
  config?: ContainerConfig;
}
