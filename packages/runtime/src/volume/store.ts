import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Mount } from '../spec/types.js';
import { readJsonFile, writeFileAtomic } from '../network/atomic-file.js';
import { runCommand } from '../runtime/process.js';
import { InvalidMountError, VolumeError, VolumeInUseError, VolumeNotFoundError } from './errors.js';
import { cleanContainerPath, resolveInRoot } from './resolve.js';
import type {
  ContainerMountRequest,
  ContainerMounts,
  MountPoint,
  MountRequest,
  VolumeCreateOptions,
  VolumeFilters,
  VolumeInspect,
  VolumePruneReport,
} from './types.js';

interface VolumeMeta {
  name: string;
  createdAt: string;
  labels: Record<string, string>;
  options: Record<string, string>;
}

interface ContainerRefs {
  mountPoints: MountPoint[];
  /** Anonymous volumes created for this container (removed with it when asked). */
  anonymous: string[];
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** A mount being assembled: its inspect form, plus the volume to copy image content into. */
interface Planned {
  point: MountPoint;
  mount: Mount;
  copyUp?: { volume: string; subpath?: string };
}

/**
 * Volumes with the `local` driver: `<dataRoot>/volumes/<name>/_data` directories with their
 * metadata beside them (`volume.json`, written atomically), and the mounts of containers that
 * turn binds, volumes, tmpfs and `--volumes-from` into OCI mounts.
 *
 * A volume is in use from `prepareMounts` (container create) until `releaseMounts` (container
 * removal) — as in Docker, a stopped container still holds its volumes. The references are
 * persisted (`<dataRoot>/volumes/.containers.json`), so they survive a daemon restart.
 * Operations are serialised inside the process; one store per data root.
 */
export class VolumeStore {
  private refs: Record<string, ContainerRefs> = {};
  private queue: Promise<unknown> = Promise.resolve();
  readonly root: string;
  private readonly refsFile: string;

  private constructor(dataRoot: string) {
    this.root = join(dataRoot, 'volumes');
    this.refsFile = join(this.root, '.containers.json');
  }

