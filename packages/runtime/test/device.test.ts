import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ContainerSpec } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { createHarness, runToExit } from './harness.js';
import type { Harness } from './harness.js';

/**
 * --device and --device-cgroup-rule through real runc containers. The device cgroup is what
 * decides: a misc character device (major 10) that the container may not use is created with
 * mknod (allowed for any char device, as in Docker) and opening it fails with EPERM; the same node
 * with a rule that allows it opens fine.
 */
describePrivileged('runtime: host devices (--device, --device-cgroup-rule)', () => {
  let h: Harness;
  let tmp: string;
  /** Two misc devices of this kernel that root may open without any capability, and that runc does not allow by itself. */
  let allowed: { name: string; minor: number };
  let other: { name: string; minor: number };

  beforeAll(async () => {
    h = await createHarness();
    tmp = await mkdtemp(path.join(tmpdir(), 'berth-devtest-'));
    const misc = new Map(
      (await readFile('/proc/misc', 'utf8'))
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f): f is [string, string] => f.length === 2)
        .map(([minor, name]) => [name, Number(minor)]),
    );
    // Not tun (10:200): runc 1.1 appends it, rwm, to every container's device rules.
    const found = ['fuse', 'loop-control', 'autofs'].filter((n) => misc.has(n)).map((name) => ({ name, minor: misc.get(name) ?? 0 }));
    if (found.length < 2) throw new Error(`this test needs two of fuse, loop-control and autofs in /proc/misc; found: ${[...misc.keys()].join(' ')}`);
    [allowed, other] = found as [{ name: string; minor: number }, { name: string; minor: number }];
    // Host-side nodes of our own (the mapping must not depend on what /dev holds).
    await mkdir(path.join(tmp, 'devs', 'sub'), { recursive: true });
    execFileSync('mknod', ['-m', '0660', path.join(tmp, 'misc-allowed'), 'c', '10', String(allowed.minor)]);
    execFileSync('mknod', ['-m', '0666', path.join(tmp, 'devs', 'null'), 'c', '1', '3']);
    execFileSync('mknod', ['-m', '0666', path.join(tmp, 'devs', 'sub', 'zero'), 'c', '1', '5']);
  });
  afterAll(async () => {
    await h?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const run = (script: string, hostConfig: ContainerSpec['hostConfig']): ReturnType<typeof runToExit> => runToExit(h, script, { hostConfig });

  it('creates the mapped node with its numbers and mode, usable, and denies what is not listed', async () => {
    const script = [
      "stat -c '%F %t:%T %a' /dev/berth-null",
      'echo hello > /dev/berth-null && echo null-write-ok',
      "stat -c '%t:%T %a' /dev/berth-misc",
      'true < /dev/berth-misc && echo misc-read-ok',
      'true > /dev/berth-misc || echo misc-write-denied',
      `mknod /dev/unlisted c 10 ${other.minor} && echo mknod-ok`,
      'true < /dev/unlisted || echo unlisted-denied',
      'ls /dev/mine /dev/mine/sub',
      'echo x > /dev/mine/null && head -c 3 /dev/mine/sub/zero | od -An -tx1',
    ].join('; ');
    const r = await run(script, {
      Devices: [
        { PathOnHost: '/dev/null', PathInContainer: '/dev/berth-null', CgroupPermissions: 'rwm' },
        { PathOnHost: path.join(tmp, 'misc-allowed'), PathInContainer: '/dev/berth-misc', CgroupPermissions: 'r' },
        { PathOnHost: path.join(tmp, 'devs'), PathInContainer: '/dev/mine' },
      ],
    });
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 7)).toEqual([
      'character special file 1:3 666',
      'null-write-ok',
      `a:${allowed.minor.toString(16)} 660`,
      'misc-read-ok',
      'misc-write-denied',
      'mknod-ok',
      'unlisted-denied',
    ]);
    expect(lines.slice(7).join(' ')).toMatch(/null\s+sub.*zero/s);
    expect(lines.at(-1)?.trim()).toBe('00 00 00');
    // Both denials are the device cgroup's EPERM (not ENXIO/EACCES from the driver or the mode).
    expect(r.stderr.match(/Operation not permitted/g)).toHaveLength(2);
    expect(r.stderr).toMatch(/berth-misc.*Operation not permitted/);
    expect(r.stderr).toMatch(/unlisted.*Operation not permitted/);
    expect(r.exitCode).toBe(0);
  });

  it('opens the same kind of node once --device-cgroup-rule allows its numbers', async () => {
    const script = `mknod /dev/ruled c 10 ${other.minor} && true < /dev/ruled && echo ruled-open-ok; mknod /dev/still c 10 ${allowed.minor} && true < /dev/still || echo still-denied`;
    const r = await run(script, { DeviceCgroupRules: [`c 10:${other.minor} rw`] });
    expect(r.stdout.trim().split('\n')).toEqual(['ruled-open-ok', 'still-denied']);
    expect(r.stderr).toMatch(/still.*Operation not permitted/);
    const wildcard = await run(`mknod /dev/any c 10 ${allowed.minor} && true < /dev/any && echo wildcard-open-ok`, { DeviceCgroupRules: ['c 10:* r'] });
    expect(wildcard.stdout.trim()).toBe('wildcard-open-ok');
  });

  it('refuses a --device that is not a device before anything runs', async () => {
    const spec = await h.spec(['true'], { hostConfig: { Devices: [{ PathOnHost: path.join(tmp, 'no-such-device') }] } });
    await expect(h.runtime.create(spec)).rejects.toThrow(`no such device on the host: ${path.join(tmp, 'no-such-device')}`);
    await expect(h.runtime.state(spec.id)).rejects.toThrow(/no such container/);
  });
});
