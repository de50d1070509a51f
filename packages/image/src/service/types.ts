import type { Readable } from 'node:stream';
import type { Mount } from '../snapshot/types.js';
import type { ImageContext } from '../store/context.js';

/** Registry credentials as the Engine API's X-Registry-Auth carries them. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress?: string;
}

export type LayerPhase =
  | 'waiting'
  | 'exists'
  | 'downloading'
  | 'verifying'
  | 'download-complete'
  | 'extracting'
  | 'pull-complete';

/** Progress of a pull, one event per state change (and per ~chunk while moving bytes). */
export type PullProgress =
  | { type: 'resolved'; reference: string; digest: string }
  | {
      type: 'layer';
      /** Short ID (first 12 hex of the layer digest), the `id` Docker prints. */
      id: string;
      digest: string;
      phase: LayerPhase;
      current: number;
      total: number;
    }
  | { type: 'done'; reference: string; digest: string; upToDate: boolean };

export interface PullOptions {
  /** `os/arch[/variant]`, default the host platform. */
  platform?: string;
  auth?: RegistryAuth;
  /** Hosts allowed over plain HTTP besides loopback. */
  insecure?: string[];
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  /** Full normalised reference, e.g. `docker.io/library/busybox:latest`. */
  reference: string;
  /** Digest of the manifest (or index) the reference resolved to. */
  digest: string;
  /** Image ID (config digest). */
  id: string;
  /** True when nothing had to be fetched. */
  upToDate: boolean;
}

export type PushProgress =
  | { type: 'layer'; id: string; digest: string; phase: 'preparing' | 'pushing' | 'pushed' | 'exists'; current: number; total: number }
  | { type: 'done'; tag: string; digest: string; size: number };

export interface PushOptions {
  auth?: RegistryAuth;
  insecure?: string[];
  onProgress?: (event: PushProgress) => void;
  signal?: AbortSignal;
}

export interface PushResult {
  tag: string;
  digest: string;
  size: number;
}

/** One row of `GET /images/json`. */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  /** Unix seconds. */
  Created: number;
  Size: number;
  SharedSize: number;
  Labels: Record<string, string>;
  Containers: number;
}

/** Docker's container config inside an image config (`docker image inspect` → Config). */
export interface ImageContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[];
  Cmd?: string[];
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Entrypoint?: string[];
  OnBuild?: string[];
  Labels?: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

/** `GET /images/{name}/json`. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  /** RFC 3339. */
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: ImageContainerConfig;
  Architecture: string;
  Variant?: string;
  Os: string;
  OsVersion?: string;
  Size: number;
  GraphDriver: { Name: string; Data: Record<string, string> };
  RootFS: { Type: string; Layers: string[] };
  Metadata: { LastTagTime: string };
  /** Digest and media type of the manifest this image was stored from. */
  Descriptor?: { mediaType: string; digest: string; size: number };
}

/** `GET /images/{name}/history`, newest first. */
export interface ImageHistoryEntry {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[];
  Size: number;
  Comment: string;
}

/** One element of `DELETE /images/{name}`'s answer. */
export type ImageDeleteResponseItem = { Untagged: string } | { Deleted: string };

/** `GET /containers/{id}/changes`: Kind 0 = modified, 1 = added, 2 = deleted. */
export interface FilesystemChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

export interface DiskUsage {
  /** Bytes used by committed blobs, ingests, and snapshots, as `du` counts blocks. */
  content: number;
  ingest: number;
  snapshots: number;
  images: { id: string; size: number; sharedSize: number; uniqueSize: number }[];
  containers: { id: string; size: number }[];
  total: number;
}

export interface GcResult {
  blobsRemoved: string[];
  snapshotsRemoved: string[];
  bytesReclaimed: number;
}

export interface LoadResult {
  /** References loaded (familiar form, `busybox:latest`), and IDs of untagged images. */
  loaded: { reference?: string; id: string }[];
}

/**
 * What the daemon uses. Every method that takes `ref` accepts what `docker` accepts: a name
 * (`busybox`, `localhost:5000/x:1`), a name@digest, a full image ID (`sha256:…`) or an
 * unambiguous ID prefix. Unknown images throw `ImageNotFoundError` (`No such image: <ref>`).
 */
