import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable as ReadableStream } from 'node:stream';
import { formatReference, parseDigest, parseReference, familiarString } from '@berth/oci-spec';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from '@berth/oci-spec';
import { packTar } from '../layer/tar-writer.js';
import type { TarWriteEntry } from '../layer/tar-writer.js';

/** A finished image: manifest, config and layer blobs, ready for a store or an archive. */
export interface BuiltImage {
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  /** Digest of manifestBytes. */
  manifestDigest: string;
  config: ImageConfig;
  configBytes: Uint8Array;
  /** Image ID: digest of configBytes. */
  configDigest: string;
  layers: { descriptor: Descriptor; diffId: string; open(): Promise<Readable> }[];
}

/**
 * Where `-t` images go when the builder runs inside the engine: the daemon adapts its image
 * store (content store + names). `putImage` stores every blob (skipping ones already present)
 * and points each tag (normalised references) at the manifest; it is idempotent.
 */
export interface BuildImageStore {
  putImage(image: BuiltImage, tags: string[]): Promise<void>;
}

export type BuildOutput =
  | { type: 'store'; store: BuildImageStore }
  | { type: 'oci-layout'; dest: string }
  | { type: 'docker-archive'; dest: string | Writable }
  | { type: 'none' };

function blobRel(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `blobs/${algorithm}/${encoded}`;
}

/**
 * Writes (or adds to) an OCI image layout directory: blobs, `oci-layout`, and `index.json`
 * entries annotated with each tag (`org.opencontainers.image.ref.name` = the tag,
 * `io.containerd.image.name` = the full reference), as containerd and BuildKit write them.
 */
export async function writeOciLayout(dir: string, image: BuiltImage, tags: string[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = async (digest: string, source: () => Promise<Readable | Uint8Array>): Promise<void> => {
    const path = join(dir, blobRel(digest));
    if (await stat(path).then(() => true, () => false)) return;
    const tmp = `${path}.tmp-${process.pid}`;
    const data = await source();
    if (data instanceof Uint8Array) await writeFile(tmp, data);
    else await pipeline(data, createWriteStream(tmp));
    await rename(tmp, path);
  };
  for (const layer of image.layers) await put(layer.descriptor.digest, () => layer.open());
  await put(image.configDigest, async () => image.configBytes);
  await put(image.manifestDigest, async () => image.manifestBytes);

  let index: ImageIndex = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  } catch {
    // a new layout
  }
  const base: Descriptor = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: image.manifestDigest,
    size: image.manifestBytes.length,
  };
  const names = tags.map((t) => formatReference(parseReference(t)));
  const taken = new Set(names);
  index.manifests = index.manifests.filter((m) => {
    const name = m.annotations?.['io.containerd.image.name'];
    return name === undefined ? m.digest !== image.manifestDigest || tags.length > 0 : !taken.has(name);
  });
  if (names.length === 0) index.manifests.push(base);
  for (const name of names) {
    const ref = parseReference(name);
    index.manifests.push({
      ...base,
      annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' },
    });
  }
  const tmp = join(dir, `index.json.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(index));
  await rename(tmp, join(dir, 'index.json'));
}

/**
 * A `docker save`-compatible tarball (Docker 25+ form: an OCI layout plus `manifest.json` and
 * `repositories`), loadable by `docker load` and by berth.
 */
export function dockerArchiveStream(image: BuiltImage, tags: string[]): Readable {
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    const mtime = Math.floor(Date.now() / 1000);
    const file = (path: string, data: Uint8Array): TarWriteEntry => ({
      header: { path, type: 'file', mode: 0o644, size: data.length, mtime },
      body: async function* () {
        yield data;
      },
    });
    yield { header: { path: 'blobs', type: 'directory', mode: 0o755, mtime } };
    yield { header: { path: 'blobs/sha256', type: 'directory', mode: 0o755, mtime } };
    for (const layer of image.layers) {
      yield {
        header: { path: blobRel(layer.descriptor.digest), type: 'file', mode: 0o644, size: layer.descriptor.size, mtime },
        body: async function* () {
          for await (const chunk of await layer.open()) yield chunk as Buffer;
        },
      };
    }
    yield file(blobRel(image.configDigest), image.configBytes);
    yield file(blobRel(image.manifestDigest), image.manifestBytes);
    const names = tags.map((t) => parseReference(t));
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: image.manifestDigest,
          size: image.manifestBytes.length,
          ...(names[0] ? { annotations: { 'io.containerd.image.name': formatReference(names[0]), 'org.opencontainers.image.ref.name': names[0].tag ?? 'latest' } } : {}),
        },
      ],
    };
    yield file('index.json', Buffer.from(JSON.stringify(index)));
    yield file('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    const manifestJson = [
      {
        Config: blobRel(image.configDigest),
        RepoTags: names.map((r) => familiarString(r)),
        Layers: image.layers.map((l) => blobRel(l.descriptor.digest)),
      },
    ];
    yield file('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    const repositories: Record<string, Record<string, string>> = {};
    for (const r of names) {
      const familiar = familiarString(r);
      const colon = familiar.lastIndexOf(':');
      const repo = familiar.slice(0, colon);
      (repositories[repo] ??= {})[familiar.slice(colon + 1)] = parseDigest(image.configDigest).encoded;
    }
    yield file('repositories', Buffer.from(JSON.stringify(repositories)));
  }
  return ReadableStream.from(packTar(entries()));
}

export async function writeDockerArchive(dest: string | Writable, image: BuiltImage, tags: string[]): Promise<void> {
  const stream = dockerArchiveStream(image, tags);
  if (typeof dest === 'string') {
    const tmp = `${dest}.tmp-${process.pid}`;
    await pipeline(stream, createWriteStream(tmp));
    await rename(tmp, dest);
  } else {
    await pipeline(stream, dest, { end: true });
  }
}
