/**
 * Registries for the compatibility suite: Docker's reference registry from Debian
 * (/usr/bin/docker-registry) as a child process, and @berth/registry's server in-process; and
 * the busybox fixture pushed into them with @berth/registry's client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient, serveRegistry } from '@berth/registry';
import { buildBusyboxImage, type BusyboxImage } from '../../support/busybox.js';

/** bcrypt of COMPAT_PASSWORD (cost 8), for htpasswd files. */
export const COMPAT_USER = 'compat';
export const COMPAT_PASSWORD = 'berth-compat-pw';
const COMPAT_BCRYPT = '$2b$08$nvbtjB4tt5rZnaW1eRRR2OlkeLOJ0zmxjt/oGA.63RXzZeISccqve';

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

/** Docker's reference registry (distribution) from Debian, on a free loopback port. */
export async function startDockerRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-compat-registry-'));
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dir}/data`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const started = Date.now();
  while (Date.now() - started < 20_000) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `127.0.0.1:${port}`,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** @berth/registry's server (what `berth registry serve` runs), with basic auth. */
export async function startBerthRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-compat-registry-'));
  await writeFile(join(dir, 'htpasswd'), `${COMPAT_USER}:${COMPAT_BCRYPT}\n`);
  const reg = await serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'data'), htpasswd: join(dir, 'htpasswd'), log: false, gc: false, shutdownTimeoutMs: 1000 });
  return {
    host: `127.0.0.1:${reg.port}`,
    async close() {
      await reg.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes the busybox fixture as `<host>/<repo>:<tag>` with the registry client. */
export async function pushBusybox(
  host: string,
  repo = 'busybox',
  tag = 'latest',
  credentials?: { username: string; password: string },
  image?: BusyboxImage,
): Promise<BusyboxImage> {
  const img = image ?? (await buildBusyboxImage());
  const { StaticCredentials } = await import('@berth/registry');
  const client = new RegistryClient({
    ...(credentials ? { credentials: new StaticCredentials({ [host]: credentials }) } : {}),
  });
  const ref = `${host}/${repo}:${tag}`;
  for (const blob of [img.layer, img.config]) {
    await client.pushBlob(ref, { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, () => Readable.from([Buffer.from(blob.bytes)]));
  }
  await client.pushManifest(ref, img.manifest.bytes, img.manifest.mediaType, tag);
  return img;
}
