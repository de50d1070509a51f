import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { MediaType } from '@berth/oci-spec';
import type { Descriptor, History, ImageConfig, ImageManifest } from '@berth/oci-spec';
import { writeBlob } from '../content/local-store.js';
import { decompressStream } from '../layer/decompress.js';
import type { ImageContext } from '../store/context.js';

/**
 * Compresses an uncompressed-or-compressed layer stream into a gzip blob in the content store,
 * computing the diffID (of the uncompressed tar) on the way. Nothing is held in memory.
 */
export async function ingestLayer(ctx: ImageContext, input: AsyncIterable<Buffer | Uint8Array>): Promise<{ desc: Descriptor; diffId: string }> {
  const diff = createHash('sha256');
  const gzip = createGzip({ level: 1 });
  const feeding = (async () => {
    try {
      for await (const chunk of decompressStream(input)) {
        diff.update(chunk);
        if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
      }
      gzip.end();
    } catch (err) {
      gzip.destroy(err as Error);
    }
  })();
  const info = await writeBlob(ctx.content, gzip);
  await feeding;
  return { desc: { mediaType: MediaType.LayerGzip, digest: info.digest, size: info.size }, diffId: `sha256:${diff.digest('hex')}` };
}

/** Writes a config and an OCI manifest for it into the content store; returns the manifest descriptor. */
export async function writeImage(ctx: ImageContext, config: ImageConfig, layers: Descriptor[]): Promise<{ manifest: Descriptor; config: Descriptor }> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const cinfo = await writeBlob(ctx.content, configBytes);
  const configDesc: Descriptor = { mediaType: MediaType.ImageConfig, digest: cinfo.digest, size: cinfo.size };
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDesc, layers };
  const mbytes = Buffer.from(JSON.stringify(manifest));
  const minfo = await writeBlob(ctx.content, mbytes);
  return { manifest: { mediaType: MediaType.ImageManifest, digest: minfo.digest, size: minfo.size }, config: configDesc };
}

export function historyEntry(createdBy: string, comment?: string, author?: string): History {
  const h: History = { created: new Date().toISOString(), created_by: createdBy };
  if (comment) h.comment = comment;
  if (author) h.author = author;
  return h;
}

export function readableOf(source: AsyncIterable<Buffer>): Readable {
  return Readable.from(source, { objectMode: false, highWaterMark: 1 << 20 });
}
