import {
  MediaType,
  validateDockerManifest,
  validateDockerManifestList,
  validateImageIndex,
  validateImageManifest,
} from '@berth/oci-spec';
import type { Descriptor } from '@berth/oci-spec';
import { ManifestInvalidError } from '../errors.js';

/** What the server needs to know about a pushed manifest once it is known to be valid. */
export interface ManifestSummary {
  /** The media type it is stored and served with. */
  mediaType: string;
  /** Blobs it needs in the repository: config and layers (an index needs none). */
  blobs: Descriptor[];
  /** Manifests it needs in the repository: an index's children. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** For the referrers API: `artifactType`, else (image manifests) the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

const SUPPORTED: ReadonlySet<string> = new Set([
  MediaType.ImageManifest,
  MediaType.ImageIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
]);

/**
 * Parses and validates a pushed manifest. The media type is the Content-Type the client sent;
 * when the document carries its own `mediaType` the two must agree (image-spec: "the mediaType
 * of the manifest MUST match"). A Content-Type that is missing or generic falls back to the
 * document's own `mediaType`. Throws ManifestInvalidError naming what is wrong.
 */
export function validateManifestDocument(bytes: Uint8Array, contentType: string | undefined): ManifestSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ManifestInvalidError('manifest invalid: body is not JSON', { cause: error });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ManifestInvalidError('manifest invalid: body is not a JSON object');
  }
  const own = (doc as { mediaType?: unknown }).mediaType;
  if (own !== undefined && typeof own !== 'string') throw new ManifestInvalidError('manifest invalid: /mediaType is not a string');
  const generic = contentType === undefined || contentType === '' || contentType === 'application/json' || contentType === 'application/octet-stream';
  const mediaType = generic ? own : contentType;
  if (mediaType === undefined) {
    throw new ManifestInvalidError('manifest invalid: no Content-Type and no mediaType in the document');
  }
  if (own !== undefined && own !== mediaType) {
    throw new ManifestInvalidError(`manifest invalid: Content-Type ${mediaType} does not match the document's mediaType ${own}`);
  }
  if (!SUPPORTED.has(mediaType)) {
    throw new ManifestInvalidError(`manifest invalid: unsupported manifest media type ${mediaType}`);
  }
  try {
    switch (mediaType) {
      case MediaType.ImageManifest: {
        const m = validateImageManifest(doc);
        return {
          mediaType,
          blobs: [m.config, ...m.layers],
          manifests: [],
          ...(m.subject ? { subject: m.subject } : {}),
          artifactType: m.artifactType ?? m.config.mediaType,
          ...(m.annotations ? { annotations: m.annotations } : {}),
        };
      }
      case MediaType.ImageIndex: {
        const m = validateImageIndex(doc);
        return {
          mediaType,
          blobs: [],
          manifests: m.manifests,
          ...(m.subject ? { subject: m.subject } : {}),
          ...(m.artifactType ? { artifactType: m.artifactType } : {}),
          ...(m.annotations ? { annotations: m.annotations } : {}),
        };
      }
      case MediaType.DockerManifest: {
        const m = validateDockerManifest(doc);
        return { mediaType, blobs: [m.config, ...m.layers], manifests: [] };
      }
      default: {
        const m = validateDockerManifestList(doc);
        return { mediaType, blobs: [], manifests: m.manifests };
      }
    }
  } catch (error) {
    if (error instanceof ManifestInvalidError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new ManifestInvalidError(`manifest invalid: ${message}`, { cause: error });
  }
}

/**
 * Compiles the manifest validators ahead of the first push (each is compiled on first use, which
 * took 50–200 ms of a first manifest PUT): validates a minimal document of every supported type.
 * Synchronous; the server runs it once, just after it starts listening.
 */
export function prepareManifestValidators(): void {
  const digest = `sha256:${'0'.repeat(64)}`;
  for (const validate of [validateImageManifest, validateImageIndex, validateDockerManifest, validateDockerManifestList]) {
    try {
      validate({ schemaVersion: 2, mediaType: '', config: { mediaType: '', digest, size: 0 }, layers: [], manifests: [] });
    } catch {
      // An invalid document is fine: compiling the validator was the point.
    }
  }
}
