import { BerthError } from '../errors.js';

/** One problem found in a document: where (a JSON pointer into it) and what. */
export interface ValidationIssue {
  /** JSON pointer of the failing field, e.g. `/layers/0/digest`; `` for the document itself. */
  path: string;
  message: string;
}

/**
 * A document that does not conform to its schema. The message names the document kind, the
 * failing field(s) as JSON pointers, and what was wrong:
 * `invalid image manifest: /layers/0/digest must be a sha256 or sha512 digest (got "sha256:xyz")`.
 */
export class ValidationError extends BerthError {
  /** Human name of the document kind, e.g. `image manifest`. */
  readonly document: string;
  readonly issues: ValidationIssue[];

  constructor(document: string, issues: ValidationIssue[], options?: { cause?: unknown }) {
    const shown = issues.slice(0, 5).map((i) => `${i.path === '' ? '(document)' : i.path} ${i.message}`);
    if (issues.length > 5) shown.push(`and ${issues.length - 5} more`);
    super('INVALID_DOCUMENT', 'invalid', `invalid ${document}: ${shown.join('; ')}`, options);
    this.document = document;
    this.issues = issues;
  }

  /** The first failing field, e.g. `/layers/0/digest`. */
  get path(): string {
    return this.issues[0]?.path ?? '';
  }
}
