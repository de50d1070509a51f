import type { BerthErrorOptions, ErrorCategory } from '@berth/oci-spec';
import { RuntimeError } from '../errors.js';

/** Base of every error the volume code throws on purpose (a `RuntimeError`). */
export class VolumeError extends RuntimeError {
  constructor(code: string, category: ErrorCategory, message: string, options?: BerthErrorOptions) {
    super(code, category, message, options);
  }
}

/** `get <name>: no such volume` — Docker's wording. */
export class VolumeNotFoundError extends VolumeError {
  constructor(name: string, options?: BerthErrorOptions) {
    super('VOLUME_NOT_FOUND', 'not-found', `get ${name}: no such volume`, options);
  }
}

/** A volume referenced by a container refuses removal. */
export class VolumeInUseError extends VolumeError {
  constructor(name: string, containers: string[]) {
    super('VOLUME_IN_USE', 'conflict', `remove ${name}: volume is in use - [${containers.join(', ')}]`);
  }
}

/** A mount specification that cannot be honoured (bad syntax, a path escaping its root, ...). */
export class InvalidMountError extends VolumeError {
  constructor(message: string, options?: BerthErrorOptions) {
    super('INVALID_MOUNT', 'invalid', message, options);
  }
}
