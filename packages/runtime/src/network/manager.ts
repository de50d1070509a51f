import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from './atomic-file.js';
import { applyRuleset, deleteRuleset, tableExists } from './firewall.js';
import type { FirewallState } from './firewall.js';
import { DnsService, waitForName } from './dns.js';
import type { DnsNetwork } from './dns.js';
import { NetworkError, NetworkInUseError, NetworkNotFoundError, PortAllocatedError } from './errors.js';
import { run } from './exec.js';
import {
  allocateAddress,
  cidrsOverlap,
  makePool,
  newIpamState,
  parseCidr,
  parseIp,
  poolOf,
  releaseAddresses,
} from './ipam.js';
import type { IpamState } from './ipam.js';
import {
  addEndpoints,
  createNetns,
  deleteBridge,
  deleteLinks,
  deleteNetns,
  ensureBridge,
  ensureNetnsDir,
  linkExists,
  listLinks,
  pathExists,
} from './links.js';
import type { EndpointPlumbing } from './links.js';
import { bindingsOf, canBind, portRequests } from './ports.js';
import type { PortRequest, PublishedPort } from './ports.js';
import type {
  ContainerNetworkRequest,
  ContainerNetworkSettings,
  ContainerNetworkSetup,
  EndpointRequest,
  EndpointSettings,
  IpamConfig,
  NetworkCreateOptions,
  NetworkFilters,
  NetworkInspect,
  NetworkManagerOptions,
  PortMap,
  ReconcileReport,
} from './types.js';

interface StoredNetwork {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'null';
  created: string;
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Whether the name resolution server serves it (user-defined bridge networks). */
  dns: boolean;
  bridge?: string;
  mtu?: number;
  ipam?: IpamState;
  builtin: boolean;
}

interface StoredEndpoint {
  id: string;
  networkId: string;
  ifname: string;
  hostVeth: string;
  mac: string;
  ipv4?: string;
  ipv6?: string;
  aliases: string[];
  ipamConfig: { IPv4Address?: string; IPv6Address?: string } | null;
}

interface StoredContainer {
  containerId: string;
  name?: string;
  hostname: string;
  mode: 'none' | 'host' | 'bridge' | 'container';
  /** `container:` mode: whose namespace it shares. */
  joined?: string;
  netnsPath?: string;
  endpoints: StoredEndpoint[];
  ports: PublishedPort[];
  exposed: string[];
  hosts?: string;
  resolvConf?: string;
}

interface State {
  version: 1;
  networks: StoredNetwork[];
  containers: Record<string, StoredContainer>;
}

