import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { BerthClient } from '@berth/client';
import { makeBusyboxRootfs } from '../../../../test/support/busybox.js';
import { isRoot } from '../../../../test/support/privileged.js';

/** A running engine the client tests talk to: berthd or Docker's own dockerd. */
export interface Engine {
  name: 'dockerd' | 'berthd';
  host: string;
  socketPath: string;
  stop(): Promise<void>;
}

/** Whether Debian's docker.io (dockerd) is installed here; its tests skip with a message otherwise. */
export const dockerdAvailable = isRoot && spawnSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' }).status === 0;

/**
 * Starts dockerd on a temporary socket, data root and exec root, without touching the host's
 * firewall or bridges (no iptables, no bridge: containers get `--network none`). Stopped by PID.
 */
export async function startDockerd(): Promise<Engine> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-client-dockerd-'));
  const socketPath = join(dir, 'docker.sock');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--host', `unix://${socketPath}`,
      '--data-root', join(dir, 'root'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none',
      '--storage-driver=overlay2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const client = new BerthClient({ host: `unix://${socketPath}` });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`dockerd exited early: ${log}`);
      if (existsSync(socketPath)) {
        try {
          await client.ping({ timeout: 1000 });
          break;
        } catch {
          // not ready yet
        }
      }
      if (Date.now() > deadline) throw new Error(`dockerd did not answer within 60 s: ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    client.close();
  }
  return {
    name: 'dockerd',
    host: `unix://${socketPath}`,
    socketPath,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Imports the shared busybox root filesystem as `name` (`docker import` through the client),
 * with `CMD ["sh"]`. Returns the image ID.
 */
export async function importBusybox(client: BerthClient, name: string): Promise<void> {
  const rootfs = await makeBusyboxRootfs();
  try {
    const tar = createTar({ cwd: rootfs, portable: false }, ['.']);
    const colon = name.lastIndexOf(':');
    for await (const _ of await client.images.import(tar as unknown as AsyncIterable<Uint8Array>, { repo: name.slice(0, colon), tag: name.slice(colon + 1), changes: ['CMD ["sh"]'] })) {
      // drain
    }
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}

/** Lazily unmounts every mount below `dir` (overlays, netns bind mounts), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Starts berthd in this process (from @berth/daemon's public entry) on a temporary socket, data
 * root and exec root, with its own bridge name, subnet, firewall table and cgroup parent so it
 * cannot collide with other tests on this machine. `stop` closes it and removes the directories.
 */
export async function startBerthd(): Promise<Engine> {
  const { startDaemon } = await import('@berth/daemon');
  const dir = await mkdtemp(join(tmpdir(), 'berth-client-berthd-'));
  const socketPath = join(dir, 'berthd.sock');
  const tag = Math.random().toString(36).slice(2, 7);
  const octet = 100 + Math.floor(Math.random() * 100);
  const running = await startDaemon({
    hosts: [`unix://${socketPath}`],
    dataRoot: join(dir, 'data'),
    execRoot: join(dir, 'exec'),
    logLevel: 'error',
    cgroupParent: `berth-client-test-${tag}`,
    network: { bridgeName: `bct${tag}`, subnet: `10.${octet}.${Math.floor(Math.random() * 250)}.0/24`, firewallTable: `berth_ct_${tag}`, bridgePrefix: `bc${tag}` },
  });
  return {
    name: 'berthd',
    host: `unix://${socketPath}`,
    socketPath,
    async stop() {
      // close() should return promptly; if it does not, say so and clean up anyway.
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        running.close().then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 20_000);
        }),
      ]);
      clearTimeout(timer);
      if (!closed) console.warn('berthd close() did not finish within 20 s (open connections?); removing its directories anyway');
      unmountUnder(dir);
      await rm(dir, { recursive: true, force: true }).catch((error: unknown) => console.warn(`could not remove ${dir}: ${(error as Error).message}`));
      // The bridges, firewall table and cgroup parent belong to this engine only; berthd leaves
      // them in place on close (live-restore), so the test removes them.
      const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
      for (const match of links.matchAll(/^\d+: ([^:@]+)/gm)) {
        const name = match[1] ?? '';
        if (name === `bct${tag}` || name.startsWith(`bc${tag}`)) spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
      }
      spawnSync('nft', ['delete', 'table', 'inet', `berth_ct_${tag}`], { stdio: 'ignore' });
      spawnSync('sh', ['-c', `for c in /sys/fs/cgroup/berth-client-test-${tag} /sys/fs/cgroup/*/berth-client-test-${tag}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \\; ; done; true`], { stdio: 'ignore' });
    },
  };
}
