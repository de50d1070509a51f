import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { ByteSource, readTar, type TarHeader } from '@berth/image';
import { DaemonError, InvalidParameterError } from '../errors.js';
import { resolveInRoot } from './rootfs.js';

const run = promisify(execFile);

export interface ExtractOptions {
  /** Refuse to replace a directory with a non-directory or the reverse (`docker cp` default). */
  noOverwriteDirNonDir: boolean;
  /** Keep the archive's uid/gid (`docker cp -a`); otherwise entries are owned by root. */
  copyUIDGID: boolean;
}

/**
 * Extracts a tar stream into the container path `dest` (a directory) of the root filesystem at
 * `root` — in Node, never with a host or container binary following links. Every entry's parent
 * is resolved inside `root` as a chroot would (symlinks, also absolute ones, stay inside), the
 * final component is never followed, files are created with O_NOFOLLOW|O_EXCL, and names that
 * leave `dest` (`..`, through the archive's own entries) are refused.
 */
export async function extractToContainer(root: string, dest: string, input: AsyncIterable<Buffer | Uint8Array>, options: ExtractOptions): Promise<void> {
  const destPath = posix.normalize('/' + dest);
  for await (const { header, body } of readTar(new ByteSource(input))) {
    const name = entryName(header.path);
    if (name === undefined) {
      // "." or "./": the extraction point itself; nothing to create.
      for await (const chunk of body()) void chunk;
      continue;
    }
    const inContainer = posix.join(destPath, name);
    await mkdirInRoot(root, posix.dirname(inContainer));
    const parent = await resolveInRoot(root, posix.dirname(inContainer), true);
    const host = join(parent, posix.basename(inContainer));
    await replaceExisting(host, header, inContainer, options);
    const isDirEntry = header.type === 'directory';
    switch (header.type) {
      case 'directory': {
        const exists = await lstat(host).then((st) => st.isDirectory(), () => false);
        if (!exists) await mkdir(host, { mode: header.mode & 0o7777 });
        break;
      }
      case 'file': {
        const fh = await open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, header.mode & 0o7777);
        try {
          for await (const chunk of body()) await fh.write(chunk);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        await symlink(header.linkpath, host);
        break;
      case 'hardlink': {
        const targetName = entryName(header.linkpath);
        if (targetName === undefined) throw new InvalidParameterError(`invalid hardlink target in archive: ${header.linkpath}`);
        const targetInContainer = posix.join(destPath, targetName);
        const targetParent = await resolveInRoot(root, posix.dirname(targetInContainer), true);
        const target = join(targetParent, posix.basename(targetInContainer));
        const st = await lstat(target).catch(() => undefined);
        if (!st || st.isDirectory()) throw new InvalidParameterError(`invalid hardlink target in archive: ${header.linkpath}`);
        await link(target, host);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = header.type === 'char' ? 'c' : header.type === 'block' ? 'b' : 'p';
        const args = ['-m', (header.mode & 0o7777).toString(8), host, kind];
        if (kind !== 'p') args.push(String(header.devmajor), String(header.devminor));
        await run('/usr/bin/mknod', args);
        break;
      }
      default:
        throw new InvalidParameterError(`unsupported tar entry type ${JSON.stringify(header.typeflag)} for ${header.path}`);
    }
    const uid = options.copyUIDGID ? header.uid : 0;
    const gid = options.copyUIDGID ? header.gid : 0;
    await lchown(host, uid, gid);
    if (header.type !== 'symlink') await chmod(host, header.mode & 0o7777);
    if (!isDirEntry) await lutimes(host, header.mtime, header.mtime).catch(() => undefined);
  }
}

/** An entry's name relative to the extraction point, or undefined for the point itself. */
function entryName(path: string): string | undefined {
  const norm = posix.normalize(path.replace(/^\/+/, ''));
  if (norm === '.' || norm === '' || norm === './') return undefined;
  if (norm === '..' || norm.startsWith('../')) throw new InvalidParameterError(`archive entry leaves the extraction point: ${path}`);
  return norm.replace(/\/+$/, '');
}

/** mkdir -p inside the root; every component resolved like a chroot would (links stay inside). */
async function mkdirInRoot(root: string, dir: string, depth = 0): Promise<void> {
  if (depth > 255) throw new DaemonError('TOO_MANY_LINKS', 'invalid', `too many levels of symbolic links: ${dir}`);
  const host = await resolveInRoot(root, dir, true);
  // The container path the link chain resolved to (host is always root + that path). The root
  // itself exists (and may be /proc/<pid>/root, a link lstat would not call a directory).
  const resolved = '/' + host.slice(join(root).length).replace(/^\/+/, '');
  if (resolved === '/') return;
  const st = await lstat(host).catch(() => undefined);
  if (st?.isDirectory()) return;
  if (st) throw new DaemonError('NOT_A_DIRECTORY', 'invalid', `not a directory: ${dir}`);
  await mkdirInRoot(root, posix.dirname(resolved), depth + 1);
  await mkdir(host, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

/** Docker's rules for an existing path at an entry's place; removes it unless both are dirs. */
async function replaceExisting(host: string, header: TarHeader, inContainer: string, options: ExtractOptions): Promise<void> {
  const st = await lstat(host).catch(() => undefined);
  if (!st) return;
  const entryIsDir = header.type === 'directory';
  if (options.noOverwriteDirNonDir && st.isDirectory() && !entryIsDir) {
    throw new DaemonError('OVERWRITE_DIR', 'invalid', `cannot overwrite directory "${inContainer}" with non-directory`);
  }
  if (options.noOverwriteDirNonDir && !st.isDirectory() && entryIsDir) {
    throw new DaemonError('OVERWRITE_NONDIR', 'invalid', `cannot overwrite non-directory "${inContainer}" with directory`);
  }
  if (st.isDirectory() && entryIsDir) return;
  await rm(host, { recursive: true, force: true });
}

/**
 * Runs `fn` with a running container frozen (Docker 19.03's CVE-2018-15664 mitigation): nothing
 * in the container can swap a path for a symlink between resolving and using it.
 */
export async function withContainerFrozen<T>(
  running: boolean,
  alreadyPaused: boolean,
  pause: () => Promise<void>,
  unpause: () => Promise<void>,
  fn: () => Promise<T>,
): Promise<T> {
  if (!running || alreadyPaused) return fn();
  await pause();
  try {
    return await fn();
  } finally {
    await unpause();
  }
}
