import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { run } from './exec.js';

/**
 * Link-level plumbing through iproute2 (`ip -batch`, one process per step) and util-linux
 * (`unshare`, `nsenter`, `mount`). Network namespaces are files bind-mounted under
 * `<runDir>/netns/`, exactly like `ip netns` does under /run/netns.
 */

export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function isMountPoint(mountinfo: string, path: string): boolean {
  return mountinfo.split('\n').some((line) => line.split(' ')[4] === path);
}

/**
 * Makes `dir` a shared mount point of its own (as `ip netns` does for /run/netns), so that
 * unmounting a namespace file propagates to mount namespaces that copied it and frees it.
 */
export async function ensureNetnsDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  if (!isMountPoint(info, dir)) {
    await run(['mount', '--bind', dir, dir]);
  }
  await run(['mount', '--make-private', dir]);
}

export async function isNetnsMounted(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return isMountPoint(info, path);
}

/** An interface to create inside a namespace, with its host-side veth peer. */
export interface EndpointPlumbing {
  ifname: string;
  hostVeth: string;
  bridge: string;
  mac: string;
  mtu?: number;
  ipv4?: { address: string; prefix: number; gateway: string };
  ipv6?: { address: string; prefix: number; gateway: string };
  /** The endpoint that carries the default route. */
  defaultRoute: boolean;
}

function endpointCommands(ep: EndpointPlumbing): string[] {
  const mtu = ep.mtu !== undefined ? ` mtu ${ep.mtu}` : '';
  const cmds = [
    `link add ${ep.ifname} address ${ep.mac}${mtu} type veth peer name ${ep.hostVeth}${mtu} netns /proc/${process.pid}/ns/net`,
  ];
  if (ep.ipv4) cmds.push(`addr add ${ep.ipv4.address}/${ep.ipv4.prefix} dev ${ep.ifname}`);
  if (ep.ipv6) cmds.push(`addr add ${ep.ipv6.address}/${ep.ipv6.prefix} dev ${ep.ifname} nodad`);
  cmds.push(`link set ${ep.ifname} up`);
  if (ep.defaultRoute && ep.ipv4) cmds.push(`route add default via ${ep.ipv4.gateway} dev ${ep.ifname}`);
  if (ep.defaultRoute && ep.ipv6) cmds.push(`route add default via ${ep.ipv6.gateway} dev ${ep.ifname}`);
  return cmds;
}

function hostSideCommands(ep: EndpointPlumbing): string[] {
  return [
    `link set ${ep.hostVeth} master ${ep.bridge}`,
    `link set ${ep.hostVeth} type bridge_slave hairpin on`,
    `link set ${ep.hostVeth} up`,
  ];
}

async function attachHostSide(eps: EndpointPlumbing[]): Promise<void> {
  if (eps.length === 0) return;
  await run(['ip', '-batch', '-'], { input: eps.flatMap(hostSideCommands).join('\n') + '\n' });
}

/**
 * Creates the namespace file `path` with `lo` up and the given endpoints inside
 * (`unshare --net=<file> ip -batch`), then plugs the host-side veths into their bridges — one
 * shell process for both, since a process spawn is most of the cost of starting a container's
 * network. On failure everything created is removed again.
 */
export async function createNetns(path: string, endpoints: EndpointPlumbing[]): Promise<void> {
  await writeFile(path, '', { flag: 'wx', mode: 0o444 });
  try {
    const inside = ['link set lo up', ...endpoints.flatMap(endpointCommands)].join('\n');
    const host = endpoints.flatMap(hostSideCommands).join('\n');
    // Everything interpolated is generated here (interface names, addresses, MACs) or validated
    // (bridge names); the path is passed as an argument.
    const script =
      `set -e\nunshare --net="$1" ip -batch - <<'BERTH_NS'\n${inside}\nBERTH_NS\n` +
      (host !== '' ? `ip -batch - <<'BERTH_HOST'\n${host}\nBERTH_HOST\n` : '');
    await run(['sh', '-c', script, 'sh', path]);
  } catch (e) {
    await deleteLinks(endpoints.map((ep) => ep.hostVeth));
    await deleteNetns(path);
    throw e;
  }
}

