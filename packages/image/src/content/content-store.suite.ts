import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContentStore } from './types.js';
import { writeBlob } from './local-store.js';

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The behaviour every ContentStore implementation must have. `open` gives a fresh store (and
 * may be called again on the same location to simulate a restart); `cleanup` removes it.
 */
export function contentStoreSuite(
  name: string,
  factory: () => Promise<{ open: () => Promise<ContentStore>; cleanup: () => Promise<void> }>,
): void {
  describe(`ContentStore contract: ${name}`, () => {
    let open: () => Promise<ContentStore>;
    let cleanup: () => Promise<void>;
    let store: ContentStore;

    beforeEach(async () => {
      ({ open, cleanup } = await factory());
      store = await open();
    });
    afterEach(async () => {
      await cleanup();
    });

    it('commits a verified blob and reads it back by digest', async () => {
      const data = randomBytes(100_000);
      const info = await writeBlob(store, data, { expected: { digest: sha(data), size: data.length } });
      expect(info).toMatchObject({ digest: sha(data), size: data.length });
      expect(await store.has(sha(data))).toBe(true);
      expect(Buffer.from(await store.readBytes(sha(data))).equals(data)).toBe(true);
      expect((await readAll(await store.reader(sha(data), { start: 10, end: 20 }))).equals(data.subarray(10, 20))).toBe(true);
    });

    it('refuses bytes that do not match the expected digest or size, committing nothing', async () => {
      const data = randomBytes(1000);
      const wrong = sha(Buffer.from('something else'));
      await expect(writeBlob(store, data, { expected: { digest: wrong, size: 1000 } })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      await expect(writeBlob(store, data, { expected: { digest: sha(data), size: 999 } })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await store.has(wrong)).toBe(false);
      expect(await store.has(sha(data))).toBe(false);
      await expect(store.info(wrong)).rejects.toMatchObject({ category: 'not-found' });
      expect(await store.listIngests()).toEqual([]);
    });

    it('resumes an ingest after the writer (or the process) went away', async () => {
      const data = randomBytes(300_000);
      const expected = { digest: sha(data), size: data.length };
      const w1 = await store.writer({ ref: 'resume-me', expected });
      await w1.write(data.subarray(0, 123_456));
      await w1.close();
      const reopened = await open();
      const [status] = await reopened.listIngests();
      expect(status).toMatchObject({ ref: 'resume-me', offset: 123_456, total: data.length, expected: expected.digest });
      const w2 = await reopened.writer({ ref: 'resume-me', expected });
      expect(w2.status().offset).toBe(123_456);
      await w2.write(data.subarray(123_456));
      expect(w2.digest()).toBe(expected.digest);
      const info = await w2.commit();
      expect(info.digest).toBe(expected.digest);
      expect(await reopened.listIngests()).toEqual([]);
    });

    it('locks a ref to one writer at a time', async () => {
      const w = await store.writer({ ref: 'locked' });
      await expect(store.writer({ ref: 'locked' })).rejects.toMatchObject({ code: 'INGEST_LOCKED' });
      await w.close();
      const again = await store.writer({ ref: 'locked' });
      await again.close();
      await store.abortIngest('locked');
      expect(await store.listIngests()).toEqual([]);
    });

    it('walks, accounts and deletes committed blobs; committed blobs are read-only', async () => {
      const blobs = [randomBytes(10), randomBytes(5000), randomBytes(70_000)];
      for (const b of blobs) await writeBlob(store, Readable.from([b]));
      const seen: string[] = [];
      await store.walk((info) => {
        seen.push(info.digest);
      });
      expect(seen.sort()).toEqual(blobs.map(sha).sort());
      const usage = await store.usage();
      expect(usage.blobs).toBe(3);
      expect(usage.size).toBeGreaterThanOrEqual(75_010);
      await expect(store.writer({ ref: 'x', expected: { digest: sha(blobs[0]!), size: 10 } })).rejects.toMatchObject({ category: 'already-exists' });
      await store.delete(sha(blobs[0]!));
      expect(await store.has(sha(blobs[0]!))).toBe(false);
      await expect(store.delete(sha(blobs[0]!))).rejects.toMatchObject({ category: 'not-found' });
    });

    it('rejects digests that are not digests', async () => {
      await expect(store.info('sha256:../../etc/passwd')).rejects.toMatchObject({ category: 'invalid' });
    });
  });
}
