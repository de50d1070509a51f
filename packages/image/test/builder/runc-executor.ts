import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildExecutor, BuildRunRequest, BuildRunResult } from '@berth/image';

/**
 * A test-only BuildExecutor that runs each RUN step as a real container with `runc run`: it
 * mounts the step's rootfs overlay at a private bundle, writes a minimal OCI config (its own
 * pid/ipc/uts/mount/network namespaces, Docker's default capabilities, masked /proc paths),
 * streams the output and returns the exit code. Everything (bundle, runc state root, mount)
 * is removed before `run` settles. The daemon's executor uses @berth/runtime instead.
 */

const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

function exec(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

export interface RuncExecutorStats {
  runs: number;
}

export function createRuncExecutor(): BuildExecutor & { stats: RuncExecutorStats } {
  const stats: RuncExecutorStats = { runs: 0 };
  return {
    stats,
    async run(request: BuildRunRequest): Promise<BuildRunResult> {
      stats.runs++;
      const bundle = await mkdtemp(join(tmpdir(), 'berth-build-bundle-'));
      const stateRoot = join(bundle, 'runc-state');
      const rootfs = join(bundle, 'rootfs');
      await mkdir(rootfs);
      await mkdir(stateRoot);
      let mounted = false;
      try {
        for (const m of request.rootfs) {
          await exec('mount', ['-t', m.type, '-o', m.options.join(','), m.source, rootfs]);
          mounted = true;
        }
        const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
        if (request.network !== 'host') namespaces.push({ type: 'network' });
        const spec = {
          ociVersion: '1.0.2',
          process: {
            terminal: false,
            user: request.process.user,
            args: request.process.args,
            env: request.process.env,
            cwd: request.process.cwd,
            capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
            noNewPrivileges: false,
          },
          root: { path: rootfs, readonly: false },
          hostname: request.process.hostname,
          mounts: [
            { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
            { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
            { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
            { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
            { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
            ...request.mounts.map((m) => ({ destination: m.target, type: m.type, source: m.source, options: m.options })),
          ],
          linux: {
            namespaces,
            maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
            readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
            resources: { devices: [{ allow: false, access: 'rwm' }] },
          },
        };
        await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
        const exitCode = await new Promise<number>((resolve, reject) => {
          const child = spawn('runc', ['--root', stateRoot, 'run', '--bundle', bundle, request.id], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child.stdout.on('data', (d: Buffer) => request.onOutput('stdout', d));
          child.stderr.on('data', (d: Buffer) => request.onOutput('stderr', d));
          const abort = () => child.kill('SIGKILL');
          request.signal?.addEventListener('abort', abort, { once: true });
          child.on('error', reject);
          child.on('close', (code, signal) => {
            request.signal?.removeEventListener('abort', abort);
            resolve(code ?? (signal ? 128 + 9 : 1));
          });
        });
        return { exitCode };
      } finally {
        await exec('runc', ['--root', stateRoot, 'delete', '--force', request.id]).catch(() => undefined);
        if (mounted) await exec('umount', [rootfs]).catch(() => exec('umount', ['-l', rootfs]));
        await rm(bundle, { recursive: true, force: true });
      }
    },
  };
}
