import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetworkManager } from '@berth/runtime';
import type { ContainerNetworkSetup } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import {
  exec,
  forceCleanup,
  hostAddress,
  httpGet,
  inNetns,
  linksWithPrefix,
  randomSubnet,
  startHttpd,
  stopProcess,
  uniq,
} from './network-support.js';

const netnsPath = (s: ContainerNetworkSetup): string => (typeof s.netns === 'object' ? s.netns.path : '');

describePrivileged('networks: namespaces, bridges, DNS, published ports, isolation', () => {
  const tag = uniq();
  const prefix = `bt${tag.slice(0, 4)}`;
  const table = `berth_test_${tag}`;
  let root: string;
  let runDir: string;
  let www: string;
  let m: NetworkManager;
  const procs: ChildProcess[] = [];
  const def = randomSubnet();
  const netA = randomSubnet();
  const netB = randomSubnet();
  const id = (n: string): string => `${tag}${n}`.padEnd(64, '0');

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-net-'));
    runDir = join(root, 'run');
    www = join(root, 'www');
    await mkdir(www);
    await writeFile(join(www, 'index.html'), `hello from ${tag}\n`);
    m = await NetworkManager.open({
      stateDir: join(root, 'state'),
      runDir,
      firewallTable: table,
      bridgePrefix: `${prefix}-`,
      defaultBridge: { name: `${prefix}0`, subnet: def.subnet },
      subnetPool: [randomSubnet().subnet],
    });
    await m.reconcile([]);
  });

  afterAll(async () => {
    for (const p of procs) stopProcess(p);
    try {
      await m?.destroy();
    } finally {
      await forceCleanup({ table, linkPrefixes: [prefix], runDir });
      await rm(root, { recursive: true, force: true });
    }
    // Nothing of ours is left in the kernel.
    expect(await linksWithPrefix(prefix)).toEqual([]);
    expect((await exec(['nft', 'list', 'table', 'inet', table])).code).not.toBe(0);
  });

  it('lists the built-in networks and creates user-defined ones', async () => {
    expect(m.list().map((n) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
    const a = await m.create({ name: `a-${tag}`, ipam: { Config: [{ Subnet: netA.subnet }] }, labels: { team: 'x' } });
    expect(a.IPAM.Config[0]).toEqual({ Subnet: netA.subnet, Gateway: netA.gateway });
    await m.create({ name: `b-${tag}`, ipam: { Config: [{ Subnet: netB.subnet }] } });
    await expect(m.create({ name: `a-${tag}` })).rejects.toThrow(/already exists/);
    await expect(m.create({ name: `c-${tag}`, ipam: { Config: [{ Subnet: netA.subnet }] } })).rejects.toThrow(/overlaps/);
    expect(m.list({ label: ['team=x'] }).map((n) => n.Name)).toEqual([`a-${tag}`]);
    expect(m.inspect(a.Id.slice(0, 12)).Name).toBe(`a-${tag}`);
    // Every bridge has its own MAC address set (addr_assign_type 3, NET_ADDR_SET): one taken from
    // a port would change whenever a container joins with a lower MAC, cutting the others off
    // from their gateway until their ARP entries expire.
    for (const bridge of await linksWithPrefix(prefix)) {
      if ((await readFile(`/sys/class/net/${bridge}/bridge/bridge_id`, 'utf8').catch(() => undefined)) === undefined) continue;
      expect((await readFile(`/sys/class/net/${bridge}/addr_assign_type`, 'utf8')).trim(), bridge).toBe('3');
    }
  });

  it('containers on a user-defined network reach each other by name, alias and short id; another network cannot', async () => {
    const web = await m.setupContainer({
      containerId: id('web'),
      name: `web-${tag}`,
      networkMode: `a-${tag}`,
      endpoints: { [`a-${tag}`]: { Aliases: ['db'], IPAMConfig: { IPv4Address: `${netA.prefix}50` } } },
    });
    procs.push(await startHttpd(netnsPath(web), www));
    expect(web.settings.Networks[`a-${tag}`]?.IPAddress).toBe(`${netA.prefix}50`);
    expect(web.resolvConf).toContain(`nameserver ${netA.gateway}`);

    const client = await m.setupContainer({ containerId: id('cli'), name: `cli-${tag}`, networkMode: `a-${tag}` });
    const ns = netnsPath(client);
    for (const name of [`web-${tag}`, 'db', id('web').slice(0, 12)]) {
      const look = await inNetns(ns, ['nslookup', name], client.resolvConf);
      expect(look.stdout).toContain(`${netA.prefix}50`);
      const got = await inNetns(ns, ['wget', '-q', '-O', '-', `http://${name}/`], client.resolvConf);
      expect(got.stdout).toBe(`hello from ${tag}\n`);
    }
    // Names outside the engine are forwarded to the host's resolvers (an answer, not a timeout).
    const fwd = await inNetns(ns, ['nslookup', 'localhost.invalid'], client.resolvConf);
    expect(fwd.stdout + fwd.stderr).toMatch(/NXDOMAIN|can't find/);

    const other = await m.setupContainer({ containerId: id('oth'), name: `oth-${tag}`, networkMode: `b-${tag}` });
    const ons = netnsPath(other);
    const noName = await inNetns(ons, ['nslookup', `web-${tag}`], other.resolvConf);
    expect(noName.stdout).not.toContain(`${netA.prefix}50`);
    // Not even by asking network A's DNS server directly: it answers only its own network.
    const sneaky = await inNetns(ons, ['nslookup', `web-${tag}`, netA.gateway], undefined, 8000);
    expect(sneaky.stdout).not.toContain(`${netA.prefix}50`);
    const noRoute = await inNetns(ons, ['wget', '-q', '-O', '-', `http://${netA.prefix}50/`], undefined, 3000);
    expect(noRoute.code).not.toBe(0);
    // A network in use refuses removal.
    await expect(m.remove(`a-${tag}`)).rejects.toThrow(/has active endpoints/);
    expect(Object.keys(m.inspect(`a-${tag}`).Containers).sort()).toEqual([id('cli'), id('web')].sort());
  });

  it('connects and disconnects a running container live', async () => {
    const other = m.containerSettings(id('oth'));
    expect(other).toBeDefined();
    const ep = await m.connect(`a-${tag}`, id('oth'), { Aliases: ['late'] });
    const ns = `${runDir}/netns/${id('oth')}`;
    const links = await inNetns(ns, ['ip', '-o', 'addr', 'show', 'eth1']);
    expect(links.stdout).toContain(ep.IPAddress);
    const got = await inNetns(ns, ['wget', '-q', '-O', '-', `http://${netA.prefix}50/`]);
    expect(got.stdout).toBe(`hello from ${tag}\n`);
    const cli = `${runDir}/netns/${id('cli')}`;
    const resolv = `nameserver ${netA.gateway}\n`;
    expect((await inNetns(cli, ['nslookup', 'late'], resolv)).stdout).toContain(ep.IPAddress);
    await m.disconnect(`a-${tag}`, id('oth'));
    expect((await inNetns(ns, ['ip', '-o', 'link'])).stdout).not.toContain('eth1');
    await expect(m.disconnect(`a-${tag}`, id('oth'))).rejects.toThrow(/not connected/);
  });

  it('publishes a port on 127.0.0.1 and on the host address, with a random host port reported', async () => {
    const s = await m.setupContainer({
      containerId: id('pub'),
      name: `pub-${tag}`,
      networkMode: 'bridge',
      portBindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] },
      exposedPorts: { '80/tcp': {}, '9/udp': {} },
    });
    procs.push(await startHttpd(netnsPath(s), www));
    const bindings = s.settings.Ports['80/tcp'];
    expect(bindings?.map((b) => b.HostIp)).toEqual(['0.0.0.0', '::']);
    const port = Number(bindings?.[0]?.HostPort);
    expect(port).toBeGreaterThanOrEqual(32768);
    expect(s.settings.Ports['9/udp']).toBeNull();
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBe(`hello from ${tag}\n`);
    expect(await httpGet(`http://localhost:${port}/`)).toBe(`hello from ${tag}\n`);
    const host = hostAddress((n) => n.startsWith(prefix) || n === 'lo');
    expect(await httpGet(`http://${host}:${port}/`)).toBe(`hello from ${tag}\n`);
    // From another container: through the host's address (DNAT + hairpin masquerade).
    const peer = await m.setupContainer({ containerId: id('peer'), networkMode: 'bridge' });
    const viaHost = await inNetns(netnsPath(peer), ['wget', '-q', '-O', '-', `http://${host}:${port}/`]);
    expect(viaHost.stdout).toBe(`hello from ${tag}\n`);
    // The same host port again is refused; -P gives another.
    await expect(
      m.setupContainer({ containerId: id('dup'), networkMode: 'bridge', portBindings: { '80/tcp': [{ HostIp: '', HostPort: String(port) }] } }),
    ).rejects.toThrow(/port is already allocated/);
    expect(await linksWithPrefix(`vb`)).not.toContain(undefined);
    const rules = await exec(['nft', 'list', 'chain', 'inet', table, 'publish']);
    expect(rules.stdout).toContain(`dport ${port} dnat ip to ${s.settings.IPAddress}:80`);
    // Teardown removes the container's rules, veth and namespace.
    await m.teardownContainer(id('peer'));
    await m.teardownContainer(id('pub'));
    const after = await exec(['nft', 'list', 'chain', 'inet', table, 'publish']);
    expect(after.stdout).not.toContain(`c:${id('pub').slice(0, 12)}`);
    expect((await exec(['ls', `${runDir}/netns`])).stdout).not.toContain(id('pub'));
  });

  it('--network none has only loopback; host shares the host namespace', async () => {
    const s = await m.setupContainer({ containerId: id('none'), networkMode: 'none' });
    const links = await inNetns(netnsPath(s), ['ip', '-o', 'link']);
    expect(links.stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim())).toEqual(['lo']);
    expect(links.stdout).toContain('UP');
    expect(s.settings.Networks.none).toBeDefined();
    const h = await m.setupContainer({ containerId: id('host'), networkMode: 'host' });
    expect(h.netns).toBe('host');
    const j = await m.setupContainer({ containerId: id('join'), networkMode: `container:${id('cli')}` });
    expect(netnsPath(j)).toBe(`${runDir}/netns/${id('cli')}`);
    for (const c of ['none', 'host', 'join']) await m.teardownContainer(id(c));
  });

  it('gives IPv6 addresses on a network created with IPv6', async () => {
    const v6 = `fd${tag.slice(0, 2)}:${parseInt(tag.slice(2, 6), 16).toString(16)}:9::/64`;
    const net = await m.create({ name: `v6-${tag}`, enableIPv6: true, ipam: { Config: [{ Subnet: randomSubnet().subnet }, { Subnet: v6 }] } });
    expect(net.EnableIPv6).toBe(true);
    const one = await m.setupContainer({ containerId: id('six1'), networkMode: `v6-${tag}` });
    const two = await m.setupContainer({ containerId: id('six2'), networkMode: `v6-${tag}`, endpoints: { [`v6-${tag}`]: { IPAMConfig: { IPv6Address: `${v6.slice(0, -3)}beef` } } } });
    const addr1 = one.settings.GlobalIPv6Address;
    expect(addr1.startsWith(v6.slice(0, -3))).toBe(true);
    expect(two.settings.GlobalIPv6Address).toBe(`${v6.slice(0, -3)}beef`);
    expect(one.settings.GlobalIPv6PrefixLen).toBe(64);
    const ping = await inNetns(netnsPath(two), ['ping', '-6', '-c', '1', '-W', '3', addr1]);
    expect(ping.stdout).toContain('1 packets received');
    const gw = await inNetns(netnsPath(two), ['ip', '-6', 'route', 'show', 'default']);
    expect(gw.stdout).toContain(`via ${v6.slice(0, -3)}1`);
    await m.teardownContainer(id('six1'));
    await m.teardownContainer(id('six2'));
    await m.remove(`v6-${tag}`);
  });

  it('an internal network has no way out but still resolves its own names', async () => {
    await m.create({ name: `int-${tag}`, internal: true, ipam: { Config: [{ Subnet: randomSubnet().subnet }] } });
    const one = await m.setupContainer({ containerId: id('int1'), name: `int1-${tag}`, networkMode: `int-${tag}` });
    const two = await m.setupContainer({ containerId: id('int2'), networkMode: `int-${tag}` });
    const route = await inNetns(netnsPath(two), ['ip', 'route']);
    expect(route.stdout).not.toContain('default');
    expect((await inNetns(netnsPath(two), ['nslookup', `int1-${tag}`], two.resolvConf)).stdout).toContain(one.settings.IPAddress);
    // Even with a route added by hand, the host drops what leaves the bridge.
    const gw = two.settings.Gateway;
    await inNetns(netnsPath(two), ['ip', 'route', 'add', 'default', 'via', gw]);
    const peer = await m.setupContainer({ containerId: id('intpeer'), networkMode: 'bridge' });
    const ping = await inNetns(netnsPath(two), ['ping', '-c', '1', '-W', '2', peer.settings.IPAddress]);
    expect(ping.stdout).toContain('0 packets received');
    for (const c of ['int1', 'int2', 'intpeer']) await m.teardownContainer(id(c));
    await m.remove(`int-${tag}`);
  });

  it('removes unused networks; prune leaves networks in use', async () => {
    await m.teardownContainer(id('oth'));
    expect(await m.prune()).toEqual([`b-${tag}`]);
    await m.teardownContainer(id('web'));
    await m.teardownContainer(id('cli'));
    await m.remove(`a-${tag}`);
    expect(m.list().map((n) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
    await expect(m.remove('bridge')).rejects.toThrow(/pre-defined/);
    expect((await linksWithPrefix(`${prefix}-`))).toEqual([]);
  });
});
