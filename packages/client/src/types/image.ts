import type { ContainerConfig, Labels } from './container.js';

/** An item of `GET /images/json`. */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Labels | null;
  Containers: number;
}

/** `GET /images/{name}/json`. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Parent?: string;
  Comment?: string;
  Created: string;
  DockerVersion?: string;
  Author?: string;
  Config: ContainerConfig | null;
  Architecture: string;
  Variant?: string;
  Os: string;
  OsVersion?: string;
  Size: number;
  VirtualSize?: number;
  GraphDriver?: { Name: string; Data: Record<string, string> | null };
  RootFS: { Type: string; Layers?: string[] };
  Metadata?: { LastTagTime?: string };
}

/** An item of `GET /images/{name}/history`. */
export interface ImageHistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** An item of `DELETE /images/{name}`. */
export interface ImageDeleteItem {
  Untagged?: string;
  Deleted?: string;
}

export interface ImagePruneResponse {
  ImagesDeleted: ImageDeleteItem[] | null;
  SpaceReclaimed: number;
}

/**
 * One message of a JSON progress stream (pull, push, build, load, import) — moby's JSONMessage.
 * `aux` carries `{ID}` for build, `{Tag,Digest,Size}` for push.
 */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number; start?: number; hidecounts?: boolean; units?: string };
  stream?: string;
  aux?: { ID?: string; Tag?: string; Digest?: string; Size?: number } & Record<string, unknown>;
  errorDetail?: { code?: number; message: string };
  /** Deprecated duplicate of errorDetail.message. */
  error?: string;
  time?: number;
  timeNano?: number;
}

/** `build` query parameters (API 1.44 legacy builder, `version=1`). */
export interface BuildOptions {
  tags?: string[];
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  target?: string;
  platform?: string;
  noCache?: boolean;
  pull?: boolean;
  quiet?: boolean;
  rm?: boolean;
  forceRm?: boolean;
  networkMode?: string;
  cacheFrom?: string[];
  extraHosts?: string;
}

/** Registry credentials in the shape the daemon accepts in X-Registry-Auth. */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface AuthResponse {
  Status: string;
  IdentityToken?: string;
}

export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated?: boolean;
}

export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: { architecture: string; os: string; variant?: string }[];
}
