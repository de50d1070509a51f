import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  MediaType,
  formatReference,
  hostPlatform,
  isIndexMediaType,
  parseReference,
  selectManifest,
  familiarString,
  validateImageIndex,
  familiarName,
} from '@berth/oci-spec';
import type { Descriptor, ImageIndex } from '@berth/oci-spec';
import { writeBlob } from '../content/local-store.js';
import { InvalidImageError, ImageError } from '../errors.js';
import { entryComponents } from '../layer/apply.js';
import { decompressStream, detectCompression } from '../layer/decompress.js';
import { ByteSource, readTar } from '../layer/tar-reader.js';
import { packTar } from '../layer/tar-writer.js';
import type { TarWriteEntry } from '../layer/tar-writer.js';
import type { ImageContext } from '../store/context.js';
import { parseIndex, recordFor, unpackImage } from '../store/context.js';
import type { ImageRecord } from '../store/image-store.js';

const MAX_JSON = 4 * 1024 * 1024;
const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;
const NAME_ANNOTATION = 'io.containerd.image.name';
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** What an archive (tar or directory) holds once its blobs are in the content store. */
interface ArchiveContents {
  /** Small metadata files by path (manifest.json, index.json, repositories, oci-layout, legacy *.json). */
  json: Map<string, Buffer>;
  /** Every other file's path → digest of its bytes in the content store. */
  blobs: Map<string, string>;
}

export interface LoadedImage {
  id: string;
  /** Full references the image was stored under. */
  names: string[];
}

/**
 * `docker load`: a docker-archive tarball (manifest.json, legacy or Docker 25+ with an OCI
 * layout inside) or an OCI image layout tarball, optionally gzip/zstd compressed. Blobs are
 * verified against their names while streaming into the content store; images become visible
 * only after every layer is unpacked.
 */
export async function loadArchive(ctx: ImageContext, input: AsyncIterable<Buffer | Uint8Array>, onProgress?: (message: string) => void): Promise<LoadedImage[]> {
  const contents: ArchiveContents = { json: new Map(), blobs: new Map() };
  const src = new ByteSource(decompressStream(input));
  for await (const { header, body } of readTar(src)) {
    if (header.type !== 'file') continue;
    const path = entryComponents(header.path, 'archive path').join('/');
    const isBlob = BLOB_PATH.exec(path);
    if (!isBlob && path.endsWith('.json') || path === 'repositories' || path === 'oci-layout') {
      if (header.size > MAX_JSON) throw new InvalidImageError(`archive member ${path} is ${header.size} bytes, more than 4 MiB`);
      const chunks: Buffer[] = [];
      for await (const c of body()) chunks.push(c);
      contents.json.set(path, Buffer.concat(chunks));
      continue;
    }
    const expected = isBlob ? { digest: `sha256:${isBlob[1]}`, size: header.size } : undefined;
    const info = await writeBlob(ctx.content, Readable.from(body()), expected ? { expected } : {});
    contents.blobs.set(path, info.digest);
    onProgress?.(`Loading layer ${info.digest.slice(7, 19)}`);
  }
  return finishLoad(ctx, contents, onProgress);
}

/** Loads an OCI image layout directory (as skopeo `oci:` or umoci write it). */
export async function loadOciLayoutDir(ctx: ImageContext, dir: string, onProgress?: (message: string) => void): Promise<LoadedImage[]> {
  const contents: ArchiveContents = { json: new Map(), blobs: new Map() };
  for (const name of ['index.json', 'oci-layout', 'manifest.json', 'repositories']) {
    const bytes = await readFile(join(dir, name)).catch(() => undefined);
    if (bytes) contents.json.set(name, bytes);
  }
  const blobDir = join(dir, 'blobs', 'sha256');
  for (const hex of await readdir(blobDir)) {
    if (!/^[a-f0-9]{64}$/.test(hex)) continue;
    const digest = `sha256:${hex}`;
    const size = (await stat(join(blobDir, hex))).size;
    await writeBlob(ctx.content, createReadStream(join(blobDir, hex)), { expected: { digest, size } });
    contents.blobs.set(`blobs/sha256/${hex}`, digest);
  }
  return finishLoad(ctx, contents, onProgress);
}

function parseJson<T>(contents: ArchiveContents, path: string): T | undefined {
  const b = contents.json.get(path);
  if (!b) return undefined;
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidImageError(`archive member ${path} is not valid JSON`, { cause: err });
  }
}

