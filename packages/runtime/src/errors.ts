import { BerthError } from '@berth/oci-spec';
import type { BerthErrorOptions, ErrorCategory } from '@berth/oci-spec';

/** Base of every error @berth/runtime throws on purpose. */
export class RuntimeError extends BerthError {
  constructor(code: string, category: ErrorCategory, message: string, options?: BerthErrorOptions) {
    super(code, category, message, options);
  }
}

export class NoSuchContainerError extends RuntimeError {
  constructor(id: string, options?: BerthErrorOptions) {
    super('NO_SUCH_CONTAINER', 'not-found', `no such container: ${id}`, options);
  }
}

export class ContainerExistsError extends RuntimeError {
  constructor(id: string, options?: BerthErrorOptions) {
    super('CONTAINER_EXISTS', 'already-exists', `container already exists: ${id}`, options);
  }
}

/** An operation that the container's current state does not allow (start a running container…). */
export class InvalidStateError extends RuntimeError {
  constructor(id: string, operation: string, status: string, options?: BerthErrorOptions) {
    super('INVALID_STATE', 'conflict', `cannot ${operation} container ${id}: it is ${status}`, options);
  }
}

/** A ContainerSpec that cannot become a valid bundle (bad user, bad ulimit, bad path…). */
export class InvalidSpecError extends RuntimeError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('INVALID_SPEC', 'invalid', message, options);
  }
}

/** The OCI runtime, the monitor or the kernel refused; the message carries their words. */
export class RuntimeCommandError extends RuntimeError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('RUNTIME_FAILED', 'internal', message, options);
  }
}

/**
 * The OCI runtime could not start an exec'd process (no such executable, a working directory
 * that does not exist, permission denied); the message is the runtime's own.
 */
export class ExecStartError extends RuntimeError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('EXEC_START_FAILED', 'internal', message, options);
  }
}

/** No usable OCI runtime or monitor on this host. */
export class RuntimeUnavailableError extends RuntimeError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('RUNTIME_UNAVAILABLE', 'unavailable', message, options);
  }
}
