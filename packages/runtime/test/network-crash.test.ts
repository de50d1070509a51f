import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetworkManager } from '@berth/runtime';
import type { ContainerNetworkSetup } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { exec, forceCleanup, hostAddress, httpGet, inNetns, linksWithPrefix, randomSubnet, startHttpd, stopProcess, uniq } from './network-support.js';

interface EsbuildApi {
  build(options: Record<string, unknown>): Promise<unknown>;
}

/** esbuild comes with vite (a vitest dependency); bundle the driver so plain node can run it. */
async function bundleDriver(outfile: string): Promise<void> {
  const fromVitest = createRequire(createRequire(import.meta.url).resolve('vitest/package.json'));
  const esbuild = createRequire(fromVitest.resolve('vite/package.json'))('esbuild') as EsbuildApi;
  await esbuild.build({
    entryPoints: [fileURLToPath(new URL('./network-crash-driver.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    alias: { '@berth/oci-spec': fileURLToPath(new URL('../../oci-spec/src/index.ts', import.meta.url)) },
    logLevel: 'silent',
  });
}

describePrivileged('networks after kill -9 of the managing process', () => {
  const tag = uniq();
  const prefix = `bk${tag.slice(0, 4)}`;
  const table = `berth_crash_${tag}`;
  const id = (n: string): string => `${tag}${n}`.padEnd(64, '0');
  let root: string;
  let runDir: string;
  let driver: ChildProcess | undefined;
  let httpd: ChildProcess | undefined;
  let m: NetworkManager | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-crash-'));
    runDir = join(root, 'run');
  });

  afterAll(async () => {
    stopProcess(driver);
    stopProcess(httpd);
    try {
      await m?.destroy();
    } finally {
      await forceCleanup({ table, linkPrefixes: [prefix], runDir });
      await rm(root, { recursive: true, force: true });
    }
    expect(await linksWithPrefix(prefix)).toEqual([]);
  });

  it('keeps forwarding, and reconcile removes what is stale and restores what is missing', async () => {
    const def = randomSubnet();
    const user = randomSubnet();
    const options = {
      stateDir: join(root, 'state'),
      runDir,
      firewallTable: table,
      bridgePrefix: `${prefix}-`,
      defaultBridge: { name: `${prefix}0`, subnet: def.subnet },
    };
    const bundle = join(root, 'driver.mjs');
    await bundleDriver(bundle);
    driver = spawn(process.execPath, [bundle, JSON.stringify({
      options,
      networks: [{ name: `u-${tag}`, subnet: user.subnet }],
      containers: [
        { containerId: id('live'), name: `live-${tag}`, networkMode: 'bridge', portBindings: { '80/tcp': [{ HostIp: '', HostPort: '0' }] } },
        { containerId: id('dead'), name: `dead-${tag}`, networkMode: `u-${tag}`, portBindings: { '81/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
      ],
    })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      driver?.stdout?.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.includes('\n')) resolve(buf.split('\n')[0] ?? '');
      });
      driver?.on('exit', (code) => reject(new Error(`driver exited with ${code}`)));
    });
    const [live, dead] = JSON.parse(line) as ContainerNetworkSetup[];
    if (!live || !dead) throw new Error('driver set up no containers');
    const liveNs = typeof live.netns === 'object' ? live.netns.path : '';
    const deadNs = typeof dead.netns === 'object' ? dead.netns.path : '';
    const www = join(root, 'www');
    await mkdir(www);
    await writeFile(join(www, 'index.html'), 'still here\n');
    httpd = await startHttpd(liveNs, www);
    const port = Number(live.settings.Ports['80/tcp']?.[0]?.HostPort);

    driver.kill('SIGKILL');
    await new Promise((r) => driver?.once('exit', r));

    // The kernel keeps forwarding and the DNS server keeps answering while no manager runs.
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBe('still here\n');
    const dnsUp = await inNetns(deadNs, ['nslookup', `dead-${tag}`], dead.resolvConf);
    expect(dnsUp.stdout).toContain(dead.settings.IPAddress);
    // Damage: the table flushed by someone, the live veth deleted, a namespace file nobody knows.
    await exec(['nft', 'delete', 'table', 'inet', table]);
    const liveVeth = (await exec(['ip', '-j', 'link', 'show', 'master', `${prefix}0`])).stdout;
    const vethName = (JSON.parse(liveVeth) as { ifname: string }[])[0]?.ifname ?? '';
    expect(vethName).toMatch(/^vb/);
    await exec(['ip', 'link', 'del', vethName]);
    await writeFile(join(runDir, 'netns', 'stray'), '');
    await exec(['unshare', `--net=${join(runDir, 'netns', 'stray')}`, 'true']);

    // "Restart": a new manager on the same state; only `live` still runs.
    m = await NetworkManager.open(options);
    const report = await m.reconcile([id('live')]);
    expect(report.firewallRestored).toBe(true);
    expect(report.restoredLinks).toEqual([vethName]);
    expect(report.removedNetns.sort()).toEqual([id('dead'), 'stray'].sort());
    expect(report.removedEndpoints).toHaveLength(1);

    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBe('still here\n');
    const host = hostAddress((n) => n.startsWith(prefix) || n === 'lo');
    expect(await httpGet(`http://${host}:${port}/`)).toBe('still here\n');
    expect((await inNetns(liveNs, ['ip', '-o', 'addr', 'show', 'eth0'])).stdout).toContain(live.settings.IPAddress);

    const rules = (await exec(['nft', 'list', 'table', 'inet', table])).stdout;
    expect(rules).toContain(`c:${id('live').slice(0, 12)}`);
    expect(rules).not.toContain(`c:${id('dead').slice(0, 12)}`);
    expect(await readdir(join(runDir, 'netns'))).toEqual([id('live')]);
    expect((await exec(['ls', deadNs])).code).not.toBe(0);
    const onUser = (await exec(['ip', '-j', 'link', 'show', 'master', `${prefix}-${m.inspect(`u-${tag}`).Id.slice(0, 15 - prefix.length - 1)}`])).stdout;
    expect(JSON.parse(onUser || '[]')).toEqual([]);
    expect(m.inspect(`u-${tag}`).Containers).toEqual({});
    // The dead container's address is free again; the live one's is still held.
    expect(Object.keys(m.inspect('bridge').Containers)).toEqual([id('live')]);
  });
});
