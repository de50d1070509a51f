/**
 * Platforms (`os/architecture[/variant]`): parsing, normalisation, matching and choosing the
 * best manifest of an index, after containerd's `platforms` package — with one berth choice:
 * normalised arm64 carries variant `v8` and arm carries `v7` when none is given, because
 * that is what Docker Hub's manifest lists say.
 */
import { BerthError } from '../errors.js';
import { isIndexMediaType, isManifestMediaType } from '../media-type.js';
import type { Descriptor, ImageIndex, DockerManifestList, Platform } from '../types/image.js';

export class InvalidPlatformError extends BerthError {
  readonly input: string;
  constructor(input: string, reason: string) {
    super('INVALID_PLATFORM', 'invalid', `invalid platform ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

/** Annotation BuildKit puts on attestation manifests inside an index. */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const ATTESTATION_MANIFEST = 'attestation-manifest';

const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux', 'netbsd',
  'openbsd', 'plan9', 'solaris', 'wasip1', 'windows',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64',
  'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64',
  's390', 's390x', 'sparc', 'sparc64', 'wasm',
  // aliases accepted by normalisation
  'x86_64', 'x86-64', 'aarch64', 'armhf', 'armel', 'i386', 'i686',
]);

const COMPONENT_RE = /^[A-Za-z0-9_.-]+$/;

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** Architecture and variant after normalisation (aliases folded, default variants filled in). */
function normalizeArch(arch: string, variant: string | undefined): [string, string | undefined] {
  const a = arch.toLowerCase();
  const v = variant?.toLowerCase();
  switch (a) {
    case 'i386':
    case 'i686':
    case '386':
      return ['386', undefined];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', v === undefined || v === '' || v === 'v1' ? undefined : v];
    case 'aarch64':
    case 'arm64':
      if (v === undefined || v === '' || v === '8' || v === 'v8' || v === 'v8.0') return ['arm64', 'v8'];
      return ['arm64', v];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (v === undefined || v === '' || v === '7') return ['arm', 'v7'];
      if (v === '5' || v === '6' || v === '8') return ['arm', `v${v}`];
      return ['arm', v];
    default:
      return [a, v === '' ? undefined : v];
  }
}

/** Folds aliases (x86_64 → amd64, aarch64 → arm64, armhf → arm/v7) and fills default variants. */
export function normalizePlatform(platform: Platform): Platform {
  const [architecture, variant] = normalizeArch(platform.architecture, platform.variant);
  const out: Platform = { os: normalizeOs(platform.os), architecture };
  if (variant !== undefined) out.variant = variant;
  if (platform['os.version'] !== undefined) out['os.version'] = platform['os.version'];
  if (platform['os.features'] !== undefined) out['os.features'] = [...platform['os.features']];
  if (platform.features !== undefined) out.features = [...platform.features];
  return out;
}

/**
 * Parses `os`, `arch`, `os/arch` or `os/arch/variant` (as `docker run --platform` does) and
 * normalises it. A single component that is a known OS means that OS on the host's
 * architecture; otherwise it is an architecture on Linux.
 */
export function parsePlatform(specifier: string): Platform {
  const parts = specifier.split('/');
  if (specifier === '' || parts.some((p) => !COMPONENT_RE.test(p))) {
    throw new InvalidPlatformError(specifier, 'expected os[/arch[/variant]] of [A-Za-z0-9_.-]');
  }
  const [first, second, third] = parts;
  if (parts.length > 3 || first === undefined) {
    throw new InvalidPlatformError(specifier, 'expected at most three components: os/arch/variant');
  }
  if (parts.length === 1) {
    const lower = normalizeOs(first);
    if (KNOWN_OS.has(lower)) {
      const host = hostPlatform();
      return normalizePlatform(
        lower === host.os ? { ...host, os: lower } : { os: lower, architecture: host.architecture },
      );
    }
    if (KNOWN_ARCH.has(first.toLowerCase())) return normalizePlatform({ os: 'linux', architecture: first });
    throw new InvalidPlatformError(specifier, 'unknown operating system or architecture');
  }
  if (second === undefined) throw new InvalidPlatformError(specifier, 'missing architecture');
  const platform: Platform = { os: first, architecture: second };
  if (third !== undefined) platform.variant = third;
  return normalizePlatform(platform);
}

/** `os/arch[/variant]` of the normalised platform. */
export function formatPlatform(platform: Platform): string {
  const p = normalizePlatform(platform);
  return p.variant === undefined ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

function nodeArch(): { architecture: string; variant?: string } {
  switch (process.arch) {
    case 'x64':
      return { architecture: 'amd64' };
    case 'ia32':
      return { architecture: '386' };
    case 'arm64':
      return { architecture: 'arm64', variant: 'v8' };
    case 'arm': {
      const vars = process.config.variables as Record<string, unknown>;
      const version = vars['arm_version'];
      return { architecture: 'arm', variant: typeof version === 'string' || typeof version === 'number' ? `v${version}` : 'v7' };
    }
    case 'ppc64':
      // Node reports little-endian ppc64 as 'ppc64'; Linux on POWER is little-endian in practice.
      return { architecture: process.platform === 'linux' && isLittleEndian() ? 'ppc64le' : 'ppc64' };
    default:
      return { architecture: process.arch };
  }
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** The platform this process runs on, normalised. */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return normalizePlatform({ os, ...nodeArch() });
}

function variantRank(architecture: string, variant: string | undefined): number | undefined {
  if (variant === undefined) return architecture === 'amd64' ? 1 : 0;
  const m = /^v(\d+)(?:\.\d+)?$/.exec(variant);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/**
 * Whether an image built for `have` runs on `want`: same OS and architecture, and a variant
 * `want` can execute (arm v7 runs v6 and v5 images; amd64 v3 runs v2 and v1; arm64 v9 runs v8).
 * Unknown variants must match exactly.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant === h.variant) return true;
  const wr = variantRank(w.architecture, w.variant);
  const hr = variantRank(h.architecture, h.variant);
  return wr !== undefined && hr !== undefined && hr <= wr;
}

/** True for BuildKit attestation manifests and other `unknown/unknown` entries. */
export function isAttestationManifest(desc: Descriptor): boolean {
  if (desc.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST) return true;
  return desc.platform?.os === 'unknown' && desc.platform.architecture === 'unknown';
}

/**
 * The best manifest of an index for `want` (default: the host): an exact variant match first,
 * then the closest compatible variant; entries without a platform come last; attestation
 * manifests and non-manifest entries are never chosen. Among equals, index order wins.
 */
export function selectManifest(
  index: Pick<ImageIndex, 'manifests'> | Pick<DockerManifestList, 'manifests'>,
  want: Platform = hostPlatform(),
): Descriptor | undefined {
  const w = normalizePlatform(want);
  const wantRank = variantRank(w.architecture, w.variant);
  let best: Descriptor | undefined;
  let bestScore = -Infinity;
  for (const desc of index.manifests as Descriptor[]) {
    if (isAttestationManifest(desc)) continue;
    if (!isManifestMediaType(desc.mediaType) && !isIndexMediaType(desc.mediaType)) continue;
    let score: number;
    if (desc.platform === undefined) {
      score = 0;
    } else {
      if (!platformMatches(w, desc.platform)) continue;
      const h = normalizePlatform(desc.platform);
      if (h.variant === w.variant) score = 1000;
      else score = 500 - Math.max(0, (wantRank ?? 0) - (variantRank(h.architecture, h.variant) ?? 0));
      if (w['os.version'] !== undefined && h['os.version'] === w['os.version']) score += 1;
    }
    if (score > bestScore) {
      best = desc;
      bestScore = score;
    }
  }
  return best;
}
