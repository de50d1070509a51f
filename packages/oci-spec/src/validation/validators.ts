/**
 * The document validators. Each takes an already-parsed JSON value and returns it typed, or
 * throws ValidationError (code INVALID_DOCUMENT, category invalid) naming the failing field.
 * All schemas are declared here; each is compiled once, on first use (see ajv.ts).
 */
import { createHash } from 'node:crypto';
import { MediaType, baseMediaType } from '../media-type.js';
import type { Descriptor, DockerManifest, DockerManifestList, ImageConfig, ImageIndex, ImageLayout, ImageManifest } from '../types/image.js';
import type { RuntimeSpec, RuntimeState } from '../types/runtime.js';
import type { DistributionErrorBody } from '../types/distribution.js';
import { compile } from './ajv.js';
import { ValidationError, type ValidationIssue } from './validation-error.js';
import {
  descriptorSchema,
  dockerManifestListSchema,
  dockerManifestSchema,
  imageConfigSchema,
  imageIndexSchema,
  imageLayoutSchema,
  imageManifestSchema,
} from './schemas/image.js';
import { runtimeSpecSchema, runtimeStateSchema } from './schemas/runtime.js';
import { distributionErrorSchema } from './schemas/distribution.js';

/** Embedded `data` must be exactly the content the descriptor names (image-spec v1.1). */
function checkEmbeddedData(desc: Descriptor, path: string, issues: ValidationIssue[]): void {
  if (desc.data === undefined) return;
  const bytes = Buffer.from(desc.data, 'base64');
  if (bytes.byteLength !== desc.size) {
    issues.push({ path: `${path}/data`, message: `decodes to ${bytes.byteLength} bytes but size is ${desc.size}` });
    return;
  }
  const algorithm = desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256';
  const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (actual !== desc.digest) {
    issues.push({ path: `${path}/data`, message: `does not match digest ${desc.digest} (data hashes to ${actual})` });
  }
}

function checkDescriptors(entries: [path: string, desc: Descriptor | undefined][]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const [path, desc] of entries) if (desc !== undefined) checkEmbeddedData(desc, path, issues);
  return issues;
}

export const validateDescriptor = compile<Descriptor>('descriptor', descriptorSchema, (d) => checkDescriptors([['', d]]));

export const validateImageManifest = compile<ImageManifest>('image manifest', imageManifestSchema, (m) =>
  checkDescriptors([
    ['/config', m.config],
    ...m.layers.map((l, i): [string, Descriptor] => [`/layers/${i}`, l]),
    ['/subject', m.subject],
  ]),
);

export const validateImageIndex = compile<ImageIndex>('image index', imageIndexSchema, (m) =>
  checkDescriptors([...m.manifests.map((d, i): [string, Descriptor] => [`/manifests/${i}`, d]), ['/subject', m.subject]]),
);

/**
 * Docker writes `"config": null` for images without a container config; the schema accepts
 * that and the validator removes the member, so that the typed value never holds null.
 */
export const validateImageConfig = compile<ImageConfig>('image config', imageConfigSchema, (c) => {
  const loose = c as { config?: unknown; container_config?: unknown };
  if (loose.config === null) delete loose.config;
  if (loose.container_config === null) delete loose.container_config;
  return [];
});

/** The `oci-layout` file of an image layout. Its `index.json` is an image index: validateImageIndex. */
export const validateImageLayout = compile<ImageLayout>('oci-layout file', imageLayoutSchema);

export const validateDockerManifest = compile<DockerManifest>('Docker image manifest', dockerManifestSchema);

export const validateDockerManifestList = compile<DockerManifestList>('Docker manifest list', dockerManifestListSchema);

export const validateRuntimeSpec = compile<RuntimeSpec>('runtime spec config', runtimeSpecSchema);

export const validateRuntimeState = compile<RuntimeState>('runtime state', runtimeStateSchema);

export const validateDistributionError = compile<DistributionErrorBody>('distribution error body', distributionErrorSchema);

/**
 * Parses JSON bytes or text, throwing ValidationError (not SyntaxError) when they are not JSON,
 * so that callers handle one error type for "bad document".
 */
export function parseJson(input: Uint8Array | string, document = 'document'): unknown {
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(document, [{ path: '', message: `is not valid JSON: ${reason}` }], { cause: error });
  }
}

/** A validated manifest-like document, tagged with the media type it was validated as. */
export type ManifestDocument =
  | { mediaType: typeof MediaType.ImageManifest; manifest: ImageManifest }
  | { mediaType: typeof MediaType.ImageIndex; manifest: ImageIndex }
  | { mediaType: typeof MediaType.DockerManifest; manifest: DockerManifest }
  | { mediaType: typeof MediaType.DockerManifestList; manifest: DockerManifestList };

/**
 * Validates a manifest, index, Docker manifest or manifest list. The media type is `mediaType`
 * when given (a Content-Type; parameters ignored; `application/json` and
 * `application/octet-stream` count as not given), else the document's own `mediaType`, else
 * inferred from its shape (OCI allows omitting it: `manifests` → index, `config` → manifest).
 * When both are present they must agree. Throws ValidationError.
 */
export function validateManifest(value: unknown, mediaType?: string): ManifestDocument {
  const given = mediaType === undefined ? '' : baseMediaType(mediaType);
  const generic = given === '' || given === 'application/json' || given === 'application/octet-stream';
  const doc = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  if (doc === undefined) throw new ValidationError('manifest', [{ path: '', message: 'must be a JSON object' }]);
  const own = doc['mediaType'];
  if (own !== undefined && typeof own !== 'string') {
    throw new ValidationError('manifest', [{ path: '/mediaType', message: `must be string (got ${typeof own})` }]);
  }
  if (!generic && own !== undefined && own !== given) {
    throw new ValidationError('manifest', [{ path: '/mediaType', message: `is ${own} but the document was given as ${given}` }]);
  }
  const inferred = 'manifests' in doc ? MediaType.ImageIndex : MediaType.ImageManifest;
  const type = generic ? (own ?? inferred) : given;
  switch (type) {
    case MediaType.ImageManifest:
      return { mediaType: type, manifest: validateImageManifest(value) };
    case MediaType.ImageIndex:
      return { mediaType: type, manifest: validateImageIndex(value) };
    case MediaType.DockerManifest:
      return { mediaType: type, manifest: validateDockerManifest(value) };
    case MediaType.DockerManifestList:
      return { mediaType: type, manifest: validateDockerManifestList(value) };
    default:
      throw new ValidationError('manifest', [{ path: generic ? '/mediaType' : '', message: `has unsupported manifest media type ${type}` }]);
  }
}
