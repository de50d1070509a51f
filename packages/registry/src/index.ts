// Public API of @berth/registry. Everything not named here is internal.

export const packageName = '@berth/registry';

export {
  RegistryError,
  ManifestUnknownError,
  BlobUnknownError,
  BlobUploadUnknownError,
  BlobUploadInvalidError,
  NameUnknownError,
  NameInvalidError,
  DigestInvalidError,
  SizeInvalidError,
  ManifestInvalidError,
  ManifestBlobUnknownError,
  RangeInvalidError,
  UnauthorizedError,
  DeniedError,
  UnsupportedError,
  TooManyRequestsError,
  RegistryUnavailableError,
  registryErrorFromCode,
} from './errors.js';
export type { RegistryErrorOptions } from './errors.js';

// ---- server ----
export { createRegistryServer, serveRegistry } from './server/server.js';
export type {
  RegistryServerOptions,
  RegistryHttpServer,
  ServeRegistryOptions,
  RunningRegistry,
} from './server/server.js';
export { RegistryApp, MAX_MANIFEST_BYTES } from './server/app.js';
export type { AccessLogEntry, RegistryAppOptions } from './server/app.js';
export { Htpasswd, TokenIssuer } from './server/auth.js';
export { GarbageCollector } from './server/gc.js';
export type { GarbageCollectionOptions, GarbageCollectionReport } from './server/gc.js';
export { FilesystemDriver } from './server/storage/filesystem.js';
export type { FilesystemDriverOptions } from './server/storage/filesystem.js';
export type {
  StorageDriver,
  BlobInfo,
  UploadInfo,
  ByteRange,
  ManifestLink,
  ReferrerRecord,
} from './server/storage/driver.js';

// ---- client ----
export { RegistryClient, MAX_MANIFEST_SIZE, referrersTag } from './client/client.js';
export type { LentChunks } from './client/raw-http.js';
export type {
  RegistryClientOptions,
  AnyManifest,
  ManifestResult,
  ImageManifestResult,
  RequestOptions,
  FetchBlobOptions,
  PushBlobOptions,
  PushBlobResult,
  ListOptions,
  ReferrersOptions,
} from './client/client.js';
export {
  DockerConfigCredentials,
  StaticCredentials,
  runCredentialHelper,
  normaliseAuthKey,
  DOCKER_HUB_AUTH_KEY,
} from './client/credentials.js';
export type { Credential, CredentialStore } from './client/credentials.js';
export { parseWwwAuthenticate } from './client/auth.js';
export type { Challenge } from './client/auth.js';
export { isLoopbackHost } from './client/transport.js';
