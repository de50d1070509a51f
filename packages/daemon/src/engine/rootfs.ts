import { lstat, mkdir, readlink, rmdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ImageService } from '@berth/image';
import type { Runtime } from '@berth/runtime';
import { DaemonError } from '../errors.js';
import type { ContainerRecord } from '../state/container-store.js';

const run = promisify(execFile);

/**
 * Resolves `path` inside `root` as the container would see it: symlinks are followed but never
 * leave `root` (like securejoin). Returns the host path (which may not exist).
 */
export async function resolveInRoot(root: string, path: string, followFinal = true): Promise<string> {
  const parts = posix.normalize('/' + path).split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, part);
    const isFinal = parts.length === 0;
    let link: string | undefined;
    try {
      const st = await lstat(candidate);
      if (st.isSymbolicLink() && (!isFinal || followFinal)) link = await readlink(candidate);
    } catch {
      link = undefined;
    }
    if (link === undefined) {
      resolved.push(part);
      continue;
    }
    if (++hops > 255) throw new DaemonError('TOO_MANY_LINKS', 'invalid', `too many levels of symbolic links: ${path}`);
    const target = link.split('/').filter((p) => p !== '' && p !== '.');
    if (link.startsWith('/')) resolved.length = 0;
    parts.unshift(...target);
  }
  return join(root, ...resolved);
}

/**
 * Gives `fn` the container's root filesystem on the host: `/proc/<pid>/root` while it runs, the
 * runtime's rootfs mount while the runtime container exists, otherwise a temporary overlay mount
 * of the prepared layers.
 */
export async function withRootfs<T>(
  record: ContainerRecord,
  runtime: Runtime,
  images: ImageService,
  scratchDir: string,
  fn: (root: string) => Promise<T>,
): Promise<T> {
  // A running container's own view (with its volumes and /etc/hosts binds) is its pid's root.
  if (record.State.Running && record.State.Pid > 0) {
    const root = `/proc/${record.State.Pid}/root`;
    if (await stat(root).then(() => true, () => false)) return fn(root);
  }
  if (record.RuntimeCreated) {
    const info = await runtime.state(record.Id).catch(() => undefined);
    if (info) return fn(join(info.bundle, 'rootfs'));
  }
  const mounts = await images.rootfsMounts(record.Id);
  const target = join(scratchDir, `rootfs-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  await mkdir(target, { recursive: true, mode: 0o700 });
  const mounted: string[] = [];
  try {
    for (const m of mounts) {
      const where = m.target ? join(target, m.target) : target;
      const args = ['-t', m.type];
      if (m.options.length > 0) args.push('-o', m.options.join(','));
      args.push(m.source, where);
      await run('mount', args);
      mounted.unshift(where);
    }
    return await fn(target);
  } finally {
    for (const where of mounted) await run('umount', [where]).catch(() => run('umount', ['-l', where]).catch(() => undefined));
    await rmdir(target).catch(() => undefined);
  }
}