/** Adds endpoints to an existing namespace (live `network connect`, or reconcile). */
export async function addEndpoints(path: string, endpoints: EndpointPlumbing[]): Promise<void> {
  try {
    await run(['nsenter', `--net=${path}`, 'ip', '-batch', '-'], {
      input: endpoints.flatMap(endpointCommands).join('\n') + '\n',
    });
    await attachHostSide(endpoints);
  } catch (e) {
    await deleteLinks(endpoints.map((ep) => ep.hostVeth));
    throw e;
  }
}

/** Deletes links by name, ignoring those already gone (a veth goes with its peer's namespace). */
export async function deleteLinks(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await run(['ip', '-force', '-batch', '-'], {
    input: names.map((n) => `link del ${n}`).join('\n') + '\n',
    allowFailure: true,
  });
}

/** Unmounts and removes a namespace file (idempotent). */
export async function deleteNetns(path: string): Promise<void> {
  if (await isNetnsMounted(path)) await run(['umount', path], { allowFailure: true });
  await unlink(path).catch(() => undefined);
}

export interface LinkInfo {
  ifname: string;
  master?: string;
  kind?: string;
}

export async function listLinks(): Promise<LinkInfo[]> {
  const r = await run(['ip', '-j', '-d', 'link', 'show']);
  const links = JSON.parse(r.stdout) as { ifname: string; master?: string; linkinfo?: { info_kind?: string } }[];
  return links.map((l) => ({ ifname: l.ifname, master: l.master, kind: l.linkinfo?.info_kind }));
}

export async function linkExists(name: string): Promise<boolean> {
  return pathExists(`/sys/class/net/${name}`);
}

async function writeSysctl(path: string, value: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current?.trim() !== value) await writeFile(path, value);
}

/**
 * Creates the bridge if missing and (re)applies its addresses, state and sysctls. Idempotent:
 * `addr replace` adds a missing address and leaves a present one.
 */
export async function ensureBridge(name: string, addresses: string[], mtu?: number): Promise<boolean> {
  const existed = await linkExists(name);
  const cmds: string[] = [];
  // The bridge's MAC address is set, not left to the kernel: a bridge without one takes the
  // lowest MAC of its ports, so a container joining with a lower one would change the gateway's
  // MAC under every other container, cut off until their ARP entries expire (as Docker does).
  if (!existed) cmds.push(`link add name ${name} address ${randomMac()}${mtu !== undefined ? ` mtu ${mtu}` : ''} type bridge`);
  else if ((await readFile(`/sys/class/net/${name}/addr_assign_type`, 'utf8').catch(() => '3')).trim() !== '3') {
    const current = (await readFile(`/sys/class/net/${name}/address`, 'utf8')).trim();
    cmds.push(`link set ${name} address ${current}`);
  }
  for (const a of addresses) cmds.push(`addr replace ${a} dev ${name}${a.includes(':') ? ' nodad' : ''}`);
  cmds.push(`link set ${name} up`);
  if (addresses.some((a) => a.includes(':'))) {
    await run(['ip', '-batch', '-'], { input: cmds.slice(0, existed ? 0 : 1).join('\n') + '\n' });
    await writeSysctl(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '0');
    await run(['ip', '-batch', '-'], { input: cmds.slice(existed ? 0 : 1).join('\n') + '\n' });
    await writeSysctl('/proc/sys/net/ipv6/conf/all/forwarding', '1');
  } else {
    await run(['ip', '-batch', '-'], { input: cmds.join('\n') + '\n' });
  }
  // Ports published on 127.0.0.1 are DNAT-ed to the container with their loopback source kept.
  await writeSysctl(`/proc/sys/net/ipv4/conf/${name}/route_localnet`, '1');
  await writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
  return !existed;
}

/** A random locally administered unicast MAC address. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] as number) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export async function deleteBridge(name: string): Promise<void> {
  await deleteLinks([name]);
}
