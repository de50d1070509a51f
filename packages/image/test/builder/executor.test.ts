import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyBuildExecutor } from '@berth/image';
import { makeBusyboxRootfs } from '../../../../test/support/busybox.js';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { createRuncExecutor } from './runc-executor.js';

describePrivileged('BuildExecutor contract: runc test executor', () => {
  let rootfs: string;
  beforeAll(async () => {
    rootfs = await makeBusyboxRootfs();
  });
  afterAll(async () => {
    if (rootfs) await rm(rootfs, { recursive: true, force: true });
  });

  it('meets the contract with real containers', async () => {
    const executor = createRuncExecutor();
    await verifyBuildExecutor(executor, { rootfs });
    expect(executor.stats.runs).toBe(6);
  });
});
