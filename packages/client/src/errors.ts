import { BerthError } from '@berth/oci-spec';
import type { ErrorCategory } from '@berth/oci-spec';

/** Base of every error @berth/client throws. */
export class ClientError extends BerthError {}

/**
 * The daemon answered with an error status. `message` is the daemon's own message
 * (`No such container: web`), `statusCode` the HTTP status.
 */
export class DaemonError extends ClientError {
  readonly statusCode: number;
  constructor(statusCode: number, message: string, category: ErrorCategory, options?: { cause?: unknown }) {
    super(codeForStatus(statusCode), category, message, options);
    this.statusCode = statusCode;
  }
}
/** 404: no such container, image, network, volume or exec instance. */
export class NotFoundError extends DaemonError {}
/** 409: name in use, container running, image in use. */
export class ConflictError extends DaemonError {}
/** 400: the daemon rejected a parameter. */
export class BadRequestError extends DaemonError {}
/** 401: registry or daemon credentials refused. */
export class UnauthorizedError extends DaemonError {}
/** 403. */
export class ForbiddenError extends DaemonError {}
/** 304: start of a started container, stop of a stopped one. */
export class NotModifiedError extends DaemonError {}
/** 501. */
export class NotImplementedByDaemonError extends DaemonError {}
/** 500, 503 and anything else. */
export class ServerError extends DaemonError {}

/** The daemon could not be reached (no socket, connection refused, TLS failure). */
export class ConnectionError extends ClientError {
  readonly host: string;
  constructor(host: string, message: string, options?: { cause?: unknown }) {
    super('DAEMON_UNREACHABLE', 'unavailable', message, options);
    this.host = host;
  }
}

/** The call was aborted by its AbortSignal or ran past its timeout. */
export class AbortedError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ABORTED', 'unavailable', message, options);
  }
}

/** An error the daemon reported inside a progress stream (`{"errorDetail":{"message":…}}`) after 200. */
export class StreamError extends ClientError {
  readonly detail: { code?: number; message: string };
  constructor(detail: { code?: number; message: string }) {
    super('STREAM_ERROR', 'internal', detail.message);
    this.detail = detail;
  }
}

function codeForStatus(status: number): string {
  switch (status) {
    case 304: return 'NOT_MODIFIED';
    case 400: return 'BAD_REQUEST';
    case 401: return 'UNAUTHORIZED';
    case 403: return 'FORBIDDEN';
    case 404: return 'NOT_FOUND';
    case 409: return 'CONFLICT';
    case 501: return 'NOT_IMPLEMENTED';
    case 503: return 'UNAVAILABLE';
    default: return 'SERVER_ERROR';
  }
}

/** Builds the typed error for a status and the response body (JSON `{message}` or plain text). */
export function errorFromResponse(status: number, body: string): DaemonError {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (parsed && typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: the daemon's text is printed verbatim, like docker does.
  }
  if (message === '') message = `the daemon answered ${status} with no message`;
  switch (status) {
    case 304: return new NotModifiedError(status, message, 'not-modified');
    case 400: return new BadRequestError(status, message, 'invalid');
    case 401: return new UnauthorizedError(status, message, 'unauthorized');
    case 403: return new ForbiddenError(status, message, 'forbidden');
    case 404: return new NotFoundError(status, message, 'not-found');
    case 409: return new ConflictError(status, message, 'conflict');
    case 501: return new NotImplementedByDaemonError(status, message, 'not-implemented');
    case 503: return new ServerError(status, message, 'unavailable');
    default: return new ServerError(status, message, 'internal');
  }
}
