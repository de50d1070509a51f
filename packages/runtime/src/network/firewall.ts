import { run } from './exec.js';

/**
 * The firewall backend: nftables, driven through `nft -f` with one table of our own
 * (`inet <table>`, default `inet berth`).
 *
 * Why nftables and not iptables: this Debian's `iptables` is already iptables-nft (a translation
 * layer onto nf_tables), so nftables is the kernel interface either way; a table of our own is
 * never touched by anyone else's flush and never touches their chains; one `inet` table covers
 * IPv4 and IPv6; and `nft -f` applies a whole ruleset as one kernel transaction, so the table is
 * always either the old ruleset or the new one — never half of a container's rules.
 *
 * The table is a pure function of persisted state (`renderRuleset`): every change (a container's
 * endpoint or ports added or removed, a network created or removed) replaces the whole table in
 * one transaction. Per-container rules carry `comment "c:<id12>"`. This makes `reconcile()` after
 * a crash trivially exact: re-render from state and apply — stale rules vanish, missing ones
 * return. Established connections survive a replacement (NAT bindings live in conntrack).
 *
 * Known interaction: a DROP in another table's forward chain (e.g. Docker's iptables FORWARD
 * policy) still drops our traffic — nftables lets any base chain drop a packet.
 */

export interface FirewallNetwork {
  bridge: string;
  subnets: string[];
  internal: boolean;
}

export interface FirewallPort {
  containerId: string;
  bridge: string;
  proto: 'tcp' | 'udp' | 'sctp';
  /** '' / '0.0.0.0' / '::' / a specific address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  /** Source subnet of the bridge (for hairpin masquerade). */
  subnet: string;
}

export interface FirewallState {
  networks: FirewallNetwork[];
  ports: FirewallPort[];
}

const q = (s: string): string => JSON.stringify(s);
const isV6 = (ip: string): boolean => ip.includes(':');

/** The `nft -f` script that replaces table `inet <table>` with the ruleset for `state`. */
export function renderRuleset(table: string, state: FirewallState): string {
  const fwd: string[] = [];
  const pub: string[] = [];
  const post: string[] = [];
  const bridges = state.networks.map((n) => n.bridge);
  // Published ports stay reachable across networks, as from any other host.
  if (state.ports.length > 0) fwd.push('ct status dnat accept');
  for (const n of state.networks) {
    if (n.internal) {
      fwd.push(`iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
      fwd.push(`oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    }
    const others = bridges.filter((b) => b !== n.bridge);
    if (others.length > 0) fwd.push(`iifname ${q(n.bridge)} oifname { ${others.map(q).join(', ')} } drop`);
    if (!n.internal) {
      for (const s of n.subnets) {
        // Only what containers send out: the host's own packets from the gateway address (to
        // the DNS server on another gateway, say) keep their source.
        post.push(`iifname ${q(n.bridge)} oifname != ${q(n.bridge)} ${isV6(s) ? 'ip6' : 'ip'} saddr ${s} masquerade`);
      }
    }
    // Ports published on 127.0.0.1 arrive with a loopback source (route_localnet is on for the bridge).
    post.push(`oifname ${q(n.bridge)} ip saddr 127.0.0.0/8 masquerade`);
  }
  for (const p of state.ports) {
    const comment = `comment ${q(`c:${p.containerId.slice(0, 12)}`)}`;
    const v6 = isV6(p.containerIp);
    const target = v6 ? `dnat ip6 to [${p.containerIp}]:${p.containerPort}` : `dnat ip to ${p.containerIp}:${p.containerPort}`;
    let match: string;
    if (p.hostIp === '' || p.hostIp === '0.0.0.0' || p.hostIp === '::') {
      match = `meta nfproto ${v6 ? 'ipv6' : 'ipv4'}`;
    } else {
      if (isV6(p.hostIp) !== v6) continue;
      match = `${v6 ? 'ip6' : 'ip'} daddr ${p.hostIp}`;
    }
    pub.push(`${match} ${p.proto} dport ${p.hostPort} ${target} ${comment}`);
    post.push(
      `oifname ${q(p.bridge)} ${v6 ? 'ip6' : 'ip'} saddr ${p.subnet} ${v6 ? 'ip6' : 'ip'} daddr ${p.containerIp} ${p.proto} dport ${p.containerPort} ct status dnat masquerade ${comment}`,
    );
  }
  const chain = (name: string, head: string, rules: string[]): string =>
    `  chain ${name} {\n${head ? `    ${head}\n` : ''}${rules.map((r) => `    ${r}\n`).join('')}  }\n`;
  return (
    // Declaring the table first makes `delete` valid when it does not exist yet; all in one transaction.
    `table inet ${table} {}\ndelete table inet ${table}\n` +
    `table inet ${table} {\n` +
    chain('forward', 'type filter hook forward priority filter; policy accept;', fwd) +
    chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', ['fib daddr type local jump publish']) +
    chain('output', 'type nat hook output priority -100; policy accept;', ['fib daddr type local jump publish']) +
    chain('publish', '', pub) +
    chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post) +
    `}\n`
  );
}

export async function applyRuleset(table: string, state: FirewallState): Promise<void> {
  await run(['nft', '-f', '-'], { input: renderRuleset(table, state) });
}

export async function tableExists(table: string): Promise<boolean> {
  const r = await run(['nft', 'list', 'table', 'inet', table], { allowFailure: true });
  return r.code === 0;
}

/** Removes the table (idempotent). */
export async function deleteRuleset(table: string): Promise<void> {
  await run(['nft', '-f', '-'], { input: `table inet ${table} {}\ndelete table inet ${table}\n` });
}
