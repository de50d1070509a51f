import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetworkManager, VolumeStore } from '@berth/runtime';
import type { ContainerNetworkRequest, ContainerSpec } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { collect, createHarness } from './harness.js';
import type { Harness } from './harness.js';
import { forceCleanup, hostAddress, httpGet, linksWithPrefix, randomSubnet, uniq } from './network-support.js';

/** The same paths, through the runtime's real containers (runc + conmon, busybox rootfs). */
describePrivileged('networks and volumes through real containers', () => {
  const tag = uniq();
  const prefix = `bc${tag.slice(0, 4)}`;
  const table = `berth_ctr_${tag}`;
  let h: Harness;
  let m: NetworkManager;
  let volumes: VolumeStore;
  let root: string;
  const started: string[] = [];

  beforeAll(async () => {
    h = await createHarness();
    root = await mkdtemp(join(tmpdir(), 'berth-netctr-'));
    m = await NetworkManager.open({
      stateDir: join(root, 'net'),
      runDir: join(root, 'run'),
      firewallTable: table,
      bridgePrefix: `${prefix}-`,
      defaultBridge: { name: `${prefix}0`, subnet: randomSubnet().subnet },
    });
    await m.reconcile([]);
    volumes = await VolumeStore.open({ dataRoot: join(root, 'data') });
  });

  afterAll(async () => {
    for (const id of started) {
      await h.runtime.delete(id, { force: true }).catch(() => undefined);
      await m.teardownContainer(id).catch(() => undefined);
    }
    try {
      await m?.destroy();
      await h?.close();
    } finally {
      await forceCleanup({ table, linkPrefixes: [prefix], runDir: join(root, 'run') });
      await rm(root, { recursive: true, force: true });
    }
    expect(await linksWithPrefix(prefix)).toEqual([]);
  });

  async function run(cmd: string[], net: Omit<ContainerNetworkRequest, 'containerId'>, binds: string[] = []): Promise<ContainerSpec> {
    const spec = await h.spec(cmd);
    const setup = await m.setupContainer({ containerId: spec.id, ...net });
    const mounts = await volumes.prepareMounts({ containerId: spec.id, rootfs: h.lower, binds });
    const full: ContainerSpec = {
      ...spec,
      netns: setup.netns,
      mounts: mounts.mounts,
      ...(setup.hosts !== undefined ? { hosts: setup.hosts } : {}),
      ...(setup.resolvConf !== undefined ? { resolvConf: setup.resolvConf } : {}),
      ...(setup.hostname !== undefined ? { hostname: setup.hostname } : {}),
    };
    await h.runtime.create(full);
    started.push(spec.id);
    await h.runtime.start(spec.id);
    return full;
  }

  async function finish(id: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const exit = await h.runtime.wait(id);
    const logs = await collect(h.runtime.logs(id));
    await h.runtime.delete(id, { force: true });
    await m.teardownContainer(id);
    await volumes.releaseMounts(id, { removeAnonymous: true });
    return { exitCode: exit.exitCode, ...logs };
  }

  it('serves from a named volume, resolves by name on a user network and publishes a port', async () => {
    const net = `web-${tag}`;
    await m.create({ name: net, ipam: { Config: [{ Subnet: randomSubnet().subnet }] } });
    const vol = await volumes.create({ name: `site-${tag}` });
    await writeFile(join(vol.Mountpoint, 'index.html'), `served by ${tag}\n`);
    const web = await run(['httpd', '-f', '-p', '80', '-h', '/www'], {
      name: `web-${tag}`,
      networkMode: net,
      endpoints: { [net]: { Aliases: ['site'] } },
      portBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] },
    }, [`site-${tag}:/www:ro`]);
    const port = Number(m.containerSettings(web.id)?.Ports['80/tcp']?.[0]?.HostPort);
    let body = '';
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await httpGet(`http://127.0.0.1:${port}/`, 1000).catch(() => '');
      if (body === '') await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe(`served by ${tag}\n`);

    const client = await run(['sh', '-c', 'wget -q -O - http://site/ && nslookup web-' + tag + ' && cat /etc/resolv.conf && ip -o -4 addr show eth0'], { networkMode: net });
    const out = await finish(client.id);
    expect(out.stdout).toContain(`served by ${tag}\n`);
    expect(out.stdout).toContain(m.containerSettings(web.id)?.Networks[net]?.IPAddress);
    expect(out.exitCode).toBe(0);

    // --network none: only lo inside the container.
    const none = await run(['sh', '-c', 'ls /sys/class/net'], { networkMode: 'none' });
    expect((await finish(none.id)).stdout.trim()).toBe('lo');

    // A container on the default bridge reaches the port through the host's address.
    const host = hostAddress((n) => n.startsWith(prefix) || n === 'lo');
    const viaHost = await run(['wget', '-q', '-O', '-', `http://${host}:${port}/`], { networkMode: 'bridge' });
    // The port is published on 127.0.0.1 only: the host's other address must not answer.
    expect((await finish(viaHost.id)).exitCode).not.toBe(0);

    await expect(volumes.remove(`site-${tag}`)).rejects.toThrow(/in use/);
    await h.runtime.kill(web.id, 'SIGKILL');
    await finish(web.id);
    await volumes.remove(`site-${tag}`);
    await m.remove(net);
  });
});
