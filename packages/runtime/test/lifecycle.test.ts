import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { collect, createHarness } from './harness.js';
import type { Harness } from './harness.js';

describePrivileged('runtime: lifecycle transitions on real containers', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('created → running → paused → running → stopped → deleted, refusing what the state forbids', async () => {
    // --init: pid 1 is tini, which forwards SIGTERM (a bare pid 1 ignores signals it has no handler for).
    const spec = await h.spec(['sh', '-c', 'echo up; sleep 60'], { hostConfig: { Init: true } });
    const created = await h.runtime.create(spec);
    expect(created).toMatchObject({ status: 'created', oomKilled: false });
    expect(created.pid).toBeGreaterThan(0);
    expect(created.monitorPid).toBeGreaterThan(0);
    await expect(h.runtime.create(spec)).rejects.toMatchObject({ code: 'CONTAINER_EXISTS', category: 'already-exists' });
    await expect(h.runtime.pause(spec.id)).rejects.toMatchObject({ code: 'INVALID_STATE', category: 'conflict' });
    await expect(h.runtime.exec(spec.id, { cmd: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE' });

    await h.runtime.start(spec.id);
    expect((await h.runtime.state(spec.id)).status).toBe('running');
    await expect(h.runtime.start(spec.id)).rejects.toThrow(/cannot start container .* it is running/);
    await expect(h.runtime.unpause(spec.id)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(h.runtime.delete(spec.id)).rejects.toMatchObject({ code: 'INVALID_STATE' });

    await h.runtime.pause(spec.id);
    expect((await h.runtime.state(spec.id)).status).toBe('paused');
    await expect(h.runtime.pause(spec.id)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await h.runtime.unpause(spec.id);
    expect((await h.runtime.state(spec.id)).status).toBe('running');

    const exit = await h.runtime.stop(spec.id, { timeout: 5 });
    expect(exit.exitCode).toBe(143); // SIGTERM → 128 + 15
    const stopped = await h.runtime.state(spec.id);
    expect(stopped).toMatchObject({ status: 'stopped', exitCode: 143, pid: 0 });
    expect(stopped.finishedAt).toBeInstanceOf(Date);
    await expect(h.runtime.start(spec.id)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(h.runtime.kill(spec.id, 'TERM')).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(await h.runtime.stop(spec.id)).toMatchObject({ exitCode: 143 }); // idempotent
    expect((await collect(h.runtime.logs(spec.id))).stdout).toBe('up\n');

    await h.runtime.delete(spec.id);
    expect(existsSync(stopped.bundle)).toBe(false);
    await expect(h.runtime.state(spec.id)).rejects.toMatchObject({ code: 'NO_SUCH_CONTAINER', category: 'not-found' });
  });

  it('deletes a created container that never started, and force-deletes a running one', async () => {
    const a = await h.spec(['true']);
    await h.runtime.create(a);
    await h.runtime.delete(a.id);
    const b = await h.spec(['sleep', '60']);
    await h.runtime.create(b);
    await h.runtime.start(b.id);
    await h.runtime.pause(b.id);
    await h.runtime.delete(b.id, { force: true });
    expect((await h.runtime.list()).map((c) => c.id)).not.toContain(b.id);
  });

  it('stops a process that ignores SIGTERM with SIGKILL after the timeout', async () => {
    const spec = await h.spec(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done']);
    await h.runtime.create(spec);
    await h.runtime.start(spec.id);
    for await (const e of h.runtime.logs(spec.id, { follow: true })) if (e.data.toString() === 'ready\n') break;
    const t0 = Date.now();
    const exit = await h.runtime.stop(spec.id, { timeout: 1 });
    const elapsed = Date.now() - t0;
    expect(exit.exitCode).toBe(137);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    await h.runtime.delete(spec.id);
  });

  it('kills with any signal and reports 128+signal; honours the image stop signal', async () => {
    const spec = await h.spec(['sleep', '60'], { hostConfig: { Init: true } });
    await h.runtime.create(spec);
    await h.runtime.start(spec.id);
    await h.runtime.kill(spec.id, 'SIGHUP');
    expect((await h.runtime.wait(spec.id)).exitCode).toBe(129);
    await h.runtime.delete(spec.id);
    await expect(h.runtime.kill(spec.id, 'NOPE')).rejects.toThrow(/invalid signal: NOPE/);

    const s2 = await h.spec(['sh', '-c', 'trap "exit 42" USR1; echo ready; while :; do sleep 1; done'], { image: { StopSignal: 'SIGUSR1' } });
    await h.runtime.create(s2);
    await h.runtime.start(s2.id);
    for await (const e of h.runtime.logs(s2.id, { follow: true })) if (e.data.toString() === 'ready\n') break;
    expect((await h.runtime.stop(s2.id, { timeout: 10 })).exitCode).toBe(42);
    await h.runtime.delete(s2.id);
  });
});
