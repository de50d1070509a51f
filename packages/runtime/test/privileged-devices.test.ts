import { lstatSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ContainerSpec } from '@berth/runtime';
import { describePrivileged } from '../../../test/support/privileged.js';
import { ALL_CAPABILITIES } from '../src/spec/defaults.js';
import { deviceMajor, deviceMinor } from '../src/spec/devices.js';
import { createHarness, runToExit } from './harness.js';
import type { Harness } from './harness.js';

/**
 * `--privileged` through real runc containers: the container gets the host's device nodes (as
 * Docker gives them) and may use them; a container that is not privileged has no such node and,
 * when it makes one itself, the device cgroup refuses to open it.
 */

/** A host device that is not among the standard ones every container gets, and that opens without side effects. */
function pickHostDevice(): { name: string; type: 'c' | 'b'; major: number; minor: number } | undefined {
  for (const name of ['loop-control', 'kmsg', 'fuse']) {
    try {
      const st = lstatSync(`/dev/${name}`, { bigint: true });
      if (st.isCharacterDevice() || st.isBlockDevice()) {
        return { name, type: st.isCharacterDevice() ? 'c' : 'b', major: deviceMajor(st.rdev), minor: deviceMinor(st.rdev) };
      }
    } catch {
      // not on this host
    }
  }
  return undefined;
}

const hostDevice = pickHostDevice();
if (!hostDevice) console.warn('skipping the privileged host-device test: none of /dev/loop-control, /dev/kmsg, /dev/fuse is a device node on this host');

describePrivileged('runtime: a privileged container gets the host devices', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const run = (script: string, hostConfig: ContainerSpec['hostConfig']): ReturnType<typeof runToExit> => runToExit(h, script, { hostConfig });

  it.skipIf(!hostDevice)("has the host's node with the host's numbers, usable; a plain container has none", async () => {
    const d = hostDevice as NonNullable<typeof hostDevice>;
    const node = `/dev/${d.name}`;
    // busybox ls -l prints "major, minor" where a file's size would be
    const script = `ls -l ${node} && true < ${node} && echo open-ok; test -e /dev/console || echo no-console; test -e /dev/pts/0 || echo no-pts-0`;
    const privileged = await run(script, { Privileged: true });
    expect(privileged.stderr).toBe('');
    const [ls, ...rest] = privileged.stdout.trim().split('\n');
    expect(ls).toMatch(new RegExp(`^${d.type}\\S+\\s+\\d+\\s+\\S+\\s+\\S+\\s+${d.major},\\s+${d.minor}\\s.*${node}$`));
    expect(rest).toEqual(['open-ok', 'no-console', 'no-pts-0']);
    expect(privileged.exitCode).toBe(0);

    const plain = await run(`test -e ${node} || echo absent; mknod /dev/made ${d.type} ${d.major} ${d.minor} && true < /dev/made || echo denied`, {});
    expect(plain.stdout.trim().split('\n')).toEqual(['absent', 'denied']);
    expect(plain.stderr).toMatch(/made.*Operation not permitted/);
  });

  it('still applies a --device mapping in a privileged container', async () => {
    const r = await run("stat -c '%t:%T' /dev/berth-zero && head -c 2 /dev/berth-zero | od -An -tx1", {
      Privileged: true,
      Devices: [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/berth-zero', CgroupPermissions: 'r' }],
    });
    expect(r.stdout.trim().split('\n').map((l) => l.trim())).toEqual(['1:5', '00 00']);
    expect(r.exitCode).toBe(0);
  });

  it("runs with every capability this process may grant: the container's bounding set is the engine's", async () => {
    const own = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    const r = await run('grep -E "^Cap(Bnd|Eff):" /proc/self/status', { Privileged: true });
    expect(r.exitCode, r.stderr).toBe(0);
    const inside = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s*/) as [string, string]));
    // Capabilities above the ones berth knows (none today) are not granted.
    const known = (1n << BigInt(ALL_CAPABILITIES.length)) - 1n;
    const expected = (BigInt(`0x${own}`) & known).toString(16);
    expect(BigInt(`0x${inside['CapBnd']}`).toString(16)).toBe(expected);
    expect(BigInt(`0x${inside['CapEff']}`).toString(16)).toBe(expected);
  });
});
