import { readFileSync } from 'node:fs';
import { DaemonError } from './errors.js';
import { isLogLevel } from './logger.js';
import type { DaemonOptions } from './daemon.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';

/** Thrown for a bad command line or config file (exit code 1 in the bin). */
export class DaemonArgsError extends DaemonError {
  constructor(message: string) {
    super('INVALID_ARGS', 'invalid', message);
  }
}

export interface ParsedDaemonArgs {
  options: DaemonOptions;
  configFile?: string;
  help: boolean;
  version: boolean;
}

const valueFlags: Record<string, string> = {
  '-H': 'host',
  '--host': 'host',
  '--data-root': 'data-root',
  '-g': 'data-root',
  '--exec-root': 'exec-root',
  '-p': 'pidfile',
  '--pidfile': 'pidfile',
  '--default-runtime': 'default-runtime',
  '-l': 'log-level',
  '--log-level': 'log-level',
  '--config-file': 'config-file',
  '--tlscacert': 'tlscacert',
  '--tlscert': 'tlscert',
  '--tlskey': 'tlskey',
  '-G': 'group',
  '--group': 'group',
  '--insecure-registry': 'insecure-registries',
  '--label': 'labels',
  '--cgroup-parent': 'cgroup-parent',
  '-b': 'bridge',
  '--bridge': 'bridge',
  '--bip': 'bip',
  '--firewall-table': 'firewall-table',
  '--bridge-prefix': 'bridge-prefix',
};

const boolFlags: Record<string, string> = {
  '--live-restore': 'live-restore',
  '--tlsverify': 'tlsverify',
  '--tls': 'tls',
  '-D': 'debug',
  '--debug': 'debug',
  '--allow-insecure-tcp': 'allow-insecure-tcp',
  '-h': 'help',
  '--help': 'help',
  '-v': 'version',
  '--version': 'version',
};

const repeatable = new Set(['host', 'insecure-registries', 'labels']);

function parseBool(flag: string, value: string): boolean {
  if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
  throw new DaemonArgsError(`invalid boolean value "${value}" for ${flag}`);
}

/**
 * Parses dockerd-style flags (`-H unix:///run/berth/berth.sock --data-root /var/lib/berth …`)
 * and merges a daemon.json (`--config-file`, default /etc/berth/daemon.json when it exists).
 * Flags win over the file.
 */
