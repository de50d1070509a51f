import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';
import { DigestError, DigestMismatchError, SizeMismatchError } from './errors.js';

/** `"sha256:<64 lowercase hex>"` or `"sha512:<128 lowercase hex>"`. */
export type Digest = string;
export type DigestAlgorithm = 'sha256' | 'sha512';

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  encoded: string;
}

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const ENCODED_RE: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};
// The image spec's general digest grammar; used to tell "malformed" from "unsupported algorithm".
const GRAMMAR_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return value === 'sha256' || value === 'sha512';
}

/** Splits and checks a digest. Throws DigestError (category invalid) when malformed or unsupported. */
export function parseDigest(value: string): ParsedDigest {
  if (typeof value !== 'string' || value.length === 0) throw new DigestError(String(value), 'empty');
  const colon = value.indexOf(':');
  if (colon === -1) throw new DigestError(value, 'missing algorithm prefix (expected sha256:<hex>)');
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  if (!GRAMMAR_RE.test(value)) throw new DigestError(value, 'does not match algorithm:encoded');
  if (!isDigestAlgorithm(algorithm)) throw new DigestError(value, `unsupported algorithm ${algorithm}`);
  if (encoded.length !== ENCODED_LENGTH[algorithm]) {
    throw new DigestError(value, `${algorithm} needs ${ENCODED_LENGTH[algorithm]} hex characters, got ${encoded.length}`);
  }
  if (!ENCODED_RE[algorithm].test(encoded)) throw new DigestError(value, 'encoded part must be lowercase hex');
  return { algorithm, encoded };
}

export function isDigest(value: unknown): value is Digest {
  if (typeof value !== 'string') return false;
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function formatDigest(algorithm: DigestAlgorithm, encoded: string): Digest {
  const digest = `${algorithm}:${encoded}`;
  parseDigest(digest);
  return digest;
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function checkAlgorithm(algorithm: string): DigestAlgorithm {
  if (!isDigestAlgorithm(algorithm)) throw new DigestError(`${algorithm}:`, `unsupported algorithm ${algorithm}`);
  return algorithm;
}

/** Digest of bytes (strings are hashed as UTF-8). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${checkAlgorithm(algorithm)}:${createHash(algorithm).update(toBytes(data)).digest('hex')}`;
}

/** True when `data` hashes to `digest`. Throws DigestError when `digest` itself is malformed. */
export function verifyDigest(data: Uint8Array | string, digest: Digest): boolean {
  const { algorithm } = parseDigest(digest);
  return digestOf(data, algorithm) === digest;
}

/** Throws DigestMismatchError unless `data` hashes to `digest` (and SizeMismatchError on size). */
export function assertDigest(data: Uint8Array | string, digest: Digest, expectedSize?: number): void {
  const bytes = toBytes(data);
  if (expectedSize !== undefined && bytes.byteLength !== expectedSize) {
    throw new SizeMismatchError(expectedSize, bytes.byteLength);
  }
  const { algorithm } = parseDigest(digest);
  const actual = digestOf(bytes, algorithm);
  if (actual !== digest) throw new DigestMismatchError(digest, actual);
}

/** Incremental digest over chunks. `digest()` may be called once; `size` counts bytes fed. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private bytes = 0;
  private result: Digest | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = checkAlgorithm(algorithm);
    this.hash = createHash(algorithm);
  }

  get size(): number {
    return this.bytes;
  }

  update(chunk: Uint8Array | string): this {
    if (this.result !== undefined) throw new Error('Digester.update() after digest()');
    const bytes = toBytes(chunk);
    this.hash.update(bytes);
    this.bytes += bytes.byteLength;
    return this;
  }

  /** Finishes the hash; later calls return the same value. */
  digest(): Digest {
    this.result ??= `${this.algorithm}:${this.hash.digest('hex')}`;
    return this.result;
  }
}

/** A pass-through stream that hashes what flows through it. */
export class DigestStream extends Transform {
  private readonly digester: Digester;

  constructor(algorithm: DigestAlgorithm = 'sha256', options?: TransformOptions) {
    super(options);
    this.digester = new Digester(algorithm);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.digester.size;
  }

  /** The digest of everything that passed; only meaningful once the stream has ended. */
  digest(): Digest {
    return this.digester.digest();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    callback(null, chunk);
  }
}

export function createDigestStream(algorithm: DigestAlgorithm = 'sha256'): DigestStream {
  return new DigestStream(algorithm);
}

/**
 * A pass-through stream that fails with DigestMismatchError at the end when the content does not
 * hash to `expected`, and with SizeMismatchError as soon as more than `expectedSize` bytes arrive
 * (or at the end when fewer did). The last chunk is still passed on before the end check, so a
 * consumer must not commit what it wrote until the pipeline has finished without error.
 */
export class VerifyStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number | undefined;
  private readonly digester: Digester;

  constructor(expected: Digest, expectedSize?: number, options?: TransformOptions) {
    super(options);
    const { algorithm } = parseDigest(expected);
    if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) {
      throw new SizeMismatchError(0, expectedSize, 'expected size');
    }
    this.expected = expected;
    this.expectedSize = expectedSize;
    this.digester = new Digester(algorithm);
  }

  get size(): number {
    return this.digester.size;
  }

  digest(): Digest {
    return this.digester.digest();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    if (this.expectedSize !== undefined && this.digester.size > this.expectedSize) {
      callback(new SizeMismatchError(this.expectedSize, this.digester.size));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.digester.size !== this.expectedSize) {
      callback(new SizeMismatchError(this.expectedSize, this.digester.size));
      return;
    }
    const actual = this.digester.digest();
    if (actual !== this.expected) {
      callback(new DigestMismatchError(this.expected, actual));
      return;
    }
    callback();
  }
}

export function createVerifyStream(expected: Digest, expectedSize?: number): VerifyStream {
  return new VerifyStream(expected, expectedSize);
}
