import { InvalidParameterError } from '../errors.js';

/** The API version berthd advertises and implements the shapes of. */
export const API_VERSION = '1.44';
/** The oldest request version accepted (moby's MinSupportedAPIVersion). */
export const MIN_API_VERSION = '1.24';
/** The engine version reported by /version and in the Server header. */
export const ENGINE_VERSION = '0.1.0';

/** Compares dotted versions numerically: "1.9" < "1.24". */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function versionAtLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0;
}

/** Splits `/v1.44/containers/json` into the version and the rest; unversioned paths get the default. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const match = /^\/v([0-9]+(?:\.[0-9]+)*)(\/.*)?$/.exec(pathname);
  if (!match) return { version: API_VERSION, path: pathname };
  const version = match[1]!;
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw new InvalidParameterError(
      `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  if (compareVersions(version, API_VERSION) > 0) {
    throw new InvalidParameterError(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  return { version, path: match[2] ?? '/' };
}
