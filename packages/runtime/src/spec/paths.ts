import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Resolves `p` (an absolute path inside the container) to a host path inside `root`, following
 * symlinks as the container would see them: `..` and absolute link targets never leave `root`
 * (like Go's securejoin). Components that do not exist are appended as they are.
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let st;
    try {
      st = await lstat(candidate);
    } catch {
      resolved.push(part, ...parts);
      break;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many symlinks resolving ${p}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}