export interface ImageService {
  readonly root: string;
  /**
   * The image store this service reads and writes (content, snapshots, images.json). Share it
   * to write into the same store — e.g. `imageContextForBuilds(images.context, …)` for builds —
   * rather than opening a second context, which would keep its own copy of images.json.
   */
  readonly context: ImageContext;

  pull(ref: string, opts?: PullOptions): Promise<PullResult>;
  push(ref: string, opts?: PushOptions): Promise<PushResult>;
  list(opts?: { all?: boolean; dangling?: boolean; reference?: string[]; labels?: string[] }): Promise<ImageSummary[]>;
  inspect(ref: string): Promise<ImageInspect>;
  history(ref: string): Promise<ImageHistoryEntry[]>;
  /** Returns true if `ref` names a stored image. */
  exists(ref: string): Promise<boolean>;
  /** Adds `target` (a reference; default tag `latest`) to the image `source` names. */
  tag(source: string, target: string): Promise<void>;
  /**
   * Untags (a name) or deletes (an ID, or the last name) an image. An image some container's
   * rootfs was prepared from cannot be deleted without `force` (`ImageInUseError`, conflict).
   */
  remove(ref: string, opts?: { force?: boolean; noprune?: boolean }): Promise<ImageDeleteResponseItem[]>;
  /** `POST /images/prune`: dangling images (all unused with `all`). */
  prune(opts?: { all?: boolean }): Promise<{ deleted: ImageDeleteResponseItem[]; spaceReclaimed: number }>;

  /**
   * Creates the container's writable layer over the image's layers and returns the mounts of its
   * root filesystem (an overlay; mount it at the bundle's rootfs). Idempotent per container.
   */
  prepareRootfs(containerId: string, imageRef: string): Promise<Mount[]>;
  /** Mounts of an already prepared container rootfs. */
  rootfsMounts(containerId: string): Promise<Mount[]>;
  /** Removes the container's writable layer (the caller unmounts first). Idempotent. */
  removeRootfs(containerId: string): Promise<void>;
  /** Differences of the container's writable layer against its image (`docker diff`). */
  changes(containerId: string): Promise<FilesystemChange[]>;
  /** A reproducible tar of the container's writable layer, whiteouts as `.wh.` entries. */
  exportContainerLayer(containerId: string): Promise<Readable>;
  /**
   * `docker export`: a tar of the container's whole filesystem (image layers + writable layer),
   * made by mounting it read-only on a private temporary directory (needs root).
   */
  exportFilesystem(containerId: string): Promise<Readable>;
  /** Bytes used by the container's writable layer. */
  containerLayerSize(containerId: string): Promise<number>;
  /** `docker commit`: the container's writable layer as a new layer over its image; returns the ID. */
  commit(containerId: string, opts?: { reference?: string; comment?: string; author?: string; changes?: ImageConfigChanges }): Promise<string>;

  /** `docker save`: a tar with manifest.json, repositories and an OCI layout (Docker 25+ form). */
  save(refs: string[]): Promise<Readable>;
  /** Writes images as an OCI image layout directory (what `skopeo copy oci:` and umoci read). */
  saveOciLayout(refs: string[], dir: string): Promise<void>;
  /** Loads an OCI image layout directory. */
  loadOciLayout(dir: string): Promise<LoadResult>;
  /** `docker load`: docker-archive (manifest.json) or OCI layout tarballs, plain or gzip. */
  load(input: Readable, opts?: { onProgress?: (message: string) => void }): Promise<LoadResult>;
  /** `docker import`: a rootfs tarball as a one-layer image, optionally named. */
  import(input: Readable, opts?: { reference?: string; message?: string; changes?: ImageConfigChanges }): Promise<string>;

  diskUsage(): Promise<DiskUsage>;
  /** Removes blobs and snapshots no image or container references, and stale ingests. */
  gc(): Promise<GcResult>;
  close(): Promise<void>;
}

/** Config fields `docker import --change` / `docker commit --change` may set. */
export interface ImageConfigChanges {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  ExposedPorts?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  User?: string;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  StopSignal?: string;
}

export interface ImageServiceOptions {
  /** The image root, e.g. `/var/lib/berth/image`; holds content/, snapshots/, images.json. */
  root: string;
  /** Hosts allowed over plain HTTP besides loopback, for every pull/push. */
  insecure?: string[];
  /** Parallel layer downloads per pull (default 4). */
  concurrency?: number;
}
