import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidBuildError } from '../errors.js';
import { LayeredFs } from './layered-fs.js';
import { resolveScoped, splitPath } from './scoped-path.js';
import type { ScopedFs } from './scoped-path.js';

/**
 * Writing COPY/ADD results into a step's upper directory (which becomes the layer) without
 * mounting anything: destinations are resolved against the merged view of the upper directory
 * over the image's layers, confined to the image root; parent directories that already exist
 * below are recreated in the upper directory with their existing metadata, so a layer never
 * changes the mode or owner of a directory it merely writes into.
 */

/** A tree COPY reads from: the build context, another stage's layers, an extracted archive. */
export interface SourceTree extends ScopedFs {
  /** lstat of an entry, or undefined. */
  stat(parts: readonly string[]): Promise<Stats | undefined>;
  /** A host path from which the entry's bytes can be read. */
  hostPath(parts: readonly string[]): Promise<string>;
  /**
   * Whether a path (relative, `/`-separated) is excluded from copies (.dockerignore, --exclude).
   * An excluded directory may still be entered when the patterns have `!` exceptions.
   */
  excluded(rel: string, isDir: boolean): boolean;
}

export function directorySourceTree(root: string, excluded: (rel: string, isDir: boolean) => boolean = () => false): SourceTree {
  return {
    excluded,
    async stat(parts) {
      return lstat(join(root, ...parts)).catch(() => undefined);
    },
    async hostPath(parts) {
      return join(root, ...parts);
    },
    async lstat(parts) {
      const st = await lstat(join(root, ...parts)).catch(() => undefined);
      if (!st) return undefined;
      return { kind: st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other' };
    },
    async readlink(parts) {
      return readlink(join(root, ...parts));
    },
    async readdir(parts) {
      return readdir(join(root, ...parts));
    },
  };
}

export function layeredSourceTree(fs: LayeredFs, excluded: (rel: string, isDir: boolean) => boolean = () => false): SourceTree {
  return {
    excluded,
    stat: (parts) => fs.stat(parts),
    async hostPath(parts) {
      const found = await fs.find(parts);
      if (!found) throw new InvalidBuildError(`no such file: /${parts.join('/')}`);
      return found.path;
    },
    lstat: (parts) => fs.lstat(parts),
    readlink: (parts) => fs.readlink(parts),
    readdir: (parts) => fs.readdir(parts),
  };
}

export interface CopyOptions {
  /** Owner of everything written; undefined keeps the source's owner (ADD of an archive). */
  owner?: { uid: number; gid: number };
  /** --chmod: the mode for a copied entry given its current mode. */
  chmod?: (mode: number, isDir: boolean) => number;
}

/** Parses `--chmod` (octal, or symbolic like `u+x,go-w`) into a mode function. */
export function parseChmod(spec: string): (mode: number, isDir: boolean) => number {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const value = Number.parseInt(spec, 8);
    return () => value;
  }
  const clauses = spec.split(',').map((clause) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
    if (!m) throw new InvalidBuildError(`invalid chmod parameter: ${spec}`);
    return { who: m[1] || 'a', op: m[2] as '+' | '-' | '=', perms: m[3] ?? '' };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const { who, op, perms } of clauses) {
      let bits = 0;
      const classes = who.includes('a') ? 'ugo' : who;
      for (const c of classes) {
        const shift = c === 'u' ? 6 : c === 'g' ? 3 : 0;
        if (perms.includes('r')) bits |= 4 << shift;
        if (perms.includes('w')) bits |= 2 << shift;
        if (perms.includes('x') || (perms.includes('X') && (isDir || (mode & 0o111) !== 0))) bits |= 1 << shift;
        if (perms.includes('s') && c === 'u') bits |= 0o4000;
        if (perms.includes('s') && c === 'g') bits |= 0o2000;
      }
      if (perms.includes('t')) bits |= 0o1000;
      let mask = 0;
      for (const c of classes) mask |= 7 << (c === 'u' ? 6 : c === 'g' ? 3 : 0);
      if (op === '+') out |= bits;
      else if (op === '-') out &= ~bits;
      else out = (out & ~mask) | bits;
    }
    return out;
  };
}

export class UpperWriter {
  /** Merged view: the upper directory over the layers below (top first). */
  readonly view: LayeredFs;
  private readonly lower: LayeredFs;
  /**
   * Final mtimes of directories this writer created: writing into a directory bumps its mtime,
   * so they are set once everything is written (`finish`), which keeps layers reproducible.
   */
  private readonly dirTimes = new Map<string, Date>();

  constructor(
    readonly upper: string,
    lowerLayers: readonly string[],
  ) {
    this.lower = new LayeredFs(lowerLayers);
    // The upper dir is written here, never by overlayfs: it has no opaque directories.
    this.view = new LayeredFs([upper, ...lowerLayers], new Set([upper]));
  }

  /** Resolves an absolute destination inside the image root (symlinks followed within it). */
  async resolve(path: string, followFinal: boolean): Promise<string[]> {
    return resolveScoped(this.view, path, followFinal);
  }

  async isDirectory(parts: readonly string[]): Promise<boolean> {
    return (await this.view.lstat(parts))?.kind === 'directory';
  }

