import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StorageDriver } from '@berth/registry';

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Compares by hash: vitest's deep equality on large buffers is very slow. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export interface DriverHarness {
  driver: StorageDriver;
  /** A fresh driver over the same storage, as after a server restart. */
  reopen(): Promise<StorageDriver>;
  cleanup(): Promise<void>;
}

/**
 * The contract every StorageDriver must keep (see driver.ts). Each implementation's test file
 * calls this with a factory that makes a fresh, empty store.
 */
export function describeStorageDriver(name: string, make: () => Promise<DriverHarness>): void {
  describe(`StorageDriver contract: ${name}`, () => {
    let h: DriverHarness;
    beforeEach(async () => {
      h = await make();
      await h.driver.init();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('stores small blobs under their digest and refuses a wrong one', async () => {
      const data = Buffer.from('{"hello":"world"}');
      const digest = sha256(data);
      await h.driver.putBlob(digest, data);
      expect(Buffer.from((await h.driver.readBlobBytes(digest))!)).toEqual(data);
      expect((await h.driver.statBlob(digest))?.size).toBe(data.length);
      const wrong = sha256(Buffer.from('other'));
      await expect(h.driver.putBlob(wrong, data)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await h.driver.statBlob(wrong)).toBeUndefined();
      expect(await h.driver.readBlobBytes(wrong)).toBeUndefined();
    });

    it('uploads in chunks, refuses out-of-order chunks, commits verified content', async () => {
      const data = randomBytes(300_000);
      const digest = sha256(data);
      const up = await h.driver.createUpload('a/b');
      expect(up.size).toBe(0);
      expect(await h.driver.appendUpload(up.id, 0, Readable.from([data.subarray(0, 100_000)]))).toBe(100_000);
      await expect(h.driver.appendUpload(up.id, 50, Readable.from([data.subarray(50, 60)]))).rejects.toMatchObject({
        code: 'RANGE_INVALID',
      });
      expect((await h.driver.statUpload(up.id))?.size).toBe(100_000);
      expect(await h.driver.appendUpload(up.id, 100_000, Readable.from([data.subarray(100_000)]))).toBe(300_000);
      const info = await h.driver.commitUpload(up.id, digest, data.length);
      expect(info).toMatchObject({ digest, size: data.length });
      expect(await h.driver.statUpload(up.id)).toBeUndefined();
      expect(same(await collect(await h.driver.readBlob(digest)), data)).toBe(true);
      expect(same(await collect(await h.driver.readBlob(digest, { start: 10, end: 19 })), data.subarray(10, 20))).toBe(true);
    });

    it('a commit with the wrong digest stores nothing and removes the upload', async () => {
      const data = randomBytes(1000);
      const wrong = sha256(Buffer.from('not it'));
      const up = await h.driver.createUpload('r');
      await h.driver.appendUpload(up.id, 0, Readable.from([data]));
      await expect(h.driver.commitUpload(up.id, wrong)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await h.driver.statBlob(wrong)).toBeUndefined();
      expect(await h.driver.statBlob(sha256(data))).toBeUndefined();
      expect(await h.driver.statUpload(up.id)).toBeUndefined();
    });

    it('a commit with the wrong size stores nothing', async () => {
      const data = randomBytes(10);
      const up = await h.driver.createUpload('r');
      await h.driver.appendUpload(up.id, 0, Readable.from([data]));
      await expect(h.driver.commitUpload(up.id, sha256(data), 11)).rejects.toMatchObject({ code: 'SIZE_INVALID' });
      expect(await h.driver.statBlob(sha256(data))).toBeUndefined();
    });

    it('uploads survive a reopen and can be resumed and committed', async () => {
      const data = randomBytes(200_000);
      const up = await h.driver.createUpload('resume/me');
      await h.driver.appendUpload(up.id, 0, Readable.from([data.subarray(0, 70_000)]));
      const again = await h.reopen();
      await again.init();
      const status = await again.statUpload(up.id);
      expect(status).toMatchObject({ id: up.id, repository: 'resume/me', size: 70_000 });
      await again.appendUpload(up.id, 70_000, Readable.from([data.subarray(70_000)]));
      await again.commitUpload(up.id, sha256(data));
      expect(same(await collect(await again.readBlob(sha256(data))), data)).toBe(true);
      expect(await all(again.listUploads())).toEqual([]);
    });

    it('cancels uploads and lists the live ones', async () => {
      const a = await h.driver.createUpload('x');
      const b = await h.driver.createUpload('y');
      expect((await all(h.driver.listUploads())).map((u) => u.id).sort()).toEqual([a.id, b.id].sort());
      expect(await h.driver.cancelUpload(a.id)).toBe(true);
      expect(await h.driver.cancelUpload(a.id)).toBe(false);
      expect((await all(h.driver.listUploads())).map((u) => u.id)).toEqual([b.id]);
      await expect(h.driver.appendUpload(a.id, 0, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
        code: 'BLOB_UPLOAD_UNKNOWN',
      });
    });

    it('links one shared blob into several repositories', async () => {
      const data = Buffer.from('shared');
      const digest = sha256(data);
      await h.driver.putBlob(digest, data);
      await h.driver.linkBlob('one', digest);
      await h.driver.linkBlob('two/three', digest);
      expect(await h.driver.isBlobLinked('one', digest)).toBe(true);
      expect(await h.driver.isBlobLinked('two/three', digest)).toBe(true);
      expect(await h.driver.isBlobLinked('four', digest)).toBe(false);
      expect(await h.driver.unlinkBlob('one', digest)).toBe(true);
      expect(await h.driver.isBlobLinked('one', digest)).toBe(false);
      expect(await h.driver.statBlob(digest)).toBeDefined();
      expect(await h.driver.listBlobLinks('two/three')).toEqual([digest]);
      expect((await all(h.driver.listBlobs())).map((b) => b.digest)).toEqual([digest]);
      expect(await h.driver.deleteBlob(digest)).toBe(true);
      expect(await h.driver.deleteBlob(digest)).toBe(false);
    });

    it('keeps manifests, tags and referrers per repository, sorted', async () => {
      const m = Buffer.from('{"schemaVersion":2}');
      const d = sha256(m);
      await h.driver.putBlob(d, m);
      await h.driver.linkManifest('app/web', d, { mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      await h.driver.linkManifest('app', d, { mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      for (const tag of ['v2', 'latest', 'V1', 'v10']) await h.driver.setTag('app/web', tag, d);
      expect(await h.driver.listTags('app/web')).toEqual(['V1', 'latest', 'v10', 'v2']);
      expect(await h.driver.getTag('app/web', 'v2')).toBe(d);
      expect(await h.driver.getTag('app/web', 'nope')).toBeUndefined();
      expect(await h.driver.deleteTag('app/web', 'v2')).toBe(true);
      expect(await h.driver.deleteTag('app/web', 'v2')).toBe(false);
      expect(await h.driver.listRepositories()).toEqual(['app', 'app/web']);
      expect(await h.driver.getManifestLink('app/web', d)).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      expect(await h.driver.listManifests('app/web')).toEqual([d]);
      expect(await h.driver.listTags('missing')).toEqual([]);

      const subject = sha256(Buffer.from('subject'));
      await h.driver.addReferrer('app/web', subject, { mediaType: 'm', digest: d, size: m.length, artifactType: 'a/b' });
      expect(await h.driver.listReferrers('app/web', subject)).toEqual([
        { mediaType: 'm', digest: d, size: m.length, artifactType: 'a/b' },
      ]);
      expect(await h.driver.listReferrers('app', subject)).toEqual([]);
      expect(await h.driver.removeReferrer('app/web', subject, d)).toBe(true);
      expect(await h.driver.listReferrers('app/web', subject)).toEqual([]);
      expect(await h.driver.unlinkManifest('app/web', d)).toBe(true);
      expect(await h.driver.getManifestLink('app/web', d)).toBeUndefined();
    });

    it('refuses to read an absent blob with BLOB_UNKNOWN', async () => {
      await expect(h.driver.readBlob(sha256(Buffer.from('absent')))).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      expect(await text(Readable.from(['ok']))).toBe('ok');
    });
  });
}
