import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync, lstatSync, open as openCb, writeSync } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, open, readlink, rm, symlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { InvalidLayerError, UnsafeLayerError } from '../errors.js';
import type { Digest } from '../content/types.js';
import { decompressLent } from './decompress.js';
import { mknod, setXattr } from './fs-ops.js';
import { ByteSource, readTar } from './tar-reader.js';
import type { TarHeader } from './tar-reader.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export interface ApplyLayerOptions {
  /**
   * Directories of the layers below, top first — the merged view this layer is applied onto.
   * Used to copy metadata of parent directories and to copy up hardlink targets.
   */
  lowers?: string[];
  /** Refuse the layer once its uncompressed tar exceeds this many bytes (decompression bombs). */
  maxSize?: number;
  /** Apply uid/gid from the archive (default: when running as root). */
  preserveOwnership?: boolean;
  /** What to do with block/char device entries: create (default when root), skip, or refuse. */
  devices?: 'create' | 'skip' | 'refuse';
  /** Called with the number of uncompressed bytes consumed so far. */
  onProgress?: (uncompressedBytes: number) => void;
  /**
   * The source's chunks are lent, not given: each is handed back through this once it has been
   * consumed (it must stay unchanged until then), so the producer can reuse its memory.
   */
  release?: (chunk: Buffer) => void;
}

export interface ApplyLayerResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: Digest;
  /** Length of the uncompressed tar stream. */
  size: number;
  entries: number;
  /**
   * Bytes the unpacked layer takes on disk, counted the way `du` does (allocated blocks,
   * hardlinks once) from the files as they were written — no walk of the tree afterwards.
   */
  usage: number;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Splits an archive path into clean components; refuses absolute paths and `..`. */
export function entryComponents(path: string, what = 'path'): string[] {
  if (path.startsWith('/')) throw new UnsafeLayerError(path, `absolute ${what}`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeLayerError(path, `${what} contains ".."`);
  for (const p of parts) if (p.includes('\0')) throw new UnsafeLayerError(path, `${what} contains NUL`);
  return parts;
}

/** `lstatOrUndefined` without the thread-pool round trip (one cheap syscall, per entry). */
function lstatSyncOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT' || (err as { code?: string }).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * Keeps every write inside `root`: each parent component is checked with lstat (never
 * followed), created when missing (copying the metadata the merged lower view has for it), and
 * remembered; removals forget everything below them. Nothing here ever follows a symlink.
 */
class RootResolver {
  private readonly dirs = new Set<string>(['']);

  constructor(
    readonly root: string,
    private readonly lowers: string[],
    private readonly chown: boolean,
  ) {}

  abs(parts: string[]): string {
    return parts.length === 0 ? this.root : join(this.root, ...parts);
  }

  /** Metadata of `parts` in the merged lower view, or undefined (absent, whited out, hidden). */
  async lowerStat(parts: string[]): Promise<{ st: Stats; path: string } | undefined> {
    outer: for (const lower of this.lowers) {
      let path = lower;
      for (let i = 0; i < parts.length; i++) {
        path = join(path, parts[i] as string);
        const st = await lstatOrUndefined(path);
        if (!st) continue outer;
        if (isWhiteoutDevice(st)) return undefined;
        if (i === parts.length - 1) return { st, path };
        if (!st.isDirectory()) return undefined; // a non-directory hides everything below it
      }
    }
    return undefined;
  }

