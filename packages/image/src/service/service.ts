import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { formatReference, hostPlatform, parseReference, familiarString, registryHost } from '@berth/oci-spec';
import type { ImageConfig } from '@berth/oci-spec';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import type { Credential, RegistryClientOptions } from '@berth/registry';
import { historyEntry, ingestLayer, writeImage } from '../archive/build.js';
import { loadArchive, loadOciLayoutDir, saveArchive, saveOciLayoutDir } from '../archive/docker-archive.js';
import { pullImage } from '../distribution/pull.js';
import type { RegistrySource } from '../distribution/pull.js';
import { pushImage } from '../distribution/push.js';
import type { RegistrySink } from '../distribution/push.js';
import { ImageInUseError, ImageNotFoundError, SnapshotNotFoundError } from '../errors.js';
import { createDirectoryTar, createLayerTar, upperDirChanges } from '../layer/diff.js';
import { diskUsage, mountAll, unmount } from '../snapshot/overlay.js';
import type { Mount } from '../snapshot/types.js';
import type { ImageContext } from '../store/context.js';
import { openImageContext, recordFor, unpackImage } from '../store/context.js';
import type { ImageRecord } from '../store/image-store.js';
import { imageConfig, imageHistory, inspectImage, summarizeImage } from '../store/inspect.js';
import type {
  DiskUsage,
  FilesystemChange,
  GcResult,
  ImageConfigChanges,
  ImageDeleteResponseItem,
  ImageHistoryEntry,
  ImageInspect,
  ImageService,
  ImageServiceOptions,
  ImageSummary,
  LoadResult,
  PullOptions,
  PullResult,
  PushOptions,
  PushResult,
  RegistryAuth,
} from './types.js';

/** Makes the registry client for one pull or push (credentials and insecure hosts vary per call). */
export type RegistryFactory = (opts: { auth?: RegistryAuth; host: string; insecure: string[] }) => Promise<RegistrySource & RegistrySink>;

const CONTAINER_PREFIX = 'container/';
const containerKey = (id: string): string => `${CONTAINER_PREFIX}${id}`;

function familiar(full: string): string {
  return familiarString(parseReference(full));
}

export class LocalImageService implements ImageService {
  constructor(
    readonly ctx: ImageContext,
    private readonly options: ImageServiceOptions,
    private readonly registry: RegistryFactory,
  ) {}

  get root(): string {
    return this.ctx.root;
  }

  get context(): ImageContext {
    return this.ctx;
  }

  private async client(ref: string, auth: RegistryAuth | undefined, insecure: string[] | undefined): Promise<RegistrySource & RegistrySink> {
    const host = registryHost(parseReference(ref).domain);
    const opts: { auth?: RegistryAuth; host: string; insecure: string[] } = { host, insecure: [...(this.options.insecure ?? []), ...(insecure ?? [])] };
    if (auth) opts.auth = auth;
    return this.registry(opts);
  }

