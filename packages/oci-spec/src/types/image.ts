/**
 * Types of the OCI image spec v1.1 (descriptor, manifest, index, config, image layout) and of
 * Docker's image manifest v2 schema 2. Field names are the wire names.
 */
import type { Digest } from '../digest/digest.js';

/** Platform as carried by an index entry's descriptor and by an image config. */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  /** Docker-only extension in manifest lists. */
  features?: string[];
}

export type Annotations = Record<string, string>;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Annotations;
  /** Base64 of the content; must match digest and size when present. */
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

export interface HealthConfig {
  /** `[]` inherit, `["NONE"]` disable, `["CMD", ...args]` exec, `["CMD-SHELL", command]` shell. */
  Test?: string[];
  /** Nanoseconds; 0 means inherit. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The `config` member of an image config: Docker's container config subset that images carry. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  /** Docker extensions that OCI tolerates and Docker images carry. */
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  StopTimeout?: number;
  Hostname?: string;
  Domainname?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Image?: string;
  NetworkDisabled?: boolean;
  MacAddress?: string;
}

export interface History {
  created?: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface RootFs {
  type: 'layers';
  diff_ids: Digest[];
}

/** Image config (`application/vnd.oci.image.config.v1+json`, also Docker's config v1). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: RootFs;
  history?: History[];
  /** Docker-only legacy fields that images built by Docker carry. */
  id?: string;
  parent?: string;
  docker_version?: string;
  container?: string;
  container_config?: ContainerConfig;
}

/** The `oci-layout` file at the root of an image layout. */
export interface ImageLayout {
  imageLayoutVersion: '1.0.0';
}

/** Docker image manifest v2, schema 2. */
export interface DockerManifest {
  schemaVersion: 2;
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json';
  config: Descriptor;
  layers: Descriptor[];
}

export interface DockerManifestListEntry extends Descriptor {
  platform: Platform;
}

/** Docker manifest list (multi-arch), schema 2. */
export interface DockerManifestList {
  schemaVersion: 2;
  mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json';
  manifests: DockerManifestListEntry[];
}

/** Any manifest-like document berth handles. */
export type AnyManifest = ImageManifest | ImageIndex | DockerManifest | DockerManifestList;
