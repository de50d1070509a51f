/**
 * `docker cp` against hostile containers: symlinks inside the container (also absolute ones to
 * host paths) and hostile archive entries are resolved inside the container's root, never on the
 * host (CVE-2018-15664 class); the container is frozen during the copy and running afterwards.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packTar } from '@berth/image';
import { describePrivileged } from '../support/privileged.js';
import { docker, startBerthd, type BerthdInstance } from './support/berthd.js';
import { loadBusybox } from './support/images.js';

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

describePrivileged('compat: docker cp stays inside the container', () => {
  let berthd: BerthdInstance;
  let env: NodeJS.ProcessEnv;
  let work: string;
  let canary: string;
  const cli = (args: string[], options: Parameters<typeof docker>[2] = {}) => docker(env, args, options);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-cpsec-'));
    canary = join(work, 'canary');
    await mkdir(canary);
    await writeFile(join(canary, 'keep'), 'host file\n');
    berthd = await startBerthd();
    env = berthd.env;
    await loadBusybox(env, 'busybox:latest');
    const script = [
      `ln -s ${canary} /tmp/x`,
      'ln -s /etc/shadow /x',
      'echo container-secret > /etc/shadow',
      'mkdir -p /data && echo inside > /data/f.txt',
      'touch /ready',
      'sleep 600',
    ].join('; ');
    const run = await cli(['run', '-d', '--name', 'cpsec', 'busybox', 'sh', '-c', script]);
    if (run.code !== 0) throw new Error(run.stderr);
    for (let i = 0; i < 100; i++) {
      if ((await cli(['exec', 'cpsec', 'test', '-e', '/ready'])).code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await berthd?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  const canaryUnchanged = async (): Promise<void> => {
    expect((await readdir(canary)).sort()).toEqual(['keep']);
    expect(await readFile(join(canary, 'keep'), 'utf8')).toBe('host file\n');
  };

  it('does not write through a container symlink to a host directory (the reproducer)', async () => {
    const local = join(work, 'x');
    await mkdir(local, { recursive: true });
    await writeFile(join(local, 'payload'), 'evil\n');
    await cli(['cp', local, 'cpsec:/tmp/']);
    await canaryUnchanged();
    // An archive naming x/payload without a directory entry for x: written inside the container.
    const tar = await collect(packTar([{ header: { path: 'x/payload', type: 'file', mode: 0o644, size: 5 }, body: async function* () { yield Buffer.from('evil\n'); } }]));
    const put = await cli(['cp', '-', 'cpsec:/tmp/'], { input: tar });
    expect(put.code, put.stderr).toBe(0);
    await canaryUnchanged();
    const inside = await cli(['exec', 'cpsec', 'cat', `${canary}/payload`]);
    expect(inside.stdout).toBe('evil\n');
    expect((await cli(['inspect', '-f', '{{.State.Status}}', 'cpsec'])).stdout.trim()).toBe('running');
  });

  it('refuses ../ entries and writes nothing through a symlink from the same archive', async () => {
    const up = await collect(packTar([{ header: { path: `../../../../../../../..${canary}/up.txt`, type: 'file', mode: 0o644, size: 3 }, body: async function* () { yield Buffer.from('up\n'); } }]));
    const put = await cli(['cp', '-', 'cpsec:/tmp/'], { input: up });
    expect(put.code).not.toBe(0);
    expect(put.stderr).toContain('leaves the extraction point');
    const viaLink = await collect(
      packTar([
        { header: { path: 'lnk', type: 'symlink', mode: 0o777, linkpath: canary } },
        { header: { path: 'lnk/through.txt', type: 'file', mode: 0o644, size: 3 }, body: async function* () { yield Buffer.from('lk\n'); } },
      ]),
    );
    expect((await cli(['cp', '-', 'cpsec:/tmp/'], { input: viaLink })).code).toBe(0);
    await canaryUnchanged();
    expect((await cli(['exec', 'cpsec', 'cat', `${canary}/through.txt`])).stdout).toBe('lk\n');
  });

  it('copies a symlink to /etc/shadow out as the link, and with -L the container\'s file', async () => {
    const out = join(work, 'out-link');
    const cp = await cli(['cp', 'cpsec:/x', out]);
    expect(cp.code, cp.stderr).toBe(0);
    expect((await lstat(out)).isSymbolicLink()).toBe(true);
    const followed = join(work, 'out-followed');
    const cpL = await cli(['cp', '-L', 'cpsec:/x', followed]);
    expect(cpL.code, cpL.stderr).toBe(0);
    expect((await lstat(followed)).isFile()).toBe(true);
    expect(await readFile(followed, 'utf8')).toBe('container-secret\n');
  });

  it('still copies directories both ways', async () => {
    const dir = join(work, 'tree');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'a.txt'), 'a\n');
    const put = await cli(['cp', dir, 'cpsec:/data/']);
    expect(put.code, put.stderr).toBe(0);
    expect((await cli(['exec', 'cpsec', 'cat', '/data/tree/sub/a.txt'])).stdout).toBe('a\n');
    expect((await cli(['exec', 'cpsec', 'stat', '-c', '%u:%g %a', '/data/tree/sub/a.txt'])).stdout.trim()).toMatch(/^0:0 6[46][44]$/);
    // Into the root itself (a running container's root is /proc/<pid>/root, a link).
    const atRoot = await cli(['cp', join(dir, 'sub', 'a.txt'), 'cpsec:/']);
    expect(atRoot.code, atRoot.stderr).toBe(0);
    expect((await cli(['exec', 'cpsec', 'cat', '/a.txt'])).stdout).toBe('a\n');
    const back = join(work, 'back');
    const get = await cli(['cp', 'cpsec:/data', back]);
    expect(get.code, get.stderr).toBe(0);
    expect(await readFile(join(back, 'f.txt'), 'utf8')).toBe('inside\n');
    expect(await readFile(join(back, 'tree', 'sub', 'a.txt'), 'utf8')).toBe('a\n');
    expect((await cli(['inspect', '-f', '{{.State.Status}}', 'cpsec'])).stdout.trim()).toBe('running');
  });

  it('survives a client that hangs up in the middle of an archive or an export', async () => {
    // A tree big enough that tar is still writing when the client goes away.
    const fill = await cli(['exec', 'cpsec', 'sh', '-c', 'mkdir -p /big && dd if=/dev/urandom of=/big/blob bs=1M count=24 2>/dev/null']);
    expect(fill.code, fill.stderr).toBe(0);
    const id = (await cli(['inspect', '-f', '{{.Id}}', 'cpsec'])).stdout.trim();
    for (const path of [`/containers/${id}/archive?path=/big`, `/containers/${id}/export`]) {
      const first = await new Promise<number>((resolve, reject) => {
        const socket = connect(berthd.socket, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: berth\r\n\r\n`));
        socket.once('data', (chunk: Buffer) => {
          socket.destroy(); // hang up after the first bytes
          resolve(chunk.length);
        });
        socket.once('error', reject);
      });
      expect(first).toBeGreaterThan(0);
    }
    await new Promise((r) => setTimeout(r, 1000));
    // Still serving, and the container still runs.
    expect((await cli(['version', '--format', '{{.Server.Version}}'])).code).toBe(0);
    expect((await cli(['inspect', '-f', '{{.State.Status}}', 'cpsec'])).stdout.trim()).toBe('running');
    expect(await berthd.log()).not.toMatch(/unhandled|Unhandled/);
  });
});
