import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

describe('FilesystemDriver upload path', () => {
  let root: string;
  let driver: FilesystemDriver;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-registry-fs-sink-'));
    driver = new FilesystemDriver(root);
    await driver.init();
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  /** `bytes` as a stream of `piece`-sized chunks, failing after `failAfter` bytes when given. */
  function pieces(bytes: Buffer, piece: number, failAfter?: number): Readable {
    let offset = 0;
    return new Readable({
      read() {
        if (failAfter !== undefined && offset >= failAfter) {
          this.destroy(new Error('client went away'));
          return;
        }
        if (offset >= bytes.length) {
          this.push(null);
          return;
        }
        const end = Math.min(bytes.length, offset + piece, failAfter ?? Infinity);
        this.push(bytes.subarray(offset, end));
        offset = end;
      },
    });
  }

  it('streams a large upload in small pieces (several buffer turns and syncs) and commits it verified', async () => {
    const data = randomBytes(21 * 1024 * 1024 + 12345);
    const upload = await driver.createUpload('big/layer');
    expect(await driver.appendUpload(upload.id, 0, pieces(data, 48 * 1024))).toBe(data.length);
    const info = await driver.commitUpload(upload.id, sha256(data), data.length);
    expect(info.size).toBe(data.length);
    const handle = await driver.openBlobFile(sha256(data));
    try {
      expect(Buffer.compare(await handle.readFile(), data)).toBe(0);
    } finally {
      await handle.close();
    }
  });

  it('keeps the bytes that arrived before a body failed, so the upload resumes from its size', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 777);
    const cut = 5 * 1024 * 1024 + 333;
    const upload = await driver.createUpload('big/layer');
    await expect(driver.appendUpload(upload.id, 0, pieces(data, 64 * 1024, cut))).rejects.toThrow('client went away');
    const after = await driver.statUpload(upload.id);
    expect(after?.size).toBe(cut);
    // The running hash was dropped with the failure: the commit rehashes the file from disk.
    expect(await driver.appendUpload(upload.id, cut, pieces(data.subarray(cut), 64 * 1024))).toBe(data.length);
    expect((await driver.commitUpload(upload.id, sha256(data))).size).toBe(data.length);
    expect(Buffer.compare(Buffer.from((await driver.readBlobBytes(sha256(data)))!), data)).toBe(0);
  });

  it('putManifest stores blob, link, referrer and tag together, and nothing for a wrong digest', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, note: randomBytes(8).toString('hex') }));
    const digest = sha256(bytes);
    const subject = sha256(Buffer.from('subject'));
    const record = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: bytes.length, artifactType: 'x/y' };
    await expect(driver.putManifest('app', sha256(Buffer.from('other')), bytes, { mediaType: record.mediaType }, { tag: 'bad' })).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    expect(await driver.getTag('app', 'bad')).toBeUndefined();
    await driver.putManifest('app', digest, bytes, { mediaType: record.mediaType }, { tag: 'v1', referrer: { subject, record } });
    expect(Buffer.from((await driver.readBlobBytes(digest))!).toString()).toBe(bytes.toString());
    expect(await driver.getManifestLink('app', digest)).toEqual({ mediaType: record.mediaType });
    expect(await driver.getTag('app', 'v1')).toBe(digest);
    expect(await driver.listReferrers('app', subject)).toEqual([record]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });
});
