import type { ErrorCategory } from '@berth/oci-spec';
import { ImageError } from '../errors.js';

/** Base of every error the Dockerfile builder throws on purpose (an ImageError, like the package's). */
export class BuildError extends ImageError {
  constructor(code: string, category: ErrorCategory, message: string, options?: { cause?: unknown }) {
    super(code, category, message, options);
  }
}

/**
 * A Dockerfile (or a word inside it) that does not parse. `line` and `column` are 1-based and
 * point into the Dockerfile as given; `column` is 1 when only the line is known.
 */
export class DockerfileParseError extends BuildError {
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  /** The message without the location prefix. */
  readonly reason: string;

  constructor(reason: string, line: number, column = 1, endLine = line, options?: { cause?: unknown }) {
    super('DOCKERFILE_PARSE', 'invalid', `Dockerfile:${line}:${column}: ${reason}`, options);
    this.reason = reason;
    this.line = line;
    this.column = column;
    this.endLine = endLine;
  }
}

/** A word that the shell-like lexer cannot expand (`${`, unterminated quotes, `${x:?msg}`). */
export class ShellLexError extends BuildError {
  constructor(message: string) {
    super('SHELL_LEX', 'invalid', message);
  }
}

/** A build that the inputs make impossible (missing stage, bad flag value, context escape). */
export class InvalidBuildError extends BuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_BUILD', 'invalid', message, options);
  }
}

/** A RUN step whose command exited non-zero. */
export class RunStepFailedError extends BuildError {
  readonly exitCode: number;
  constructor(command: string, exitCode: number) {
    super('RUN_FAILED', 'invalid', `process "${command}" did not complete successfully: exit code: ${exitCode}`);
    this.exitCode = exitCode;
  }
}

/** A path in COPY/ADD that is not in the build context (or that .dockerignore excludes). */
export class SourceNotFoundError extends BuildError {
  constructor(message: string) {
    super('SOURCE_NOT_FOUND', 'not-found', message);
  }
}
