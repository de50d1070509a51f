import type { NetworkNamespace } from '../spec/types.js';

/**
 * Public types of the network manager. Shapes that reach the Engine API are Docker's (PascalCase)
 * so the daemon can pass them through unchanged; options are camelCase.
 */

/** `PortBindings` entry of a create request / `NetworkSettings.Ports` entry of inspect. */
export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** `"80/tcp"` → bindings. A `null` value (inspect) means exposed but not published. */
export type PortMap = Record<string, PortBinding[] | null>;

/** Docker's `IPAM.Config[]` element. */
export interface IpamConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
}

export interface NetworkCreateOptions {
  name: string;
  /** Only `bridge` (the default) can be created; `host` and `null` are the built-in ones. */
  driver?: string;
  internal?: boolean;
  attachable?: boolean;
  enableIPv6?: boolean;
  /** Subnets (one per family at most). Empty: a free private IPv4 /16 is chosen (and a ULA /64 with IPv6). */
  ipam?: { Driver?: string; Config?: IpamConfig[]; Options?: Record<string, string> };
  labels?: Record<string, string>;
  /** Driver options: `com.docker.network.bridge.name`, `com.docker.network.driver.mtu`. */
  options?: Record<string, string>;
}

/** `GET /networks/{id}` body (Docker's NetworkResource). */
export interface NetworkInspect {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: 'bridge' | 'host' | 'null';
  EnableIPv6: boolean;
  IPAM: { Driver: 'default'; Options: Record<string, string>; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: false;
  ConfigFrom: { Network: string };
  ConfigOnly: false;
  Containers: Record<string, NetworkContainerEntry>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export interface NetworkContainerEntry {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** Filters of `network ls` / `network prune` (Docker's names; values are OR-ed, keys AND-ed). */
export interface NetworkFilters {
  name?: string[];
  id?: string[];
  driver?: string[];
  /** `key` or `key=value`. */
  label?: string[];
  /** `builtin` or `custom`. */
  type?: string[];
  dangling?: string[];
}

/** `NetworkingConfig.EndpointsConfig[name]` of a create request / `network connect` body. */
export interface EndpointRequest {
  Aliases?: string[];
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string };
  MacAddress?: string;
}

/** `NetworkSettings.Networks[name]` of container inspect. */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string } | null;
  Links: null;
  Aliases: string[] | null;
  MacAddress: string;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
}

/**
 * What the daemon knows about a container's networking when it starts it (`HostConfig` +
 * `NetworkingConfig` + the image's exposed ports). Names are resolved by the manager.
 */
export interface ContainerNetworkRequest {
  /** Full container id (64 hex in the daemon; any id-safe string in tests). */
  containerId: string;
  /** Container name without the leading `/`; resolvable on user-defined networks. */
  name?: string;
  /** Default: first 12 characters of the id. */
  hostname?: string;
  domainname?: string;
  /**
   * `HostConfig.NetworkMode`: `'default'`/`'bridge'`, `'none'`, `'host'`, `'container:<id>'`
   * (a container set up through this manager), or a user-defined network's name or id.
   */
  networkMode: string;
  /** Extra networks (and the primary one's aliases/static IP), keyed by network name or id. */
  endpoints?: Record<string, EndpointRequest>;
  /** `HostConfig.PortBindings`. `HostPort` `""`/`"0"` picks a free port; `"8000-8010"` one of a range. */
  portBindings?: PortMap;
  /** `-P`: publish every exposed port to a free host port. */
  publishAllPorts?: boolean;
  /** `Config.ExposedPorts` merged with the image's: `{"80/tcp": {}}`. */
  exposedPorts?: Record<string, unknown>;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** `--add-host name:ip` (Docker's `ExtraHosts`, `name:ip` or `name=ip`). */
  extraHosts?: string[];
}

/** What the runtime needs to start the container, plus what inspect shows. */
export interface ContainerNetworkSetup {
  /** Pass to `ContainerSpec.netns`. */
  netns: NetworkNamespace;
  /** Pass to `ContainerSpec.hosts` (undefined for `container:` mode: the other's files apply). */
  hosts?: string;
  /** Pass to `ContainerSpec.resolvConf`. */
  resolvConf?: string;
  /** Pass to `ContainerSpec.hostname` (host mode: the host's name). */
  hostname?: string;
  /** `NetworkSettings` of container inspect. */
  settings: ContainerNetworkSettings;
}

export interface ContainerNetworkSettings {
  SandboxID: string;
  SandboxKey: string;
  Ports: PortMap;
  /** Primary endpoint's address (top-level legacy fields of Docker's inspect). */
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  IPv6Gateway: string;
  Networks: Record<string, EndpointSettings>;
}

export interface NetworkManagerOptions {
  /** Persistent state (network definitions, IPAM, endpoints, port allocations). */
  stateDir: string;
  /** Volatile state: netns bind mounts, DNS server configuration. Default `/run/berth/network`. */
  runDir?: string;
  /**
   * Name of the nftables table owned by this manager (family `inet`). Default `berth`. Tests use
   * a unique one so several managers can share a host.
   */
  firewallTable?: string;
  /** The default network's bridge and subnet. Defaults: `berth0`, first free of 172.30.0.0/16, ... */
  defaultBridge?: { name?: string; subnet?: string; gateway?: string };
  /** Host port range for `HostPort` ""/"0" (default the kernel's ephemeral range, 32768–60999). */
  portRange?: [number, number];
  /** Prefix of the bridges of user-defined networks (default `br-`, then 12 hex of the id). */
  bridgePrefix?: string;
  /** Candidate subnets for networks without `--subnet` (default Docker's order, 172.30/16 first). */
  subnetPool?: string[];
  /** The node binary that runs the DNS server process (default `process.execPath`). */
  dnsServer?: string;
  /** Port the DNS server listens on, on each gateway (default 53). */
  dnsPort?: number;
}

/** Result of `reconcile()`: what was found stale and removed, and what was missing and restored. */
export interface ReconcileReport {
  removedEndpoints: string[];
  removedNetns: string[];
  removedLinks: string[];
  restoredBridges: string[];
  restoredLinks: string[];
  firewallRestored: boolean;
  dnsRestarted: boolean;
}
