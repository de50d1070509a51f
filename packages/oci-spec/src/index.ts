export { BerthError, NotImplementedError, isBerthError } from './errors.js';
export type { ErrorCategory, BerthErrorOptions } from './errors.js';
