import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentStoreSuite } from './content-store.suite.js';
import { openContentStore, writeBlob } from './local-store.js';

contentStoreSuite('LocalContentStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
  return { open: () => openContentStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LocalContentStore layout', () => {
  it('stores blobs under blobs/sha256/<hex> with mode 0444', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
    try {
      const store = await openContentStore(dir);
      const info = await writeBlob(store, Buffer.from('hello'));
      const path = join(dir, 'blobs', 'sha256', info.digest.slice('sha256:'.length));
      expect(store.path(info.digest)).toBe(path);
      expect((await stat(path)).mode & 0o777).toBe(0o444);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
