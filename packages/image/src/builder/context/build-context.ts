import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { InvalidBuildError, SourceNotFoundError } from '../errors.js';
import { resolveScoped, splitPath } from '../fs/scoped-path.js';
import type { ScopedFs, ScopedNode } from '../fs/scoped-path.js';
import { IgnoreMatcher } from './dockerignore.js';

/**
 * The files a build may read: a directory (or a tar stream unpacked into a private temporary
 * directory), minus what `.dockerignore` excludes. Every lookup is confined to the root:
 * `../x`, absolute paths and symlinks pointing outside resolve inside the context (as a chroot
 * would) and so cannot name a file outside it.
 */
export class BuildContext {
  readonly root: string;
  readonly ignore: IgnoreMatcher;
  private readonly owned: boolean;
  private readonly fs: ScopedFs;

  private constructor(root: string, ignore: IgnoreMatcher, owned: boolean) {
    this.root = root;
    this.ignore = ignore;
    this.owned = owned;
    this.fs = directoryScopedFs(root);
  }

  /**
   * A context over a directory. `.dockerignore` is read from its root unless `ignore` gives the
   * patterns (a `<Dockerfile>.dockerignore` next to a custom Dockerfile, say).
   */
  static async fromDirectory(root: string, options: { ignore?: string } = {}): Promise<BuildContext> {
    const st = await lstat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw new InvalidBuildError(`build context is not a directory: ${root}`);
    let text = options.ignore;
    if (text === undefined) text = await readFile(join(root, '.dockerignore'), 'utf8').catch(() => '');
    return new BuildContext(root, IgnoreMatcher.fromText(text), false);
  }

  /**
   * A context from a tar stream (what `docker build -` and the Engine API send), unpacked
   * into a temporary directory that `close()` removes. Entries with absolute names or `..`
   * are refused by the tar reader; links are unpacked as links and resolved within the root.
   */
  static async fromTar(stream: Readable, options: { ignore?: string; tmpDir?: string } = {}): Promise<BuildContext> {
    const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'berth-context-'));
    try {
      await pipeline(
        stream,
        tar.x({ cwd: dir, strict: true, preservePaths: false, preserveOwner: false, noMtime: false }),
      );
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw new InvalidBuildError(`cannot read the build context tar: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    let text = options.ignore;
    if (text === undefined) text = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
    return new BuildContext(dir, IgnoreMatcher.fromText(text), true);
  }

  async close(): Promise<void> {
    if (this.owned) await rm(this.root, { recursive: true, force: true });
  }

  /** Reads a file (the Dockerfile) from the context, whether ignored or not, as Docker does. */
  async readFile(path: string): Promise<Buffer> {
    const parts = await resolveScoped(this.fs, path);
    try {
      return await readFile(join(this.root, ...parts));
    } catch (error) {
      throw new SourceNotFoundError(`cannot read ${path} from the build context: ${(error as Error).message}`);
    }
  }

  /**
   * The context paths (relative, `/`-separated, symlinks of the pattern's directories resolved
   * within the root) that a COPY/ADD source names: one path for a plain name, every match for a
   * pattern with `*`, `?` or `[`. Ignored paths are never returned; a source that matches
   * nothing throws SourceNotFoundError.
   */
  async resolveSources(source: string, excludes: IgnoreMatcher | undefined): Promise<string[]> {
    return resolveSourcePaths(this.fs, source, (rel, isDir) => this.isExcluded(rel, isDir, excludes), 'build context');
  }

  /**
   * Whether a path is left out of the context. An ignored directory stays reachable when the
   * patterns have `!` exceptions (the kept files below it are in the context, as with Docker);
   * its other files are then excluded one by one.
   */
  isExcluded(rel: string, isDir: boolean, excludes?: IgnoreMatcher): boolean {
    const hit = (m: IgnoreMatcher) => m.ignores(rel) && !(isDir && m.hasExceptions);
    return hit(this.ignore) || (excludes !== undefined && hit(excludes));
  }

  /** The scoped view used by COPY to read files. */
  get scopedFs(): ScopedFs {
    return this.fs;
  }

  hostPath(rel: string): string {
    return join(this.root, ...splitPath(rel));
  }

  /** Whether a path is excluded by .dockerignore (see isExcluded for directories). */
  isIgnored(rel: string, isDir = false): boolean {
    return this.isExcluded(rel, isDir);
  }
}

export function directoryScopedFs(root: string): ScopedFs {
  return {
    async lstat(parts): Promise<ScopedNode | undefined> {
      const st = await lstat(join(root, ...parts)).catch(() => undefined);
      if (!st) return undefined;
      return { kind: nodeKind(st) };
    },
    async readlink(parts): Promise<string> {
      return readlink(join(root, ...parts));
    },
    async readdir(parts): Promise<string[]> {
      return readdir(join(root, ...parts));
    },
  };
}

export function nodeKind(st: Stats): ScopedNode['kind'] {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  return 'other';
}

export function hasWildcard(s: string): boolean {
  return /[*?[]/.test(s);
}

/** filepath.Match for one path component. */
export function matchComponent(pattern: string, name: string): boolean {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? '';
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      const n = chars[++i];
      re += n === undefined ? '\\\\' : n.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    } else if (ch === '[') {
      const close = chars.indexOf(']', i + 1);
      if (close < 0) return false;
      let body = chars.slice(i + 1, close).join('');
      if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`, 'su').test(name);
  } catch {
    return false;
  }
}

