import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { familiarString, formatReference, parseReference, referenceName } from '@berth/oci-spec';
import type { Descriptor, Reference } from '@berth/oci-spec';
import { ImageNotFoundError, ImageError } from '../errors.js';

/** One layer of a stored image. */
export interface ImageLayerRecord {
  /** Digest of the blob as stored (compressed). */
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  /** chainID of the stack ending with this layer. */
  chainId: string;
}

/**
 * What the image store keeps per image. The ID is the config digest (Docker's image ID). The
 * manifest and config blobs live in the content store; `target` is what a name resolved to
 * (an index for multi-platform pulls, else the manifest itself).
 */
export interface ImageRecord {
  id: string;
  target: Descriptor;
  manifest: Descriptor;
  config: Descriptor;
  layers: ImageLayerRecord[];
  /** Full references with digest: `docker.io/library/busybox@sha256:…`. */
  repoDigests: string[];
  /** When the image was stored here (RFC 3339). */
  storedAt: string;
  lastTagTime?: string;
}

interface StoreFile {
  images: Record<string, ImageRecord>;
  /** Full normalised name:tag → image ID. */
  names: Record<string, string>;
}

const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/;
const SHORT_ID = /^(?:sha256:)?([a-f0-9]{1,63})$/;

/** chainID(n) = sha256(chainID(n-1) + " " + diffID(n)), chainID(0) = diffID(0). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256Text(`${prev} ${d}`));
  }
  return out;
}

function sha256Text(s: string): string {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`;
}

/**
 * Names → images, persisted as one JSON file written atomically (temp, fsync, rename). An
 * image becomes visible only through `put`, which callers invoke after every blob and snapshot
 * it needs is committed — so a crash never leaves a half image listed.
 */
export class ImageStore {
  private data: StoreFile = { images: {}, names: {} };
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(private readonly file: string) {}

  static async open(file: string): Promise<ImageStore> {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const s = new ImageStore(file);
    try {
      s.data = JSON.parse(await readFile(file, 'utf8')) as StoreFile;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    return s;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lock.then(fn, fn);
    this.lock = next.catch(() => undefined);
    return next;
  }

  private async save(): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }

  /** Stores (or updates) an image and points `names` (full name:tag strings) at it. */
  put(record: ImageRecord, names: string[] = []): Promise<void> {
    return this.exclusive(async () => {
      const old = this.data.images[record.id];
      const merged: ImageRecord = old
        ? { ...record, repoDigests: [...new Set([...old.repoDigests, ...record.repoDigests])], storedAt: old.storedAt }
        : record;
      if (names.length) merged.lastTagTime = new Date().toISOString();
      else if (old?.lastTagTime) merged.lastTagTime = old.lastTagTime;
      this.data.images[record.id] = merged;
      for (const n of names) this.data.names[n] = record.id;
      await this.save();
    });
  }

  get(id: string): ImageRecord | undefined {
    return this.data.images[id];
  }

  list(): ImageRecord[] {
    return Object.values(this.data.images);
  }

  /** Full name:tag strings pointing at `id`. */
  namesOf(id: string): string[] {
    return Object.entries(this.data.names)
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
  }

  allNames(): Record<string, string> {
    return { ...this.data.names };
  }

  /**
   * Finds an image the way `docker` does: a full ID; a reference by name (tag, or digest
   * matching a RepoDigest or the manifest); an unambiguous ID prefix. Throws ImageNotFoundError.
   */
  resolve(input: string): ImageRecord {
    const found = this.find(input);
    if (!found) throw new ImageNotFoundError(input);
    return found;
  }

  find(input: string): ImageRecord | undefined {
    const full = FULL_ID.exec(input);
    if (full) {
      const r = this.data.images[`sha256:${full[1]}`];
      if (r) return r;
    }
    let ref: Reference | undefined;
    try {
      ref = parseReference(input);
    } catch {
      ref = undefined;
    }
    if (ref) {
      if (ref.digest) {
        const name = referenceName(ref);
        const wanted = `${name}@${ref.digest}`;
        for (const r of Object.values(this.data.images)) {
          if (r.repoDigests.includes(wanted)) return r;
        }
        for (const r of Object.values(this.data.images)) {
          if ((r.target.digest === ref.digest || r.manifest.digest === ref.digest) && this.namesOf(r.id).some((n) => n.startsWith(`${name}:`))) return r;
        }
      } else {
        const id = this.data.names[formatReference(ref)];
        if (id && this.data.images[id]) return this.data.images[id];
      }
    }
    const short = SHORT_ID.exec(input);
    if (short) {
      const matches = Object.keys(this.data.images).filter((id) => id.slice('sha256:'.length).startsWith(short[1] as string));
      if (matches.length === 1) return this.data.images[matches[0] as string];
      if (matches.length > 1) throw new ImageError('AMBIGUOUS_IMAGE_ID', 'invalid', `ambiguous image ID prefix: ${input}`);
    }
    return undefined;
  }

  /** Points `name` (any reference form; default tag latest) at image `id`. */
  tag(id: string, name: string): Promise<string> {
    return this.exclusive(async () => {
      if (!this.data.images[id]) throw new ImageNotFoundError(id);
      const ref = parseReference(name);
      if (ref.digest) throw new ImageError('INVALID_TAG', 'invalid', `refusing to create a tag with a digest reference: ${name}`);
      const full = formatReference(ref);
      this.data.names[full] = id;
      (this.data.images[id] as ImageRecord).lastTagTime = new Date().toISOString();
      await this.save();
      return full;
    });
  }

  /** Removes one name; returns the image ID it pointed at, or undefined. */
  untag(name: string): Promise<string | undefined> {
    return this.exclusive(async () => {
      const full = formatReference(parseReference(name));
      const id = this.data.names[full];
      if (id === undefined) return undefined;
      delete this.data.names[full];
      // RepoDigests of that repository go with its last tag, as in Docker.
      const repo = referenceName(parseReference(name));
      const img = this.data.images[id];
      if (img && !this.namesOf(id).some((n) => n.startsWith(`${repo}:`))) {
        img.repoDigests = img.repoDigests.filter((d) => !d.startsWith(`${repo}@`));
      }
      await this.save();
      return id;
    });
  }

  delete(id: string): Promise<void> {
    return this.exclusive(async () => {
      delete this.data.images[id];
      for (const [n, v] of Object.entries(this.data.names)) if (v === id) delete this.data.names[n];
      await this.save();
    });
  }
}

/** `busybox:latest` style names for display (RepoTags). */
export function familiarNames(fullNames: string[]): string[] {
  return fullNames.map((n) => familiarString(parseReference(n)));
}

export function openImageStore(root: string): Promise<ImageStore> {
  return ImageStore.open(join(root, 'images.json'));
}
