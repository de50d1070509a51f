import { execFile } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, rename, rm, open } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { SnapshotExistsError, SnapshotNotFoundError, SnapshotStateError, ImageError } from '../errors.js';
import type { Mount, SnapshotInfo, SnapshotKind, Snapshotter } from './types.js';

const run = promisify(execFile);

interface Record_ {
  id: number;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  createdAt: string;
}

interface Metadata {
  nextId: number;
  snapshots: Record<string, Record_>;
}

/**
 * overlayfs snapshotter, laid out like containerd's:
 *   <root>/metadata.json   key → {id, kind, parent, labels}; rewritten atomically
 *   <root>/<id>/fs         the snapshot's own files (a layer, or a container's upperdir)
 *   <root>/<id>/work       overlay workdir of an active snapshot
 * Numeric ids keep each lowerdir path short; `mountAll` shortens further (relative paths under
 * a common cwd) when an image has so many layers that the options exceed a page.
 */
export class OverlaySnapshotter implements Snapshotter {
  private meta: Metadata = { nextId: 1, snapshots: {} };
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(readonly root: string) {}

  static async open(root: string): Promise<OverlaySnapshotter> {
    await mkdir(root, { recursive: true, mode: 0o710 });
    const s = new OverlaySnapshotter(root);
    try {
      s.meta = JSON.parse(await readFile(join(root, 'metadata.json'), 'utf8')) as Metadata;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    return s;
  }

  /** Serialises metadata changes (one writer in this process). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lock.then(fn, fn);
    this.lock = next.catch(() => undefined);
    return next;
  }

  private async save(): Promise<void> {
    const tmp = join(this.root, `.metadata.json.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.meta));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.root, 'metadata.json'));
  }

  private get(key: string): Record_ {
    const r = this.meta.snapshots[key];
    if (!r) throw new SnapshotNotFoundError(key);
    return r;
  }

  private dir(r: Record_): string {
    return join(this.root, String(r.id));
  }

  private info(key: string, r: Record_): SnapshotInfo {
    const i: SnapshotInfo = { key, kind: r.kind, labels: { ...r.labels }, createdAt: new Date(r.createdAt) };
    if (r.parent !== undefined) i.parent = r.parent;
    return i;
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return this.info(key, this.get(key));
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void> {
    for (const [key, r] of Object.entries(this.meta.snapshots)) await fn(this.info(key, r));
  }

  async lowerDirs(key: string): Promise<string[]> {
    const out: string[] = [];
    let parent = this.get(key).parent;
    while (parent !== undefined) {
      const p = this.get(parent);
      out.push(join(this.dir(p), 'fs'));
      parent = p.parent;
    }
    return out;
  }

  async upperDir(key: string): Promise<string> {
    const r = this.get(key);
    if (r.kind !== 'active') throw new SnapshotStateError(`snapshot ${key} is ${r.kind}, not active`);
    return join(this.dir(r), 'fs');
  }

  /** The snapshot's own directory, whatever its kind (committed layers included). */
  async snapshotDir(key: string): Promise<string> {
    return join(this.dir(this.get(key)), 'fs');
  }

  private create(kind: 'active' | 'view', key: string, parent: string | undefined, labels: Record<string, string>): Promise<Mount[]> {
    return this.exclusive(async () => {
      if (this.meta.snapshots[key]) throw new SnapshotExistsError(key);
      if (parent !== undefined) {
        const p = this.get(parent);
        if (p.kind !== 'committed') throw new SnapshotStateError(`parent ${parent} is ${p.kind}, not committed`);
      }
      const id = this.meta.nextId++;
      const dir = join(this.root, String(id));
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o710 });
      await mkdir(join(dir, 'fs'), { mode: 0o755 });
      if (kind === 'active') await mkdir(join(dir, 'work'), { mode: 0o700 });
      const r: Record_ = { id, kind, labels, createdAt: new Date().toISOString() };
      if (parent !== undefined) r.parent = parent;
      this.meta.snapshots[key] = r;
      await this.save();
      return this.mountsOf(key, r);
    });
  }

  prepare(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]> {
    return this.create('active', key, parent, opts?.labels ?? {});
  }

  view(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]> {
    return this.create('view', key, parent, opts?.labels ?? {});
  }

  async mounts(key: string): Promise<Mount[]> {
    return this.mountsOf(key, this.get(key));
  }

  private async mountsOf(key: string, r: Record_): Promise<Mount[]> {
    if (r.kind === 'committed') throw new SnapshotStateError(`snapshot ${key} is committed; prepare or view it to mount`);
    const lowers = await this.lowerDirs(key);
    const dir = this.dir(r);
    if (r.kind === 'active') {
      if (lowers.length === 0) return [{ type: 'bind', source: join(dir, 'fs'), options: ['rbind', 'rw'] }];
      return [
        {
          type: 'overlay',
          source: 'overlay',
          options: [`lowerdir=${lowers.join(':')}`, `upperdir=${join(dir, 'fs')}`, `workdir=${join(dir, 'work')}`],
        },
      ];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: join(dir, 'fs'), options: ['rbind', 'ro'] }];
    if (lowers.length === 1) return [{ type: 'bind', source: lowers[0] as string, options: ['rbind', 'ro'] }];
    return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lowers.join(':')}`, 'ro'] }];
  }

  commit(name: string, key: string, opts?: { labels?: Record<string, string> }): Promise<void> {
    return this.exclusive(async () => {
      const r = this.get(key);
      if (r.kind !== 'active') throw new SnapshotStateError(`snapshot ${key} is ${r.kind}, only active snapshots can be committed`);
      if (this.meta.snapshots[name]) throw new SnapshotExistsError(name);
      await rm(join(this.dir(r), 'work'), { recursive: true, force: true });
      delete this.meta.snapshots[key];
      this.meta.snapshots[name] = { ...r, kind: 'committed', labels: { ...r.labels, ...(opts?.labels ?? {}) } };
      await this.save();
    });
  }

  remove(key: string): Promise<void> {
    return this.exclusive(async () => {
      const r = this.get(key);
      const child = Object.entries(this.meta.snapshots).find(([, c]) => c.parent === key);
      if (child) throw new SnapshotStateError(`snapshot ${key} has a child (${child[0]}); remove it first`);
      delete this.meta.snapshots[key];
      await this.save();
      // Rename first so a crash mid-delete leaves no half directory under a live id.
      const doomed = join(this.root, `.removing-${r.id}-${process.pid}`);
      await rename(this.dir(r), doomed).catch(() => undefined);
      await rm(doomed, { recursive: true, force: true });
    });
  }

  async usage(key: string): Promise<{ size: number; inodes: number }> {
    return diskUsage(join(this.dir(this.get(key)), 'fs'));
  }

  /** Directories under root that no snapshot owns (left by a crash) — removed by `cleanup`. */
  async cleanup(): Promise<string[]> {
    return this.exclusive(async () => {
      const owned = new Set(Object.values(this.meta.snapshots).map((r) => String(r.id)));
      const removed: string[] = [];
      for (const name of await readdir(this.root)) {
        if (name === 'metadata.json') continue;
        if (/^\d+$/.test(name) && owned.has(name)) continue;
        await rm(join(this.root, name), { recursive: true, force: true });
        removed.push(name);
      }
      return removed;
    });
  }
}

/** Bytes (allocated blocks, as `du` counts them; hardlinks once) and inodes under `dir`. */
export async function diskUsage(dir: string): Promise<{ size: number; inodes: number }> {
  let size = 0;
  let inodes = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.nlink > 1 && !st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      size += st.blocks * 512;
      inodes++;
      if (st.isDirectory()) await walk(p);
    }
  };
  const top = await lstat(dir).catch(() => undefined);
  if (top) {
    size += top.blocks * 512;
    inodes++;
  }
  await walk(dir);
  return { size, inodes };
}

export function openOverlaySnapshotter(root: string): Promise<OverlaySnapshotter> {
  return OverlaySnapshotter.open(root);
}

/** Page size the kernel allows for mount options. */
const MAX_MOUNT_OPTIONS = 4000;

/**
 * Mounts `mounts` (as returned by a snapshotter) on `target`. When an overlay's options are
 * longer than the kernel accepts (images with many layers), lower/upper/work dirs are given
 * relative to their longest common directory and mount(8) runs with that as its cwd — the same
 * trick containerd and Docker use.
 */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  for (const m of mounts) {
    let cwd: string | undefined;
    let options = m.options;
    if (m.type === 'overlay' && options.join(',').length > MAX_MOUNT_OPTIONS) {
      const paths = options.flatMap((o) => {
        const eq = o.indexOf('=');
        const k = o.slice(0, eq);
        return ['lowerdir', 'upperdir', 'workdir'].includes(k) ? o.slice(eq + 1).split(':') : [];
      });
      cwd = commonDir(paths);
      const base = cwd;
      options = options.map((o) => {
        const eq = o.indexOf('=');
        const k = o.slice(0, eq);
        if (!['lowerdir', 'upperdir', 'workdir'].includes(k)) return o;
        return `${k}=${o.slice(eq + 1).split(':').map((p) => relative(base, p)).join(':')}`;
      });
      if (options.join(',').length > MAX_MOUNT_OPTIONS * 1.02) {
        throw new ImageError('MOUNT_OPTIONS_TOO_LONG', 'invalid', `overlay mount on ${target}: ${options.length} options too long even with relative paths`);
      }
    }
    const args = m.type === 'bind' ? ['--bind'] : ['-t', m.type];
    const opts = m.type === 'bind' ? options.filter((o) => o !== 'rbind' && o !== 'bind') : options;
    if (m.type === 'bind' && options.includes('rbind')) args[0] = '--rbind';
    if (opts.length) args.push('-o', opts.join(','));
    args.push(m.source, target);
    try {
      await run('mount', args, cwd ? { cwd } : {});
      if (m.type === 'bind' && opts.includes('ro')) await run('mount', ['-o', 'remount,bind,ro', target]);
    } catch (err) {
      throw new ImageError('MOUNT_FAILED', 'internal', `mount ${m.type} on ${target}: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
    }
  }
}

/** Unmounts `target` (lazily if busy is not acceptable: callers stop the container first). */
export async function unmount(target: string): Promise<void> {
  await run('umount', [target]);
}

function commonDir(paths: string[]): string {
  const split = paths.map((p) => p.split('/'));
  const first = split[0] ?? [];
  let n = first.length;
  for (const s of split) {
    let i = 0;
    while (i < n && s[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n).join('/') || '/';
}