/** Digest of an archive member in the content store (small JSON members are stored on demand). */
async function blobDigest(ctx: ImageContext, contents: ArchiveContents, path: string): Promise<string> {
  const clean = entryComponents(path, 'archive path').join('/');
  const d = contents.blobs.get(clean);
  if (d) return d;
  const json = contents.json.get(clean);
  if (!json) throw new InvalidImageError(`archive references ${path}, which it does not contain`);
  const info = await writeBlob(ctx.content, json);
  contents.blobs.set(clean, info.digest);
  return info.digest;
}

async function finishLoad(ctx: ImageContext, contents: ArchiveContents, onProgress?: (message: string) => void): Promise<LoadedImage[]> {
  const loaded: { record: ImageRecord; names: string[] }[] = [];
  const dockerManifest = parseJson<DockerArchiveManifestEntry[]>(contents, 'manifest.json');
  const index = parseJson<unknown>(contents, 'index.json');

  if (index !== undefined) {
    let idx: ImageIndex;
    try {
      idx = validateImageIndex(index);
    } catch (err) {
      throw new InvalidImageError(`index.json: ${(err as Error).message}`, { cause: err });
    }
    // Docker 25+ archives: the tags are in manifest.json, by config; OCI layouts: annotations.
    const tagsByConfig = new Map<string, string[]>();
    for (const e of dockerManifest ?? []) tagsByConfig.set(await blobDigest(ctx, contents, e.Config), e.RepoTags ?? []);
    for (const desc of idx.manifests) {
      const names = annotationNames(desc);
      let manifestDesc: Descriptor = desc;
      if (isIndexMediaType(desc.mediaType)) {
        const nested = parseIndex(await ctx.content.readBytes(desc.digest), desc.mediaType, `archive index ${desc.digest}`);
        const chosen = selectManifest(nested, hostPlatform()) ?? nested.manifests[0];
        if (!chosen) continue;
        manifestDesc = chosen;
      }
      const { record } = await recordFor(ctx, desc, manifestDesc, `archive manifest ${desc.digest}`);
      for (const t of tagsByConfig.get(record.id) ?? []) names.push(formatReference(parseReference(t)));
      loaded.push({ record, names: [...new Set(names)] });
    }
  } else if (dockerManifest !== undefined) {
    // Legacy docker-archive: no manifests inside, synthesise a schema2 manifest per image.
    for (const e of dockerManifest) {
      const configDigest = await blobDigest(ctx, contents, e.Config);
      const layers: Descriptor[] = [];
      for (const l of e.Layers) {
        const digest = await blobDigest(ctx, contents, l);
        const head = await ctx.content.reader(digest, { start: 0, end: 4 });
        const bytes: Buffer[] = [];
        for await (const c of head) bytes.push(c as Buffer);
        const kind = detectCompression(Buffer.concat(bytes));
        const mediaType = kind === 'gzip' ? MediaType.DockerLayerGzip : kind === 'zstd' ? MediaType.LayerZstd : MediaType.DockerLayer;
        layers.push({ mediaType, digest, size: (await ctx.content.info(digest)).size });
      }
      const config = await ctx.content.info(configDigest);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.DockerManifest,
        config: { mediaType: MediaType.DockerConfig, digest: configDigest, size: config.size },
        layers,
      };
      const info = await writeBlob(ctx.content, Buffer.from(JSON.stringify(manifest)));
      const desc: Descriptor = { mediaType: MediaType.DockerManifest, digest: info.digest, size: info.size };
      const { record } = await recordFor(ctx, desc, desc, `archive image ${e.Config}`);
      loaded.push({ record, names: (e.RepoTags ?? []).map((t) => formatReference(parseReference(t))) });
    }
  } else {
    throw new InvalidImageError('not an image archive: neither manifest.json nor index.json found');
  }

  const out: LoadedImage[] = [];
  for (const { record, names } of loaded) {
    await unpackImage(ctx, record);
    await ctx.images.put(record, names);
    for (const n of names) onProgress?.(`Loaded image: ${familiarString(parseReference(n))}`);
    if (names.length === 0) onProgress?.(`Loaded image ID: ${record.id}`);
    out.push({ id: record.id, names });
  }
  return out;
}

