/**
 * The input of the runtime: what a container is, in Docker's vocabulary. The daemon fills a
 * `ContainerSpec` from an image config and a `POST /containers/create` body; tests and embedders
 * fill it by hand. Field names inside `image`, `config` and `hostConfig` are Docker's (PascalCase)
 * so that the Engine API's JSON can be passed through unchanged.
 */

/** One OCI mount: the shape of the runtime spec's `mounts[]` and of the snapshotter's output. */
export interface Mount {
  type: string;
  source: string;
  /** Where it is mounted in the container. Absent for rootfs mounts (they go to the root). */
  target?: string;
  options: string[];
}

/**
 * The root filesystem. `mounts` is what `@berth/image`'s snapshotter returns (an overlay, or a
 * bind of a directory); the runtime mounts it at `<container dir>/rootfs` and unmounts it on
 * delete. `path` is a ready directory used as it is (not unmounted, not removed).
 */
export type RootfsSpec = { mounts: Mount[] } | { path: string };

/** The process part of an image config (`config` in the OCI image config; Docker's names). */
export interface ImageProcessConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string> | null;
}

/**
 * What `docker run` overrides on top of the image (the `Config` of a create request). A field that
 * is present replaces the image's; `Env` is merged by key (the container's wins). Setting
 * `Entrypoint` without `Cmd` drops the image's `Cmd`, as Docker does.
 */
export interface ContainerConfigOverrides {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  /** Seconds between the stop signal and SIGKILL (default 10). */
  StopTimeout?: number;
  Labels?: Record<string, string>;
}

export interface Ulimit {
  /** `nofile`, `nproc`, `core`, ... (without the RLIMIT_ prefix, lower case as Docker writes it). */
  Name: string;
  Soft: number;
  Hard: number;
}

/**
 * A device from the host (`--device /dev/fuse:/dev/fuse:rwm`). A directory on the host adds every
 * device node below it (Docker's rule).
 */
export interface DeviceMapping {
  PathOnHost: string;
  /** Default (absent or empty): the same path as on the host. */
  PathInContainer?: string;
  /** One to three of `r`, `w`, `m`; default (absent or empty) `rwm`. */
  CgroupPermissions?: string;
}

/**
 * The `docker run` options (Docker's `HostConfig`) that apply to one container at this layer.
 * Networking (ports, DNS servers, links) and volumes are resolved by the caller into `netns`,
 * `mounts`, `hosts` and `resolvConf` of the `ContainerSpec`.
 */
/** A block device (its path on the host) and a rate (bytes or operations per second). */
export interface ThrottleDevice {
  Path: string;
  Rate: number;
}

export interface HostConfigOptions {
  Privileged?: boolean;
  ReadonlyRootfs?: boolean;
  CapAdd?: string[];
  CapDrop?: string[];
  /** `seccomp=unconfined`, `seccomp=<path to a JSON profile>`, `seccomp=<JSON text>`, `no-new-privileges[=true|false]`. */
  SecurityOpt?: string[];
  Ulimits?: Ulimit[];
  /** Run tini (or catatonit) as pid 1 to reap zombies and forward signals. */
  Init?: boolean;
  /** Bytes of /dev/shm (default 64 MiB). */
  ShmSize?: number;
  Sysctls?: Record<string, string>;
  /** Target path → tmpfs options (`--tmpfs /run:rw,size=64m`). */
  Tmpfs?: Record<string, string>;
  GroupAdd?: string[];
  OomScoreAdj?: number;
  OomKillDisable?: boolean;
  Devices?: DeviceMapping[];
  /** Extra device cgroup rules, `<a|b|c> <major|*>:<minor|*> <rwm>` (`--device-cgroup-rule 'c 10:* rwm'`). */
  DeviceCgroupRules?: string[];
  /** Memory limit in bytes (0 = none). */
  Memory?: number;
  /** Memory + swap in bytes; -1 = unlimited swap; 0/absent = twice Memory (Docker's default). */
  MemorySwap?: number;
  MemoryReservation?: number;
  /** CPUs in units of 1e-9 (`--cpus 1.5` → 1_500_000_000). */
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  /** 0 or absent = unlimited; -1 = unlimited. */
  PidsLimit?: number | null;
  /** 10..1000. */
  BlkioWeight?: number;
  /** Per block device limits (`--device-read-bps /dev/sda:1mb`, `--device-write-iops …`). */
  BlkioDeviceReadBps?: ThrottleDevice[];
  BlkioDeviceWriteBps?: ThrottleDevice[];
  BlkioDeviceReadIOps?: ThrottleDevice[];
  BlkioDeviceWriteIOps?: ThrottleDevice[];
  /** 0..100 (cgroup v1 only; -1 or absent: the kernel's). */
  MemorySwappiness?: number | null;
  /** `''` (a namespace of its own), `host`, or `container:<id>` (that running container's). */
  PidMode?: string;
  /** `''`/`private`/`shareable` (its own), `none` (its own, no /dev/shm), `host`, or `container:<id>`. */
  IpcMode?: string;
  /** `''` (its own) or `host` (the host's hostname, which the container then cannot set). */
  UTSMode?: string;
  /** `private` or `host`; `''` is Docker's default: private on cgroup v2, host on v1. */
  CgroupnsMode?: string;
}

/**
 * The network namespace: `'none'` creates a new one holding only `lo`; `'host'` shares the host's;
 * a path (`/run/netns/x`, `/proc/<pid>/ns/net`) joins an existing one (prepared by the network code).
 */
export type NetworkNamespace = 'none' | 'host' | { path: string };

export interface LogOptions {
  /** Rotate when the current file reaches this many bytes (default 10 MiB; 0 disables rotation). */
  maxSize?: number;
  /** Files kept including the current one (default 3). */
  maxFiles?: number;
}

export interface ContainerSpec {
  /** `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}`; unique within a runtime's state directory. */
  id: string;
  /** A human name kept with the container (informational at this layer). */
  name?: string;
  rootfs: RootfsSpec;
  image?: ImageProcessConfig;
  config?: ContainerConfigOverrides;
  hostConfig?: HostConfigOptions;
  tty?: boolean;
  /**
   * The terminal's size from its first moment (with `tty`), as `docker run -t` asks with
   * `HostConfig.ConsoleSize`; without it the pty starts at 0x0 until a resize arrives, and a
   * program that reads it first (`stty size`) fails.
   */
  consoleSize?: { height: number; width: number };
  openStdin?: boolean;
  /** Close the container's stdin when the first attached client half-closes (`docker run -i`). */
  stdinOnce?: boolean;
  /** Default `'none'`. */
  netns?: NetworkNamespace;
  /** Extra mounts (binds, volumes, tmpfs) in OCI form, applied after the defaults. */
  mounts?: Mount[];
  /** Default: the first 12 characters of the id. */
  hostname?: string;
  domainname?: string;
  /** Contents of /etc/hosts (default: localhost lines and the hostname). */
  hosts?: string;
  /** Contents of /etc/resolv.conf (default: the host's, minus loopback nameservers). */
  resolvConf?: string;
  /** OCI annotations. */
  annotations?: Record<string, string>;
  /** `'runc'`, `'crun'` or a path; default: the runtime's default (detected). */
  runtime?: string;
  logs?: LogOptions;
}
