/**
 * Image references, parsed and normalised exactly like Docker's distribution/reference
 * (ParseNormalizedNamed + TagNameOnly): `busybox` → `docker.io/library/busybox:latest`.
 *
 * Grammar (from distribution/reference):
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain '/'] path-component ['/' path-component]*
 *   domain    := host [':' port]      host := domain-name | IPv4 | '[' IPv6 ']'
 *   tag       := /[\w][\w.-]{0,127}/
 * The path after the domain may not exceed 255 characters and must be lowercase.
 *
 * One deliberate difference: digests are limited to sha256 and sha512 (Docker also accepts
 * sha384), the algorithms berth's content store supports.
 */
import { BerthError } from '../errors.js';
import { DigestError } from '../digest/errors.js';
import { parseDigest, type Digest } from '../digest/digest.js';

export interface Reference {
  /** Registry host, with port when given: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/busybox`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export interface ParseReferenceOptions {
  /** Add the tag `latest` when the reference has neither tag nor digest. Default true. */
  defaultTag?: boolean;
}

/** A string that is not a valid image reference. `reason` is Docker's own wording. */
export class InvalidReferenceError extends BerthError {
  readonly input: string;
  readonly reason: string;
  constructor(input: string, reason: string, options?: { cause?: unknown }) {
    const detail = reason.startsWith('invalid reference format: ')
      ? reason.slice('invalid reference format: '.length)
      : reason;
    super('INVALID_REFERENCE', 'invalid', `invalid reference ${JSON.stringify(input)}: ${detail}`, options);
    this.input = input;
    this.reason = reason;
  }
}

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const DOCKER_HUB_REGISTRY_HOST = 'registry-1.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** Maximum length of a repository path (the name without its domain). */
export const REPOSITORY_NAME_MAX_LENGTH = 255;

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const optionalPort = '(?::[0-9]+)?';
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = host + optionalPort;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const ANCHORED_TAG_RE = new RegExp(`^${tagPat}$`);
const ANCHORED_DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Whether `tag` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return ANCHORED_TAG_RE.test(tag);
}

/** Whether `domain` is a valid registry host with optional port. */
export function isValidDomain(domain: string): boolean {
  return ANCHORED_DOMAIN_RE.test(domain);
}

/** Docker's splitDockerDomain: decides whether the first path element is a registry host. */
function splitDockerDomain(name: string): [domain: string, remainder: string] {
  const slash = name.indexOf('/');
  if (slash === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const maybeDomain = name.slice(0, slash);
  const maybeRemainder = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (maybeDomain === 'localhost') {
    [domain, remainder] = [maybeDomain, maybeRemainder];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remainder] = [DEFAULT_DOMAIN, maybeRemainder];
  } else if (/[.:]/.test(maybeDomain)) {
    [domain, remainder] = [maybeDomain, maybeRemainder];
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    // Uppercase namespaces are not allowed, so an uppercase first element must be a host.
    [domain, remainder] = [maybeDomain, maybeRemainder];
  } else {
    [domain, remainder] = [DEFAULT_DOMAIN, name];
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/** go-digest's Parse, restricted to the algorithms berth supports; returns Docker's wording. */
function digestReason(value: string): string {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon + 1 === value.length) return 'invalid checksum digest format';
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return 'unsupported digest algorithm';
  if (encoded.length !== (algorithm === 'sha256' ? 64 : 128)) return 'invalid checksum digest length';
  return 'invalid checksum digest format';
}

/** Docker's Parse on an already normalised string. */
function parseCanonical(input: string, s: string): Reference {
  if (s === '') throw new InvalidReferenceError(input, 'repository name must have at least one component');
  const matches = REFERENCE_RE.exec(s);
  if (matches === null) {
    const lower = s.toLowerCase();
    if (lower !== s && REFERENCE_RE.test(lower)) {
      throw new InvalidReferenceError(input, 'repository name must be lowercase');
    }
    throw new InvalidReferenceError(input, 'invalid reference format');
  }
  const name = matches[1] ?? '';
  const nameMatch = ANCHORED_NAME_RE.exec(name);
  const domain = nameMatch?.[1] ?? '';
  const path = nameMatch?.[2] ?? name;
  if (path.length > REPOSITORY_NAME_MAX_LENGTH) {
    throw new InvalidReferenceError(input, `repository name must not be more than ${REPOSITORY_NAME_MAX_LENGTH} characters`);
  }
  const ref: Reference = { domain, path };
  const tag = matches[2];
  if (tag !== undefined && tag !== '') ref.tag = tag;
  const digest = matches[3];
  if (digest !== undefined && digest !== '') {
    try {
      parseDigest(digest);
    } catch (error) {
      if (error instanceof DigestError) throw new InvalidReferenceError(input, digestReason(digest), { cause: error });
      throw error;
    }
    ref.digest = digest;
  }
  return ref;
}

/**
 * Parses and normalises a reference like `docker pull` does. Throws InvalidReferenceError
 * (code INVALID_REFERENCE, category invalid); its `reason` is Docker's message.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  if (typeof input !== 'string') throw new InvalidReferenceError(String(input), 'invalid reference format');
  if (ANCHORED_IDENTIFIER_RE.test(input)) {
    throw new InvalidReferenceError(input, `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`);
  }
  const [domain, remainder] = splitDockerDomain(input);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw new InvalidReferenceError(input, `invalid reference format: repository name (${remote}) must be lowercase`);
  }
  const ref = parseCanonical(input, `${domain}/${remainder}`);
  if ((options.defaultTag ?? true) && ref.tag === undefined && ref.digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** parseReference that returns undefined instead of throwing. */
export function tryParseReference(input: string, options?: ParseReferenceOptions): Reference | undefined {
  try {
    return parseReference(input, options);
  } catch (error) {
    if (error instanceof InvalidReferenceError) return undefined;
    throw error;
  }
}

/** `domain/path`: `docker.io/library/busybox`. */
export function referenceName(ref: Reference): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`;
}

function suffix(ref: Reference): string {
  return (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** Full normalised form: `docker.io/library/busybox:latest`, `…@sha256:…`, `…:tag@sha256:…`. */
export function formatReference(ref: Reference): string {
  return referenceName(ref) + suffix(ref);
}

/** Docker's familiar name: `docker.io/library/busybox` → `busybox`, `docker.io/a/b` → `a/b`. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return referenceName(ref);
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** Familiar name with tag and digest: `busybox:latest`, `localhost:5000/a:1`. */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + suffix(ref);
}

/** The host to contact for a reference's domain: Docker Hub's API lives on registry-1.docker.io. */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DOCKER_HUB_REGISTRY_HOST : domain;
}

/** Copy of `ref` with a tag (validated), keeping any digest. */
export function withTag(ref: Reference, tag: string): Reference {
  if (!isValidTag(tag)) throw new InvalidReferenceError(`${referenceName(ref)}:${tag}`, 'invalid tag format');
  return { ...ref, tag };
}

/** Copy of `ref` with a digest (validated), keeping any tag. */
export function withDigest(ref: Reference, digest: Digest): Reference {
  try {
    parseDigest(digest);
  } catch (error) {
    throw new InvalidReferenceError(`${referenceName(ref)}@${digest}`, digestReason(digest), { cause: error });
  }
  return { ...ref, digest };
}

/** Name only, without tag or digest. */
export function trimReference(ref: Reference): Reference {
  return { domain: ref.domain, path: ref.path };
}
