/**
 * The single ajv instance of this package. Each schema is compiled once, on its validator's
 * first call (so importing the package costs no compilation — the CLI's start-up depends on it);
 * later calls only run the compiled function and format errors.
 */
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import { ValidationError, type ValidationIssue } from './validation-error.js';
import { PATTERN_DESCRIPTIONS } from './schemas/common.js';

const ajv = new Ajv({
  allErrors: true,
  verbose: true,
  strict: true,
  allowUnionTypes: true,
  // The specs publish limits such as uint64 max that exceed 2^53; they are only bounds.
  strictNumbers: true,
});

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function issueOf(error: ErrorObject): ValidationIssue {
  const path = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: `${path}/${escapePointer(String(params['missingProperty']))}`, message: 'is required' };
    case 'additionalProperties':
      return { path: `${path}/${escapePointer(String(params['additionalProperty']))}`, message: 'is not allowed here' };
    case 'type':
      return { path, message: `must be ${String(params['type']).split(',').join(' or ')} (got ${typeOf(error.data)})` };
    case 'pattern': {
      const what = PATTERN_DESCRIPTIONS.get(String(params['pattern'])) ?? `must match ${String(params['pattern'])}`;
      return { path, message: `${what} (got ${preview(error.data)})` };
    }
    case 'enum':
      return {
        path,
        message: `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (got ${preview(error.data)})`,
      };
    case 'const':
      return { path, message: `must be ${JSON.stringify(params['allowedValue'])} (got ${preview(error.data)})` };
    default:
      return { path, message: `${error.message ?? 'is invalid'} (got ${preview(error.data)})` };
  }
}

/** Turns ajv's errors into issues, dropping the noise that propertyNames adds. */
export function issuesOf(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors ?? []) {
    // A bad key is reported twice: by the key's own schema (with propertyName) and by propertyNames.
    if (error.keyword === 'propertyNames') continue;
    let issue = issueOf(error);
    if (error.propertyName !== undefined) {
      issue = { path: `${error.instancePath}/${escapePointer(error.propertyName)}`, message: `is not a valid key: ${issue.message}` };
    }
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

export interface CompiledValidator<T> {
  (value: unknown): T;
  readonly schema: SchemaObject;
}

/**
 * Returns a validator, compiled on first use and kept, that returns its input typed as T, or throws
 * ValidationError naming `document`. `check` runs after the schema passes, for rules JSON
 * Schema cannot state (descriptor `data` against its digest); it returns issues.
 */
export function compile<T>(
  document: string,
  schema: SchemaObject,
  check?: (value: T) => ValidationIssue[],
): CompiledValidator<T> {
  let compiled: ValidateFunction | undefined;
  const validator = (value: unknown): T => {
    compiled ??= ajv.compile(schema);
    const fn = compiled;
    if (!fn(value)) throw new ValidationError(document, issuesOf(fn.errors));
    const typed = value as T;
    if (check !== undefined) {
      const issues = check(typed);
      if (issues.length > 0) throw new ValidationError(document, issues);
    }
    return typed;
  };
  return Object.assign(validator, { schema });
}

/** Registers shared definitions (`$id`-addressed) before any schema that refers to them compiles. */
export function addSchema(schema: SchemaObject): void {
  ajv.addSchema(schema);
}