export function parseDaemonArgs(argv: readonly string[], readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): ParsedDaemonArgs {
  const flags = new Map<string, string | boolean | string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const valueKey = valueFlags[name] ?? (name.length > 2 && !name.startsWith('--') ? valueFlags[name.slice(0, 2)] : undefined);
    if (valueKey !== undefined) {
      let value = inline;
      if (value === undefined && !name.startsWith('--') && name.length > 2) value = name.slice(2);
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new DaemonArgsError(`flag needs an argument: ${name}`);
      }
      if (repeatable.has(valueKey)) {
        const list = (flags.get(valueKey) as string[] | undefined) ?? [];
        list.push(value);
        flags.set(valueKey, list);
      } else {
        flags.set(valueKey, value);
      }
      continue;
    }
    const boolKey = boolFlags[name];
    if (boolKey !== undefined) {
      flags.set(boolKey, inline === undefined ? true : parseBool(name, inline));
      continue;
    }
    throw new DaemonArgsError(`unknown flag: ${arg}`);
  }

  const configFile = (flags.get('config-file') as string | undefined) ?? undefined;
  let file: Record<string, unknown> = {};
  const path = configFile ?? DEFAULT_CONFIG_FILE;
  let text: string | undefined;
  try {
    text = readFile(path);
  } catch (error) {
    if (configFile !== undefined) throw new DaemonArgsError(`unable to read config file ${path}: ${(error as Error).message}`);
  }
  if (text !== undefined) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      file = parsed as Record<string, unknown>;
    } catch (error) {
      throw new DaemonArgsError(`invalid config file ${path}: ${(error as Error).message}`);
    }
  }
  const known = new Set([
    'hosts', 'data-root', 'exec-root', 'pidfile', 'default-runtime', 'live-restore', 'log-level', 'debug',
    'tlsverify', 'tls', 'tlscacert', 'tlscert', 'tlskey', 'group', 'insecure-registries', 'labels', 'cgroup-parent', 'allow-insecure-tcp',
    'bridge', 'bip', 'firewall-table', 'bridge-prefix',
  ]);
  for (const key of Object.keys(file)) {
    if (!known.has(key)) throw new DaemonArgsError(`the following directives don't match any configuration option: ${key}`);
  }

  const get = (key: string, fileKey = key): unknown => (flags.has(key) ? flags.get(key) : file[fileKey]);
  const str = (key: string, fileKey = key): string | undefined => {
    const v = get(key, fileKey);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new DaemonArgsError(`${key} must be a string`);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new DaemonArgsError(`${key} must be a boolean`);
    return v;
  };
  const list = (key: string, fileKey = key): string[] | undefined => {
    const v = get(key, fileKey);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DaemonArgsError(`${key} must be a list of strings`);
    return v as string[];
  };

  const options: DaemonOptions = {};
  const hosts = list('host', 'hosts');
  if (hosts) options.hosts = hosts.map((h) => (h.startsWith('/') ? `unix://${h}` : h.startsWith('fd://') ? h : h));
  const dataRoot = str('data-root');
  if (dataRoot) options.dataRoot = dataRoot;
  const execRoot = str('exec-root');
  if (execRoot) options.execRoot = execRoot;
  const pidfile = str('pidfile');
  if (pidfile) options.pidfile = pidfile;
  const runtime = str('default-runtime');
  if (runtime) options.defaultRuntime = runtime;
  const liveRestore = bool('live-restore');
  if (liveRestore !== undefined) options.liveRestore = liveRestore;
  const logLevel = bool('debug') ? 'debug' : str('log-level');
  if (logLevel !== undefined) {
    if (!isLogLevel(logLevel)) throw new DaemonArgsError(`unable to parse logging level: ${logLevel}`);
    options.logLevel = logLevel;
  }
  const group = str('group');
  if (group) options.group = group;
  const insecure = list('insecure-registries');
  if (insecure) options.insecureRegistries = insecure;
  const labels = list('labels');
  if (labels) options.labels = labels;
  const cgroupParent = str('cgroup-parent');
  if (cgroupParent) options.cgroupParent = cgroupParent;
  if (bool('allow-insecure-tcp')) options.allowInsecureTcp = true;
  const bridge = str('bridge');
  const bip = str('bip');
  const firewallTable = str('firewall-table');
  const bridgePrefix = str('bridge-prefix');
  if (bridge || bip || firewallTable || bridgePrefix) {
    options.network = {};
    if (bridge) options.network.bridgeName = bridge;
    if (bip) {
      const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(bip);
      if (!m) throw new DaemonArgsError(`invalid --bip ${bip}: want an address with a prefix length, like 172.30.0.1/16`);
      const prefix = Number.parseInt(m[2]!, 10);
      const octets = m[1]!.split('.').map(Number);
      const value = octets.reduce((a, o) => a * 256 + o, 0);
      const mask = prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix);
      const net = value - (value % (2 ** 32 - mask || 2 ** 32));
      const netOctets = [24, 16, 8, 0].map((sh) => Math.floor(net / 2 ** sh) % 256);
      options.network.subnet = `${netOctets.join('.')}/${prefix}`;
      options.network.gateway = m[1]!;
    }
    if (firewallTable) options.network.firewallTable = firewallTable;
    if (bridgePrefix) options.network.bridgePrefix = bridgePrefix;
  }
  const tlsverify = bool('tlsverify') ?? false;
  const tls = bool('tls') ?? false;
  const cert = str('tlscert');
  const key = str('tlskey');
  const ca = str('tlscacert');
  if (tlsverify || tls) {
    if (!cert || !key) throw new DaemonArgsError('--tlscert and --tlskey are required with --tls/--tlsverify');
    if (tlsverify && !ca) throw new DaemonArgsError('--tlscacert is required with --tlsverify');
    options.tls = { verify: tlsverify, cert, key, ...(ca ? { ca } : {}) };
  }
  return {
    options,
    ...(configFile !== undefined ? { configFile } : {}),
    help: flags.get('help') === true,
    version: flags.get('version') === true,
  };
}

export const DAEMON_USAGE = `Usage: berthd [OPTIONS]

A self-sufficient runtime for containers, serving the Docker Engine API.

Options:
  -H, --host list               Daemon socket(s) to listen on (default unix:///run/berth/berth.sock)
      --data-root string        Root directory of persistent state (default "/var/lib/berth")
      --exec-root string        Root directory for execution state files (default "/run/berth")
  -p, --pidfile string          Path to use for the daemon PID file
      --default-runtime string  Default OCI runtime for containers (runc, crun or a path)
      --live-restore            Keep containers running when the daemon stops (default true)
  -l, --log-level string        Logging level (debug, info, warn, error, fatal) (default "info")
  -D, --debug                   Enable debug mode
      --config-file string      Daemon configuration file (default "/etc/berth/daemon.json")
  -G, --group string            Group for the unix socket (default "berth")
      --tls / --tlsverify       Use TLS (and verify clients) on tcp:// hosts
      --tlscacert/--tlscert/--tlskey string   TLS files
      --allow-insecure-tcp      Allow plain tcp:// on non-loopback addresses
      --insecure-registry list  Registries reachable over plain HTTP
      --label list              Labels of this daemon
  -b, --bridge string           Name of the default network's bridge (default "berth0")
      --bip string              Address and prefix of the default bridge (e.g. 172.30.0.1/16)
      --firewall-table string   nftables table owned by this daemon (default "berth")
      --bridge-prefix string    Prefix of user-defined networks' bridges (default "berth-")
      --cgroup-parent string    Parent cgroup of containers (default "berth")
`;