const DEFAULT_POOL = [
  '172.30.0.0/16',
  '172.31.0.0/16',
  ...Array.from({ length: 12 }, (_, i) => `172.${18 + i}.0.0/16`),
  ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`),
];

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Networks of one engine: their definitions and IPAM (persisted in `<stateDir>/networks.json`,
 * atomically), the per-container network namespaces, veth pairs and bridges, the nftables table
 * with NAT, published ports and isolation, and the DNS server of user-defined networks.
 *
 * Lifecycle of a container's networking: `setupContainer` before the runtime creates the
 * container (it returns the namespace to join and the /etc/hosts and /etc/resolv.conf contents),
 * `teardownContainer` after it stopped (idempotent). `connect`/`disconnect` change a set-up
 * container live. Everything the kernel holds (namespaces, links, rules, the DNS process)
 * survives the daemon; `reconcile(live)` after a restart removes what belongs to containers that
 * are gone and restores what is missing for those that live.
 *
 * Every mutating call is serialised inside the process; one manager per state directory.
 */
export class NetworkManager {
  private state: State = { version: 1, networks: [], containers: {} };
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stateFile: string;
  private readonly runDir: string;
  private readonly netnsDir: string;
  private readonly table: string;
  private readonly dns: DnsService;
  private readonly bridgePrefix: string;
  private readonly portRange: [number, number];
  private readonly dnsPort: number;
  /** Kernel objects known to be in place since the last reconcile (saves a process per start). */
  private netnsDirReady = false;
  private readonly bridgesReady = new Set<string>();

  private constructor(private readonly options: NetworkManagerOptions) {
    this.stateFile = join(options.stateDir, 'networks.json');
    this.runDir = options.runDir ?? '/run/berth/network';
    this.netnsDir = join(this.runDir, 'netns');
    this.table = options.firewallTable ?? 'berth';
    this.dnsPort = options.dnsPort ?? 53;
    this.dns = new DnsService(options.dnsServer ?? process.execPath, join(this.runDir, 'dns'), this.dnsPort);
    this.bridgePrefix = options.bridgePrefix ?? 'berth-';
    this.portRange = options.portRange ?? [32768, 60999];
    if (!/^[a-zA-Z0-9_]{1,32}$/.test(this.table)) {
      throw new NetworkError('INVALID_OPTION', 'invalid', `invalid firewall table name: ${this.table}`);
    }
  }

  /**
   * Loads (or initialises) the state and makes sure the built-in networks `bridge`, `host` and
   * `none` exist. Creates nothing in the kernel: call `reconcile()` once at daemon start.
   */
  static async open(options: NetworkManagerOptions): Promise<NetworkManager> {
    const m = new NetworkManager(options);
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    const loaded = await readJsonFile<State>(m.stateFile);
    if (loaded !== undefined) m.state = loaded;
    await m.ensureBuiltins();
    return m;
  }

  /** Serialises mutating operations so IPAM and the ruleset never interleave. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Persists the state. Allocations are written durably before they are used; releases may be
   * written without fsync (`durable: false`): if one is lost in a crash, `reconcile` releases
   * the container again because it no longer runs.
   */
  private async save(durable = true): Promise<void> {
    await writeFileAtomic(this.stateFile, JSON.stringify(this.state), 0o600, durable);
  }

  private async ensureBuiltins(): Promise<void> {
    let changed = false;
    const now = new Date().toISOString();
    const builtin = (name: string, driver: StoredNetwork['driver']): StoredNetwork => ({
      id: sha(`${name}:${randomBytes(16).toString('hex')}`),
      name,
      driver,
      created: now,
      internal: false,
      attachable: false,
      enableIPv6: false,
      labels: {},
      options: {},
      dns: false,
      builtin: true,
    });
    if (!this.state.networks.some((n) => n.name === 'bridge')) {
      const def = this.options.defaultBridge ?? {};
      const subnet = def.subnet ?? (await this.freeSubnet());
      const net = builtin('bridge', 'bridge');
      net.bridge = def.name ?? 'berth0';
      net.options = {
        'com.docker.network.bridge.name': net.bridge,
        'com.docker.network.bridge.default_bridge': 'true',
        'com.docker.network.bridge.enable_ip_masquerade': 'true',
      };
      net.ipam = newIpamState([makePool(subnet, def.gateway)]);
      this.state.networks.push(net);
      changed = true;
    }
    for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
      if (!this.state.networks.some((n) => n.name === name)) {
        this.state.networks.push(builtin(name, driver));
        changed = true;
      }
    }
    if (changed) await this.save();
  }

  /** The first candidate subnet that overlaps neither a host route/address nor another network. */
  private async freeSubnet(family: 4 | 6 = 4): Promise<string> {
    if (family === 6) {
      for (let i = 0; i < 16; i++) {
        const c = `fd${randomBytes(5).toString('hex').replace(/(....)(....)(..)/, '$1:$2:$300')}::/64`;
        if (!(await this.subnetTaken(c))) return c;
      }
      throw new NetworkError('POOL_EXHAUSTED', 'unavailable', 'could not find a free IPv6 subnet');
    }
    for (const c of this.options.subnetPool ?? DEFAULT_POOL) {
      if (!(await this.subnetTaken(c))) return c;
    }
    throw new NetworkError(
      'POOL_EXHAUSTED',
      'unavailable',
      'all predefined address pools have been fully subnetted; give a --subnet',
    );
  }

  private async subnetTaken(subnet: string): Promise<boolean> {
    const c = parseCidr(subnet);
    for (const n of this.state.networks) {
      for (const p of n.ipam?.pools ?? []) if (cidrsOverlap(c, parseCidr(p.subnet))) return true;
    }
    for (const r of await hostRoutes(c.family)) if (cidrsOverlap(c, r)) return true;
    return false;
  }

  // ---------------------------------------------------------------- networks

  private find(nameOrId: string): StoredNetwork {
    const key = nameOrId === 'default' ? 'bridge' : nameOrId;
    const byName = this.state.networks.find((n) => n.name === key || n.id === key);
    if (byName) return byName;
    const byPrefix = this.state.networks.filter((n) => n.id.startsWith(key));
    if (byPrefix.length === 1 && byPrefix[0] !== undefined && key.length > 0) return byPrefix[0];
    if (byPrefix.length > 1) {
      throw new NetworkError('AMBIGUOUS_NETWORK', 'invalid', `network ${nameOrId} is ambiguous (${byPrefix.length} matches found)`);
    }
    throw new NetworkNotFoundError(nameOrId);
  }

  /** `POST /networks/create`. Creates the bridge at once (the DNS server binds its gateway). */
  create(opts: NetworkCreateOptions): Promise<NetworkInspect> {
    return this.exclusive(async () => {
      const driver = opts.driver ?? 'bridge';
      if (driver !== 'bridge') {
        throw new NetworkError('UNSUPPORTED_DRIVER', 'invalid', `network driver ${driver} is not supported (only bridge)`);
      }
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(opts.name)) {
        throw new NetworkError('INVALID_NAME', 'invalid', `invalid network name: ${opts.name}`);
      }
      if (this.state.networks.some((n) => n.name === opts.name)) {
        throw new NetworkError('NETWORK_EXISTS', 'conflict', `network with name ${opts.name} already exists`);
      }
      const id = sha(`${opts.name}:${randomBytes(16).toString('hex')}`);
      const configs = opts.ipam?.Config ?? [];
      const pools = [];
      for (const c of configs) {
        if (c.Subnet === undefined || c.Subnet === '') {
          throw new NetworkError('INVALID_SUBNET', 'invalid', 'an IPAM config needs a Subnet');
        }
        const pool = makePool(c.Subnet, c.Gateway, c.IPRange);
        if (await this.subnetTaken(pool.subnet)) {
          throw new NetworkError('SUBNET_OVERLAP', 'conflict', `invalid pool request: Pool overlaps with other one on this address space (${pool.subnet})`);
        }
        pools.push(pool);
      }
      const families = pools.map((p) => parseCidr(p.subnet).family);
      if (!families.includes(4)) pools.push(makePool(await this.freeSubnet(4)));
      if (opts.enableIPv6 === true && !families.includes(6)) pools.push(makePool(await this.freeSubnet(6)));
      const options = { ...(opts.options ?? {}) };
      const bridge = options['com.docker.network.bridge.name'] ?? `${this.bridgePrefix}${id.slice(0, 15 - this.bridgePrefix.length)}`;
      if (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) {
        throw new NetworkError('INVALID_OPTION', 'invalid', `invalid bridge name: ${bridge}`);
      }
      if (this.state.networks.some((n) => n.bridge === bridge)) {
        throw new NetworkError('NETWORK_EXISTS', 'conflict', `bridge ${bridge} is used by another network`);
      }
      const mtuText = options['com.docker.network.driver.mtu'];
      const net: StoredNetwork = {
        id,
        name: opts.name,
        driver: 'bridge',
        created: new Date().toISOString(),
        internal: opts.internal === true,
        attachable: opts.attachable === true,
        enableIPv6: pools.some((p) => parseCidr(p.subnet).family === 6),
        labels: { ...(opts.labels ?? {}) },
        options,
        dns: true,
        bridge,
        ipam: newIpamState(pools),
        builtin: false,
        ...(mtuText !== undefined ? { mtu: Number(mtuText) } : {}),
      };
      this.state.networks.push(net);
      await this.save();
      try {
        await this.ensureNetworkLinks(net);
        await this.applyFirewall();
      } catch (e) {
        this.state.networks = this.state.networks.filter((n) => n.id !== id);
        await this.save();
        await deleteBridge(bridge);
        throw e;
      }
      return this.toInspect(net);
    });
  }

  inspect(nameOrId: string): NetworkInspect {
    return this.toInspect(this.find(nameOrId));
  }

  /** `GET /networks` with Docker's filters (name is a substring match, id a prefix). */
  list(filters: NetworkFilters = {}): NetworkInspect[] {
    return this.state.networks.filter((n) => this.matches(n, filters)).map((n) => this.toInspect(n));
  }

  private matches(n: StoredNetwork, f: NetworkFilters): boolean {
    if (f.name?.length && !f.name.some((s) => n.name.includes(s))) return false;
    if (f.id?.length && !f.id.some((s) => n.id.startsWith(s))) return false;
    if (f.driver?.length && !f.driver.includes(n.driver)) return false;
    if (f.type?.length && !f.type.includes(n.builtin ? 'builtin' : 'custom')) return false;
    if (f.label?.length && !f.label.every((l) => matchLabel(n.labels, l))) return false;
    if (f.dangling?.length) {
      const want = f.dangling.includes('true') || f.dangling.includes('1');
      if (this.endpointsOn(n.id).length === 0 !== want) return false;
    }
    return true;
  }

  /** `DELETE /networks/{id}`: refuses built-in networks and networks with endpoints. */
  remove(nameOrId: string): Promise<void> {
    return this.exclusive(async () => {
      const net = this.find(nameOrId);
      if (net.builtin) {
        throw new NetworkError('NETWORK_PREDEFINED', 'forbidden', `${net.name} is a pre-defined network and cannot be removed`);
      }
      const users = this.endpointsOn(net.id).map((c) => c.name ?? c.containerId.slice(0, 12));
      if (users.length > 0) throw new NetworkInUseError(net.name, users);
      this.state.networks = this.state.networks.filter((n) => n.id !== net.id);
      await this.save();
      await this.applyFirewall();
      await this.updateDns();
      if (net.bridge !== undefined) {
        this.bridgesReady.delete(net.bridge);
        await deleteBridge(net.bridge);
      }
    });
  }

  /** `POST /networks/prune`: removes unused user-defined networks; returns their names. */
  async prune(filters: Pick<NetworkFilters, 'label'> = {}): Promise<string[]> {
    const victims = this.state.networks.filter(
      (n) => !n.builtin && this.endpointsOn(n.id).length === 0 && this.matches(n, { label: filters.label }),
    );
    const removed: string[] = [];
    for (const n of victims) {
      try {
        await this.remove(n.id);
        removed.push(n.name);
      } catch (e) {
        if (!(e instanceof NetworkInUseError)) throw e;
      }
    }
    return removed;
  }

  private endpointsOn(networkId: string): StoredContainer[] {
    return Object.values(this.state.containers).filter((c) => c.endpoints.some((e) => e.networkId === networkId));
  }

  private toInspect(n: StoredNetwork): NetworkInspect {
    const containers: NetworkInspect['Containers'] = {};
    for (const c of this.endpointsOn(n.id)) {
      const ep = c.endpoints.find((e) => e.networkId === n.id);
      if (!ep) continue;
      containers[c.containerId] = {
        Name: c.name ?? c.containerId.slice(0, 12),
        EndpointID: ep.id,
        MacAddress: ep.mac,
        IPv4Address: ep.ipv4 !== undefined ? `${ep.ipv4}/${this.prefixOf(n, 4)}` : '',
        IPv6Address: ep.ipv6 !== undefined ? `${ep.ipv6}/${this.prefixOf(n, 6)}` : '',
      };
    }
    const config: IpamConfig[] = (n.ipam?.pools ?? []).map((p) => ({
      Subnet: p.subnet,
      ...(p.ipRange !== undefined ? { IPRange: p.ipRange } : {}),
      Gateway: p.gateway,
    }));
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: 'local',
      Driver: n.driver,
      EnableIPv6: n.enableIPv6,
      IPAM: { Driver: 'default', Options: {}, Config: config },
      Internal: n.internal,
      Attachable: n.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options: { ...n.options },
      Labels: { ...n.labels },
    };
  }

  private prefixOf(n: StoredNetwork, family: 4 | 6): number {
    const pool = n.ipam ? poolOf(n.ipam, family) : undefined;
    return pool ? parseCidr(pool.subnet).prefix : 0;
  }

  /** Creates/repairs the network's bridge; `cached` skips bridges already ensured since reconcile. */
  private async ensureNetworkLinks(n: StoredNetwork, cached = false): Promise<boolean> {
    if (n.bridge === undefined || n.ipam === undefined) return false;
    if (cached && this.bridgesReady.has(n.bridge) && (await linkExists(n.bridge))) return false;
    const addrs = n.ipam.pools.map((p) => `${p.gateway}/${parseCidr(p.subnet).prefix}`);
    const created = await ensureBridge(n.bridge, addrs, n.mtu);
    this.bridgesReady.add(n.bridge);
    return created;
  }

  // ---------------------------------------------------------------- containers

  /**
   * Prepares a container's networking before the runtime creates it. For `bridge` and
   * user-defined networks: a namespace file under `<runDir>/netns/<id>`, a veth pair per network
   * (`eth0`, `eth1`, ... inside), addresses from IPAM, the default route through the first
   * network, published ports in the firewall, and DNS records. `none`: a namespace with only `lo`.
   * `host`: the host's namespace. `container:<id>`: the namespace of a container set up here.
   * Throws (and leaves nothing behind) on conflicts: a taken static IP or host port.
   */
  setupContainer(req: ContainerNetworkRequest): Promise<ContainerNetworkSetup> {
    return this.exclusive(async () => {
      if (this.state.containers[req.containerId] !== undefined) {
        throw new NetworkError('ALREADY_SET_UP', 'conflict', `networking of container ${req.containerId} is already set up`);
      }
      const mode = req.networkMode === '' ? 'default' : req.networkMode;
      const hostname = req.hostname ?? req.containerId.slice(0, 12);
      const c: StoredContainer = {
        containerId: req.containerId,
        hostname,
        mode: 'bridge',
        endpoints: [],
        ports: [],
        exposed: Object.keys(req.exposedPorts ?? {}),
        ...(req.name !== undefined ? { name: req.name } : {}),
      };
      if (mode === 'host') {
        c.mode = 'host';
        c.hostname = req.hostname ?? osHostname();
        c.hosts = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n');
        c.resolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
        this.state.containers[c.containerId] = c;
        await this.save();
        return this.setupOf(c);
      }
      if (mode.startsWith('container:')) {
        const other = this.state.containers[mode.slice('container:'.length)];
        if (other === undefined) {
          throw new NetworkError('NO_SUCH_CONTAINER', 'not-found', `cannot join network of container ${mode.slice(10)}: it has no network set up here`);
        }
        const root = other.mode === 'container' && other.joined !== undefined ? this.state.containers[other.joined] ?? other : other;
        c.mode = 'container';
        c.joined = root.containerId;
        if (root.netnsPath !== undefined) c.netnsPath = root.netnsPath;
        c.hostname = root.hostname;
        if (root.hosts !== undefined) c.hosts = root.hosts;
        if (root.resolvConf !== undefined) c.resolvConf = root.resolvConf;
        if (root.mode === 'host') c.mode = 'host';
        this.state.containers[c.containerId] = c;
        await this.save();
        return this.setupOf(c);
      }
      if (!this.netnsDirReady) {
        await ensureNetnsDir(this.netnsDir);
        this.netnsDirReady = true;
      }
      c.netnsPath = join(this.netnsDir, req.containerId);
      if (mode === 'none') {
        c.mode = 'none';
        this.state.containers[c.containerId] = c;
        try {
          await createNetns(c.netnsPath, []);
          c.hosts = renderHosts(c, [], req.extraHosts);
          c.resolvConf = await renderResolvConf([], req);
          await this.save();
        } catch (e) {
          delete this.state.containers[c.containerId];
          throw e;
        }
        return this.setupOf(c);
      }
      // Bridge-type: the primary network first, then the other endpoints requested.
      const primary = this.find(mode);
      if (primary.driver !== 'bridge') {
        throw new NetworkError('INVALID_NETWORK_MODE', 'invalid', `container cannot be connected to network ${primary.name} this way; use --network ${primary.name === 'none' ? 'none' : 'host'}`);
      }
      const wanted: [StoredNetwork, EndpointRequest][] = [[primary, {}]];
      for (const [key, ep] of Object.entries(req.endpoints ?? {})) {
        const n = this.find(key);
        if (n.id === primary.id) wanted[0] = [primary, ep];
        else if (n.driver === 'bridge') wanted.push([n, ep]);
        else throw new NetworkError('INVALID_NETWORK_MODE', 'invalid', `container cannot be connected to ${n.name} and ${primary.name}`);
      }
      this.state.containers[c.containerId] = c;
      const plumbing: EndpointPlumbing[] = [];
      try {
        for (const [n, epReq] of wanted) {
          if (n.builtin && (epReq.Aliases?.length ?? 0) > 0) {
            throw new NetworkError('INVALID_ALIAS', 'invalid', 'network-scoped aliases are only supported for user-defined networks');
          }
          const ep = this.allocateEndpoint(c, n, epReq);
          plumbing.push(this.plumbingOf(n, ep, plumbing.length === 0));
        }
        c.ports = await this.allocatePorts(portRequests(req.portBindings, req.publishAllPorts === true, req.exposedPorts), c);
        const nets = c.endpoints.map((e) => this.find(e.networkId));
        c.hosts = renderHosts(c, nets.map((n, i) => [n, c.endpoints[i]] as [StoredNetwork, StoredEndpoint]), req.extraHosts);
        c.resolvConf = await renderResolvConf(
          nets.filter((n) => n.dns).map((n) => n.ipam?.pools.find((p) => !p.gateway.includes(':'))?.gateway ?? ''),
          req,
        );
        await this.save();
        let created = false;
        for (const n of nets) created = (await this.ensureNetworkLinks(n, true)) || created;
        await createNetns(c.netnsPath, plumbing);
        // The ruleset depends on networks and published ports only, not on plain endpoints.
        if (c.ports.length > 0 || created) await this.applyFirewall();
        if (nets.some((n) => n.dns)) await this.updateDns(c);
      } catch (e) {
        await this.dropContainer(c).catch(() => undefined);
        throw e;
      }
      return this.setupOf(c);
    });
  }

  private allocateEndpoint(c: StoredContainer, n: StoredNetwork, req: EndpointRequest): StoredEndpoint {
    if (n.ipam === undefined) throw new NetworkError('INVALID_NETWORK', 'invalid', `network ${n.name} has no addresses`);
    const id = sha(`${c.containerId}:${n.id}:${randomBytes(8).toString('hex')}`);
    const want4 = req.IPAMConfig?.IPv4Address;
    const want6 = req.IPAMConfig?.IPv6Address;
    if (n.builtin && (want4 || want6)) {
      throw new NetworkError('INVALID_ADDRESS', 'invalid', 'user specified IP address is supported only with user-defined networks');
    }
    const ep: StoredEndpoint = {
      id,
      networkId: n.id,
      ifname: nextIfname(c),
      hostVeth: `vb${randomBytes(6).toString('hex').slice(0, 11)}`,
      mac: '',
      aliases: [...(req.Aliases ?? [])],
      ipamConfig: want4 || want6 ? { ...(want4 ? { IPv4Address: want4 } : {}), ...(want6 ? { IPv6Address: want6 } : {}) } : null,
    };
    c.endpoints.push(ep);
    ep.ipv4 = allocateAddress(n.ipam, 4, id, want4);
    if (poolOf(n.ipam, 6) !== undefined) ep.ipv6 = allocateAddress(n.ipam, 6, id, want6);
    ep.mac = req.MacAddress ?? macFor(ep.ipv4);
    return ep;
  }

  private plumbingOf(n: StoredNetwork, ep: StoredEndpoint, defaultRoute: boolean): EndpointPlumbing {
    const p4 = n.ipam ? poolOf(n.ipam, 4) : undefined;
    const p6 = n.ipam ? poolOf(n.ipam, 6) : undefined;
    return {
      ifname: ep.ifname,
      hostVeth: ep.hostVeth,
      bridge: n.bridge ?? '',
      mac: ep.mac,
      ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
      ...(ep.ipv4 !== undefined && p4 ? { ipv4: { address: ep.ipv4, prefix: parseCidr(p4.subnet).prefix, gateway: p4.gateway } } : {}),
      ...(ep.ipv6 !== undefined && p6 ? { ipv6: { address: ep.ipv6, prefix: parseCidr(p6.subnet).prefix, gateway: p6.gateway } } : {}),
      // Internal networks get no default route: nothing leaves them.
      defaultRoute: defaultRoute && !n.internal,
    };
  }

  private async allocatePorts(reqs: PortRequest[], c: StoredContainer): Promise<PublishedPort[]> {
    if (reqs.length > 0 && c.endpoints.length === 0) return [];
    const taken = new Set<string>();
    for (const other of Object.values(this.state.containers)) {
      for (const p of other.ports) taken.add(`${p.proto}/${p.hostPort}`);
    }
    const out: PublishedPort[] = [];
    for (const r of reqs) {
      const key = (port: number): string => `${r.proto}/${port}`;
      let chosen: number | undefined;
      if (r.hostRange[0] === 0) {
        const [lo, hi] = this.portRange;
        for (let i = 0; i < 200 && chosen === undefined; i++) {
          const port = lo + Math.floor(Math.random() * (hi - lo + 1));
          if (!taken.has(key(port)) && (await canBind(r.proto, r.hostIp, port))) chosen = port;
        }
        if (chosen === undefined) {
          throw new NetworkError('PORT_EXHAUSTED', 'unavailable', `no free host port for ${r.containerPort}/${r.proto}`);
        }
      } else {
        for (let port = r.hostRange[0]; port <= r.hostRange[1] && chosen === undefined; port++) {
          if (!taken.has(key(port)) && (await canBind(r.proto, r.hostIp, port))) chosen = port;
        }
        if (chosen === undefined) throw new PortAllocatedError(r.hostIp || '0.0.0.0', r.hostRange[0], r.proto);
      }
      taken.add(key(chosen));
      out.push({ proto: r.proto, hostIp: r.hostIp, hostPort: chosen, containerPort: r.containerPort });
    }
    return out;
  }

  /**
   * Removes a container's networking: firewall rules, DNS records, veths, its namespace, and
   * releases its addresses and host ports. Idempotent; a container never set up is a no-op.
   */
  teardownContainer(containerId: string): Promise<void> {
    return this.exclusive(async () => {
      const c = this.state.containers[containerId];
      if (c === undefined) return;
      await this.dropContainer(c);
    });
  }

  private async dropContainer(c: StoredContainer): Promise<void> {
    delete this.state.containers[c.containerId];
    for (const ep of c.endpoints) {
      const n = this.state.networks.find((x) => x.id === ep.networkId);
      if (n?.ipam) releaseAddresses(n.ipam, ep.id);
    }
    await this.save(false);
    if (c.ports.length > 0) await this.applyFirewall();
    if (c.endpoints.some((e) => this.state.networks.find((n) => n.id === e.networkId)?.dns === true)) await this.updateDns();
    // The veths go with the namespace (their names are unique per endpoint, so a quick restart
    // of the same container never collides with a pair the kernel is still tearing down).
    if (c.mode !== 'container' && c.mode !== 'host' && c.netnsPath !== undefined) await deleteNetns(c.netnsPath);
    else await deleteLinks(c.endpoints.map((e) => e.hostVeth));
  }

  /** `POST /networks/{id}/connect` for a container whose networking is set up (running). */
  connect(nameOrId: string, containerId: string, req: EndpointRequest = {}): Promise<EndpointSettings> {
    return this.exclusive(async () => {
      const n = this.find(nameOrId);
      const c = this.state.containers[containerId];
      if (c === undefined || c.netnsPath === undefined || (c.mode !== 'bridge' && c.mode !== 'none')) {
        throw new NetworkError('CONTAINER_NOT_CONNECTABLE', 'conflict', `container ${containerId} is not running with its own network namespace`);
      }
      if (n.driver !== 'bridge') {
        throw new NetworkError('INVALID_NETWORK_MODE', 'invalid', `container cannot be connected to network ${n.name}`);
      }
      if (c.endpoints.some((e) => e.networkId === n.id)) {
        throw new NetworkError('ENDPOINT_EXISTS', 'conflict', `endpoint with name ${c.name ?? containerId.slice(0, 12)} already exists in network ${n.name}`);
      }
      const wasNone = c.mode === 'none';
      const ep = this.allocateEndpoint(c, n, req);
      try {
        await this.save();
        await this.ensureNetworkLinks(n, true);
        await addEndpoints(c.netnsPath, [this.plumbingOf(n, ep, c.endpoints.length === 1)]);
        if (wasNone) c.mode = 'bridge';
        await this.save();
        if (n.dns) await this.updateDns(c);
      } catch (e) {
        c.endpoints = c.endpoints.filter((x) => x.id !== ep.id);
        if (n.ipam) releaseAddresses(n.ipam, ep.id);
        await this.save();
        throw e;
      }
      return this.endpointSettings(n, ep);
    });
  }

  /** `POST /networks/{id}/disconnect`. `force` makes a missing endpoint a no-op. */
  disconnect(nameOrId: string, containerId: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      const n = this.find(nameOrId);
      const c = this.state.containers[containerId];
      const ep = c?.endpoints.find((e) => e.networkId === n.id);
      if (c === undefined || ep === undefined) {
        if (opts.force === true) return;
        throw new NetworkError('NOT_CONNECTED', 'not-found', `container ${containerId} is not connected to network ${n.name}`);
      }
      const primaryGone = c.endpoints[0]?.id === ep.id;
      c.endpoints = c.endpoints.filter((e) => e.id !== ep.id);
      if (n.ipam) releaseAddresses(n.ipam, ep.id);
      await this.save();
      if (primaryGone && c.ports.length > 0) await this.applyFirewall();
      if (n.dns) await this.updateDns();
      await deleteLinks([ep.hostVeth]);
    });
  }

  /** Inspect data of a set-up container (`NetworkSettings`), or undefined. */
  containerSettings(containerId: string): ContainerNetworkSettings | undefined {
    const c = this.state.containers[containerId];
    return c === undefined ? undefined : this.setupOf(c).settings;
  }

  /** Ids of the containers whose networking is set up (persisted). */
  containers(): string[] {
    return Object.keys(this.state.containers);
  }

  private endpointSettings(n: StoredNetwork, ep: StoredEndpoint): EndpointSettings {
    const p4 = n.ipam ? poolOf(n.ipam, 4) : undefined;
    const p6 = n.ipam ? poolOf(n.ipam, 6) : undefined;
    const c = Object.values(this.state.containers).find((x) => x.endpoints.includes(ep));
    return {
      IPAMConfig: ep.ipamConfig,
      Links: null,
      Aliases: ep.aliases.length > 0 ? [...ep.aliases] : null,
      MacAddress: ep.mac,
      NetworkID: n.id,
      EndpointID: ep.id,
      Gateway: p4?.gateway ?? '',
      IPAddress: ep.ipv4 ?? '',
      IPPrefixLen: p4 ? parseCidr(p4.subnet).prefix : 0,
      IPv6Gateway: p6?.gateway ?? '',
      GlobalIPv6Address: ep.ipv6 ?? '',
      GlobalIPv6PrefixLen: p6 ? parseCidr(p6.subnet).prefix : 0,
      DNSNames: n.dns && c ? dnsNames(c, ep) : null,
    };
  }

  private setupOf(c: StoredContainer): ContainerNetworkSetup {
    const networks: Record<string, EndpointSettings> = {};
    for (const ep of c.endpoints) {
      const n = this.state.networks.find((x) => x.id === ep.networkId);
      if (n) networks[n.name] = this.endpointSettings(n, ep);
    }
    if (c.mode === 'host' || c.mode === 'none') {
      const n = this.state.networks.find((x) => x.name === (c.mode === 'host' ? 'host' : 'none'));
      if (n && c.mode === 'host') networks[n.name] = emptyEndpoint(n.id);
      if (n && c.mode === 'none' && c.endpoints.length === 0) networks[n.name] = emptyEndpoint(n.id);
    }
    const ports: PortMap = {};
    for (const key of c.exposed) ports[key] = null;
    for (const p of c.ports) {
      const key = `${p.containerPort}/${p.proto}`;
      ports[key] = [...(ports[key] ?? []), ...bindingsOf(p)];
    }
    const first = Object.values(networks)[0];
    const settings: ContainerNetworkSettings = {
      SandboxID: c.netnsPath !== undefined ? sha(c.netnsPath) : '',
      SandboxKey: c.netnsPath ?? '',
      Ports: c.mode === 'bridge' ? ports : {},
      IPAddress: first?.IPAddress ?? '',
      IPPrefixLen: first?.IPPrefixLen ?? 0,
      Gateway: first?.Gateway ?? '',
      MacAddress: first?.MacAddress ?? '',
      GlobalIPv6Address: first?.GlobalIPv6Address ?? '',
      GlobalIPv6PrefixLen: first?.GlobalIPv6PrefixLen ?? 0,
      IPv6Gateway: first?.IPv6Gateway ?? '',
      Networks: networks,
    };
    return {
      netns: c.mode === 'host' ? 'host' : { path: c.netnsPath ?? '' },
      hostname: c.hostname,
      ...(c.hosts !== undefined ? { hosts: c.hosts } : {}),
      ...(c.resolvConf !== undefined ? { resolvConf: c.resolvConf } : {}),
      settings,
    };
  }

  // ---------------------------------------------------------------- kernel state

  private firewallState(): FirewallState {
    const networks = this.state.networks
      .filter((n) => n.bridge !== undefined && n.ipam !== undefined)
      .map((n) => ({ bridge: n.bridge ?? '', subnets: (n.ipam?.pools ?? []).map((p) => p.subnet), internal: n.internal }));
    const ports: FirewallState['ports'] = [];
    for (const c of Object.values(this.state.containers)) {
      const ep = c.endpoints[0];
      if (ep === undefined) continue;
      const n = this.state.networks.find((x) => x.id === ep.networkId);
      if (!n?.bridge || !n.ipam) continue;
      for (const p of c.ports) {
        for (const family of [4, 6] as const) {
          const ip = family === 4 ? ep.ipv4 : ep.ipv6;
          const pool = poolOf(n.ipam, family);
          if (ip === undefined || pool === undefined) continue;
          if (p.hostIp !== '' && (p.hostIp.includes(':') ? 6 : 4) !== family) continue;
          ports.push({
            containerId: c.containerId,
            bridge: n.bridge,
            proto: p.proto,
            hostIp: p.hostIp,
            hostPort: p.hostPort,
            containerIp: ip,
            containerPort: p.containerPort,
            subnet: pool.subnet,
          });
        }
      }
    }
    return { networks, ports };
  }

  private async applyFirewall(): Promise<void> {
    await applyRuleset(this.table, this.firewallState());
  }

  private dnsNetworks(): DnsNetwork[] {
    return this.state.networks
      .filter((n) => n.dns && n.ipam !== undefined)
      .map((n) => ({
        id: n.id,
        gateways: (n.ipam?.pools ?? []).map((p) => p.gateway),
        subnets: (n.ipam?.pools ?? []).map((p) => p.subnet),
        internal: n.internal,
        records: this.endpointsOn(n.id).flatMap((c) => {
          const ep = c.endpoints.find((e) => e.networkId === n.id);
          return ep ? [{ id: c.containerId, ipv4: ep.ipv4 ? [ep.ipv4] : [], ipv6: ep.ipv6 ? [ep.ipv6] : [], names: dnsNames(c, ep) }] : [];
        }),
      }));
  }

  /** Rewrites the DNS configuration; with `waitFor`, returns once that container's name resolves. */
  private async updateDns(waitFor?: StoredContainer): Promise<boolean> {
    const started = await this.dns.update(this.dnsNetworks());
    if (waitFor !== undefined) {
      // The server reloads asynchronously after SIGHUP: return once every name of the container
      // answers on each of its networks (bounded, so a slow reload never fails a start).
      for (const ep of waitFor.endpoints) {
        const n = this.state.networks.find((x) => x.id === ep.networkId);
        const gw = n?.dns && n.ipam ? poolOf(n.ipam, 4)?.gateway : undefined;
        if (gw === undefined) continue;
        for (const name of dnsNames(waitFor, ep)) await waitForName(gw, this.dnsPort, name, 5000);
      }
    }
    return started;
  }

  /**
   * Brings the kernel in line with the persisted state after a daemon (re)start. `live` are the
   * containers that still run: everything belonging to other containers is released and
   * removed (addresses, ports, rules, veths, namespace files); bridges, veths of live containers,
   * the firewall table and the DNS server are restored where missing. Idempotent.
   */
  reconcile(live: Iterable<string>): Promise<ReconcileReport> {
    return this.exclusive(async () => {
      const alive = new Set(live);
      this.bridgesReady.clear();
      this.netnsDirReady = false;
      const report: ReconcileReport = {
        removedEndpoints: [],
        removedNetns: [],
        removedLinks: [],
        restoredBridges: [],
        restoredLinks: [],
        firewallRestored: false,
        dnsRestarted: false,
      };
      // 1. Containers that are gone: release their state.
      for (const c of Object.values(this.state.containers)) {
        if (alive.has(c.containerId)) continue;
        delete this.state.containers[c.containerId];
        for (const ep of c.endpoints) {
          const n = this.state.networks.find((x) => x.id === ep.networkId);
          if (n?.ipam) releaseAddresses(n.ipam, ep.id);
          report.removedEndpoints.push(ep.id);
        }
      }
      // A container sharing a namespace outlives its owner only in state; drop dangling ones.
      for (const c of Object.values(this.state.containers)) {
        if (c.mode === 'container' && c.joined !== undefined && this.state.containers[c.joined] === undefined) {
          delete this.state.containers[c.containerId];
        }
      }
      await this.save();
      // 2. Bridges.
      for (const n of this.state.networks) {
        if (await this.ensureNetworkLinks(n)) report.restoredBridges.push(n.bridge ?? '');
      }
      // 3. Namespace files: remove those of unknown containers.
      const wantedNetns = new Set(
        Object.values(this.state.containers)
          .filter((c) => c.mode === 'bridge' || c.mode === 'none')
          .map((c) => c.netnsPath),
      );
      if (await pathExists(this.netnsDir)) {
        for (const f of await readdir(this.netnsDir)) {
          const p = join(this.netnsDir, f);
          if (!wantedNetns.has(p)) {
            await deleteNetns(p);
            report.removedNetns.push(f);
          }
        }
      }
      // 4. Links on our bridges (and our bridges) that nothing in the state wants.
      const ourBridges = new Set(this.state.networks.map((n) => n.bridge).filter((b): b is string => b !== undefined));
      const wantedVeths = new Set(Object.values(this.state.containers).flatMap((c) => c.endpoints.map((e) => e.hostVeth)));
      const stale: string[] = [];
      for (const l of await listLinks()) {
        if (l.master !== undefined && ourBridges.has(l.master) && !wantedVeths.has(l.ifname)) stale.push(l.ifname);
        else if (l.kind === 'bridge' && l.ifname.startsWith(this.bridgePrefix) && !ourBridges.has(l.ifname)) stale.push(l.ifname);
      }
      await deleteLinks(stale);
      report.removedLinks.push(...stale);
      // 5. Endpoints of live containers whose veth vanished: re-create them in the namespace.
      for (const c of Object.values(this.state.containers)) {
        if (c.netnsPath === undefined || c.mode !== 'bridge' || !(await pathExists(c.netnsPath))) continue;
        for (const [i, ep] of c.endpoints.entries()) {
          if (await linkExists(ep.hostVeth)) continue;
          const n = this.state.networks.find((x) => x.id === ep.networkId);
          if (!n) continue;
          await run(['nsenter', `--net=${c.netnsPath}`, 'ip', 'link', 'del', ep.ifname], { allowFailure: true });
          await addEndpoints(c.netnsPath, [this.plumbingOf(n, ep, i === 0)]);
          report.restoredLinks.push(ep.hostVeth);
        }
      }
      // 6. Firewall and DNS from state.
      report.firewallRestored = !(await tableExists(this.table));
      await this.applyFirewall();
      report.dnsRestarted = await this.updateDns();
      return report;
    });
  }

  /**
   * Removes everything this manager put into the kernel and the run directory: every container's
   * networking, the bridges, the firewall table and the DNS server. The persisted network
   * definitions stay (a later `reconcile` re-creates the bridges). For tests and `system reset`.
   */
  destroy(): Promise<void> {
    return this.exclusive(async () => {
      const containers = Object.values(this.state.containers);
      for (const c of containers) {
        for (const ep of c.endpoints) {
          const n = this.state.networks.find((x) => x.id === ep.networkId);
          if (n?.ipam) releaseAddresses(n.ipam, ep.id);
        }
      }
      this.state.containers = {};
      await this.save();
      await deleteLinks(containers.flatMap((c) => c.endpoints.map((e) => e.hostVeth)));
      for (const c of containers) {
        if (c.netnsPath !== undefined && (c.mode === 'bridge' || c.mode === 'none')) await deleteNetns(c.netnsPath);
      }
      if (await pathExists(this.netnsDir)) {
        for (const f of await readdir(this.netnsDir)) await deleteNetns(join(this.netnsDir, f));
        await run(['umount', this.netnsDir], { allowFailure: true });
      }
      await deleteRuleset(this.table);
      await this.dns.update([]);
      for (const n of this.state.networks) if (n.bridge !== undefined) await deleteBridge(n.bridge);
      this.bridgesReady.clear();
      this.netnsDirReady = false;
    });
  }
}

function emptyEndpoint(networkId: string): EndpointSettings {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: '',
    NetworkID: networkId,
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

function nextIfname(c: StoredContainer): string {
  const used = new Set(c.endpoints.map((e) => e.ifname));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

/** Docker's scheme: 02:42 followed by the IPv4 address, unique per network like the address. */
function macFor(ipv4: string | undefined): string {
  const bytes = ipv4 !== undefined ? ipv4.split('.').map(Number) : [...randomBytes(4)];
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function dnsNames(c: StoredContainer, ep: StoredEndpoint): string[] {
  const names = [c.name, ...ep.aliases, c.containerId.slice(0, 12), c.hostname].filter(
    (x): x is string => x !== undefined && x !== '',
  );
  return [...new Set(names)];
}

function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

function renderHosts(c: StoredContainer, eps: [StoredNetwork, StoredEndpoint | undefined][], extra: string[] = []): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  let gateway: string | undefined;
  for (const [n, ep] of eps) {
    gateway ??= n.ipam ? poolOf(n.ipam, 4)?.gateway : undefined;
    if (ep?.ipv4 !== undefined) lines.push(`${ep.ipv4}\t${c.hostname}`);
    if (ep?.ipv6 !== undefined) lines.push(`${ep.ipv6}\t${c.hostname}`);
  }
  if (eps.length === 0) lines.push(`127.0.1.1\t${c.hostname}`);
  for (const h of extra) {
    const m = /^([^:=]+)[:=](.+)$/.exec(h);
    if (!m?.[1] || !m[2]) throw new NetworkError('INVALID_EXTRA_HOST', 'invalid', `invalid extra host: ${h}`);
    const ip = m[2] === 'host-gateway' ? gateway : m[2];
    if (ip === undefined) throw new NetworkError('INVALID_EXTRA_HOST', 'invalid', `no gateway for host-gateway in: ${h}`);
    parseIp(ip);
    lines.push(`${ip}\t${m[1]}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * User-defined networks: their gateways (the DNS server). Otherwise the host's resolvers minus
 * loopback ones (unreachable from a namespace), or Google's as Docker falls back to.
 */
async function renderResolvConf(gateways: string[], req: ContainerNetworkRequest): Promise<string> {
  const host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  let servers: string[] = [];
  let search: string[] = [];
  let options: string[] = [];
  for (const line of host.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) servers.push(rest[0]);
    else if (key === 'search') search = rest;
    else if (key === 'options') options = rest;
  }
  servers = servers.filter((s) => !s.startsWith('127.') && s !== '::1');
  if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  const gws = gateways.filter(Boolean);
  if (req.dns?.length) servers = req.dns;
  else if (gws.length > 0) servers = gws.slice(0, 3);
  if (req.dnsSearch?.length) search = req.dnsSearch;
  if (req.dnsOptions?.length) options = req.dnsOptions;
  const lines = servers.map((s) => `nameserver ${s}`);
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return lines.join('\n') + '\n';
}

async function hostRoutes(family: 4 | 6): Promise<ReturnType<typeof parseCidr>[]> {
  const r = await run(['ip', `-${family}`, '-j', 'route', 'show', 'table', 'all'], { allowFailure: true });
  const out: ReturnType<typeof parseCidr>[] = [];
  try {
    for (const route of JSON.parse(r.stdout || '[]') as { dst?: string; type?: string }[]) {
      if (!route.dst || route.dst === 'default' || route.type === 'broadcast' || route.type === 'multicast') continue;
      if (route.type === 'local' && family === 4 && route.dst.startsWith('127.')) continue;
      const dst = route.dst.includes('/') ? route.dst : `${route.dst}/${family === 4 ? 32 : 128}`;
      try {
        out.push(parseCidr(dst));
      } catch {
        // Not an address route (e.g. a multicast scope); irrelevant for overlap.
      }
    }
  } catch {
    // No JSON (ip failed): no routes known.
  }
  return out;
}
