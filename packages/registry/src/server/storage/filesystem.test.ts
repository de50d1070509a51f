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

  /**
   * `bytes` as a lending iterator the way the server's socket body produces it: every chunk is a
   * view of one reused buffer, overwritten with garbage as soon as the consumer asks for the next.
   */
  function lent(bytes: Buffer, piece: number, failAfter?: number): AsyncIterable<Uint8Array> & { returned: boolean } {
    const shared = Buffer.alloc(piece);
    let offset = 0;
    const it = {
      returned: false,
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          shared.fill(0xee);
          if (failAfter !== undefined && offset >= failAfter) throw new Error('client went away');
          if (offset >= bytes.length) return { value: undefined, done: true };
          const end = Math.min(bytes.length, offset + piece, failAfter ?? Infinity);
          bytes.copy(shared, 0, offset, end);
          const chunk = shared.subarray(0, end - offset);
          offset = end;
          return { value: chunk, done: false };
        },
        return: async (): Promise<IteratorResult<Uint8Array>> => {
          it.returned = true;
          return { value: undefined, done: true };
        },
      }),
    };
    return it;
  }

  it('appendUploadChunks writes each lent chunk before asking for the next, and commits it verified', async () => {
    const data = randomBytes(37 * 1024 * 1024 + 999);
    const upload = await driver.createUpload('big/layer');
    expect(await driver.appendUploadChunks(upload.id, 0, lent(data, 4 * 1024 * 1024))).toBe(data.length);
    expect((await driver.commitUpload(upload.id, sha256(data), data.length)).size).toBe(data.length);
    expect(Buffer.compare(Buffer.from((await driver.readBlobBytes(sha256(data)))!), data)).toBe(0);
  });

  it('appendUploadChunks refuses a wrong offset (dropping the body) and keeps what arrived before a failure', async () => {
    const data = randomBytes(6 * 1024 * 1024 + 5);
    const cut = 3 * 1024 * 1024 + 17;
    const upload = await driver.createUpload('big/layer');
    const wrong = lent(data, 1024 * 1024);
    await expect(driver.appendUploadChunks(upload.id, 10, wrong)).rejects.toMatchObject({ code: 'RANGE_INVALID' });
    expect(wrong.returned).toBe(true);
    await expect(driver.appendUploadChunks(upload.id, 0, lent(data, 1024 * 1024, cut))).rejects.toThrow('client went away');
    expect((await driver.statUpload(upload.id))?.size).toBe(cut);
    expect(await driver.appendUploadChunks(upload.id, cut, lent(data.subarray(cut), 1024 * 1024))).toBe(data.length);
    expect((await driver.commitUpload(upload.id, sha256(data))).size).toBe(data.length);
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