function annotationNames(desc: Descriptor): string[] {
  const a = desc.annotations ?? {};
  const full = a[NAME_ANNOTATION];
  if (full) {
    try {
      return [formatReference(parseReference(full))];
    } catch {
      return [];
    }
  }
  const refName = a[REF_NAME_ANNOTATION];
  // A bare tag ("latest") names no repository; only a full reference gives a name.
  if (refName && /[/:]/.test(refName)) {
    try {
      return [formatReference(parseReference(refName))];
    } catch {
      return [];
    }
  }
  return [];
}

interface SaveImage {
  record: ImageRecord;
  /** Full names to record for this image (those the caller asked for). */
  names: string[];
}

/**
 * `docker save` in Docker 25+'s form: an OCI image layout (oci-layout, index.json, blobs/) plus
 * manifest.json and repositories for older readers. Blobs are streamed from the content store
 * as stored (layers stay compressed; readers sniff). Entries are sorted and headers normalised.
 */
export function saveArchive(ctx: ImageContext, images: SaveImage[]): Readable {
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    const blobs = new Map<string, number>();
    const add = (d: Descriptor): void => {
      blobs.set(d.digest, d.size);
    };
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
    const manifestJson: DockerArchiveManifestEntry[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    for (const { record, names } of images) {
      add(record.manifest);
      add(record.config);
      for (const l of record.layers) add({ mediaType: l.mediaType, digest: l.digest, size: l.size });
      const base: Descriptor = { mediaType: record.manifest.mediaType, digest: record.manifest.digest, size: record.manifest.size };
      if (names.length === 0) index.manifests.push(base);
      for (const n of names) {
        const ref = parseReference(n);
        index.manifests.push({ ...base, annotations: { [NAME_ANNOTATION]: n, [REF_NAME_ANNOTATION]: ref.tag ?? 'latest' } });
        const repo = familiarName(ref);
        (repositories[repo] ??= {})[ref.tag ?? 'latest'] = (record.layers[record.layers.length - 1]?.digest ?? record.id).slice(7);
      }
      manifestJson.push({
        Config: `blobs/sha256/${record.config.digest.slice(7)}`,
        RepoTags: names.map((n) => familiarString(parseReference(n))),
        Layers: record.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      });
    }
    const dir = (path: string): TarWriteEntry => ({ header: { path, type: 'directory', mode: 0o755 } });
    const json = (path: string, value: unknown): TarWriteEntry => {
      const bytes = Buffer.from(JSON.stringify(value));
      return { header: { path, type: 'file', mode: 0o644, size: bytes.length }, body: async function* () { yield bytes; } };
    };
    yield dir('blobs');
    yield dir('blobs/sha256');
    for (const digest of [...blobs.keys()].sort()) {
      const size = blobs.get(digest) as number;
      const info = await ctx.content.info(digest);
      if (info.size !== size) throw new ImageError('CONTENT_SIZE', 'internal', `blob ${digest} is ${info.size} bytes, its descriptor says ${size}`);
      yield { header: { path: `blobs/sha256/${digest.slice(7)}`, type: 'file', mode: 0o644, size }, body: async function* () { yield* (await ctx.content.reader(digest)) as AsyncIterable<Buffer>; } };
    }
    yield json('index.json', index);
    yield json('manifest.json', manifestJson);
    yield json('oci-layout', { imageLayoutVersion: '1.0.0' });
    if (Object.keys(repositories).length) yield json('repositories', repositories);
  }
  return Readable.from(packTar(entries()), { objectMode: false, highWaterMark: 1 << 20 });
}

/** Writes images as an OCI image layout directory (`skopeo`/`umoci` read it). */
export async function saveOciLayoutDir(ctx: ImageContext, images: SaveImage[], dir: string): Promise<void> {
  const { mkdir, writeFile, copyFile } = await import('node:fs/promises');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
  for (const { record, names } of images) {
    for (const d of [record.manifest, record.config, ...record.layers]) {
      const target = join(dir, 'blobs', 'sha256', d.digest.slice(7));
      if (!(await stat(target).catch(() => undefined))) await copyFile(ctx.content.path(d.digest), target);
    }
    const base: Descriptor = { mediaType: record.manifest.mediaType, digest: record.manifest.digest, size: record.manifest.size };
    if (names.length === 0) index.manifests.push(base);
    for (const n of names) {
      const ref = parseReference(n);
      index.manifests.push({ ...base, annotations: { [NAME_ANNOTATION]: n, [REF_NAME_ANNOTATION]: ref.tag ?? 'latest' } });
    }
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

