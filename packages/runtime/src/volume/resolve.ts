import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { InvalidMountError } from './errors.js';

/**
 * Cleans a path meant for inside a container: absolute, `..` clamped at the root (as Docker's
 * filepath.Clean of `"/" + p` does), no trailing slash. `/` itself is refused as a mount target.
 */
export function cleanContainerPath(p: string, what = 'mount destination'): string {
  if (p === '' || p.includes('\0')) throw new InvalidMountError(`invalid ${what}: ${JSON.stringify(p)}`);
  if (!p.startsWith('/')) throw new InvalidMountError(`invalid ${what}: ${p} is not an absolute path`);
  const clean = posix.resolve('/', p);
  if (clean === '/') throw new InvalidMountError(`invalid ${what}: ${p} (cannot mount over /)`);
  return clean;
}

/**
 * Resolves `p` inside `root` as the container would see it: symlinks are followed, but an
 * absolute link target or a `..` is interpreted relative to `root` and never leaves it (the
 * semantics of Go's securejoin). Components that do not exist are appended as they are. The
 * result is a host path under `root`. Throws on a link loop.
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const rootClean = posix.resolve(root);
  let pending = posix.resolve('/', p).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = posix.join(rootClean, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch {
      done.push(part, ...pending.filter((x) => x !== '.'));
      // What does not exist cannot redirect; clamp any remaining `..` lexically.
      return posix.join(rootClean, posix.resolve('/', done.join('/')));
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new InvalidMountError(`too many levels of symbolic links resolving ${p}`);
      const target = await readlink(host);
      const parts = target.split('/').filter(Boolean);
      if (target.startsWith('/')) done.length = 0;
      pending = [...parts, ...pending];
      continue;
    }
    done.push(part);
  }
  return posix.join(rootClean, ...done);
}
