import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { MediaType } from '@berth/oci-spec';
import { openContentStore, writeBlob } from '../../content/local-store.js';
import type { LocalContentStore } from '../../content/local-store.js';
import { applyLayer } from '../../layer/apply.js';
import { createLayerTar } from '../../layer/diff.js';
import { forgetLayerDir } from '../fs/layered-fs.js';
import type { SourceLayer } from '../image-source.js';

/**
 * The builder's own disk state under `root`:
 *
 *   content/            layer blobs (gzip), by digest — a ContentStore
 *   layers/<hex>/       each layer unpacked in overlay lower-dir form, named by diffID
 *   layers/<hex>.json   LayerMeta: descriptor, bytes on disk, last use
 *   records/<hex>.json  CacheRecord: step cache key → the layer it produced (or none)
 *   mounts/<hex>/       RUN --mount=type=cache directories
 *   tmp/                work directories of running steps
 *
 * Layers and records are written atomically (write to tmp, rename). The cache is bounded:
 * `prune(maxBytes)` removes the least recently used layers and cache mounts (and the records that
 * point at them) until what is left fits, skipping anything a running build holds.
 */

export interface LayerRef {
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
}

export interface LayerMeta extends LayerRef {
  /** Bytes on disk for the unpacked directory plus the blob. */
  diskSize: number;
  lastUsed: number;
}

export interface CacheRecord {
  key: string;
  /** Undefined: the step changed no files (an empty layer). */
  layer?: LayerRef;
  created: string;
  lastUsed: number;
}

export interface CacheUsage {
  layers: number;
  records: number;
  cacheMounts: number;
  /** Bytes on disk of unpacked layers, their blobs and cache mounts. */
  bytes: number;
}

function hex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

async function diskUsage(path: string): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 0;
  let total = st.blocks * 512;
  if (st.isDirectory()) {
    for (const name of await readdir(path)) total += await diskUsage(join(path, name));
  }
  return total;
}

