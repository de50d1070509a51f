import { BerthError } from '@berth/oci-spec';
import type { ErrorCategory } from '@berth/oci-spec';

/** Base of every error @berth/image throws on purpose; `code` is stable, `category` maps to HTTP. */
export class ImageError extends BerthError {
  constructor(code: string, category: ErrorCategory, message: string, options?: { cause?: unknown }) {
    super(code, category, message, options);
  }
}

/** `No such image: busybox:latest` — the text testcontainers and the docker CLI key on. */
export class ImageNotFoundError extends ImageError {
  constructor(readonly reference: string, options?: { cause?: unknown }) {
    super('IMAGE_NOT_FOUND', 'not-found', `No such image: ${reference}`, options);
  }
}

export class ImageInUseError extends ImageError {
  constructor(reference: string, detail: string) {
    super('IMAGE_IN_USE', 'conflict', `conflict: unable to remove image ${reference}: ${detail}`);
  }
}

export class ContentNotFoundError extends ImageError {
  constructor(readonly digest: string, options?: { cause?: unknown }) {
    super('CONTENT_NOT_FOUND', 'not-found', `content ${digest}: not found`, options);
  }
}

export class ContentExistsError extends ImageError {
  constructor(readonly digest: string) {
    super('CONTENT_EXISTS', 'already-exists', `content ${digest}: already exists`);
  }
}

/** The bytes written to an ingest do not hash to (or are not as long as) what was expected. */
export class ContentVerificationError extends ImageError {
  constructor(message: string) {
    super('DIGEST_INVALID', 'invalid', message);
  }
}

/** An ingest is being written by someone else in this process (one writer per ref). */
export class IngestLockedError extends ImageError {
  constructor(readonly ref: string) {
    super('INGEST_LOCKED', 'unavailable', `ingest ${ref}: locked by another writer`);
  }
}

/** A layer entry that would escape the root, or is otherwise refused (see docs/security.md). */
export class UnsafeLayerError extends ImageError {
  constructor(readonly entry: string, reason: string) {
    super('UNSAFE_LAYER_ENTRY', 'invalid', `refusing layer entry ${JSON.stringify(entry)}: ${reason}`);
  }
}

/** Malformed tar, bad compression, or a layer larger than the configured limit. */
export class InvalidLayerError extends ImageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_LAYER', 'invalid', message, options);
  }
}

export class SnapshotNotFoundError extends ImageError {
  constructor(readonly key: string) {
    super('SNAPSHOT_NOT_FOUND', 'not-found', `snapshot ${key}: not found`);
  }
}

export class SnapshotExistsError extends ImageError {
  constructor(readonly key: string) {
    super('SNAPSHOT_EXISTS', 'already-exists', `snapshot ${key}: already exists`);
  }
}

export class SnapshotStateError extends ImageError {
  constructor(message: string) {
    super('SNAPSHOT_STATE', 'conflict', message);
  }
}

/** A document (manifest, config, archive metadata) that is malformed or inconsistent. */
export class InvalidImageError extends ImageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_IMAGE', 'invalid', message, options);
  }
}
