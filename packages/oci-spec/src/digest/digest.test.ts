import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  Digester,
  assertDigest,
  createDigestStream,
  createVerifyStream,
  digestOf,
  formatDigest,
  isDigest,
  parseDigest,
  verifyDigest,
} from './digest.js';
import { DigestError, DigestMismatchError, SizeMismatchError } from './errors.js';

const HELLO_SHA256 = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
const HELLO_SHA512 =
  'sha512:9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043';

function sink(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
}

describe('parseDigest', () => {
  it('splits sha256 and sha512 digests', () => {
    expect(parseDigest(HELLO_SHA256)).toEqual({ algorithm: 'sha256', encoded: HELLO_SHA256.slice(7) });
    expect(parseDigest(HELLO_SHA512)).toEqual({ algorithm: 'sha512', encoded: HELLO_SHA512.slice(7) });
  });

  it.each([
    ['', 'empty'],
    ['2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'missing algorithm prefix'],
    ['sha256:2cf24dba', 'sha256 needs 64 hex characters, got 8'],
    ['sha256:' + 'A'.repeat(64), 'encoded part must be lowercase hex'],
    ['sha256:' + 'g'.repeat(64), 'encoded part must be lowercase hex'],
    ['md5:' + 'a'.repeat(32), 'unsupported algorithm md5'],
    ['sha384:' + 'a'.repeat(96), 'unsupported algorithm sha384'],
    ['sha256:', 'does not match algorithm:encoded'],
    ['SHA256:' + 'a'.repeat(64), 'does not match algorithm:encoded'],
  ])('rejects %j (%s)', (input, reason) => {
    expect(() => parseDigest(input)).toThrow(DigestError);
    expect(() => parseDigest(input)).toThrow(reason);
    try {
      parseDigest(input);
    } catch (error) {
      expect(error).toMatchObject({ code: 'DIGEST_INVALID', category: 'invalid' });
    }
  });

  it('isDigest mirrors parseDigest', () => {
    expect(isDigest(HELLO_SHA256)).toBe(true);
    expect(isDigest('sha256:abc')).toBe(false);
    expect(isDigest(42)).toBe(false);
  });

  it('formatDigest joins and validates', () => {
    expect(formatDigest('sha256', HELLO_SHA256.slice(7))).toBe(HELLO_SHA256);
    expect(() => formatDigest('sha256', 'abc')).toThrow(DigestError);
  });
});

describe('digestOf / verifyDigest', () => {
  it('hashes strings as UTF-8 and bytes as given', () => {
    expect(digestOf('hello')).toBe(HELLO_SHA256);
    expect(digestOf(new TextEncoder().encode('hello'))).toBe(HELLO_SHA256);
    expect(digestOf('hello', 'sha512')).toBe(HELLO_SHA512);
  });

  it('verifies both algorithms and rejects other content', () => {
    expect(verifyDigest('hello', HELLO_SHA256)).toBe(true);
    expect(verifyDigest('hello', HELLO_SHA512)).toBe(true);
    expect(verifyDigest('hello!', HELLO_SHA256)).toBe(false);
    expect(() => verifyDigest('hello', 'sha256:nope')).toThrow(DigestError);
  });

  it('assertDigest throws typed mismatch errors', () => {
    expect(() => assertDigest('hello', HELLO_SHA256, 5)).not.toThrow();
    expect(() => assertDigest('hello', HELLO_SHA256, 6)).toThrow(SizeMismatchError);
    expect(() => assertDigest('hellO', HELLO_SHA256)).toThrow(DigestMismatchError);
  });
});

describe('Digester', () => {
  it('matches a one-shot hash over many chunks and counts bytes', () => {
    const data = randomBytes(100_000);
    const d = new Digester();
    for (let i = 0; i < data.length; i += 7_777) d.update(data.subarray(i, i + 7_777));
    expect(d.size).toBe(100_000);
    expect(d.digest()).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    expect(d.digest()).toBe(d.digest());
    expect(() => d.update(new Uint8Array(1))).toThrow('after digest()');
  });

  it('supports sha512 and rejects unknown algorithms', () => {
    expect(new Digester('sha512').update('hello').digest()).toBe(HELLO_SHA512);
    // @ts-expect-error: runtime check of an invalid algorithm
    expect(() => new Digester('md5')).toThrow(DigestError);
  });
});

describe('createDigestStream', () => {
  it('passes bytes through and reports digest and size at the end', async () => {
    const data = randomBytes(300_000);
    const stream = createDigestStream();
    const received: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      stream,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          received.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(stream.size).toBe(300_000);
    expect(stream.digest()).toBe(digestOf(data));
  });
});

describe('createVerifyStream', () => {
  const data = randomBytes(50_000);
  const good = digestOf(data);

  it('passes matching content', async () => {
    const v = createVerifyStream(good, data.length);
    await pipeline(Readable.from([data]), v, sink());
    expect(v.digest()).toBe(good);
    expect(v.size).toBe(data.length);
  });

  it('passes matching content without an expected size', async () => {
    await expect(pipeline(Readable.from([data]), createVerifyStream(good), sink())).resolves.toBeUndefined();
  });

  it('fails with DigestMismatchError at the end on other content', async () => {
    const other = Buffer.from(data);
    other[0] = (other[0] ?? 0) ^ 0xff;
    const err = await pipeline(Readable.from([other]), createVerifyStream(good, data.length), sink()).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err).toMatchObject({ code: 'DIGEST_INVALID', category: 'invalid', expected: good, actual: digestOf(other) });
  });

  it('fails with SizeMismatchError as soon as the size is exceeded', async () => {
    let chunksPulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 100; i++) {
          chunksPulled++;
          yield data.subarray(0, 1000);
        }
      })(),
    );
    const err = await pipeline(source, createVerifyStream(good, 1500), sink()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeMismatchError);
    expect(err).toMatchObject({ expected: 1500, actual: 2000 });
    expect(chunksPulled).toBeLessThan(100);
  });

  it('fails with SizeMismatchError when content is short', async () => {
    const err = await pipeline(Readable.from([data.subarray(0, 10)]), createVerifyStream(good, data.length), sink()).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SizeMismatchError);
    expect((err as Error).message).toBe(`size mismatch: content is 10 bytes, expected ${data.length}`);
  });

  it('rejects a malformed expected digest up front', () => {
    expect(() => createVerifyStream('sha256:xyz')).toThrow(DigestError);
  });
});
