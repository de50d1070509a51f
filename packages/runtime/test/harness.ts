import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openRuntime } from '@berth/runtime';
import type { ContainerSpec, Mount, Runtime } from '@berth/runtime';
import { buildBusyboxRootfs } from '../../../test/support/busybox.js';
import { runCommand } from '../src/runtime/process.js';

/**
 * A shared fixture for the privileged tests: one busybox lower directory, one runtime on a temp
 * state directory, and an overlay rootfs per container (the shape @berth/image's snapshotter
 * returns), all removed at the end.
 */
export interface Harness {
  runtime: Runtime;
  root: string;
  stateDir: string;
  lower: string;
  cgroupParent: string;
  /** A fresh overlay (upper/work dirs under root) over the busybox lower dir. */
  overlay(): Promise<Mount[]>;
  spec(cmd: string[], extra?: Partial<ContainerSpec>): Promise<ContainerSpec>;
  newId(prefix?: string): string;
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-rt-'));
  const lower = path.join(root, 'lower');
  await mkdir(lower);
  await buildBusyboxRootfs(lower);
  const stateDir = path.join(root, 'state');
  const cgroupParent = `berth-test-${randomBytes(4).toString('hex')}`;
  const runtime = await openRuntime({ stateDir, cgroupParent });
  let n = 0;
  const h: Harness = {
    runtime,
    root,
    stateDir,
    lower,
    cgroupParent,
    newId: (prefix = 'c') => `${prefix}-${randomBytes(5).toString('hex')}`,
    async overlay() {
      const d = path.join(root, 'snap', String(n++));
      await mkdir(path.join(d, 'upper'), { recursive: true });
      await mkdir(path.join(d, 'work'), { recursive: true });
      return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${d}/upper`, `workdir=${d}/work`] }];
    },
    async spec(cmd, extra = {}) {
      return { id: h.newId(), rootfs: { mounts: await h.overlay() }, config: { Cmd: cmd }, ...extra };
    },
    async close() {
      for (const c of await runtime.list().catch(() => [])) await runtime.delete(c.id, { force: true }).catch(() => undefined);
      await runtime.close();
      // Leftovers would be a bug; remove them anyway so one failure does not leak.
      for (const ctl of ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc', 'systemd', 'unified', '']) {
        const d = path.join('/sys/fs/cgroup', ctl, cgroupParent);
        if (existsSync(d)) await runCommand('rmdir', [d]);
      }
      const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(root));
      for (const m of mounts.reverse()) await runCommand('umount', ['-l', m]);
      await rm(root, { recursive: true, force: true });
    },
  };
  return h;
}

export async function leftovers(h: Harness): Promise<string[]> {
  const found: string[] = [];
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(h.stateDir));
  found.push(...mounts.map((m) => `mount ${m}`));
  for (const ctl of ['memory', 'cpu', 'pids', 'freezer', 'devices', 'unified', '']) {
    const d = path.join('/sys/fs/cgroup', ctl, h.cgroupParent);
    if (existsSync(d)) {
      const { readdir } = await import('node:fs/promises');
      for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) found.push(`cgroup ${d}/${e.name}`);
    }
  }
  return found;
}

export async function collect(it: AsyncIterable<{ stream: string; data: Buffer }>): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  for await (const e of it) {
    if (e.stream === 'stdout') stdout += e.data.toString();
    else stderr += e.data.toString();
  }
  return { stdout, stderr };
}

/** Creates, starts and waits for a container running `sh -c <script>`, deletes it, and returns its exit code and output. */
export async function runToExit(h: Harness, script: string, extra: Partial<ContainerSpec> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const spec = await h.spec(['sh', '-c', script], extra);
  spec.config = { ...extra.config, Cmd: ['sh', '-c', script] };
  await h.runtime.create(spec);
  try {
    await h.runtime.start(spec.id);
    const exit = await h.runtime.wait(spec.id);
    return { exitCode: exit.exitCode, ...(await collect(h.runtime.logs(spec.id))) };
  } finally {
    await h.runtime.delete(spec.id, { force: true });
  }
}
