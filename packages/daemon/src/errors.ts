import { BerthError, type ErrorCategory, type BerthErrorOptions } from '@berth/oci-spec';

/** Base of every error the daemon throws on purpose; its category decides the HTTP status. */
export class DaemonError extends BerthError {
  constructor(code: string, category: ErrorCategory, message: string, options?: BerthErrorOptions) {
    super(code, category, message, options);
  }
}

export class NoSuchContainerError extends DaemonError {
  constructor(ref: string) {
    super('NO_SUCH_CONTAINER', 'not-found', `No such container: ${ref}`);
  }
}

export class NoSuchExecError extends DaemonError {
  constructor(ref: string) {
    super('NO_SUCH_EXEC', 'not-found', `No such exec instance: ${ref}`);
  }
}

export class NoSuchImageError extends DaemonError {
  constructor(ref: string, options?: BerthErrorOptions) {
    super('NO_SUCH_IMAGE', 'not-found', `No such image: ${ref}`, options);
  }
}

export class InvalidParameterError extends DaemonError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('INVALID_PARAMETER', 'invalid', message, options);
  }
}

export class ConflictError extends DaemonError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('CONFLICT', 'conflict', message, options);
  }
}

export class NotModifiedError extends DaemonError {
  constructor(message = '') {
    super('NOT_MODIFIED', 'not-modified', message);
  }
}

/** The one place where error categories become HTTP statuses (moby api/server/httpstatus). */
export function statusForCategory(category: ErrorCategory): number {
  switch (category) {
    case 'not-found':
      return 404;
    case 'already-exists':
    case 'conflict':
      return 409;
    case 'invalid':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not-modified':
      return 304;
    case 'not-implemented':
      return 501;
    case 'unavailable':
      return 503;
    case 'internal':
      return 500;
  }
}

/** Status and message for any thrown value; anything that is not a BerthError is a 500. */
export function describeError(error: unknown): { status: number; message: string } {
  if (error instanceof BerthError) return { status: statusForCategory(error.category), message: error.message };
  if (error instanceof Error) return { status: 500, message: error.message };
  return { status: 500, message: String(error) };
}