  /** Makes sure every component of `parts` is a real directory inside root (creating it). */
  async ensureDir(parts: string[], entry: string): Promise<string> {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.dirs.has(rel)) continue;
      const path = this.abs(parts.slice(0, i));
      const st = await lstatOrUndefined(path);
      if (st) {
        if (st.isSymbolicLink()) throw new UnsafeLayerError(entry, `path goes through the symlink ${rel}`);
        if (!st.isDirectory()) {
          if (isWhiteoutDevice(st)) {
            // A directory re-created over a whiteout from this layer: replace the marker.
            await rm(path);
            await mkdir(path, { mode: 0o755 });
          } else throw new UnsafeLayerError(entry, `${rel} is not a directory`);
        }
      } else {
        const lower = await this.lowerStat(parts.slice(0, i));
        if (lower && lower.st.isSymbolicLink()) throw new UnsafeLayerError(entry, `path goes through the symlink ${rel} (in a lower layer)`);
        if (lower && !lower.st.isDirectory()) throw new UnsafeLayerError(entry, `${rel} is not a directory (in a lower layer)`);
        await mkdir(path, { mode: 0o755 });
        if (lower) {
          // Copy-up of the directory's metadata, as overlayfs would do for a write below it.
          if (this.chown) await lchown(path, lower.st.uid, lower.st.gid);
          await chmod(path, lower.st.mode & 0o7777);
          await lutimes(path, lower.st.atime, lower.st.mtime);
        }
      }
      this.dirs.add(rel);
    }
    return this.abs(parts);
  }

  /** Removes whatever is at `parts` (not following links) and forgets cached dirs below it. */
  async remove(parts: string[]): Promise<void> {
    const rel = parts.join('/');
    await rm(this.abs(parts), { recursive: true, force: true });
    for (const d of this.dirs) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
    for (const d of this.usage.keys()) if (d === rel || d.startsWith(`${rel}/`)) this.usage.delete(d);
  }

  /** Allocated bytes of the non-directories written so far, by relative path (`du`'s view). */
  readonly usage = new Map<string, number>();

  /** `du` of the whole root: the files recorded in `usage` plus every directory as it is now. */
  totalUsage(): number {
    let total = 0;
    for (const b of this.usage.values()) total += b;
    for (const d of this.dirs) {
      const st = lstatSyncOrUndefined(d === '' ? this.root : join(this.root, d));
      if (st?.isDirectory()) total += st.blocks * 512;
    }
    return total;
  }

  markDir(parts: string[]): void {
    this.dirs.add(parts.join('/'));
  }

  hasDir(rel: string): boolean {
    return this.dirs.has(rel);
  }
}

/**
 * Unpacks a layer (gzip, zstd or plain tar, sniffed) into `root`, the layer's own directory in
 * overlayfs form: `.wh.<name>` becomes a 0:0 character device, `.wh..wh..opq` sets
 * `trusted.overlay.opaque=y` on its directory. Streams: nothing is held in memory beyond a chunk.
 * Throws `UnsafeLayerError` for entries that would escape the root (nothing outside is touched:
 * every component is lstat-checked and symlinks are never followed) and `InvalidLayerError` for
 * malformed archives or a layer larger than `maxSize`. Returns the diffID computed on the way.
 */
