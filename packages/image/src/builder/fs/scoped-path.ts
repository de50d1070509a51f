import { InvalidBuildError } from '../errors.js';

/**
 * Symlink resolution confined to a root, the way a chroot would see it (securejoin): `..` never
 * climbs above the root and absolute link targets restart at the root. Used for COPY sources in
 * the context and for destinations inside the image, so nothing outside either root is reached.
 */

export interface ScopedNode {
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

export interface ScopedFs {
  /** lstat of a path given as components below the root; undefined when it does not exist. */
  lstat(parts: readonly string[]): Promise<ScopedNode | undefined>;
  readlink(parts: readonly string[]): Promise<string>;
  /** Names in a directory (unsorted). */
  readdir(parts: readonly string[]): Promise<string[]>;
}

const MAX_LINKS = 255;

export function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

/**
 * Resolves `path` below the root. Components that do not exist are kept as written (so the
 * result can name something to create). With `followFinal` false, a final symlink is not
 * followed (COPY copies links inside directories as links).
 */
export async function resolveScoped(fs: ScopedFs, path: string, followFinal = true): Promise<string[]> {
  const pending = splitPath(path);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const node = await fs.lstat(candidate);
    if (node?.kind === 'symlink' && (followFinal || pending.length > 0)) {
      if (++links > MAX_LINKS) throw new InvalidBuildError(`too many levels of symbolic links resolving ${path}`);
      const target = await fs.readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...splitPath(target));
      continue;
    }
    resolved.push(part);
    if (node === undefined) {
      // The rest does not exist either; keep the remaining components, cleaned of "..".
      for (const rest of pending) {
        if (rest === '..') resolved.pop();
        else resolved.push(rest);
      }
      return resolved;
    }
  }
  return resolved;
}
