/**
 * Building blocks shared by the schemas, and a plain-words description of every pattern so
 * that error messages say "must be a digest" rather than print a regular expression.
 */
import type { SchemaObject } from 'ajv';

export const DIGEST_PATTERN = '^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$';
export const MEDIA_TYPE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$';
export const BASE64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
export const DATE_TIME_PATTERN =
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$';
export const URL_PATTERN = '^[A-Za-z][A-Za-z0-9+.-]*:\\S+$';
export const ABSOLUTE_PATH_PATTERN = '^/';
export const PORT_PATTERN = '^[0-9]{1,5}(?:-[0-9]{1,5})?(?:/(?:tcp|udp|sctp))?$';
export const RLIMIT_PATTERN = '^RLIMIT_[A-Z]+$';
export const CAPABILITY_PATTERN = '^CAP_[A-Z0-9_]+$';
export const SECCOMP_ARCH_PATTERN = '^SCMP_ARCH_[A-Z0-9_]+$';
export const ERROR_CODE_PATTERN = '^[A-Z][A-Z0-9_]*$';
export const NON_EMPTY_PATTERN = '^.+$';

export const PATTERN_DESCRIPTIONS: ReadonlyMap<string, string> = new Map([
  [DIGEST_PATTERN, 'must be a sha256 or sha512 digest (sha256:<64 lowercase hex>)'],
  [MEDIA_TYPE_PATTERN, 'must be a media type (type/subtype)'],
  [BASE64_PATTERN, 'must be standard base64'],
  [DATE_TIME_PATTERN, 'must be an RFC 3339 date-time'],
  [URL_PATTERN, 'must be a URL'],
  [ABSOLUTE_PATH_PATTERN, 'must be an absolute path'],
  [PORT_PATTERN, 'must be a port like "80/tcp"'],
  [RLIMIT_PATTERN, 'must be an rlimit name like "RLIMIT_NOFILE"'],
  [CAPABILITY_PATTERN, 'must be a capability name like "CAP_CHOWN"'],
  [SECCOMP_ARCH_PATTERN, 'must be a seccomp architecture like "SCMP_ARCH_X86_64"'],
  [ERROR_CODE_PATTERN, 'must be an uppercase error code like "BLOB_UNKNOWN"'],
  [NON_EMPTY_PATTERN, 'must not be empty'],
]);

export const string: SchemaObject = { type: 'string' };
export const boolean: SchemaObject = { type: 'boolean' };
export const stringArray: SchemaObject = { type: 'array', items: string };
export const nullableStringArray: SchemaObject = { type: ['array', 'null'], items: string };
export const digest: SchemaObject = { type: 'string', pattern: DIGEST_PATTERN };
export const mediaType: SchemaObject = { type: 'string', pattern: MEDIA_TYPE_PATTERN };
export const dateTime: SchemaObject = { type: 'string', pattern: DATE_TIME_PATTERN };
export const absolutePath: SchemaObject = { type: 'string', pattern: ABSOLUTE_PATH_PATTERN };
export const mapStringString: SchemaObject = { type: 'object', additionalProperties: string };
export const mapStringObject: SchemaObject = { type: 'object', additionalProperties: { type: 'object' } };

export const int32: SchemaObject = { type: 'integer', minimum: -2147483648, maximum: 2147483647 };
// JSON numbers above 2^53 cannot be represented exactly; these bounds are the nearest doubles.
export const int64: SchemaObject = { type: 'integer', minimum: -(2 ** 63), maximum: 2 ** 63 };
export const uint16: SchemaObject = { type: 'integer', minimum: 0, maximum: 65535 };
export const uint32: SchemaObject = { type: 'integer', minimum: 0, maximum: 4294967295 };
export const uint64: SchemaObject = { type: 'integer', minimum: 0, maximum: 2 ** 64 };
export const size: SchemaObject = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