/**
 * Expands a COPY source against a scoped filesystem. Wildcards apply per component; the
 * directories leading to a match are resolved within the root.
 */
export async function resolveSourcePaths(
  fs: ScopedFs,
  source: string,
  excluded: (rel: string, isDir: boolean) => boolean,
  what: string,
): Promise<string[]> {
  const parts = splitPath(posix.normalize(`/${source}`));
  if (!hasWildcard(source)) {
    const rel = parts.join('/');
    const resolved = await resolveScoped(fs, rel);
    const node = await fs.lstat(resolved);
    if (!node || (rel !== '' && excluded(resolved.join('/'), node.kind === 'directory'))) {
      throw new SourceNotFoundError(`failed to compute cache key: "/${rel}" not found in the ${what}`);
    }
    return [resolved.join('/')];
  }
  let candidates: string[][] = [[]];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const next: string[][] = [];
    for (const base of candidates) {
      const dir = await resolveScoped(fs, base.join('/'));
      if (!hasWildcard(part)) {
        next.push([...dir, part]);
        continue;
      }
      const node = await fs.lstat(dir);
      if (node?.kind !== 'directory') continue;
      const names = await fs.readdir(dir);
      for (const name of names.sort()) if (matchComponent(part, name)) next.push([...dir, name]);
    }
    candidates = next;
  }
  const out: string[] = [];
  for (const c of candidates) {
    const rel = c.join('/');
    const node = await fs.lstat(c);
    if (node && !excluded(rel, node.kind === 'directory')) out.push(rel);
  }
  if (out.length === 0) throw new SourceNotFoundError(`lstat ${source}: no source files were specified`);
  return out;
}

/**
 * A content hash of a file or directory tree in the context: names, types, modes, link
 * targets and file bytes — not timestamps — so that touching a file keeps the cache while
 * changing a byte does not. Ignored paths are left out.
 */
export async function hashContextPath(root: string, rel: string, excluded: (rel: string, isDir: boolean) => boolean): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (r: string): Promise<void> => {
    const abs = join(root, ...splitPath(r));
    const st = await lstat(abs);
    hash.update(`${r}\0${nodeKind(st)}\0${(st.mode & 0o7777).toString(8)}\0`);
    if (st.isSymbolicLink()) hash.update(await readlink(abs));
    else if (st.isFile()) {
      hash.update(`${st.size}\0`);
      await pipeline(createReadStream(abs), async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) hash.update(chunk);
        yield* [];
      });
    } else if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) {
        const child = r === '' ? name : `${r}/${name}`;
        const cst = await lstat(join(root, ...splitPath(child)));
        if (excluded(child, cst.isDirectory())) continue;
        await visit(child);
      }
    }
    hash.update('\n');
  };
  await visit(rel);
  return `sha256:${hash.digest('hex')}`;
}
