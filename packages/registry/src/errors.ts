import { BerthError } from '@berth/oci-spec';
import type { ErrorCategory } from '@berth/oci-spec';

const categoryOfCode: Record<string, ErrorCategory> = {
  BLOB_UNKNOWN: 'not-found',
  BLOB_UPLOAD_UNKNOWN: 'not-found',
  MANIFEST_UNKNOWN: 'not-found',
  NAME_UNKNOWN: 'not-found',
  BLOB_UPLOAD_INVALID: 'invalid',
  DIGEST_INVALID: 'invalid',
  MANIFEST_BLOB_UNKNOWN: 'invalid',
  MANIFEST_INVALID: 'invalid',
  NAME_INVALID: 'invalid',
  SIZE_INVALID: 'invalid',
  RANGE_INVALID: 'invalid',
  UNAUTHORIZED: 'unauthorized',
  DENIED: 'forbidden',
  UNSUPPORTED: 'not-implemented',
  TOOMANYREQUESTS: 'unavailable',
  UNAVAILABLE: 'unavailable',
};

export interface RegistryErrorOptions {
  cause?: unknown;
  /** HTTP status the registry answered with (client side) or will answer with (server side). */
  status?: number;
  /** The `detail` member of the registry's error body, when there was one. */
  detail?: unknown;
}

/** Base of every error @berth/registry throws; `code` is a distribution-spec code where one fits. */
export class RegistryError extends BerthError {
  readonly status: number | undefined;
  readonly detail: unknown;

  constructor(code: string, message: string, options: RegistryErrorOptions & { category?: ErrorCategory } = {}) {
    super(code, options.category ?? categoryOfCode[code] ?? 'internal', message, { cause: options.cause });
    this.status = options.status;
    this.detail = options.detail;
  }
}

export class ManifestUnknownError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('MANIFEST_UNKNOWN', message, { status: 404, ...options });
  }
}
export class BlobUnknownError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('BLOB_UNKNOWN', message, { status: 404, ...options });
  }
}
export class BlobUploadUnknownError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('BLOB_UPLOAD_UNKNOWN', message, { status: 404, ...options });
  }
}
export class BlobUploadInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('BLOB_UPLOAD_INVALID', message, { status: 400, ...options });
  }
}
export class NameUnknownError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('NAME_UNKNOWN', message, { status: 404, ...options });
  }
}
export class NameInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('NAME_INVALID', message, { status: 400, ...options });
  }
}
export class DigestInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('DIGEST_INVALID', message, { status: 400, ...options });
  }
}
export class SizeInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('SIZE_INVALID', message, { status: 400, ...options });
  }
}
export class ManifestInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('MANIFEST_INVALID', message, { status: 400, ...options });
  }
}
export class ManifestBlobUnknownError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('MANIFEST_BLOB_UNKNOWN', message, { status: 400, ...options });
  }
}
/** A chunk arrived out of order or a Range header was unsatisfiable (HTTP 416). */
export class RangeInvalidError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('RANGE_INVALID', message, { status: 416, ...options });
  }
}
export class UnauthorizedError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('UNAUTHORIZED', message, { status: 401, ...options });
  }
}
export class DeniedError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('DENIED', message, { status: 403, ...options });
  }
}
export class UnsupportedError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('UNSUPPORTED', message, { status: 405, ...options });
  }
}
export class TooManyRequestsError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('TOOMANYREQUESTS', message, { status: 429, ...options });
  }
}
/** The registry could not be reached, or answered 5xx after every retry. */
export class RegistryUnavailableError extends RegistryError {
  constructor(message: string, options?: RegistryErrorOptions) {
    super('UNAVAILABLE', message, { status: options?.status ?? 503, ...options });
  }
}

const classOfCode: Record<string, new (message: string, options?: RegistryErrorOptions) => RegistryError> = {
  MANIFEST_UNKNOWN: ManifestUnknownError,
  BLOB_UNKNOWN: BlobUnknownError,
  BLOB_UPLOAD_UNKNOWN: BlobUploadUnknownError,
  BLOB_UPLOAD_INVALID: BlobUploadInvalidError,
  NAME_UNKNOWN: NameUnknownError,
  NAME_INVALID: NameInvalidError,
  DIGEST_INVALID: DigestInvalidError,
  SIZE_INVALID: SizeInvalidError,
  MANIFEST_INVALID: ManifestInvalidError,
  MANIFEST_BLOB_UNKNOWN: ManifestBlobUnknownError,
  RANGE_INVALID: RangeInvalidError,
  UNAUTHORIZED: UnauthorizedError,
  DENIED: DeniedError,
  UNSUPPORTED: UnsupportedError,
  TOOMANYREQUESTS: TooManyRequestsError,
  UNAVAILABLE: RegistryUnavailableError,
};

/** Builds the typed error for a distribution error code (unknown codes become a plain RegistryError). */
export function registryErrorFromCode(code: string, message: string, options: RegistryErrorOptions = {}): RegistryError {
  const ctor = classOfCode[code];
  if (ctor) return new ctor(message, options);
  return new RegistryError(code, message, options);
}
