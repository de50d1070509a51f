/**
 * `docker exec` of a process the OCI runtime cannot start, as moby answers it: the runtime's error
 * on the stream's stdout as "OCI runtime exec failed: …: unknown", exit code 126, nothing of the
 * runtime's own log lines; and processes that do start keep their stderr and their exit codes.
 * Through the real docker CLI against berthd in this process, with real busybox containers.
 */
import { beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker } from '../../../../test/compat/support/berthd.js';
import { usePrivateDaemon } from '../../../../test/support/stalled-client.js';

describePrivileged('exec of a process that cannot start', () => {
  const d = usePrivateDaemon('exec-start');

  beforeAll(async () => {
    const started = await docker(d.env, ['run', '-d', '--name', 'target', 'busybox', 'sleep', '600']);
    expect(started.code, started.stderr).toBe(0);
  }, 120_000);

  it('a missing executable: moby’s message on stdout and 126, with or without a TTY', async () => {
    for (const tty of [[], ['-t']]) {
      const r = await docker(d.env, ['exec', ...tty, 'target', 'nope']);
      expect(r.code, `exec ${tty.join(' ')}: ${r.stdout}${r.stderr}`).toBe(126);
      expect(r.stdout.trim()).toBe('OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown');
      expect(r.stderr).not.toMatch(/level=error/);
    }
  });

  it('a working directory that does not exist, and a file that is not executable', async () => {
    const cwd = await docker(d.env, ['exec', '-w', '/nonexistent', 'target', 'pwd']);
    expect(cwd.code).toBe(126);
    expect(cwd.stdout).toMatch(/^OCI runtime exec failed: .*chdir to cwd \("\/nonexistent"\).*: unknown\s*$/);
    const perm = await docker(d.env, ['exec', 'target', '/etc/passwd']);
    expect(perm.code).toBe(126);
    expect(perm.stdout).toMatch(/^OCI runtime exec failed: .*permission denied: unknown\s*$/);
  });

  it('a process that runs keeps its stderr, in order, and its own exit codes (255 too)', async () => {
    const r = await docker(d.env, ['exec', 'target', 'sh', '-c', 'echo early-err >&2; echo out; echo late-err >&2; exit 255']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('early-err\nlate-err\n');
    const quick = await docker(d.env, ['exec', 'target', 'sh', '-c', 'exit 3']);
    expect(quick.code).toBe(3);
  });

  it('a detached exec that cannot start is refused with the runtime’s message', async () => {
    const r = await docker(d.env, ['exec', '-d', 'target', 'nope']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in \$PATH: unknown/);
  });
});
