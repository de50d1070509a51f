/**
 * Error categories shared by every berth package. A package throws its own error classes, each
 * with a stable `code`; the category is what the daemon maps to an HTTP status at the edge
 * (not-found → 404, conflict → 409, invalid → 400, unauthorized → 401, forbidden → 403,
 * not-modified → 304, not-implemented → 501, unavailable → 503, internal → 500).
 */
export type ErrorCategory =
  | 'not-found'
  | 'already-exists'
  | 'conflict'
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not-modified'
  | 'not-implemented'
  | 'unavailable'
  | 'internal';

export interface BerthErrorOptions {
  cause?: unknown;
}

/** Base of every error berth throws on purpose. */
export class BerthError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;

  constructor(code: string, category: ErrorCategory, message: string, options?: BerthErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.category = category;
  }
}

/** Thrown by an API whose contract exists but whose implementation has not landed yet. */
export class NotImplementedError extends BerthError {
  constructor(what: string) {
    super('NOT_IMPLEMENTED', 'not-implemented', `${what} is not implemented yet`);
  }
}

export function isBerthError(value: unknown): value is BerthError {
  return value instanceof BerthError;
}
