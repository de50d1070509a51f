import type { Mount } from '../spec/types.js';

/** `GET /volumes/{name}` body (Docker's Volume). */
export interface VolumeInspect {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  /** Present when asked for (`list({ withUsage: true })`, `inspect(name, { withUsage: true })`). */
  UsageData?: { Size: number; RefCount: number };
}

export interface VolumeCreateOptions {
  /** Default: an anonymous volume with a random 64-hex name. */
  name?: string;
  driver?: string;
  labels?: Record<string, string>;
  /** `local` driver options (`type`, `o`, `device`): accepted and recorded; only plain directories are implemented. */
  driverOpts?: Record<string, string>;
}

/** Filters of `volume ls` / `volume prune` (Docker's names; values OR-ed, keys AND-ed). */
export interface VolumeFilters {
  name?: string[];
  /** `key` or `key=value`. */
  label?: string[];
  /** `true`: volumes no container references. */
  dangling?: string[];
  driver?: string[];
  /** Prune only: `true` removes named volumes too (Docker ≥ 23 prunes anonymous ones by default). */
  all?: string[];
}

/** `HostConfig.Mounts[]` element (Docker's mount.Mount). */
export interface MountRequest {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string; CreateMountpoint?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; Subpath?: string };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
}

/** Everything of a container that becomes mounts besides its root filesystem. */
export interface ContainerMountRequest {
  containerId: string;
  /**
   * The container's root filesystem as prepared (a directory, or the snapshotter's mounts):
   * image content for copy-up is read from it, with every path resolved inside it.
   */
  rootfs: string | Mount[];
  /** The image config's `Volumes` (`{"/data": {}}`): anonymous volumes unless mounted otherwise. */
  imageVolumes?: Record<string, unknown> | null;
  /** `HostConfig.Binds`: `name:/ctr[:opts]`, `/host:/ctr[:opts]`, `/ctr`. */
  binds?: string[];
  /** `HostConfig.Mounts`. */
  mounts?: MountRequest[];
  /** `HostConfig.Tmpfs`: target → options (`rw,size=64m`). Leave `hostConfig.Tmpfs` empty when passing it here. */
  tmpfs?: Record<string, string>;
  /** `HostConfig.VolumesFrom`: container ids (resolved by the caller) with an optional `:ro`/`:rw`. */
  volumesFrom?: string[];
}

/** `Mounts[]` of container inspect (Docker's MountPoint). */
export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export interface ContainerMounts {
  /** Pass to `ContainerSpec.mounts`, in this order. */
  mounts: Mount[];
  /** For container inspect. */
  mountPoints: MountPoint[];
}

export interface VolumePruneReport {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}
