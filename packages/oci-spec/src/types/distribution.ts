/** Error body of the OCI distribution spec (and Docker's registry API v2). */
export interface DistributionError {
  /** e.g. BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, TOOMANYREQUESTS. */
  code: string;
  message?: string;
  detail?: unknown;
}

export interface DistributionErrorBody {
  errors: DistributionError[];
}

/** Error codes defined by the distribution spec, and the HTTP status each is sent with. */
export const DistributionErrorCode = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
} as const;

export type DistributionErrorCodeName = keyof typeof DistributionErrorCode;
