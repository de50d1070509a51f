import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { collect, createHarness } from './harness.js';
import type { Harness } from './harness.js';

describePrivileged('runtime: run a container end to end', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs echo on an overlay rootfs, keeps both streams and the exit code', async () => {
    const spec = await h.spec(['sh', '-c', 'echo hello; echo oops >&2; exit 3']);
    const created = await h.runtime.create(spec);
    expect(created.status).toBe('created');
    await h.runtime.start(spec.id);
    const exit = await h.runtime.wait(spec.id);
    expect(exit.exitCode).toBe(3);
    expect(exit.oomKilled).toBe(false);
    const logs = await collect(h.runtime.logs(spec.id));
    expect(logs).toEqual({ stdout: 'hello\n', stderr: 'oops\n' });
    const info = await h.runtime.state(spec.id);
    expect(info.status).toBe('stopped');
    expect(info.exitCode).toBe(3);
    await h.runtime.delete(spec.id);
    await expect(h.runtime.state(spec.id)).rejects.toMatchObject({ code: 'NO_SUCH_CONTAINER' });
  });

  it('runs a container with the runtime it names, or says why that runtime cannot run here', async () => {
    const spec = await h.spec(['echo', 'from-crun'], { runtime: 'crun' });
    let created = false;
    try {
      await h.runtime.create(spec);
      created = true;
    } catch (error) {
      // Debian's crun 1.8 on a cgroup v1 hybrid host: the refusal carries crun's own words.
      expect(error).toMatchObject({ code: 'RUNTIME_UNAVAILABLE' });
      expect(String((error as Error).message)).toMatch(/crun .*refused: .*cgroup/);
    }
    if (created) {
      await h.runtime.start(spec.id);
      expect((await h.runtime.wait(spec.id)).exitCode).toBe(0);
      expect((await collect(h.runtime.logs(spec.id))).stdout).toBe('from-crun\n');
      expect((await h.runtime.state(spec.id)).runtime).toBe('crun');
      await h.runtime.delete(spec.id);
    }
    await expect(h.runtime.state(spec.id)).rejects.toMatchObject({ code: 'NO_SUCH_CONTAINER' });
    expect(h.runtime.ociRuntime.reason).toMatch(/runs containers here/);
  });
});