  async pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
    const client = await this.client(ref, opts.auth, opts.insecure);
    const o: Parameters<typeof pullImage>[3] = { concurrency: this.options.concurrency ?? 4 };
    if (opts.platform) o.platform = opts.platform;
    if (opts.onProgress) o.onProgress = opts.onProgress;
    if (opts.signal) o.signal = opts.signal;
    return pullImage(this.ctx, client, ref, o);
  }

  async push(ref: string, opts: PushOptions = {}): Promise<PushResult> {
    const record = this.ctx.images.resolve(ref);
    const client = await this.client(ref, opts.auth, opts.insecure);
    const o: Parameters<typeof pushImage>[4] = {};
    if (opts.onProgress) o.onProgress = opts.onProgress;
    if (opts.signal) o.signal = opts.signal;
    return pushImage(this.ctx, client, record, ref, o);
  }

  private async containerCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    await this.ctx.snapshots.walk((s) => {
      const img = s.labels['berth.image'];
      if (s.key.startsWith(CONTAINER_PREFIX) && img) counts.set(img, (counts.get(img) ?? 0) + 1);
    });
    return counts;
  }

  async list(opts: { all?: boolean; dangling?: boolean; reference?: string[]; labels?: string[] } = {}): Promise<ImageSummary[]> {
    const counts = await this.containerCounts();
    const out: ImageSummary[] = [];
    for (const r of this.ctx.images.list()) {
      const names = this.ctx.images.namesOf(r.id);
      if (opts.dangling === true && names.length > 0) continue;
      if (opts.dangling === false && names.length === 0) continue;
      if (opts.reference?.length) {
        const fam = names.map(familiar);
        const ok = opts.reference.some((pat) => fam.some((n) => globMatch(pat.includes(':') ? pat : `${pat}:*`, n)));
        if (!ok) continue;
      }
      const summary = await summarizeImage(this.ctx, r, counts.get(r.id) ?? 0);
      if (opts.labels?.length) {
        const ok = opts.labels.every((l) => {
          const eq = l.indexOf('=');
          return eq === -1 ? l in summary.Labels : summary.Labels[l.slice(0, eq)] === l.slice(eq + 1);
        });
        if (!ok) continue;
      }
      out.push(summary);
    }
    return out.sort((a, b) => b.Created - a.Created);
  }

  async inspect(ref: string): Promise<ImageInspect> {
    return inspectImage(this.ctx, this.ctx.images.resolve(ref));
  }

  async history(ref: string): Promise<ImageHistoryEntry[]> {
    return imageHistory(this.ctx, this.ctx.images.resolve(ref));
  }

  async exists(ref: string): Promise<boolean> {
    try {
      return this.ctx.images.find(ref) !== undefined;
    } catch {
      return false;
    }
  }

  async tag(source: string, target: string): Promise<void> {
    const record = this.ctx.images.resolve(source);
    await this.ctx.images.tag(record.id, target);
  }

  async remove(ref: string, opts: { force?: boolean; noprune?: boolean } = {}): Promise<ImageDeleteResponseItem[]> {
    const record = this.ctx.images.resolve(ref);
    const names = this.ctx.images.namesOf(record.id);
    const counts = await this.containerCounts();
    const inUse = (counts.get(record.id) ?? 0) > 0;
    const full = safeFormat(ref);
    const byName = names.includes(full);
    const out: ImageDeleteResponseItem[] = [];
    if (byName) {
      if (names.length > 1) {
        await this.ctx.images.untag(full);
        return [{ Untagged: familiar(full) }];
      }
      if (inUse && !opts.force) throw new ImageInUseError(familiar(full), `image is being used by ${counts.get(record.id)} container(s)`);
      await this.ctx.images.untag(full);
      out.push({ Untagged: familiar(full) });
      if (inUse) return out; // the image stays, dangling, under its container
    } else {
      if (names.length > 1 && !opts.force) throw new ImageInUseError(ref, 'image is referenced in multiple repositories');
      if (inUse && !opts.force) throw new ImageInUseError(ref, `image is being used by ${counts.get(record.id)} container(s)`);
      for (const n of names) {
        await this.ctx.images.untag(n);
        out.push({ Untagged: familiar(n) });
      }
      if (inUse) return out;
    }
    for (const d of record.repoDigests) out.push({ Untagged: familiar(d) });
    await this.ctx.images.delete(record.id);
    out.push({ Deleted: record.id });
    if (!opts.noprune) {
      const removed = await this.releaseLayers(record);
      for (const chain of removed) out.push({ Deleted: chain });
      await this.gcContent();
    }
    return out;
  }

  /** Removes the image's layer snapshots that no other image or container stands on, top down. */
  private async releaseLayers(record: ImageRecord): Promise<string[]> {
    const needed = await this.liveSnapshots();
    const removed: string[] = [];
    for (let i = record.layers.length - 1; i >= 0; i--) {
      const chain = (record.layers[i] as ImageRecord['layers'][number]).chainId;
      if (needed.has(chain)) break;
      try {
        await this.ctx.snapshots.remove(chain);
        removed.push(chain);
      } catch (err) {
        if (err instanceof SnapshotNotFoundError) continue;
        break;
      }
    }
    return removed;
  }

  /** Snapshot keys reachable from images and containers (and their parents). */
  private async liveSnapshots(): Promise<Set<string>> {
    const live = new Set<string>();
    for (const r of this.ctx.images.list()) for (const l of r.layers) live.add(l.chainId);
    const parents = new Map<string, string | undefined>();
    const active: string[] = [];
    await this.ctx.snapshots.walk((s) => {
      parents.set(s.key, s.parent);
      if (s.kind !== 'committed') active.push(s.key);
    });
    for (const key of [...active, ...live]) {
      let k: string | undefined = key;
      while (k !== undefined && !live.has(`${k}#seen`)) {
        live.add(k);
        live.add(`${k}#seen`);
        k = parents.get(k);
      }
    }
    return live;
  }

  private async gcContent(): Promise<{ removed: string[]; bytes: number }> {
    const live = new Set<string>();
    for (const r of this.ctx.images.list()) {
      live.add(r.target.digest);
      live.add(r.manifest.digest);
      live.add(r.config.digest);
      for (const l of r.layers) live.add(l.digest);
    }
    const removed: string[] = [];
    let bytes = 0;
    const doomed: { digest: string; size: number }[] = [];
    await this.ctx.content.walk((info) => {
      if (!live.has(info.digest)) doomed.push(info);
    });
    for (const d of doomed) {
      await this.ctx.content.delete(d.digest).catch(() => undefined);
      removed.push(d.digest);
      bytes += d.size;
    }
    return { removed, bytes };
  }

  async prune(opts: { all?: boolean } = {}): Promise<{ deleted: ImageDeleteResponseItem[]; spaceReclaimed: number }> {
    const counts = await this.containerCounts();
    const before = await this.diskUsageBytes();
    const deleted: ImageDeleteResponseItem[] = [];
    for (const r of this.ctx.images.list()) {
      if ((counts.get(r.id) ?? 0) > 0) continue;
      if (!opts.all && this.ctx.images.namesOf(r.id).length > 0) continue;
      deleted.push(...(await this.remove(r.id, { force: true })));
    }
    const after = await this.diskUsageBytes();
    return { deleted, spaceReclaimed: Math.max(0, before - after) };
  }

  private async diskUsageBytes(): Promise<number> {
    return (await diskUsage(this.ctx.root)).size;
  }

  async prepareRootfs(containerId: string, imageRef: string): Promise<Mount[]> {
    const key = containerKey(containerId);
    try {
      await this.ctx.snapshots.stat(key);
      return this.ctx.snapshots.mounts(key);
    } catch (err) {
      if (!(err instanceof SnapshotNotFoundError)) throw err;
    }
    const record = this.ctx.images.resolve(imageRef);
    await unpackImage(this.ctx, record);
    const parent = record.layers[record.layers.length - 1]?.chainId;
    return this.ctx.snapshots.prepare(key, parent, { labels: { 'berth.container': containerId, 'berth.image': record.id } });
  }

  async rootfsMounts(containerId: string): Promise<Mount[]> {
    return this.ctx.snapshots.mounts(containerKey(containerId));
  }

  async removeRootfs(containerId: string): Promise<void> {
    try {
      await this.ctx.snapshots.remove(containerKey(containerId));
    } catch (err) {
      if (!(err instanceof SnapshotNotFoundError)) throw err;
    }
  }

  async changes(containerId: string): Promise<FilesystemChange[]> {
    const key = containerKey(containerId);
    const list = await upperDirChanges(await this.ctx.snapshots.upperDir(key), await this.ctx.snapshots.lowerDirs(key));
    return list.map((c) => ({ Path: c.path, Kind: c.kind === 'modified' ? 0 : c.kind === 'added' ? 1 : 2 }));
  }

  async exportContainerLayer(containerId: string): Promise<Readable> {
    return createLayerTar(await this.ctx.snapshots.upperDir(containerKey(containerId)));
  }

  async exportFilesystem(containerId: string): Promise<Readable> {
    const key = containerKey(containerId);
    const lowers = await this.ctx.snapshots.lowerDirs(key);
    const upper = await this.ctx.snapshots.upperDir(key);
    const dir = await mkdtemp(join(tmpdir(), 'berth-export-'));
    // Read-only overlay of upper + lowers: no workdir needed, nothing can change underneath.
    const mounts: Mount[] = [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${[upper, ...lowers].join(':')}`, 'ro'] }];
    if (lowers.length === 0) mounts[0] = { type: 'bind', source: upper, options: ['rbind', 'ro'] };
    await mountAll(mounts, dir);
    const tar = createDirectoryTar(dir);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const cleanup = async (): Promise<void> => {
      await unmount(dir).catch(() => undefined);
      await rmdir(dir).catch(() => undefined);
    };
    tar.on('error', (err) => {
      out.destroy(err);
      void cleanup();
    });
    tar.on('end', () => void cleanup());
    out.on('close', () => {
      if (!tar.readableEnded) tar.destroy();
      void cleanup();
    });
    tar.pipe(out);
    return out;
  }

  async containerLayerSize(containerId: string): Promise<number> {
    return (await this.ctx.snapshots.usage(containerKey(containerId))).size;
  }

  async commit(containerId: string, opts: { reference?: string; comment?: string; author?: string; changes?: ImageConfigChanges } = {}): Promise<string> {
    const key = containerKey(containerId);
    const info = await this.ctx.snapshots.stat(key);
    const imageId = info.labels['berth.image'];
    const base = imageId ? this.ctx.images.get(imageId) : undefined;
    if (!base) throw new ImageNotFoundError(imageId ?? containerId);
    const baseConfig = await imageConfig(this.ctx, base);
    const layer = await ingestLayer(this.ctx, createLayerTar(await this.ctx.snapshots.upperDir(key)));
    const config: ImageConfig = {
      ...baseConfig,
      created: new Date().toISOString(),
      config: { ...(baseConfig.config ?? {}), ...(opts.changes ?? {}) },
      rootfs: { type: 'layers', diff_ids: [...baseConfig.rootfs.diff_ids, layer.diffId] },
      history: [...(baseConfig.history ?? []), historyEntry('', opts.comment, opts.author)],
    };
    if (opts.author) config.author = opts.author;
    const layers = [...base.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })), layer.desc];
    return this.storeBuilt(config, layers, opts.reference);
  }

  private async storeBuilt(config: ImageConfig, layers: { mediaType: string; digest: string; size: number }[], reference?: string): Promise<string> {
    const { manifest } = await writeImage(this.ctx, config, layers);
    const { record } = await recordFor(this.ctx, manifest, manifest, 'new image');
    await unpackImage(this.ctx, record);
    await this.ctx.images.put(record, reference ? [formatReference(parseReference(reference))] : []);
    return record.id;
  }

  async save(refs: string[]): Promise<Readable> {
    return saveArchive(this.ctx, this.selection(refs));
  }

  private selection(refs: string[]): { record: ImageRecord; names: string[] }[] {
    const byId = new Map<string, { record: ImageRecord; names: string[] }>();
    for (const ref of refs) {
      const record = this.ctx.images.resolve(ref);
      const entry = byId.get(record.id) ?? { record, names: [] };
      byId.set(record.id, entry);
      let named: string | undefined;
      try {
        const parsed = parseReference(ref);
        if (!parsed.digest && this.ctx.images.namesOf(record.id).includes(formatReference(parsed))) named = formatReference(parsed);
      } catch {
        named = undefined;
      }
      if (named) entry.names.push(named);
      else if (!/^(sha256:)?[a-f0-9]+$/.test(ref)) entry.names.push(...this.ctx.images.namesOf(record.id));
    }
    return [...byId.values()];
  }

  async saveOciLayout(refs: string[], dir: string): Promise<void> {
    await saveOciLayoutDir(this.ctx, this.selection(refs), dir);
  }

  async load(input: Readable, opts: { onProgress?: (message: string) => void } = {}): Promise<LoadResult> {
    const loaded = await loadArchive(this.ctx, input, opts.onProgress);
    return toLoadResult(loaded);
  }

  async loadOciLayout(dir: string): Promise<LoadResult> {
    return toLoadResult(await loadOciLayoutDir(this.ctx, dir));
  }

  async import(input: Readable, opts: { reference?: string; message?: string; changes?: ImageConfigChanges } = {}): Promise<string> {
    const layer = await ingestLayer(this.ctx, input);
    const platform = hostPlatform();
    const config: ImageConfig = {
      created: new Date().toISOString(),
      architecture: platform.architecture,
      os: platform.os,
      config: { ...(opts.changes ?? {}) },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [historyEntry('', opts.message ?? 'Imported from -')],
    };
    if (platform.variant) config.variant = platform.variant;
    return this.storeBuilt(config, [layer.desc], opts.reference);
  }

  async diskUsage(): Promise<DiskUsage> {
    const content = await this.ctx.content.usage();
    const usageOf = new Map<string, number>();
    const containers: { id: string; size: number }[] = [];
    let snapshots = 0;
    const keys: { key: string; labels: Record<string, string>; kind: string }[] = [];
    await this.ctx.snapshots.walk((s) => {
      keys.push({ key: s.key, labels: s.labels, kind: s.kind });
    });
    for (const s of keys) {
      const size = (await this.ctx.snapshots.usage(s.key)).size;
      usageOf.set(s.key, size);
      snapshots += size;
      if (s.key.startsWith(CONTAINER_PREFIX)) containers.push({ id: s.key.slice(CONTAINER_PREFIX.length), size });
    }
    const layerUsers = new Map<string, number>();
    for (const r of this.ctx.images.list()) for (const l of r.layers) layerUsers.set(l.chainId, (layerUsers.get(l.chainId) ?? 0) + 1);
    const images = this.ctx.images.list().map((r) => {
      let size = 0;
      let shared = 0;
      for (const l of r.layers) {
        const u = usageOf.get(l.chainId) ?? 0;
        size += u;
        if ((layerUsers.get(l.chainId) ?? 0) > 1) shared += u;
      }
      return { id: r.id, size, sharedSize: shared, uniqueSize: size - shared };
    });
    const metadata = (await diskUsage(this.ctx.root)).size - content.size - snapshots - content.ingestSize;
    return {
      content: content.size,
      ingest: content.ingestSize,
      snapshots,
      images,
      containers,
      total: content.size + content.ingestSize + snapshots + Math.max(0, metadata),
    };
  }

  async gc(): Promise<GcResult> {
    const live = await this.liveSnapshots();
    const snapshotsRemoved: string[] = [];
    let bytes = 0;
    // Leftover extraction snapshots of dead processes, then unreferenced committed layers (top down).
    const all: { key: string; kind: string; labels: Record<string, string> }[] = [];
    await this.ctx.snapshots.walk((s) => {
      all.push({ key: s.key, kind: s.kind, labels: s.labels });
    });
    for (const s of all) {
      const pid = Number(s.labels['berth.extract'] ?? 0);
      if (s.kind === 'active' && s.key.startsWith('extract-') && pid && !alive(pid)) {
        bytes += (await this.ctx.snapshots.usage(s.key)).size;
        await this.ctx.snapshots.remove(s.key).catch(() => undefined);
        snapshotsRemoved.push(s.key);
      }
    }
    let progress = true;
    while (progress) {
      progress = false;
      const committed: string[] = [];
      const parents = new Set<string>();
      await this.ctx.snapshots.walk((s) => {
        if (s.kind === 'committed') committed.push(s.key);
        if (s.parent) parents.add(s.parent);
      });
      for (const key of committed) {
        if (live.has(key) || parents.has(key)) continue;
        bytes += (await this.ctx.snapshots.usage(key)).size;
        await this.ctx.snapshots.remove(key);
        snapshotsRemoved.push(key);
        progress = true;
      }
    }
    await this.ctx.snapshots.cleanup();
    const content = await this.gcContent();
    // Ingests: kept for resuming, unless abandoned for a day.
    for (const ing of await this.ctx.content.listIngests()) {
      if (Date.now() - ing.updatedAt.getTime() > 24 * 3600 * 1000) await this.ctx.content.abortIngest(ing.ref).catch(() => undefined);
    }
    return { blobsRemoved: content.removed, snapshotsRemoved, bytesReclaimed: bytes + content.bytes };
  }

  async close(): Promise<void> {
    // Nothing held open between calls: every write is committed when its call returns.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

function safeFormat(ref: string): string {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return ref;
  }
}

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
  return re.test(value);
}

function toLoadResult(loaded: { id: string; names: string[] }[]): LoadResult {
  const out: LoadResult = { loaded: [] };
  for (const l of loaded) {
    if (l.names.length === 0) out.loaded.push({ id: l.id });
    for (const n of l.names) out.loaded.push({ id: l.id, reference: familiar(n) });
  }
  return out;
}

/** @berth/registry's client; explicit credentials (X-Registry-Auth) win over ~/.docker/config.json. */
function defaultRegistry(concurrency: number): RegistryFactory {
  return async ({ auth, host, insecure }) => {
    const options: RegistryClientOptions = { insecure, concurrency };
    if (auth && (auth.username || auth.password || auth.identitytoken || auth.registrytoken)) {
      const cred: Credential = {};
      if (auth.username) cred.username = auth.username;
      if (auth.password) cred.password = auth.password;
      if (auth.identitytoken) cred.identityToken = auth.identitytoken;
      if (auth.registrytoken) cred.registryToken = auth.registrytoken;
      options.credentials = new StaticCredentials({ [host]: cred });
    }
    return new RegistryClient(options);
  };
}

/**
 * Opens (creating) the image service rooted at `options.root`: content/ (blobs, ingests),
 * snapshots/ (overlay layers and container layers), images.json (names → images).
 * `registry` replaces the @berth/registry client (for tests and embedding).
 */
export async function openImageService(options: ImageServiceOptions & { registry?: RegistryFactory }): Promise<ImageService> {
  const ctx = await openImageContext(options.root);
  return new LocalImageService(ctx, options, options.registry ?? defaultRegistry(options.concurrency ?? 4));
}

