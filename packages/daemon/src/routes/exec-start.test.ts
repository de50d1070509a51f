/**
 * `docker exec` of a process the OCI runtime cannot start, as moby answers it: the runtime's error
 * on the stream's stdout as "OCI runtime exec failed: …: unknown", exit code 126, nothing of the
 * runtime's own log lines; and processes that do start keep their stderr and their exit codes.
 * And `DetachKeys` of an exec on a TTY end the attach, leaving the process running. Through the
 * real docker CLI (and a raw hijacked client) against berthd in this process, with real busybox
 * containers.
 */
import { connect } from 'node:net';
import { beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker } from '../../../../test/compat/support/berthd.js';
import { call, usePrivateDaemon } from '../../../../test/support/stalled-client.js';

describePrivileged('exec start: processes that cannot start, and detach keys', () => {
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

  it('the exec’s detach keys end its attach and leave the process running', async () => {
    const created = await call(d.socketPath, 'POST', '/v1.44/containers/target/exec', { AttachStdin: true, AttachStdout: true, Tty: true, Cmd: ['cat'], DetachKeys: 'ctrl-x,x' });
    expect(created.status, created.body.toString()).toBe(201);
    const id = (JSON.parse(created.body.toString()) as { Id: string }).Id;
    const sock = connect(d.socketPath);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const received: Buffer[] = [];
    sock.on('data', (c: Buffer) => received.push(c));
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    const body = JSON.stringify({ Detach: false, Tty: true });
    sock.write(`POST /v1.44/exec/${id}/start HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const text = (): string => Buffer.concat(received).toString('latin1');
    for (let i = 0; i < 100 && !text().includes('101 UPGRADED'); i++) await new Promise((r) => setTimeout(r, 50));
    sock.write('hello\n');
    for (let i = 0; i < 100 && !text().includes('hello'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(text()).toContain('hello');
    sock.write('\x18');
    await new Promise((r) => setTimeout(r, 100));
    sock.write('x');
    const ended = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    sock.destroy();
    expect(ended, 'the attach did not end on the detach keys').toBe(true);
    const inspect = await call(d.socketPath, 'GET', `/v1.44/exec/${id}/json`);
    expect((JSON.parse(inspect.body.toString()) as { Running: boolean }).Running).toBe(true);
    const bad = await call(d.socketPath, 'POST', '/v1.44/containers/target/exec', { Cmd: ['true'], DetachKeys: 'ctrl-x,bogus' });
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toMatch(/Invalid detach keys/);
  });
});