  static async open(options: { dataRoot: string }): Promise<VolumeStore> {
    const s = new VolumeStore(options.dataRoot);
    await mkdir(s.root, { recursive: true, mode: 0o701 });
    s.refs = (await readJsonFile<Record<string, ContainerRefs>>(s.refsFile)) ?? {};
    return s;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async saveRefs(): Promise<void> {
    await writeFileAtomic(this.refsFile, JSON.stringify(this.refs));
  }

  private dir(name: string): string {
    return join(this.root, name);
  }

  /** Host directory holding a volume's data. */
  dataPath(name: string): string {
    return join(this.root, name, '_data');
  }

  private async meta(name: string): Promise<VolumeMeta> {
    if (!NAME_RE.test(name)) throw new VolumeNotFoundError(name);
    const m = await readJsonFile<VolumeMeta>(join(this.dir(name), 'volume.json'));
    if (m === undefined) throw new VolumeNotFoundError(name);
    return m;
  }

  private toInspect(m: VolumeMeta): VolumeInspect {
    return {
      Name: m.name,
      Driver: 'local',
      Mountpoint: this.dataPath(m.name),
      CreatedAt: m.createdAt,
      Labels: { ...m.labels },
      Scope: 'local',
      Options: { ...m.options },
    };
  }

  /** Container ids that reference the volume. */
  users(name: string): string[] {
    return Object.entries(this.refs)
      .filter(([, r]) => r.mountPoints.some((p) => p.Type === 'volume' && p.Name === name))
      .map(([id]) => id);
  }

  /** Whether something is mounted at the volume's data directory. */
  private async deviceMounted(name: string): Promise<boolean> {
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    const target = this.dataPath(name);
    return info.split('\n').some((l) => l.split(' ')[4] === target);
  }

  /** A device-backed volume is mounted before a container uses it (Docker's local driver). */
  private async mountDevice(name: string): Promise<void> {
    const { options } = await this.meta(name);
    if (!options['type'] || !options['device'] || (await this.deviceMounted(name))) return;
    const args = ['-t', options['type'], ...(options['o'] ? ['-o', options['o']] : []), options['device'], this.dataPath(name)];
    const r = await runCommand('mount', args);
    if (r.code !== 0) {
      throw new VolumeError('MOUNT_FAILED', 'invalid', `error while mounting volume '${this.dataPath(name)}': failed to mount local volume: ${r.stderr.trim() || `mount exited with ${r.code}`}`);
    }
  }

  /** Unmounts a device-backed volume; throws when it stays mounted (its files must not be deleted through it). */
  private async unmountDevice(name: string): Promise<void> {
    if (!(await this.deviceMounted(name))) return;
    const r = await runCommand('umount', [this.dataPath(name)]);
    if (r.code !== 0 && (await this.deviceMounted(name))) {
      throw new VolumeError('UNMOUNT_FAILED', 'internal', `cannot unmount volume ${name} at ${this.dataPath(name)}: ${r.stderr.trim()}`);
    }
  }

  /** Deletes a volume's directory, never through a mount. */
  private async removeDir(name: string): Promise<void> {
    await this.unmountDevice(name);
    await rm(this.dir(name), { recursive: true, force: true });
  }

  /**
   * `POST /volumes/create`. Creating an existing name returns it unchanged (Docker's behaviour),
   * unless the labels or options differ (conflict).
   */
  create(opts: VolumeCreateOptions = {}): Promise<VolumeInspect> {
    return this.exclusive(() => this.createLocked(opts));
  }

  private async createLocked(opts: VolumeCreateOptions): Promise<VolumeInspect> {
    const driver = opts.driver ?? 'local';
    if (driver !== 'local') throw new VolumeError('UNSUPPORTED_DRIVER', 'invalid', `volume driver ${driver} is not supported (only local)`);
    const anonymous = opts.name === undefined || opts.name === '';
    const name = anonymous ? randomBytes(32).toString('hex') : (opts.name as string);
    if (!NAME_RE.test(name)) {
      throw new VolumeError('INVALID_NAME', 'invalid', `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
    }
    const unsupported = Object.keys(opts.driverOpts ?? {}).filter((k) => !['type', 'o', 'device'].includes(k));
    if (unsupported.length > 0) throw new VolumeError('INVALID_OPTION', 'invalid', `invalid option key: ${unsupported.join(', ')}`);
    // A device or filesystem (`--opt type=tmpfs --opt device=tmpfs --opt o=size=64m`, or
    // `type=none o=bind device=/srv/data`): mounted at the volume's data directory while
    // containers use it (mountDevice), as Docker's local driver does.
    const d = opts.driverOpts ?? {};
    if (d.type !== undefined && (d.device === undefined || d.device === '')) throw new VolumeError('INVALID_OPTION', 'invalid', `create ${name}: missing required option: "device"`);
    if (d.device !== undefined && (d.type === undefined || d.type === '')) throw new VolumeError('INVALID_OPTION', 'invalid', `create ${name}: missing required option: "type"`);
    const existing = await readJsonFile<VolumeMeta>(join(this.dir(name), 'volume.json'));
    if (existing) return this.toInspect(existing);
    const labels = { ...(opts.labels ?? {}) };
    if (anonymous) labels[ANONYMOUS_LABEL] = '';
    const meta: VolumeMeta = { name, createdAt: new Date().toISOString(), labels, options: { ...(opts.driverOpts ?? {}) } };
    await mkdir(this.dataPath(name), { recursive: true, mode: 0o755 });
    await writeFileAtomic(join(this.dir(name), 'volume.json'), JSON.stringify(meta));
    return this.toInspect(meta);
  }

  /** `GET /volumes/{name}`; `withUsage` adds `UsageData` (size via `du`). */
  async inspect(name: string, opts: { withUsage?: boolean } = {}): Promise<VolumeInspect> {
    const v = this.toInspect(await this.meta(name));
    if (opts.withUsage === true) v.UsageData = { Size: await diskUsage(this.dataPath(name)), RefCount: this.users(name).length };
    return v;
  }

  /** `GET /volumes` with Docker's filters (`name` is a substring match). */
  async list(filters: VolumeFilters = {}, opts: { withUsage?: boolean } = {}): Promise<VolumeInspect[]> {
    const out: VolumeInspect[] = [];
    for (const entry of await readdir(this.root)) {
      if (!NAME_RE.test(entry)) continue;
      const m = await readJsonFile<VolumeMeta>(join(this.dir(entry), 'volume.json')).catch(() => undefined);
      if (m === undefined || !this.matches(m, filters)) continue;
      const v = this.toInspect(m);
      if (opts.withUsage === true) v.UsageData = { Size: await diskUsage(this.dataPath(m.name)), RefCount: this.users(m.name).length };
      out.push(v);
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }

  private matches(m: VolumeMeta, f: VolumeFilters): boolean {
    if (f.name?.length && !f.name.some((s) => m.name.includes(s))) return false;
    if (f.driver?.length && !f.driver.includes('local')) return false;
    if (f.label?.length && !f.label.every((l) => matchLabel(m.labels, l))) return false;
    if (f.dangling?.length) {
      const want = f.dangling.includes('true') || f.dangling.includes('1');
      if ((this.users(m.name).length === 0) !== want) return false;
    }
    return true;
  }

  /** `DELETE /volumes/{name}`. In use → `VolumeInUseError`; `force` only ignores a missing volume. */
  remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      try {
        await this.meta(name);
      } catch (e) {
        if (opts.force === true && e instanceof VolumeNotFoundError) return;
        throw e;
      }
      const users = this.users(name);
      if (users.length > 0) throw new VolumeInUseError(name, users);
      await this.removeDir(name);
    });
  }

  /**
   * `POST /volumes/prune`: unused volumes matching the label filters — anonymous ones only,
   * unless `all: ['true']` (Docker ≥ 23).
   */
  async prune(filters: Pick<VolumeFilters, 'label' | 'all'> = {}): Promise<VolumePruneReport> {
    const all = filters.all?.includes('true') === true || filters.all?.includes('1') === true;
    const report: VolumePruneReport = { VolumesDeleted: [], SpaceReclaimed: 0 };
    for (const v of await this.list({ dangling: ['true'], ...(filters.label ? { label: filters.label } : {}) })) {
      if (!all && !(ANONYMOUS_LABEL in v.Labels)) continue;
      const size = await diskUsage(v.Mountpoint);
      try {
        await this.remove(v.Name);
        report.VolumesDeleted.push(v.Name);
        report.SpaceReclaimed += size;
      } catch (e) {
        if (!(e instanceof VolumeInUseError)) throw e;
      }
    }
    return report;
  }

  /** The volume's content as a tar stream (GNU tar, numeric owners, relative names). */
  exportVolume(name: string): Readable {
    const out = new PassThrough();
    this.meta(name).then(
      () => {
        const child = spawn('tar', ['-C', this.dataPath(name), '--numeric-owner', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.stdout.pipe(out, { end: false });
        child.on('error', (e) => out.destroy(e));
        child.on('close', (code) => {
          if (code === 0) out.end();
          else out.destroy(new VolumeError('EXPORT_FAILED', 'internal', `export of volume ${name} failed: ${err.trim()}`));
        });
      },
      (e: unknown) => out.destroy(e as Error),
    );
    return out;
  }

  /**
   * Extracts a tar stream into an existing volume (over what is there). GNU tar refuses member
   * names with `..` and absolute names, and defers symlinks that point outside until the end, so
   * an archive cannot write through a link it planted out of the volume.
   */
  importVolume(name: string, tar: Readable): Promise<void> {
    return this.exclusive(async () => {
      await this.meta(name);
      const child = spawn('tar', ['-C', this.dataPath(name), '--numeric-owner', '-xf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      // tar stops reading at the end-of-archive blocks and may exit before the record padding
      // is written: a broken pipe after a successful exit is normal, so its exit code decides.
      child.stdin.on('error', () => undefined);
      let sourceError: unknown;
      const exited = new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => resolve(code ?? -1));
      });
      tar.on('error', (e) => {
        sourceError = e;
        child.kill();
      });
      tar.pipe(child.stdin);
      const code = await exited;
      tar.unpipe(child.stdin);
      tar.resume();
      if (sourceError !== undefined || code !== 0) {
        const why = err.trim() || (sourceError instanceof Error ? sourceError.message : `tar exited with ${code}`);
        throw new VolumeError('IMPORT_FAILED', 'invalid', `import into volume ${name} failed: ${why}`, { cause: sourceError });
      }
    });
  }

  // ---------------------------------------------------------------- container mounts

  /**
   * Turns a container's binds, mounts, tmpfs, `--volumes-from` and image `VOLUME`s into OCI
   * mounts, creating named and anonymous volumes as needed and copying the image's content into
   * empty volumes (unless `nocopy`). Records the container as a user of its volumes. Call at
   * container create; `releaseMounts` at container removal. A container prepared twice gets
   * its earlier references replaced.
   */
  prepareMounts(req: ContainerMountRequest): Promise<ContainerMounts> {
    return this.exclusive(async () => {
      const planned = new Map<string, Planned>();
      const created: string[] = [];
      const anonymous: string[] = [...(this.refs[req.containerId]?.anonymous ?? [])];
      try {
        // 1. --volumes-from: the other container's volumes and binds, at the same destinations.
        for (const spec of req.volumesFrom ?? []) {
          const [id = '', mode] = spec.split(':');
          const other = this.refs[id];
          if (other === undefined) throw new InvalidMountError(`--volumes-from ${id}: no such container with mounts`);
          if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new InvalidMountError(`invalid mode for --volumes-from: ${spec}`);
          for (const p of other.mountPoints) {
            if (p.Type === 'tmpfs') continue;
            const rw = mode === undefined ? p.RW : mode === 'rw';
            const point: MountPoint = { ...p, RW: rw, Mode: rw ? (p.Mode.replace(/\bro\b/, '') || '') : p.Mode.includes('ro') ? p.Mode : [p.Mode, 'ro'].filter(Boolean).join(',') };
            planned.set(p.Destination, { point, mount: bindMount(p.Source, p.Destination, rw, p.Propagation || 'rprivate') });
          }
        }
        // 2. User mounts: -v and --mount. Duplicates between them are an error, found before
        //    any volume is created.
        const dests = [
          ...(req.binds ?? []).map((b) => {
            const parts = b.split(':');
            return cleanContainerPath((parts.length === 1 ? parts[0] : parts[1]) ?? '');
          }),
          ...(req.mounts ?? []).map((x) => cleanContainerPath(x.Target ?? '')),
          ...Object.keys(req.tmpfs ?? {}).map((t) => cleanContainerPath(t)),
        ];
        const dup = dests.find((d, i) => dests.indexOf(d) !== i);
        if (dup !== undefined) throw new InvalidMountError(`Duplicate mount point: ${dup}`);
        const user = new Set<string>();
        const add = (p: Planned): void => {
          if (user.has(p.point.Destination)) throw new InvalidMountError(`Duplicate mount point: ${p.point.Destination}`);
          user.add(p.point.Destination);
          planned.set(p.point.Destination, p);
        };
        for (const b of req.binds ?? []) add(await this.planBind(b, created, anonymous));
        for (const m of req.mounts ?? []) add(await this.planMount(m, created, anonymous));
        for (const [target, opts] of Object.entries(req.tmpfs ?? {})) {
          add(tmpfsPlan(cleanContainerPath(target), opts === '' ? [] : opts.split(',')));
        }
        // 3. Image VOLUMEs not covered by anything above: anonymous volumes.
        for (const raw of Object.keys(req.imageVolumes ?? {})) {
          const dest = cleanContainerPath(raw.startsWith('/') ? raw : `/${raw}`, 'image VOLUME');
          if (planned.has(dest)) continue;
          const v = await this.createLocked({});
          created.push(v.Name);
          anonymous.push(v.Name);
          planned.set(dest, volumePlan(v.Name, this.dataPath(v.Name), dest, true, 'rprivate', false));
        }
        // 4. Device-backed volumes are mounted; then copy-up into empty volumes, from the image
        //    content at the destination.
        for (const p of planned.values()) if (p.point.Type === 'volume' && p.point.Name) await this.mountDevice(p.point.Name);
        const copies = [...planned.values()].filter((p) => p.copyUp !== undefined);
        if (copies.length > 0) {
          await withImageView(req.rootfs, async (root) => {
            for (const p of copies) {
              const target = p.copyUp?.subpath ?? this.dataPath(p.copyUp?.volume ?? '');
              await copyUp(root, p.point.Destination, target);
            }
          });
        }
        // Parents before children, so a mount inside another volume lands on top of it.
        const ordered = [...planned.values()].sort(
          (a, b) => a.point.Destination.split('/').length - b.point.Destination.split('/').length,
        );
        this.refs[req.containerId] = { mountPoints: ordered.map((p) => p.point), anonymous };
        await this.saveRefs();
        return { mounts: ordered.map((p) => p.mount), mountPoints: ordered.map((p) => p.point) };
      } catch (e) {
        for (const name of created) await this.removeDir(name).catch(() => undefined);
        // Mounted for this container only: nothing else uses them now.
        for (const p of planned.values()) {
          if (p.point.Type === 'volume' && p.point.Name && this.users(p.point.Name).length === 0) await this.unmountDevice(p.point.Name).catch(() => undefined);
        }
        throw e;
      }
    });
  }

  /** The recorded mount points of a container (inspect), or undefined. */
  mountPoints(containerId: string): MountPoint[] | undefined {
    return this.refs[containerId]?.mountPoints.map((p) => ({ ...p }));
  }

  /**
   * Drops a container's references (container removal). With `removeAnonymous` (`docker rm -v`,
   * `--rm`), its anonymous volumes that nothing else uses are deleted. Idempotent.
   */
  releaseMounts(containerId: string, opts: { removeAnonymous?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      const r = this.refs[containerId];
      if (r === undefined) return;
      delete this.refs[containerId];
      await this.saveRefs();
      const names = new Set(r.mountPoints.filter((p) => p.Type === 'volume' && p.Name).map((p) => p.Name as string));
      for (const name of names) {
        if (this.users(name).length > 0) continue;
        if (opts.removeAnonymous === true && r.anonymous.includes(name)) await this.removeDir(name);
        else await this.unmountDevice(name).catch(() => undefined);
      }
    });
  }

  /** Drops references of containers that no longer exist (daemon start). Returns the ids dropped. */
  reconcile(existing: Iterable<string>): Promise<string[]> {
    return this.exclusive(async () => {
      const keep = new Set(existing);
      const dropped = Object.keys(this.refs).filter((id) => !keep.has(id));
      for (const id of dropped) delete this.refs[id];
      if (dropped.length > 0) await this.saveRefs();
      // Device-backed volumes that no container uses any more are unmounted.
      for (const v of await this.list()) {
        if (v.Options['type'] && this.users(v.Name).length === 0) await this.unmountDevice(v.Name).catch(() => undefined);
      }
      return dropped;
    });
  }

  private async planBind(spec: string, created: string[], anonymous: string[]): Promise<Planned> {
    const parts = spec.split(':');
    if (parts.length > 3 || parts.some((p) => p === '')) throw new InvalidMountError(`invalid volume specification: '${spec}'`);
    let source: string | undefined;
    let dest: string;
    let mode = '';
    if (parts.length === 1) dest = parts[0] as string;
    else [source, dest, mode = ''] = parts as [string, string, string?];
    dest = cleanContainerPath(dest);
    const flags = mode === '' ? [] : mode.split(',');
    let ro = false;
    let propagation = '';
    let nocopy = false;
    for (const f of flags) {
      if (f === 'ro') ro = true;
      else if (f === 'rw') ro = false;
      else if (PROPAGATIONS.has(f)) propagation = f;
      else if (f === 'nocopy') nocopy = true;
      else if (f === 'z' || f === 'Z' || f === 'consistent' || f === 'cached' || f === 'delegated') continue;
      else throw new InvalidMountError(`invalid mode: ${f} in volume specification '${spec}'`);
    }
    if (source === undefined || !source.startsWith('/')) {
      if (propagation !== '') throw new InvalidMountError(`invalid volume specification: '${spec}': propagation applies to bind mounts only`);
      const v = await this.createLocked(source !== undefined ? { name: source } : {});
      if (source === undefined) {
        created.push(v.Name);
        anonymous.push(v.Name);
      }
      return volumePlan(v.Name, this.dataPath(v.Name), dest, !ro, 'rprivate', nocopy, mode);
    }
    if (nocopy) throw new InvalidMountError(`invalid volume specification: '${spec}': nocopy applies to volumes only`);
    const host = posix.resolve(source);
    // `-v` creates a missing host directory, as Docker does (unlike `--mount`); an existing
    // file, socket or directory is bound as it is.
    try {
      await stat(host);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(host, { recursive: true });
    }
    return {
      point: { Type: 'bind', Source: host, Destination: dest, Mode: mode, RW: !ro, Propagation: propagation || 'rprivate' },
      mount: bindMount(host, dest, !ro, propagation || 'rprivate'),
    };
  }

  private async planMount(m: MountRequest, created: string[], anonymous: string[]): Promise<Planned> {
    const dest = cleanContainerPath(m.Target ?? '');
    const ro = m.ReadOnly === true;
    if (m.Type === 'tmpfs') {
      if (m.Source) throw new InvalidMountError(`invalid mount config for type "tmpfs": source must not be specified`);
      const opts: string[] = [];
      if (m.TmpfsOptions?.SizeBytes !== undefined) opts.push(`size=${m.TmpfsOptions.SizeBytes}`);
      if (m.TmpfsOptions?.Mode !== undefined) opts.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
      for (const o of m.TmpfsOptions?.Options ?? []) opts.push(o.filter(Boolean).join('='));
      if (ro) opts.push('ro');
      return tmpfsPlan(dest, opts, true);
    }
    if (m.Type === 'bind') {
      const src = m.Source ?? '';
      if (!src.startsWith('/')) throw new InvalidMountError(`invalid mount config for type "bind": invalid mount path: '${src}' mount path must be absolute`);
      const host = posix.resolve(src);
      const propagation = m.BindOptions?.Propagation || 'rprivate';
      if (!PROPAGATIONS.has(propagation)) throw new InvalidMountError(`invalid propagation mode: ${propagation}`);
      try {
        await stat(host);
      } catch (e) {
        if (m.BindOptions?.CreateMountpoint === true) await mkdir(host, { recursive: true });
        else throw new InvalidMountError(`invalid mount config for type "bind": bind source path does not exist: ${host}`, { cause: e });
      }
      return {
        point: { Type: 'bind', Source: host, Destination: dest, Mode: '', RW: !ro, Propagation: propagation },
        mount: bindMount(host, dest, !ro, propagation),
      };
    }
    if (m.Type === 'volume') {
      const name = m.Source ?? '';
      const v = await this.createLocked(name !== '' ? { name, labels: m.VolumeOptions?.Labels ?? {} } : { labels: m.VolumeOptions?.Labels ?? {} });
      if (name === '') {
        created.push(v.Name);
        anonymous.push(v.Name);
      }
      let source = this.dataPath(v.Name);
      const sub = m.VolumeOptions?.Subpath;
      if (sub !== undefined && sub !== '') {
        if (sub.startsWith('/')) throw new InvalidMountError(`invalid volume subpath: ${sub} must be relative`);
        source = await resolveInRoot(source, sub);
        try {
          await stat(source);
        } catch (e) {
          throw new InvalidMountError(`cannot access volume subpath ${sub} of volume ${v.Name}`, { cause: e });
        }
      }
      const p = volumePlan(v.Name, source, dest, !ro, 'rprivate', m.VolumeOptions?.NoCopy === true || source !== this.dataPath(v.Name));
      return p;
    }
    throw new InvalidMountError(`invalid mount type: ${String((m as { Type: unknown }).Type)}`);
  }
}

function bindMount(source: string, target: string, rw: boolean, propagation: string): Mount {
  return { type: 'bind', source, target, options: ['rbind', propagation, ...(rw ? [] : ['ro'])] };
}

function volumePlan(name: string, source: string, dest: string, rw: boolean, propagation: string, nocopy: boolean, mode = ''): Planned {
  return {
    point: { Type: 'volume', Name: name, Source: source, Destination: dest, Driver: 'local', Mode: mode, RW: rw, Propagation: '' },
    mount: bindMount(source, dest, rw, propagation),
    ...(nocopy ? {} : { copyUp: { volume: name } }),
  };
}

/** tmpfs with Docker's defaults (noexec,nosuid,nodev; `--mount` adds mode 1777), user options last. */
function tmpfsPlan(dest: string, userOpts: string[], isMountFlag = false): Planned {
  for (const o of userOpts) {
    if (!/^[a-z_]+(=[a-zA-Z0-9.,:%+-]+)?$/.test(o)) throw new InvalidMountError(`invalid tmpfs option: ${o}`);
  }
  const defaults = ['noexec', 'nosuid', 'nodev', ...(isMountFlag && !userOpts.some((o) => o.startsWith('mode=')) ? ['mode=1777'] : [])];
  const userFlags = new Set(userOpts.map((o) => o.split('=')[0]));
  const opposite: Record<string, string> = { noexec: 'exec', nosuid: 'suid', nodev: 'dev' };
  const opts = [...defaults.filter((d) => !userFlags.has(opposite[d] ?? '')), ...userOpts];
  const ro = opts.includes('ro');
  return {
    point: { Type: 'tmpfs', Source: '', Destination: dest, Mode: userOpts.join(','), RW: !ro, Propagation: '' },
    mount: { type: 'tmpfs', source: 'tmpfs', target: dest, options: opts },
  };
}

/**
 * Runs `fn` with a directory showing the image content of a container's root filesystem: the
 * directory itself, the source of a bind, or — for the snapshotter's overlay — a read-only overlay
 * of its lower layers mounted for the duration (the container's own upper layer is not needed:
 * copy-up happens before the container ever ran).
 */
async function withImageView(rootfs: string | Mount[], fn: (root: string) => Promise<void>): Promise<void> {
  if (typeof rootfs === 'string') return fn(rootfs);
  const m = rootfs[0];
  if (m === undefined) throw new InvalidMountError('the container has no root filesystem to copy volume content from');
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) return fn(m.source);
  if (m.type !== 'overlay') throw new InvalidMountError(`cannot read image content from a ${m.type} root filesystem`);
  const lower = m.options.find((o) => o.startsWith('lowerdir='))?.slice('lowerdir='.length);
  const upper = m.options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  const layers = [...(upper ? [upper] : []), ...(lower ? lower.split(':') : [])];
  if (layers.length === 1) return fn(layers[0] as string);
  if (layers.length === 0) throw new InvalidMountError('overlay root filesystem without layers');
  const view = await mkdtemp(join(tmpdir(), 'berth-copyup-'));
  await run(['mount', '-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${layers.join(':')}`, view]);
  try {
    await fn(view);
  } finally {
    await run(['umount', view]).catch(() => undefined);
    await rmdir(view).catch(() => undefined);
  }
}

/** Copies what the image has at `dest` into an empty volume directory (Docker's copy-up). */
async function copyUp(root: string, dest: string, volumeDir: string): Promise<void> {
  const entries = await readdir(volumeDir).catch(() => ['?']);
  if (entries.length > 0) return;
  const src = await resolveInRoot(root, dest);
  let st;
  try {
    st = await stat(src);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  // cp -a: symlinks stay links (never followed), owners, modes and times are kept, and the
  // attributes of the directory itself go onto the volume's root.
  await run(['cp', '-a', '--', `${src}/.`, `${volumeDir}/`]);
}

function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

async function diskUsage(path: string): Promise<number> {
  const r = await run(['du', '-sb', path]).catch(() => undefined);
  return Number(r?.stdout.split(/\s/)[0] ?? 0) || 0;
}

function run(argv: string[]): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve({ stdout: out }) : reject(new VolumeError('COMMAND_FAILED', 'internal', `${argv.join(' ')}: ${err.trim()}`)),
    );
  });
}
