import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilesystemDriver } from '@berth/registry';
import { describeStorageDriver } from '../../../test/support/storage-driver-suite.js';

describeStorageDriver('FilesystemDriver', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-registry-fs-'));
  return {
    driver: new FilesystemDriver(root),
    reopen: async () => new FilesystemDriver(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describeStorageDriver('FilesystemDriver (fsync off)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-registry-fs-nosync-'));
  return {
    driver: new FilesystemDriver(root, { fsync: false }),
    reopen: async () => new FilesystemDriver(root, { fsync: false }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