export async function applyLayer(
  root: string,
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  options: ApplyLayerOptions = {},
): Promise<ApplyLayerResult> {
  const chown = options.preserveOwnership ?? isRoot;
  const devices = options.devices ?? (isRoot ? 'create' : 'skip');
  const maxSize = options.maxSize ?? Number.POSITIVE_INFINITY;
  await mkdir(root, { recursive: true, mode: 0o755 });
  const resolver = new RootResolver(root, options.lowers ?? [], chown);
  const hash = createHash('sha256');
  let size = 0;
  let lastReport = 0;
  const input = await decompressLent(source, options.release);
  const src = new ByteSource(input, (chunk) => {
    hash.update(chunk);
    size += chunk.length;
    if (size > maxSize) throw new InvalidLayerError(`layer expands to more than ${maxSize} bytes; refusing it (decompression bomb?)`);
    if (options.onProgress && size - lastReport >= 1 << 20) {
      lastReport = size;
      options.onProgress(size);
    }
  }, (chunk) => input.release(chunk));
  const created = new Set<string>();
  const dirTimes = new Map<string, number>();
  let entries = 0;

  const background = new Background();
  try {
    for await (const { header, body } of readTar(src)) {
      entries++;
      const parts = entryComponents(header.path);
      const rel = parts.join('/');
      const name = parts[parts.length - 1];
      // Anything that looks at or replaces a path a background write still owns waits for it.
      if (background.size > 0 && (header.type === 'hardlink' || (name ?? '').startsWith(WHITEOUT_PREFIX) || background.touches(parts))) {
        await background.flush();
      }

      if (name === undefined) {
        // The root itself ("./"): only directory metadata applies.
        if (header.type !== 'directory') throw new UnsafeLayerError(header.path, 'only a directory may name the root');
        await applyMetadata(root, header, chown);
        dirTimes.set('', header.mtime);
        continue;
      }
      const parentParts = parts.slice(0, -1);

      if (name.startsWith(WHITEOUT_PREFIX)) {
        const parent = await resolver.ensureDir(parentParts, header.path);
        if (name === OPAQUE_WHITEOUT) {
          await setXattr(parent, 'trusted.overlay.opaque', Buffer.from('y'));
          continue;
        }
        const target = name.slice(WHITEOUT_PREFIX.length);
        if (target === '' || target === '.' || target === '..' || target.startsWith(WHITEOUT_PREFIX)) {
          throw new UnsafeLayerError(header.path, 'whiteout names no valid file');
        }
        const targetParts = [...parentParts, target];
        // A whiteout only hides lower layers; never delete what this same layer created.
        if (created.has(targetParts.join('/'))) continue;
        await resolver.remove(targetParts);
        await mknod(join(parent, target), 'c', 0o000, 0, 0);
        if (chown) await lchown(join(parent, target), 0, 0);
        continue;
      }

      const parent = await resolver.ensureDir(parentParts, header.path);
      const path = join(parent, name);
      const existing = lstatSyncOrUndefined(path);
      if (existing && !(existing.isDirectory() && header.type === 'directory')) {
        await resolver.remove(parts);
        for (const d of dirTimes.keys()) if (d === rel || d.startsWith(`${rel}/`)) dirTimes.delete(d);
      }

      switch (header.type) {
        case 'directory': {
          if (!existing || !existing.isDirectory()) await mkdir(path, { mode: 0o700 });
          resolver.markDir(parts);
          await applyMetadata(path, header, chown);
          dirTimes.set(rel, header.mtime);
          break;
        }
        case 'file': {
          if (header.size <= SMALL_FILE) {
            // Small files are written in the background (bounded), so many creates overlap.
            // The pieces are lent by the source (see ByteSource): copied out as they come.
            const { data, free } = smallFileBuffers.take(header.size);
            let at = 0;
            for await (const piece of body()) at += piece.copy(data, at);
            await background.add(rel, async () => {
              try {
                resolver.usage.set(rel, await writeSmallFile(path, data, header, chown));
              } finally {
                free();
              }
            });
          } else {
            resolver.usage.set(rel, await writeFile_(path, body(), header, chown));
          }
          break;
        }
        case 'symlink': {
          if (header.linkpath.includes('\0')) throw new UnsafeLayerError(header.path, 'symlink target contains NUL');
          await symlink(header.linkpath, path);
          if (chown) await lchown(path, header.uid, header.gid);
          await lutimes(path, header.mtime, header.mtime);
          resolver.usage.set(rel, (lstatSyncOrUndefined(path)?.blocks ?? 0) * 512);
          break;
        }
        case 'hardlink': {
          const targetParts = entryComponents(header.linkpath, 'hardlink target');
          if (targetParts.length === 0) throw new UnsafeLayerError(header.path, 'hardlink to the root');
          if (targetParts.join('/') === rel) throw new UnsafeLayerError(header.path, 'hardlink to itself');
          const targetParent = await resolver.ensureDir(targetParts.slice(0, -1), header.path);
          const targetPath = join(targetParent, targetParts[targetParts.length - 1] as string);
          let st = await lstatOrUndefined(targetPath);
          if (!st) {
            const lower = await resolver.lowerStat(targetParts);
            if (!lower) throw new UnsafeLayerError(header.path, `hardlink target ${header.linkpath} does not exist`);
            if (!lower.st.isFile()) throw new UnsafeLayerError(header.path, `hardlink target ${header.linkpath} in a lower layer is not a regular file`);
            // Copy the lower file up so the link has something to point at (what overlayfs does).
            await copyFile(lower.path, targetPath, constants.COPYFILE_EXCL);
            if (chown) await lchown(targetPath, lower.st.uid, lower.st.gid);
            await chmod(targetPath, lower.st.mode & 0o7777);
            await lutimes(targetPath, lower.st.atime, lower.st.mtime);
            st = await lstat(targetPath);
            resolver.usage.set(targetParts.join('/'), st.blocks * 512);
          }
          if (st.isDirectory()) throw new UnsafeLayerError(header.path, 'hardlink to a directory');
          if (isWhiteoutDevice(st)) throw new UnsafeLayerError(header.path, 'hardlink to a whiteout');
          if (st.isSymbolicLink()) {
            const to = await readlink(targetPath);
            const resolved = posix.normalize(posix.join(posix.dirname(targetParts.join('/')), to));
            if (to.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
              throw new UnsafeLayerError(header.path, `hardlink to the symlink ${header.linkpath}, which points outside the layer (${to})`);
            }
          }
          await link(targetPath, path);
          break;
        }
        case 'char':
        case 'block': {
          if (devices === 'refuse') throw new UnsafeLayerError(header.path, 'device nodes are not permitted');
          if (devices === 'skip') break;
          await mknod(path, header.type === 'char' ? 'c' : 'b', header.mode, header.devmajor, header.devminor);
          if (chown) await lchown(path, header.uid, header.gid);
          await lutimes(path, header.mtime, header.mtime);
          break;
        }
        case 'fifo': {
          await mknod(path, 'p', header.mode);
          if (chown) await lchown(path, header.uid, header.gid);
          await chmod(path, header.mode);
          await lutimes(path, header.mtime, header.mtime);
          break;
        }
        default:
          throw new InvalidLayerError(`unsupported tar entry type ${JSON.stringify(header.typeflag)} for ${header.path}`);
      }
      created.add(rel);
    }

    await background.flush();
  } finally {
    await background.settle();
  }

  // Directory mtimes last, deepest first: creating children changed them.
  const dirs = [...dirTimes.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, mtime] of dirs) {
    if (rel !== '' && !resolver.hasDir(rel)) continue;
    await lutimes(rel === '' ? root : join(root, rel), mtime, mtime);
  }
  options.onProgress?.(size);
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries, usage: resolver.totalUsage() };
}

