// Public API of @berth/oci-spec. Everything not named here is internal.

export { BerthError, NotImplementedError, isBerthError } from './errors.js';
export type { ErrorCategory, BerthErrorOptions } from './errors.js';

export {
  MediaType,
  EMPTY_JSON_DIGEST,
  EMPTY_JSON_SIZE,
  MANIFEST_ACCEPT,
  baseMediaType,
  isManifestMediaType,
  isIndexMediaType,
  isLayerMediaType,
  isConfigMediaType,
  isForeignLayerMediaType,
  layerCompression,
} from './media-type.js';
export type { MediaTypeName, KnownMediaType, LayerCompression } from './media-type.js';

export type {
  Platform,
  Annotations,
  Descriptor,
  ImageManifest,
  ImageIndex,
  HealthConfig,
  ContainerConfig,
  History,
  RootFs,
  ImageConfig,
  ImageLayout,
  DockerManifest,
  DockerManifestListEntry,
  DockerManifestList,
  AnyManifest,
} from './types/image.js';
export type {
  RuntimeSpec,
  Root,
  Mount,
  ConsoleSize,
  User,
  LinuxCapabilities,
  POSIXRlimit,
  Scheduler,
  LinuxIOPriority,
  Process,
  Hook,
  Hooks,
  LinuxNamespaceType,
  LinuxNamespace,
  IdMapping,
  LinuxDevice,
  LinuxDeviceCgroup,
  LinuxMemory,
  LinuxCPU,
  LinuxPids,
  LinuxWeightDevice,
  LinuxThrottleDevice,
  LinuxBlockIO,
  LinuxHugepageLimit,
  LinuxNetwork,
  LinuxResources,
  LinuxSeccompArg,
  LinuxSyscall,
  LinuxSeccomp,
  LinuxPersonality,
  LinuxIntelRdt,
  Linux,
  RuntimeStatus,
  RuntimeState,
} from './types/runtime.js';
export { DistributionErrorCode } from './types/distribution.js';
export type { DistributionError, DistributionErrorBody, DistributionErrorCodeName } from './types/distribution.js';

export {
  parseDigest,
  isDigest,
  isDigestAlgorithm,
  formatDigest,
  digestOf,
  verifyDigest,
  assertDigest,
  Digester,
  DigestStream,
  VerifyStream,
  createDigestStream,
  createVerifyStream,
} from './digest/digest.js';
export type { Digest, DigestAlgorithm, ParsedDigest } from './digest/digest.js';
export { DigestError, DigestMismatchError, SizeMismatchError } from './digest/errors.js';

export {
  parseReference,
  tryParseReference,
  formatReference,
  referenceName,
  familiarName,
  familiarString,
  registryHost,
  withTag,
  withDigest,
  trimReference,
  isValidTag,
  isValidDomain,
  InvalidReferenceError,
  DEFAULT_DOMAIN,
  LEGACY_DEFAULT_DOMAIN,
  DOCKER_HUB_REGISTRY_HOST,
  OFFICIAL_REPO_PREFIX,
  DEFAULT_TAG,
  REPOSITORY_NAME_MAX_LENGTH,
} from './reference/reference.js';
export type { Reference, ParseReferenceOptions } from './reference/reference.js';

export {
  parsePlatform,
  formatPlatform,
  normalizePlatform,
  hostPlatform,
  platformMatches,
  selectManifest,
  isAttestationManifest,
  InvalidPlatformError,
  REFERENCE_TYPE_ANNOTATION,
  ATTESTATION_MANIFEST,
} from './platform/platform.js';

export {
  validateDescriptor,
  validateImageManifest,
  validateImageIndex,
  validateImageConfig,
  validateImageLayout,
  validateDockerManifest,
  validateDockerManifestList,
  validateRuntimeSpec,
  validateRuntimeState,
  validateDistributionError,
  validateManifest,
  parseJson,
} from './validation/validators.js';
export type { ManifestDocument } from './validation/validators.js';
export { ValidationError } from './validation/validation-error.js';
export type { ValidationIssue } from './validation/validation-error.js';
export type { CompiledValidator } from './validation/ajv.js';
