import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openRuntime } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { runCommand } from '../src/runtime/process.js';
import { collect, createHarness } from './harness.js';
import type { Harness } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

describePrivileged('runtime: the managing process is killed with SIGKILL', () => {
  let h: Harness;
  let bundle: string;
  beforeAll(async () => {
    h = await createHarness();
    // The child imports the library from source, like the tests; esbuild makes it runnable by node.
    const outDir = path.join(here, `.crash-${process.pid}`);
    bundle = path.join(outDir, 'child.mjs');
    await build({
      entryPoints: [path.join(here, 'crash-child.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      alias: {
        '@berth/runtime': path.join(repo, 'packages/runtime/src/index.ts'),
        '@berth/oci-spec': path.join(repo, 'packages/oci-spec/src/index.ts'),
      },
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: 'silent',
    });
  });
  afterAll(async () => {
    const { rm } = await import('node:fs/promises');
    if (bundle) await rm(path.dirname(bundle), { recursive: true, force: true });
    await h?.close();
  });

  it('a new process on the same state directory finds every container with its logs and exit code', async () => {
    const exited = await h.spec(['sh', '-c', 'echo out-a; echo err-a >&2; exit 7']);
    const running = await h.spec(['sh', '-c', 'echo started-b; while :; do sleep 0.2; echo tick; done'], { hostConfig: { Init: true } });
    // The test's own runtime (h.runtime) stays open on the same state dir; the child is a second process.
    const child = spawn(process.execPath, [bundle, h.stateDir, h.cgroupParent, JSON.stringify([exited, running])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('READY') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const reopened = await openRuntime({ stateDir: h.stateDir, cgroupParent: h.cgroupParent });
    try {
      const list = await reopened.list();
      const a = list.find((c) => c.id === exited.id);
      const b = list.find((c) => c.id === running.id);
      expect(a).toMatchObject({ status: 'stopped', exitCode: 7 });
      expect(b).toMatchObject({ status: 'running' });
      expect(b?.monitorPid).toBeGreaterThan(0);
      expect(await collect(reopened.logs(exited.id))).toEqual({ stdout: 'out-a\n', stderr: 'err-a\n' });
      // The monitor kept logging while nobody managed the container.
      const before = (await collect(reopened.logs(running.id))).stdout.split('\n').length;
      await new Promise((r) => setTimeout(r, 700));
      const logsB = (await collect(reopened.logs(running.id))).stdout;
      expect(logsB.startsWith('started-b\ntick\n')).toBe(true);
      expect(logsB.split('\n').length).toBeGreaterThan(before);
      expect(await reopened.stop(running.id, { timeout: 5 })).toMatchObject({ exitCode: 143 });
      await reopened.delete(running.id);
      await reopened.delete(exited.id);
    } finally {
      await reopened.close();
    }
  });

  it('removes what a crash in the middle of create left: mount, directory, runtime state', async () => {
    // A create interrupted after mounting the rootfs: phase "creating", an overlay mounted.
    const id = h.newId('stale');
    const dir = path.join(h.stateDir, 'containers', id);
    await mkdir(path.join(dir, 'rootfs'), { recursive: true });
    const [ov] = await h.overlay();
    const r = await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', ov!.options.join(','), path.join(dir, 'rootfs')]);
    expect(r.code).toBe(0);
    await writeFile(path.join(dir, 'container.json'), JSON.stringify({ phase: 'creating', cgroupsPath: `/${h.cgroupParent}/${id}`, spec: { id } }));
    // And a directory with no record at all.
    await mkdir(path.join(h.stateDir, 'containers', h.newId('junk')));

    const reopened = await openRuntime({ stateDir: h.stateDir, cgroupParent: h.cgroupParent });
    try {
      expect(reopened.cleanedUp).toContain(`mount ${path.join(dir, 'rootfs')}`);
      expect(existsSync(dir)).toBe(false);
      const mounts = await readFile('/proc/self/mountinfo', 'utf8');
      expect(mounts).not.toContain(dir);
      expect(await reopened.list()).toEqual([]);
    } finally {
      await reopened.close();
    }
  });
});
