import type { ContainerSummary } from './container.js';
import type { ImageSummary } from './image.js';
import type { Volume } from './volume.js';

/** What `/_ping` told us. */
export interface PingResult {
  apiVersion?: string;
  osType?: string;
  experimental: boolean;
  builderVersion?: string;
  swarm?: string;
}

export interface VersionComponent {
  Name: string;
  Version: string;
  Details?: Record<string, string>;
}

/** `GET /version`. */
export interface VersionInfo {
  Platform?: { Name: string };
  Components?: VersionComponent[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion?: string;
  Experimental?: boolean;
  BuildTime?: string;
}

/** `GET /info` (the fields docker info and testcontainers read; the daemon may send more). */
export interface SystemInfo {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus?: [string, string][] | null;
  Plugins?: { Volume?: string[] | null; Network?: string[] | null; Authorization?: string[] | null; Log?: string[] | null };
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  CpuCfsPeriod?: boolean;
  CpuCfsQuota?: boolean;
  IPv4Forwarding?: boolean;
  Debug?: boolean;
  NFd?: number;
  NGoroutines?: number;
  SystemTime?: string;
  LoggingDriver?: string;
  CgroupDriver?: string;
  CgroupVersion?: string;
  NEventsListener?: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion?: string;
  OSType: string;
  Architecture: string;
  IndexServerAddress?: string;
  RegistryConfig?: Record<string, unknown> | null;
  NCPU: number;
  MemTotal: number;
  DockerRootDir: string;
  HttpProxy?: string;
  HttpsProxy?: string;
  NoProxy?: string;
  Name: string;
  Labels: string[] | null;
  ExperimentalBuild?: boolean;
  ServerVersion: string;
  Runtimes?: Record<string, { path?: string }>;
  DefaultRuntime?: string;
  Swarm?: { LocalNodeState: string } & Record<string, unknown>;
  LiveRestoreEnabled?: boolean;
  Isolation?: string;
  InitBinary?: string;
  SecurityOptions?: string[] | null;
  Warnings?: string[] | null;
}

/** `GET /system/df`. */
export interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[] | null;
  Containers: ContainerSummary[] | null;
  Volumes: Volume[] | null;
  BuildCache?: { ID: string; Size: number; InUse: boolean; Shared: boolean }[] | null;
}

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'node' | 'service' | 'secret' | 'config' | 'builder';

/** One message of `GET /events`. */
export interface EventMessage {
  Type: EventType | string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope?: 'local' | 'swarm';
  time: number;
  timeNano: number;
  /** Legacy fields (container events). */
  status?: string;
  id?: string;
  from?: string;
}

/** `filters` for list and event calls: `{label: ['a=b'], status: ['running']}`. */
export type Filters = Record<string, string[] | string | boolean | undefined>;
