/**
 * `--pid`, `--ipc` and `--uts` through the real docker CLI against berthd in this process, with
 * real busybox containers: the host's namespaces, another container's, and IPC without /dev/shm.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { docker } from '../../../../test/compat/support/berthd.js';
import { usePrivateDaemon } from '../../../../test/support/stalled-client.js';

describePrivileged('PID, IPC and UTS namespaces (--pid, --ipc, --uts)', () => {
  const d = usePrivateDaemon('namespaces');
  const run = async (...args: string[]): Promise<string> => {
    const r = await docker(d.env, ['run', '--rm', '--network', 'none', ...args]);
    expect(r.code, `docker run ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    const started = await docker(d.env, ['run', '-d', '--name', 'first', '--network', 'none', '--ipc', 'shareable', 'busybox', 'sh', '-c', 'echo from-first > /dev/shm/marker; exec sleep 600']);
    expect(started.code, started.stderr).toBe(0);
    const private_ = await docker(d.env, ['run', '-d', '--name', 'private', '--network', 'none', 'busybox', 'sleep', '600']);
    expect(private_.code, private_.stderr).toBe(0);
  }, 120_000);

  it('--pid host sees the host’s processes; by default a container is its own pid 1', async () => {
    const hostInit = readFileSync('/proc/1/cmdline', 'utf8').split('\0')[0];
    const shared = await run('--pid', 'host', 'busybox', 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; ls /proc | grep -c "^[0-9]"');
    const [init, count] = shared.trim().split('\n');
    expect(init?.split(' ')[0]).toBe(hostInit);
    expect(Number(count)).toBeGreaterThan(20);
    expect((await run('busybox', 'sh', '-c', 'echo $$')).trim()).toBe('1');
  });

  it('--pid container:<name> shares that container’s processes', async () => {
    const ps = await run('--pid', 'container:first', 'busybox', 'ps', '-o', 'args');
    expect(ps).toMatch(/sleep 600/);
  });

  it('--ipc container:<name> shares a shareable container’s IPC namespace and /dev/shm; --ipc none has no /dev/shm', async () => {
    const own = await docker(d.env, ['exec', 'first', 'readlink', '/proc/self/ns/ipc']);
    const joined = await run('--ipc', 'container:first', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/ipc; cat /dev/shm/marker');
    expect(joined.trim().split('\n')).toEqual([own.stdout.trim(), 'from-first']);
    const alone = await run('busybox', 'readlink', '/proc/self/ns/ipc');
    expect(alone.trim()).not.toBe(own.stdout.trim());
    const none = await run('--ipc', 'none', 'busybox', 'sh', '-c', 'grep -c " /dev/shm " /proc/mounts || true');
    expect(none.trim()).toBe('0');
  });

  it('joining a container whose IPC is private is refused with moby’s hint', async () => {
    const r = await docker(d.env, ['run', '--rm', '--network', 'none', '--ipc', 'container:private', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/non-shareable IPC \(hint: use IpcMode:shareable for the donor container\)/);
  });

  it('--ipc host uses the host’s /dev/shm', async () => {
    const name = `berth-ipc-${randomBytes(4).toString('hex')}`;
    writeFileSync(`/dev/shm/${name}`, 'from-host');
    try {
      expect(await run('--ipc', 'host', 'busybox', 'cat', `/dev/shm/${name}`)).toBe('from-host');
    } finally {
      rmSync(`/dev/shm/${name}`, { force: true });
    }
  });

  it('--uts host has the host’s name; with --hostname it is refused as moby does', async () => {
    expect((await run('--uts', 'host', 'busybox', 'hostname')).trim()).toBe(hostname());
    const r = await docker(d.env, ['run', '--rm', '--uts', 'host', '-h', 'other', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Conflicting options: hostname and the UTS mode/);
  });

  it('joining a container that does not exist is a clear error', async () => {
    const r = await docker(d.env, ['run', '--rm', '--network', 'none', '--pid', 'container:nosuch', 'busybox:latest', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/No such container: nosuch/i);
  });

  it('--cgroupns private gives the container its own cgroup root; the default follows the host (v1 host, v2 private)', async () => {
    const own = await run('--cgroupns', 'private', 'busybox', 'sh', '-c', 'grep -E "^[0-9]+:(pids|memory|0)?:" /proc/self/cgroup | head -1');
    expect(own.trim()).toMatch(/:\/$/);
    const shared = await run('--cgroupns', 'host', 'busybox', 'sh', '-c', 'grep -E "^[0-9]+:(pids|memory|0)?:" /proc/self/cgroup | head -1');
    expect(shared.trim()).not.toMatch(/:\/$/);
    const v2 = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === '/sys/fs/cgroup' && l.includes(' - cgroup2 '));
    const created = await docker(d.env, ['create', '--network', 'none', 'busybox', 'true']);
    const mode = await docker(d.env, ['inspect', '-f', '{{.HostConfig.CgroupnsMode}}', created.stdout.trim()]);
    expect(mode.stdout.trim()).toBe(v2 ? 'private' : 'host');
    const bad = await docker(d.env, ['run', '--rm', '--cgroupns', 'bogus', 'busybox', 'true']);
    expect(bad.code).not.toBe(0);
  });
});
