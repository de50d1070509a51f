/**
 * The embedding example: a test suite runs a container from an image with the libraries alone —
 * @berth/image loads the image and prepares its rootfs (overlay mounts), @berth/runtime runs it —
 * and `runTestContainer` removes it when the test ends, even if the test fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { openImageService } from '@berth/image';
import { openRuntime, runTestContainer } from '@berth/runtime';
import type { Runtime } from '@berth/runtime';
import { buildBusyboxImage, writeOciLayout } from '../../../test/support/busybox.js';
import { describePrivileged } from '../../../test/support/privileged.js';

describePrivileged('embedding @berth/runtime in a test suite', () => {
  let dir: string;
  let runtime: Runtime;
  let images: Awaited<ReturnType<typeof openImageService>>;
  let ref: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-embed-'));
    images = await openImageService({ root: path.join(dir, 'images') });
    const layout = path.join(dir, 'layout');
    await writeOciLayout(layout, await buildBusyboxImage(), 'embed-test:1');
    const loaded = await images.loadOciLayout(layout);
    ref = loaded.loaded[0]?.reference ?? loaded.loaded[0]!.id;
    runtime = await openRuntime({ stateDir: path.join(dir, 'state'), cgroupParent: `berth-embed-${process.pid}` });
  });
  afterAll(async () => {
    await runtime?.close();
    await rm(dir, { recursive: true, force: true });
  });

  let removedId = '';
  it('runs a container from an image and registers its removal', async () => {
    const id = `embed-${process.pid}`;
    onTestFinished(() => images.removeRootfs(id)); // registered first, so it runs after the container is gone
    const image = await images.inspect(ref);
    const c = await runTestContainer(
      runtime,
      { id, rootfs: { mounts: await images.prepareRootfs(id, ref) }, image: image.Config, config: { Cmd: ['sh', '-c', 'echo hello from $(hostname); exit 4'] } },
      { cleanup: onTestFinished },
    );
    const result = await c.result();
    expect(result).toMatchObject({ exitCode: 4, stdout: `hello from ${id.slice(0, 12)}\n`, stderr: '' });
    removedId = id;
  });

  it('the container of the previous test is gone', async () => {
    expect(removedId).not.toBe('');
    await expect(runtime.state(removedId)).rejects.toMatchObject({ code: 'NO_SUCH_CONTAINER' });
  });
});