const SMALL_FILE = 1 << 20;
const BACKGROUND_WRITES = 32;

/** Bounded set of in-flight file writes, keyed by the relative paths they create. */
class Background {
  private readonly inflight = new Set<Promise<void>>();
  private readonly paths = new Set<string>();
  private error: unknown;

  get size(): number {
    return this.inflight.size;
  }

  /** True if `parts` or one of its parents is being written in the background. */
  touches(parts: string[]): boolean {
    for (let i = 1; i <= parts.length; i++) if (this.paths.has(parts.slice(0, i).join('/'))) return true;
    return false;
  }

  async add(path: string, job: () => Promise<void>): Promise<void> {
    while (this.inflight.size >= BACKGROUND_WRITES) await Promise.race(this.inflight);
    this.check();
    this.paths.add(path);
    const p: Promise<void> = job()
      .catch((err: unknown) => {
        this.error ??= err;
      })
      .finally(() => {
        this.inflight.delete(p);
        this.paths.delete(path);
      });
    this.inflight.add(p);
  }

  async flush(): Promise<void> {
    await this.settle();
    this.check();
  }

  /** Waits for every write, never throws (used on the way out of a failed apply). */
  async settle(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }

  private check(): void {
    if (this.error !== undefined) throw this.error;
  }
}

const processUid = typeof process.getuid === 'function' ? process.getuid() : -1;
const processGid = typeof process.getgid === 'function' ? process.getgid() : -1;

const openFd = promisify(openCb);

/**
 * `writeFile_` for a file already in memory. The create (which can wait on the filesystem
 * journal) goes to the thread pool so that many overlap; the rest — a page-cache write and
 * inode updates, microseconds each — are direct syscalls rather than one thread-pool round
 * trip apiece.
 */
async function writeSmallFile(path: string, data: Buffer, header: TarHeader, chown: boolean): Promise<number> {
  const fd = await openFd(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    if (chown && (header.uid !== processUid || header.gid !== processGid)) fchownSync(fd, header.uid, header.gid);
    fchmodSync(fd, header.mode);
    for (const [k, v] of header.xattrs) if (allowedXattr(k)) await setXattr(path, k, v);
    futimesSync(fd, header.mtime, header.mtime);
    return fstatSync(fd).blocks * 512;
  } finally {
    closeSync(fd);
  }
}

