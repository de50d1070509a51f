import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildBusyboxRootfs } from '../../../test/support/busybox.js';
import { describePrivileged } from '../../../test/support/privileged.js';
import { detectCgroups, removeCgroup } from '../src/cgroups/cgroups.js';
import { OciRuntimeBinary, detectOciRuntime } from '../src/runtime/oci.js';

/** `start` through runc's exec fifo (no `runc start` process), on containers made by `runc create`. */
describePrivileged('OciRuntimeBinary.start', () => {
  let dir: string;
  let runtime: OciRuntimeBinary;
  const parent = `berth-oci-start-${process.pid}`;
  const ids: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-oci-start-'));
    await mkdir(path.join(dir, 'rootfs'));
    await buildBusyboxRootfs(path.join(dir, 'rootfs'));
    const info = await detectOciRuntime({ workDir: path.join(dir, 'probe') });
    runtime = new OciRuntimeBinary(info, path.join(dir, 'state'));
  }, 120_000);

  afterAll(async () => {
    for (const id of ids) await runtime.run(['delete', '--force', id], `delete ${id}`).catch(() => undefined);
    for (const id of ids) await removeCgroup(detectCgroups(), `/${parent}/${id}`);
    await removeCgroup(detectCgroups(), `/${parent}`, { recursive: false });
    await rm(dir, { recursive: true, force: true });
  });

  /** `runc create` of `sh -c <script>` (stdio on /dev/null); resolves with pid 1. */
  async function create(id: string, script: string): Promise<number> {
    const bundle = path.join(dir, id);
    await mkdir(bundle);
    const config = {
      ociVersion: runtime.info.specVersion,
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/' },
      root: { path: path.join(dir, 'rootfs') },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/out', type: 'bind', source: bundle, options: ['rbind', 'rw'] },
      ],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }], cgroupsPath: `/${parent}/${id}` },
    };
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
    ids.push(id);
    const pidFile = path.join(bundle, 'pid');
    execFileSync(runtime.info.path, ['--root', runtime.root, 'create', '--bundle', bundle, '--pid-file', pidFile, id], { stdio: 'ignore' });
    return Number(await readFile(pidFile, 'utf8'));
  }

  /** Exists and is not a zombie (this host's init may be slow to reap runc's orphans). */
  const alive = (pid: number) => async (): Promise<boolean> => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return stat !== '' && !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  };

  it('runs the process, and the runtime sees the container running', async () => {
    const pid = await create('runs', 'echo started > /out/started; sleep 30');
    await runtime.start('runs', alive(pid));
    // The shell creates the file before echo writes to it: wait for the content, not the name.
    const started = (): Promise<string> => readFile(path.join(dir, 'runs', 'started'), 'utf8').catch(() => '');
    for (let i = 0; i < 250 && (await started()) !== 'started\n'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await started()).toBe('started\n');
    expect((await runtime.state('runs'))?.status).toBe('running');
    await expect(runtime.start('runs', alive(pid))).rejects.toThrow(/start runs failed/);
  });

  it('fails, rather than waiting for ever, when the container died before its start', async () => {
    const pid = await create('dead', 'true');
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    await expect(runtime.start('dead', alive(pid))).rejects.toThrow(/start dead failed/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
