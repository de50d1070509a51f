/**
 * @berth/runtime — runs containers on Linux: OCI bundles with Docker's defaults, crun/runc under a
 * conmon monitor per container, cgroups v1 and v2, logs, exec, attach, stats.
 */
export const packageName = '@berth/runtime';

// Errors
export {
  RuntimeError,
  NoSuchContainerError,
  ContainerExistsError,
  InvalidStateError,
  InvalidSpecError,
  RuntimeCommandError,
  RuntimeUnavailableError,
  ExecStartError,
} from './errors.js';

// What a container is
export type {
  ContainerSpec,
  RootfsSpec,
  Mount,
  ImageProcessConfig,
  ContainerConfigOverrides,
  HostConfigOptions,
  ThrottleDevice,
  Ulimit,
  DeviceMapping,
  NetworkNamespace,
  LogOptions,
} from './spec/types.js';

// Bundle generation (pure; used by the runtime, exported for tools and tests)
export { buildRuntimeSpec, namespaceModes, resolveProcessConfig } from './spec/generate.js';
export type { OciRuntimeSpec, BuildRuntimeSpecContext, ResolvedProcessConfig } from './spec/generate.js';
export {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  ALL_CAPABILITIES,
} from './spec/defaults.js';
export { defaultSeccompProfile, seccompFromDockerProfile } from './spec/seccomp.js';
export type { DockerSeccompProfile, OciSeccomp } from './spec/seccomp.js';
export { resolveUser } from './spec/users.js';
export type { ResolvedUser } from './spec/users.js';

// The lifecycle
export {
  canStart,
  canPause,
  canUnpause,
  canKill,
  canStop,
  canDelete,
  canExec,
  canAttach,
  canUpdate,
  canResize,
  isAllowed,
  nextStatus,
} from './lifecycle/state-machine.js';
export type { ContainerStatus, LifecycleOperation } from './lifecycle/state-machine.js';

// The runtime
export { openRuntime, detectOciRuntime } from './runtime/runtime.js';
export type {
  Runtime,
  RuntimeOptions,
  OciRuntimeInfo,
  ExitStatus,
  ContainerInfo,
  LogEntry,
  LogReadOptions,
  AttachOptions,
  AttachSession,
  ExecOptions,
  ExecSession,
  TopResult,
  ContainerStats,
  ResourceUpdate,
  StopOptions,
} from './runtime/types.js';
export { parseSignal } from './runtime/signals.js';
export { blkioWeightToIoWeight, cpuSharesToWeight, detectCgroups, memorySwapToSwapMax, readCgroupLimits } from './cgroups/cgroups.js';
export type { CgroupInfo, CgroupLimits, DetectCgroupsOptions } from './cgroups/cgroups.js';
export { hostDevices, parseDeviceCgroupRule, resolveDevices } from './spec/devices.js';
export type { OciDevice, OciDeviceRule } from './spec/devices.js';

// Embedding in test suites
export { runTestContainer } from './testing/test-container.js';
export type { TestContainerOptions, TestContainer } from './testing/test-container.js';

// networks and volumes
export { NetworkManager } from './network/manager.js';
export {
  NetworkError,
  NetworkNotFoundError,
  NetworkInUseError,
  PortAllocatedError,
  NetworkCommandError,
} from './network/errors.js';
export type {
  NetworkManagerOptions,
  NetworkCreateOptions,
  NetworkInspect,
  NetworkContainerEntry,
  NetworkFilters,
  IpamConfig,
  EndpointRequest,
  EndpointSettings,
  ContainerNetworkRequest,
  ContainerNetworkSetup,
  ContainerNetworkSettings,
  PortBinding,
  PortMap,
  ReconcileReport,
} from './network/types.js';
export { parsePublishSpec } from './network/ports.js';
export { VolumeStore, ANONYMOUS_LABEL } from './volume/store.js';
export { VolumeError, VolumeNotFoundError, VolumeInUseError, InvalidMountError } from './volume/errors.js';
export { resolveInRoot, cleanContainerPath } from './volume/resolve.js';
export type {
  VolumeInspect,
  VolumeCreateOptions,
  VolumeFilters,
  VolumePruneReport,
  MountRequest,
  MountPoint,
  ContainerMountRequest,
  ContainerMounts,
} from './volume/types.js';
// end networks and volumes