/** Creates a regular file (never through a symlink, never over an existing file) with its metadata. */
async function writeFile_(path: string, data: Buffer | AsyncIterable<Buffer>, header: TarHeader, chown: boolean): Promise<number> {
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const write = async (piece: Buffer): Promise<void> => {
      let off = 0;
      while (off < piece.length) off += (await fh.write(piece, off, piece.length - off)).bytesWritten;
    };
    if (Buffer.isBuffer(data)) await write(data);
    else {
      // Large files: the lent pieces are copied into ~1 MiB buffers that are reused (fresh
      // memory costs a page fault per 4 KiB); one buffer is on its way to disk while the next fills.
      let buf = takeWriteBuffer();
      let used = 0;
      let inflight: Promise<void> = Promise.resolve();
      const flush = async (): Promise<void> => {
        await inflight;
        const full = buf;
        const length = used;
        inflight = write(full.subarray(0, length)).then(() => giveWriteBuffer(full));
        inflight.catch(() => undefined);
        buf = takeWriteBuffer();
        used = 0;
      };
      try {
        for await (const piece of data) {
          let off = 0;
          while (off < piece.length) {
            const n = piece.copy(buf, used, off);
            used += n;
            off += n;
            if (used === buf.length) await flush();
          }
        }
        if (used > 0) await flush();
        await inflight;
      } finally {
        await inflight.catch(() => undefined);
        giveWriteBuffer(buf);
      }
    }
    if (chown && (header.uid !== processUid || header.gid !== processGid)) await fh.chown(header.uid, header.gid);
    await fh.chmod(header.mode);
    for (const [k, v] of header.xattrs) if (allowedXattr(k)) await setXattr(path, k, v);
    await fh.utimes(header.mtime, header.mtime);
    return (await fh.stat()).blocks * 512;
  } finally {
    await fh.close();
  }
}

/**
 * Memory for small files on their way to disk, cut from 1 MiB arenas that are reused once every
 * file cut from them is written (process-wide): a fresh buffer per file costs page faults.
 */
class ArenaPool {
  private current: { buf: Buffer; used: number; live: number } | undefined;
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly arenaSize: number,
    private readonly keep: number,
  ) {}

  take(size: number): { data: Buffer; free: () => void } {
    if (size > this.arenaSize / 4) return { data: Buffer.allocUnsafe(size), free: () => undefined };
    let arena = this.current;
    if (!arena || arena.used + size > arena.buf.length) {
      if (arena && arena.live === 0) this.give(arena.buf);
      arena = { buf: this.spare.pop() ?? Buffer.allocUnsafe(this.arenaSize), used: 0, live: 0 };
      this.current = arena;
    }
    const a = arena;
    const data = a.buf.subarray(a.used, a.used + size);
    // Keep the next file 8-byte aligned.
    a.used += (size + 7) & ~7;
    a.live++;
    let freed = false;
    return {
      data,
      free: () => {
        if (freed) return;
        freed = true;
        a.live--;
        if (a.live === 0 && a !== this.current) this.give(a.buf);
      },
    };
  }

  private give(buf: Buffer): void {
    if (this.spare.length < this.keep) this.spare.push(buf);
  }
}

const smallFileBuffers = new ArenaPool(1 << 20, 8);

const WRITE_BUFFER = 1 << 20;
const spareWriteBuffers: Buffer[] = [];

function takeWriteBuffer(): Buffer {
  return spareWriteBuffers.pop() ?? Buffer.allocUnsafe(WRITE_BUFFER);
}

function giveWriteBuffer(buf: Buffer): void {
  if (spareWriteBuffers.length < 8) spareWriteBuffers.push(buf);
}

/** trusted.overlay.* from an archive would change overlayfs' view of the layer: never applied. */
function allowedXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.');
}

async function applyMetadata(path: string, header: TarHeader, chown: boolean): Promise<void> {
  if (chown) await lchown(path, header.uid, header.gid);
  await chmod(path, header.mode);
  for (const [k, v] of header.xattrs) if (allowedXattr(k)) await setXattr(path, k, v);
}
