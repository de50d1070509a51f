import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mount } from '../snapshot/types.js';
import { BuildError } from './errors.js';
import type { BuildExecutor, BuildRunRequest } from './executor.js';

export class ExecutorConformanceError extends BuildError {
  constructor(check: string, detail: string) {
    super('EXECUTOR_CONFORMANCE', 'internal', `BuildExecutor check "${check}" failed: ${detail}`);
  }
}

export interface VerifyBuildExecutorOptions {
  /**
   * A root filesystem directory with a POSIX shell at /bin/sh and `id`, `hostname`, `pwd`,
   * `ls`, `cat` (a busybox root). Used read-only, as the overlay's lower directory.
   */
  rootfs: string;
  /** Where the checks keep their upper/work directories (default the OS temp dir). */
  tmpDir?: string;
}

/**
 * The contract every BuildExecutor must meet, checked with real runs (needs root): exit codes,
 * streamed stdout/stderr, env/cwd/numeric user/hostname, writes landing in the overlay's upper
 * directory, bind (read-only) and tmpfs mounts, and `network: 'none'` giving only loopback.
 * Throws ExecutorConformanceError naming the first failing check. The daemon runs it against
 * its runtime-backed executor; the builder's tests run it against their runc executor.
 */
export async function verifyBuildExecutor(executor: BuildExecutor, options: VerifyBuildExecutorOptions): Promise<void> {
  const base = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'berth-executor-check-'));
  let n = 0;
  const runOnce = async (
    check: string,
    args: string[],
    extra: Partial<Pick<BuildRunRequest, 'mounts' | 'network'>> & { env?: string[]; cwd?: string; user?: BuildRunRequest['process']['user'] } = {},
  ): Promise<{ exitCode: number; stdout: string; stderr: string; upper: string }> => {
    n++;
    const upper = join(base, `upper-${n}`);
    const work = join(base, `work-${n}`);
    await mkdir(upper);
    await mkdir(work);
    let stdout = '';
    let stderr = '';
    const rootfs: Mount[] = [
      { type: 'overlay', source: 'overlay', target: '/', options: [`lowerdir=${options.rootfs}`, `upperdir=${upper}`, `workdir=${work}`] },
    ];
    let exitCode: number;
    try {
      ({ exitCode } = await executor.run({
        id: `berth-check-${randomBytes(8).toString('hex')}`,
        rootfs,
        process: {
          args,
          env: extra.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          cwd: extra.cwd ?? '/',
          user: extra.user ?? { uid: 0, gid: 0, additionalGids: [] },
          hostname: 'buildcheck',
        },
        mounts: extra.mounts ?? [],
        network: extra.network ?? 'none',
        insecure: false,
        onOutput: (stream, chunk) => {
          if (stream === 'stdout') stdout += chunk.toString();
          else stderr += chunk.toString();
        },
      }));
    } catch (error) {
      throw new ExecutorConformanceError(check, `run rejected: ${error instanceof Error ? error.message : String(error)}`);
    }
    return { exitCode, stdout, stderr, upper };
  };
  const expectEqual = (check: string, actual: unknown, expected: unknown): void => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new ExecutorConformanceError(check, `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
  };
  try {
    const exit = await runOnce('exit code', ['/bin/sh', '-c', 'exit 7']);
    expectEqual('exit code', exit.exitCode, 7);

    const out = await runOnce('output streams', ['/bin/sh', '-c', 'echo one; echo two >&2; echo three']);
    expectEqual('output streams', [out.exitCode, out.stdout, out.stderr], [0, 'one\nthree\n', 'two\n']);

    const proc = await runOnce('process settings', ['/bin/sh', '-c', 'echo "$FOO"; pwd; id -u; id -g; hostname'], {
      env: ['PATH=/bin:/usr/bin:/sbin:/usr/sbin', 'FOO=bar baz'],
      cwd: '/tmp',
      user: { uid: 1000, gid: 1000, additionalGids: [] },
    });
    expectEqual('process settings', proc.stdout.split('\n'), ['bar baz', '/tmp', '1000', '1000', 'buildcheck', '']);

    const write = await runOnce('writes reach the upper directory', ['/bin/sh', '-c', 'echo written > /written-by-step']);
    const written = await readFile(join(write.upper, 'written-by-step'), 'utf8').catch(() => undefined);
    expectEqual('writes reach the upper directory', written, 'written\n');

    const hostDir = join(base, 'bind-source');
    await mkdir(hostDir);
    await writeFile(join(hostDir, 'in.txt'), 'from the host\n');
    const mounts = await runOnce(
      'mounts',
      ['/bin/sh', '-c', 'cat /mnt/in/in.txt; (echo no > /mnt/in/x) 2>/dev/null && echo writable || echo readonly; echo t > /t/f && cat /t/f'],
      {
        mounts: [
          { type: 'bind', source: hostDir, target: '/mnt/in', options: ['rbind', 'ro'] },
          { type: 'tmpfs', source: 'tmpfs', target: '/t', options: ['nosuid', 'nodev', 'size=1048576'] },
        ],
      },
    );
    expectEqual('mounts', mounts.stdout, 'from the host\nreadonly\nt\n');

    const net = await runOnce('network none', ['/bin/sh', '-c', 'ls /sys/class/net']);
    expectEqual('network none', net.stdout.trim().split(/\s+/), ['lo']);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
