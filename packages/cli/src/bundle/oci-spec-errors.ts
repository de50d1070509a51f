/**
 * Stand-in for `@berth/oci-spec` inside the bundled `berth` binary only (see tsup.config.ts).
 *
 * Why: the client imports one thing from oci-spec, the BerthError base class, but loading
 * oci-spec's entry compiles every JSON schema with ajv (~40 ms idle, seconds on a busy machine) —
 * more than a whole `berth ps`. The bundle maps the import here instead; this class has the same
 * contract (code, category, cause). Nothing in the CLI process compares against oci-spec's own
 * class (`berth daemon` and `berth registry serve` load the real packages, with the real class).
 * Remove this once oci-spec compiles its validators lazily.
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