async function writeJsonAtomic(path: string, value: unknown, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `json-${randomBytes(8).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

/**
 * One BuildStore (one Builder) per state directory at a time: opening it clears `tmp/`, which
 * belongs to the builds of the process that has it open.
 */
export class BuildStore {
  readonly content: LocalContentStore;
  private readonly inUse = new Map<string, number>();
  private readonly unpacking = new Map<string, Promise<LayerMeta>>();

  private constructor(
    readonly root: string,
    content: LocalContentStore,
  ) {
    this.content = content;
  }

  static async open(root: string): Promise<BuildStore> {
    for (const sub of ['layers', 'records', 'mounts', 'tmp']) await mkdir(join(root, sub), { recursive: true, mode: 0o700 });
    // Leftovers of a killed build: nothing in tmp is referenced by anything.
    for (const name of await readdir(join(root, 'tmp'))) await rm(join(root, 'tmp', name), { recursive: true, force: true });
    const content = await openContentStore(join(root, 'content'));
    return new BuildStore(root, content);
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  /** A fresh private directory for one step; the caller removes it. */
  async makeTempDir(prefix: string): Promise<string> {
    const dir = join(this.tmpDir, `${prefix}-${randomBytes(8).toString('hex')}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  layerDir(diffId: string): string {
    return join(this.root, 'layers', hex(diffId));
  }

  /** Pins layers or mounts while a build uses them, so that prune leaves them alone. */
  hold(ids: Iterable<string>): () => void {
    const list = [...ids];
    for (const id of list) this.inUse.set(id, (this.inUse.get(id) ?? 0) + 1);
    return () => {
      for (const id of list) {
        const n = (this.inUse.get(id) ?? 1) - 1;
        if (n <= 0) this.inUse.delete(id);
        else this.inUse.set(id, n);
      }
    };
  }

  private async readLayerMeta(diffId: string): Promise<LayerMeta | undefined> {
    try {
      return JSON.parse(await readFile(`${this.layerDir(diffId)}.json`, 'utf8')) as LayerMeta;
    } catch {
      return undefined;
    }
  }

  /** The layer if both its unpacked directory and its blob are present; touches it. */
  async getLayer(diffId: string): Promise<LayerMeta | undefined> {
    const meta = await this.readLayerMeta(diffId);
    if (!meta) return undefined;
    const dirOk = await lstat(this.layerDir(diffId)).then((s) => s.isDirectory(), () => false);
    if (!dirOk || !(await this.content.has(meta.digest))) return undefined;
    meta.lastUsed = Date.now();
    await writeJsonAtomic(`${this.layerDir(diffId)}.json`, meta, this.tmpDir);
    return meta;
  }

  /**
   * Makes a base-image layer available: its blob in the content store (verified) and its
   * unpacked directory. Concurrent calls for one layer share the work.
   */
  async ensureLayer(layer: SourceLayer): Promise<LayerMeta> {
    const existing = await this.getLayer(layer.diffId);
    if (existing) return existing;
    let pending = this.unpacking.get(layer.diffId);
    if (!pending) {
      pending = this.unpack(layer).finally(() => this.unpacking.delete(layer.diffId));
      this.unpacking.set(layer.diffId, pending);
    }
    return pending;
  }

  private async unpack(layer: SourceLayer): Promise<LayerMeta> {
    await writeBlob(this.content, await layer.open(), { expected: { digest: layer.digest, size: layer.size } });
    const tmp = await this.makeTempDir('unpack');
    try {
      const target = join(tmp, 'root');
      const result = await applyLayer(target, await this.content.reader(layer.digest));
      if (layer.diffId && result.diffId !== layer.diffId) {
        throw new Error(`layer ${layer.digest} unpacks to ${result.diffId}, but the image config says ${layer.diffId}`);
      }
      return await this.commitLayerDir(target, {
        diffId: result.diffId,
        digest: layer.digest,
        size: layer.size,
        mediaType: layer.mediaType,
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async commitLayerDir(dir: string, ref: LayerRef): Promise<LayerMeta> {
    const target = this.layerDir(ref.diffId);
    const present = await lstat(target).then(() => true, () => false);
    if (!present) {
      await rename(dir, target).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
      forgetLayerDir(target);
    }
    const meta: LayerMeta = {
      ...ref,
      diskSize: (await diskUsage(target)) + ref.size,
      lastUsed: Date.now(),
    };
    await writeJsonAtomic(`${target}.json`, meta, this.tmpDir);
    return meta;
  }

  /**
   * Turns a step's upper directory into a layer: a reproducible tar of it (whiteouts as
   * `.wh.` entries), gzip-compressed into the content store, and the directory itself kept as the
   * layer's unpacked form. An upper directory with no entries gives undefined (an empty layer).
   */
  async commitUpperDir(upper: string): Promise<LayerMeta | undefined> {
    if ((await readdir(upper)).length === 0) return undefined;
    const diffHash = createHash('sha256');
    const tar = createLayerTar(upper);
    const counted = new PassThrough();
    counted.on('data', (chunk: Buffer) => diffHash.update(chunk));
    const gzip = createGzip();
    const blobSource = new PassThrough();
    const done = pipeline(tar, counted, gzip, blobSource);
    const info = await writeBlob(this.content, Readable.from(blobSource));
    await done;
    const diffId = `sha256:${diffHash.digest('hex')}`;
    return this.commitLayerDir(upper, { diffId, digest: info.digest, size: info.size, mediaType: MediaType.LayerGzip });
  }

  recordPath(key: string): string {
    return join(this.root, 'records', `${hex(key)}.json`);
  }

  /** A cache record whose layer is still complete; touches it. */
  async lookup(key: string): Promise<CacheRecord | undefined> {
    let record: CacheRecord;
    try {
      record = JSON.parse(await readFile(this.recordPath(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (record.layer && !(await this.getLayer(record.layer.diffId))) {
      await rm(this.recordPath(key), { force: true });
      return undefined;
    }
    record.lastUsed = Date.now();
    await writeJsonAtomic(this.recordPath(key), record, this.tmpDir);
    return record;
  }

  async record(key: string, layer: LayerRef | undefined, created: string): Promise<void> {
    const record: CacheRecord = { key, created, lastUsed: Date.now() };
    if (layer) record.layer = { diffId: layer.diffId, digest: layer.digest, size: layer.size, mediaType: layer.mediaType };
    await writeJsonAtomic(this.recordPath(key), record, this.tmpDir);
  }

  /** The host directory of a cache mount (created on first use with the given owner/mode). */
  async cacheMountDir(id: string, owner: { uid: number; gid: number; mode: number }): Promise<string> {
    const dir = join(this.root, 'mounts', createHash('sha256').update(id).digest('hex'));
    const exists = await lstat(dir).then(() => true, () => false);
    if (!exists) {
      await mkdir(dir, { recursive: true, mode: owner.mode });
      const { chmod, chown } = await import('node:fs/promises');
      await chmod(dir, owner.mode);
      await chown(dir, owner.uid, owner.gid).catch(() => undefined);
    }
    await writeFile(`${dir}.used`, String(Date.now()));
    return dir;
  }

  async usage(): Promise<CacheUsage> {
    const layers = await this.listLayers();
    const mounts = await this.listMounts();
    const records = (await readdir(join(this.root, 'records'))).filter((n) => n.endsWith('.json')).length;
    return {
      layers: layers.length,
      records,
      cacheMounts: mounts.length,
      bytes: layers.reduce((n, l) => n + l.diskSize, 0) + mounts.reduce((n, m) => n + m.size, 0),
    };
  }

  private async listLayers(): Promise<LayerMeta[]> {
    const out: LayerMeta[] = [];
    for (const name of await readdir(join(this.root, 'layers'))) {
      if (!name.endsWith('.json')) continue;
      const meta = await this.readLayerMeta(`sha256:${name.slice(0, -5)}`);
      if (meta) out.push(meta);
    }
    return out;
  }

  private async listMounts(): Promise<{ id: string; dir: string; size: number; lastUsed: number }[]> {
    const out: { id: string; dir: string; size: number; lastUsed: number }[] = [];
    const base = join(this.root, 'mounts');
    for (const name of await readdir(base)) {
      if (name.endsWith('.used')) continue;
      const dir = join(base, name);
      const lastUsed = Number(await readFile(`${dir}.used`, 'utf8').catch(() => '0')) || 0;
      out.push({ id: `mount:${name}`, dir, size: await diskUsage(dir), lastUsed });
    }
    return out;
  }

  /**
   * Removes least recently used layers and cache mounts until the cache holds at most
   * `maxBytes` (0 removes everything not in use). Records pointing at a removed layer go too.
   * Blobs of removed layers are deleted from the builder's content store.
   */
  async prune(maxBytes: number): Promise<{ removedLayers: number; removedMounts: number; reclaimed: number }> {
    const layers = await this.listLayers();
    const mounts = await this.listMounts();
    type Item = { id: string; size: number; lastUsed: number; remove: () => Promise<void> };
    const items: Item[] = [
      ...layers.map((l) => ({
        id: l.diffId,
        size: l.diskSize,
        lastUsed: l.lastUsed,
        remove: async () => {
          const dir = this.layerDir(l.diffId);
          await rm(`${dir}.json`, { force: true });
          await rm(dir, { recursive: true, force: true });
          forgetLayerDir(dir);
          await this.content.delete(l.digest).catch(() => undefined);
        },
      })),
      ...mounts.map((m) => ({
        id: m.id,
        size: m.size,
        lastUsed: m.lastUsed,
        remove: async () => {
          await rm(m.dir, { recursive: true, force: true });
          await rm(`${m.dir}.used`, { force: true });
        },
      })),
    ];
    let total = items.reduce((n, i) => n + i.size, 0);
    items.sort((a, b) => a.lastUsed - b.lastUsed);
    let reclaimed = 0;
    let removedLayers = 0;
    let removedMounts = 0;
    const removedDiffIds = new Set<string>();
    for (const item of items) {
      if (total <= maxBytes) break;
      if (this.inUse.has(item.id)) continue;
      await item.remove();
      total -= item.size;
      reclaimed += item.size;
      if (item.id.startsWith('mount:')) removedMounts++;
      else {
        removedLayers++;
        removedDiffIds.add(item.id);
      }
    }
    // Blobs no layer refers to (an unpack that failed half-way) are garbage too — once they
    // are old enough that no step still being committed can own them.
    const referenced = new Set((await this.listLayers()).map((l) => l.digest));
    const orphans: string[] = [];
    const cutoff = Date.now() - 10 * 60 * 1000;
    await this.content.walk((info) => {
      if (!referenced.has(info.digest) && info.createdAt.getTime() < cutoff) orphans.push(info.digest);
    });
    for (const digest of orphans) await this.content.delete(digest).catch(() => undefined);
    if (removedDiffIds.size > 0) {
      const dir = join(this.root, 'records');
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        const record = JSON.parse(await readFile(path, 'utf8').catch(() => '{}')) as Partial<CacheRecord>;
        if (record.layer && removedDiffIds.has(record.layer.diffId)) await rm(path, { force: true });
      }
    }
    return { removedLayers, removedMounts, reclaimed };
  }
}