  /**
   * Makes `parts` a directory in the upper dir, recreating existing parents with their metadata
   * and creating missing ones with `fresh` metadata.
   */
  async ensureDir(parts: readonly string[], fresh: { mode: number; uid: number; gid: number; mtime?: Date }): Promise<void> {
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i);
      const upperPath = join(this.upper, ...prefix);
      const inUpper = await lstat(upperPath).catch(() => undefined);
      if (inUpper?.isDirectory()) continue;
      if (inUpper) throw new InvalidBuildError(`cannot copy to /${prefix.join('/')}: not a directory`);
      const below = await this.lower.stat(prefix);
      if (below && !below.isDirectory()) {
        throw new InvalidBuildError(`cannot copy to /${prefix.join('/')}: not a directory`);
      }
      await mkdir(upperPath);
      if (below) {
        await chmod(upperPath, below.mode & 0o7777);
        await lchown(upperPath, below.uid, below.gid);
        this.dirTimes.set(upperPath, below.mtime);
      } else {
        await chmod(upperPath, fresh.mode);
        await lchown(upperPath, fresh.uid, fresh.gid);
        this.dirTimes.set(upperPath, fresh.mtime ?? new Date(0));
      }
    }
  }

  /** Sets the final mtimes of the directories created, deepest first. */
  async finish(): Promise<void> {
    const dirs = [...this.dirTimes.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [dir, mtime] of dirs) await lutimes(dir, mtime, mtime);
  }

  /** Removes whatever the upper dir has at `parts` (a file replaced by a copy). */
  private async clear(parts: readonly string[]): Promise<void> {
    const p = join(this.upper, ...parts);
    const st = await lstat(p).catch(() => undefined);
    if (st && !st.isDirectory()) await rm(p, { force: true });
  }

  /** Writes a regular file with the given bytes (COPY <<EOF, ADD <url>). */
  async writeFile(parts: readonly string[], data: Uint8Array, meta: { mode: number; uid: number; gid: number; mtime: Date }): Promise<void> {
    if (parts.length === 0) throw new InvalidBuildError('cannot write a file over the root directory');
    await this.ensureDir(parts.slice(0, -1), { mode: 0o755, uid: meta.uid, gid: meta.gid });
    await this.clear(parts);
    if (await this.isDirectory(parts)) throw new InvalidBuildError(`cannot overwrite directory /${parts.join('/')} with a file`);
    const p = join(this.upper, ...parts);
    await writeFile(p, data);
    await chmod(p, meta.mode);
    await lchown(p, meta.uid, meta.gid);
    await lutimes(p, meta.mtime, meta.mtime);
  }

  /**
   * Copies `srcParts` of `src` to `destParts` (already resolved). A directory's contents are
   * merged into the destination directory; files and links replace what is there.
   */
  async copy(src: SourceTree, srcParts: readonly string[], destParts: readonly string[], options: CopyOptions): Promise<void> {
    const st = await src.stat(srcParts);
    if (!st) throw new InvalidBuildError(`no such file: /${srcParts.join('/')}`);
    const uid = options.owner?.uid ?? st.uid;
    const gid = options.owner?.gid ?? st.gid;
    const mode = options.chmod ? options.chmod(st.mode, st.isDirectory()) : st.mode & 0o7777;
    const target = join(this.upper, ...destParts);
    if (st.isDirectory()) {
      const existing = await this.view.stat(destParts);
      if (existing && !existing.isDirectory()) {
        throw new InvalidBuildError(`cannot copy directory /${srcParts.join('/')} over non-directory /${destParts.join('/')}`);
      }
      if (destParts.length > 0) {
        await this.ensureDir(destParts.slice(0, -1), { mode: 0o755, uid, gid });
        const inUpper = await lstat(target).catch(() => undefined);
        if (!inUpper) {
          if (existing) await this.ensureDir(destParts, { mode, uid, gid });
          else {
            await mkdir(target);
            await chmod(target, mode);
            await lchown(target, uid, gid);
          }
        }
      }
      const names = (await src.readdir(srcParts)).sort();
      for (const name of names) {
        const child = [...srcParts, name];
        const cst = await src.stat(child);
        if (!cst || src.excluded(child.join('/'), cst.isDirectory())) continue;
        await this.copy(src, child, [...destParts, name], options);
      }
      if (destParts.length > 0 && !existing) this.dirTimes.set(target, st.mtime);
      return;
    }
    if (destParts.length === 0) throw new InvalidBuildError('cannot copy a file over the root directory');
    await this.ensureDir(destParts.slice(0, -1), { mode: 0o755, uid: options.owner?.uid ?? 0, gid: options.owner?.gid ?? 0 });
    if ((await this.view.stat(destParts))?.isDirectory()) {
      throw new InvalidBuildError(`cannot copy /${srcParts.join('/')} over directory /${destParts.join('/')}`);
    }
    await this.clear(destParts);
    if (st.isSymbolicLink()) {
      await symlink(await src.readlink(srcParts), target);
      await lchown(target, uid, gid);
      await lutimes(target, st.atime, st.mtime);
      return;
    }
    if (!st.isFile()) return; // devices, fifos, sockets are not copied
    await copyFile(await src.hostPath(srcParts), target, constants.COPYFILE_FICLONE);
    await chmod(target, mode);
    await lchown(target, uid, gid);
    await lutimes(target, st.atime, st.mtime);
  }
}

export { splitPath };
