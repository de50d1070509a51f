import { BerthError } from '../errors.js';

/** A string that is not a well-formed digest, or one of an unsupported algorithm. */
export class DigestError extends BerthError {
  readonly input: string;
  constructor(input: string, reason: string, options?: { cause?: unknown }) {
    super('DIGEST_INVALID', 'invalid', `invalid digest ${JSON.stringify(input)}: ${reason}`, options);
    this.input = input;
  }
}

/** Content whose digest is not the one it was expected to have. */
export class DigestMismatchError extends BerthError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super('DIGEST_INVALID', 'invalid', `digest mismatch: expected ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** Content whose length is not the one it was expected to have. */
export class SizeMismatchError extends BerthError {
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number, what = 'content') {
    super(
      'SIZE_INVALID',
      'invalid',
      actual > expected
        ? `size mismatch: ${what} exceeds expected size ${expected} (read ${actual} bytes)`
        : `size mismatch: ${what} is ${actual} bytes, expected ${expected}`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}
