import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { createHarness, leftovers } from './harness.js';
import type { Harness } from './harness.js';

async function monitorsOf(stateDir: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('/usr/bin/conmon') && cmd.includes(stateDir)) pids.push(Number(p));
  }
  return pids;
}

describePrivileged('runtime: many containers at once', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('creates, starts, stops and deletes 50 containers concurrently and leaves nothing behind', async () => {
    const specs = await Promise.all(Array.from({ length: 50 }, () => h.spec(['sleep', '120'], { hostConfig: { Init: true, Memory: 32 << 20, PidsLimit: 16 } })));
    await Promise.all(specs.map((s) => h.runtime.create(s)));
    await Promise.all(specs.map((s) => h.runtime.start(s.id)));
    const listed = await h.runtime.list();
    expect(listed.filter((c) => c.status === 'running')).toHaveLength(50);
    expect(await monitorsOf(h.stateDir)).toHaveLength(50);
    const exits = await Promise.all(specs.map((s) => h.runtime.stop(s.id, { timeout: 10 })));
    expect(exits.map((e) => e.exitCode)).toEqual(Array(50).fill(143));
    await Promise.all(specs.map((s) => h.runtime.delete(s.id)));
    expect(await h.runtime.list()).toEqual([]);
    expect(await leftovers(h)).toEqual([]);
    expect(await monitorsOf(h.stateDir)).toEqual([]);
  });
});
