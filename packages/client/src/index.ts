// Public API of @berth/client. Everything not named here is internal.

export {
  BerthClient,
  createClient,
  ContainersApi,
  ImagesApi,
  ExecApi,
  NetworksApi,
  VolumesApi,
  SystemApi,
  MAX_API_VERSION,
  FALLBACK_API_VERSION,
  compareVersions,
  encodeQuery,
  encodeFilters,
  splitForPull,
  progressMessages,
} from './client.js';
export type {
  ClientOptions,
  CallOptions,
  RegistryAuthOptions,
  AttachSession,
  LogsOptions,
  AttachOptions,
  ContainerListOptions,
  ImageListOptions,
  PullOptions,
  EventsOptions,
} from './client.js';

export {
  ClientError,
  DaemonError,
  NotFoundError,
  ConflictError,
  BadRequestError,
  UnauthorizedError,
  ForbiddenError,
  NotModifiedError,
  NotImplementedByDaemonError,
  ServerError,
  ConnectionError,
  AbortedError,
  StreamError,
  errorFromResponse,
} from './errors.js';

export { DEFAULT_HOST, parseHost, resolveHost } from './transport/host.js';
export type { Endpoint, TlsOptions, HostFromEnv } from './transport/host.js';
export type { WireResponse } from './transport/wire.js';

export { demultiplex, rawFrames, frames, encodeFrame, MULTIPLEXED_STREAM, RAW_STREAM } from './streams/demux.js';
export type { OutputFrame } from './streams/demux.js';
export { jsonLines } from './streams/json-lines.js';

export {
  DOCKER_HUB_AUTH_KEY,
  dockerConfigPath,
  readDockerConfig,
  writeDockerConfig,
  authKeyFor,
  resolveAuth,
  resolveAllAuths,
  credentialHelperGet,
  saveLogin,
  removeLogin,
  encodeRegistryAuth,
} from './auth/docker-config.js';
export type { DockerConfigFile } from './auth/docker-config.js';

export { runContainer, startFailureExitCode, StartError } from './helpers/run.js';
export type { RunOptions, RunResult } from './helpers/run.js';
export { pullImage } from './helpers/pull.js';
export type { PullResult } from './helpers/pull.js';
export { buildImage } from './helpers/build.js';
export type { BuildResult } from './helpers/build.js';
export { createBuildContext, readDockerignore } from './helpers/build-context.js';
export type { BuildContextOptions } from './helpers/build-context.js';

export type {
  Labels,
  PortBinding,
  PortMap,
  HealthConfig,
  ContainerConfig,
  RestartPolicy,
  MountSpec,
  Resources,
  HostConfig,
  EndpointSettings,
  NetworkingConfig,
  ContainerCreateBody,
  ContainerCreateOptions,
  ContainerCreateResponse,
  Port,
  MountPoint,
  ContainerStateStatus,
  ContainerSummary,
  HealthState,
  ContainerState,
  ContainerInspect,
  WaitCondition,
  ContainerWaitResponse,
  ContainerTopResponse,
  ContainerChange,
  ContainerUpdateBody,
  ContainerUpdateResponse,
  ContainerPruneResponse,
  PathStat,
  CpuStats,
  ContainerStats,
  CommitOptions,
} from './types/container.js';
export type { ExecCreateBody, ExecCreateResponse, ExecInspect } from './types/exec.js';
export type {
  ImageSummary,
  ImageInspect,
  ImageHistoryItem,
  ImageDeleteItem,
  ImagePruneResponse,
  ProgressMessage,
  BuildOptions,
  AuthConfig,
  AuthResponse,
  SearchResult,
  DistributionInspect,
} from './types/image.js';
export type { IpamConfig, NetworkInspect, NetworkCreateBody, NetworkCreateResponse, NetworkConnectBody, NetworkPruneResponse } from './types/network.js';
export type { Volume, VolumeListResponse, VolumeCreateBody, VolumePruneResponse } from './types/volume.js';
export type { PingResult, VersionComponent, VersionInfo, SystemInfo, DiskUsage, EventType, EventMessage, Filters } from './types/system.js';
