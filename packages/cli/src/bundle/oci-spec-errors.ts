/**
 * Stand-in for `@berth/oci-spec` inside the bundled `berth` binary only (see tsup.config.ts).
 *
 * Why: the client imports one thing from oci-spec, the BerthError base class, but loading
 * oci-spec's entry loads ajv and every schema (its validators now compile on first use, but
 * loading ajv alone still costs more than the rest of a `berth ps`). The bundle maps the import here instead; this class has the same
 * contract (code, category, cause). Nothing in the CLI process compares against oci-spec's own
 * class (`berth daemon` and `berth registry serve` load the real packages, with the real class).
 * Remove this once oci-spec loads ajv lazily too.
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

export class BerthError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;

  constructor(code: string, category: ErrorCategory, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.category = category;
  }
}
