import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './apply.js';
import { getXattrsRecursive } from './fs-ops.js';
import { packTar } from './tar-writer.js';
import type { TarWriteEntry, TarWriteHeader } from './tar-writer.js';

/** Xattrs carried into a layer tar: file capabilities and user attributes, never overlay's own. */
function exportedXattr(name: string): boolean {
  return (name === 'security.capability' || name.startsWith('user.')) && !name.startsWith('user.overlay.');
}

async function* walkSorted(root: string, rel: string[] = []): AsyncGenerator<{ rel: string[]; st: Stats }> {
  const dir = rel.length ? join(root, ...rel) : root;
  const names = (await readdir(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const childRel = [...rel, name];
    const st = await lstat(join(root, ...childRel));
    yield { rel: childRel, st };
    if (st.isDirectory()) yield* walkSorted(root, childRel);
  }
}

/**
 * The members of a layer tar for an overlay upper directory, in a fixed order (depth-first,
 * names sorted bytewise) with normalised headers (no user/group names, whole-second mtimes, no
 * atime/ctime): the same directory always gives the same bytes, so the same diffID. Overlay
 * whiteouts (0:0 char devices) become `.wh.<name>`; opaque directories get `.wh..wh..opq`;
 * files sharing an inode become hardlinks to the first path seen.
 */
export async function* upperDirEntries(upper: string): AsyncGenerator<TarWriteEntry> {
  const xattrs = await getXattrsRecursive(upper);
  const inodes = new Map<string, string>();
  for await (const { rel, st } of walkSorted(upper)) {
    const path = rel.join('/');
    const abs = join(upper, ...rel);
    const own = xattrs.get(abs);
    const exported = new Map<string, Buffer>();
    if (own) for (const [k, v] of own) if (exportedXattr(k)) exported.set(k, v);
    const base: Omit<TarWriteHeader, 'type' | 'path'> = {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
    };
    if (exported.size) base.xattrs = exported;

    if (st.isCharacterDevice() && st.rdev === 0) {
      const name = rel[rel.length - 1] as string;
      yield { header: { path: [...rel.slice(0, -1), WHITEOUT_PREFIX + name].join('/'), type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: base.mtime ?? 0 } };
      continue;
    }
    if (st.isDirectory()) {
      yield { header: { ...base, path, type: 'directory' } };
      const opaque = own?.get('trusted.overlay.opaque') ?? own?.get('user.overlay.opaque');
      if (opaque && opaque.toString() === 'y') {
        yield { header: { path: `${path}/${OPAQUE_WHITEOUT}`, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: base.mtime ?? 0 } };
      }
      continue;
    }
    if (st.isSymbolicLink()) {
      yield { header: { ...base, path, type: 'symlink', linkpath: await readlink(abs) } };
      continue;
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      const first = inodes.get(key);
      if (first !== undefined) {
        yield { header: { ...base, path, type: 'hardlink', linkpath: first } };
        continue;
      }
      inodes.set(key, path);
    }
    if (st.isFile()) {
      yield { header: { ...base, path, type: 'file', size: st.size }, body: () => createReadStream(abs, { highWaterMark: 1 << 20 }) };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      yield {
        header: { ...base, path, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: Number((BigInt(st.rdev) >> 8n) & 0xfffn), devminor: Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n)) },
      };
    } else if (st.isFIFO()) {
      yield { header: { ...base, path, type: 'fifo' } };
    }
    // sockets are not archived (Docker skips them too)
  }
}

/** A reproducible, uncompressed layer tar of an overlay upper directory. */
export function createLayerTar(upper: string): Readable {
  return Readable.from(packTar(upperDirEntries(upper)), { objectMode: false, highWaterMark: 1 << 20 });
}

/** A plain tar of a whole directory tree (no whiteout conversion) — `docker export`, `import`. */
export function createDirectoryTar(dir: string): Readable {
  return createLayerTar(dir);
}

export interface PathChange {
  path: string;
  kind: 'modified' | 'added' | 'deleted';
}

/**
 * `docker diff`: what the upper directory changes relative to the merged lowers (top first).
 * Paths are absolute inside the container (`/etc/passwd`), sorted.
 */
export async function upperDirChanges(upper: string, lowers: string[]): Promise<PathChange[]> {
  const out: PathChange[] = [];
  const inLower = async (rel: string[]): Promise<boolean> => {
    for (const lower of lowers) {
      const st = await lstat(join(lower, ...rel)).catch(() => undefined);
      if (st) return !(st.isCharacterDevice() && st.rdev === 0);
    }
    return false;
  };
  for await (const { rel, st } of walkSorted(upper)) {
    const path = `/${rel.join('/')}`;
    if (st.isCharacterDevice() && st.rdev === 0) {
      out.push({ path, kind: 'deleted' });
      continue;
    }
    out.push({ path, kind: (await inLower(rel)) ? 'modified' : 'added' });
  }
  return out;
}
