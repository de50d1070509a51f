import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { RegistryClient } from '@berth/registry';
import { packTar } from '../../src/layer/tar-writer.js';
import type { TarWriteEntry } from '../../src/layer/tar-writer.js';
import { hostArchitecture } from '../../../../test/support/busybox.js';

export const sha = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha(bytes), size: bytes.length, bytes };
}

export async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c);
  return Buffer.concat(chunks);
}

export const fileEntry = (path: string, data: Buffer | string, mode = 0o644): TarWriteEntry => {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { header: { path, type: 'file', mode, size: b.length, mtime: 1_700_000_000 }, body: async function* () { yield b; } };
};

export interface TestImage {
  layers: Blob[];
  diffIds: string[];
  config: Blob;
  manifest: Blob;
}

/** An OCI image from layer tars (gzip-compressed here), config with matching diff_ids. */
export function makeImage(layerTars: Buffer[], opts: { compress?: boolean; cmd?: string[] } = {}): TestImage {
  const layers = layerTars.map((t) =>
    opts.compress === false ? blob('application/vnd.oci.image.layer.v1.tar', t) : blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(t, { level: 1 })),
  );
  const diffIds = layerTars.map((t) => sha(t));
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        created: '2026-02-02T00:00:00Z',
        architecture: hostArchitecture(),
        os: 'linux',
        config: { Cmd: opts.cmd ?? ['sh'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created: '2026-02-02T00:00:00Z', created_by: `layer ${i}` })),
      }),
    ),
  );
  const manifest = blob(
    'application/vnd.oci.image.manifest.v1+json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    ),
  );
  return { layers, diffIds, config, manifest };
}

/** A layer with one file of `size` random (incompressible) bytes. */
export async function randomLayer(path: string, size: number): Promise<Buffer> {
  return tarOf([fileEntry(path, randomBytes(size))]);
}

export async function pushTestImage(registryHost: string, repoTag: string, image: TestImage): Promise<void> {
  const client = new RegistryClient({});
  const ref = `${registryHost}/${repoTag}`;
  for (const b of [...image.layers, image.config]) {
    await client.pushBlob(ref, { mediaType: b.mediaType, digest: b.digest, size: b.size }, (offset) => Readable.from([b.bytes.subarray(offset)]));
  }
  await client.pushManifest(ref, image.manifest.bytes, image.manifest.mediaType);
}

export interface ProxyLog {
  method: string;
  path: string;
  range?: string;
  bytes: number;
}

/**
 * An HTTP proxy in front of the registry that can slow blob downloads to `bytesPerSecond`
 * and records every request with the bytes it sent back — to see what a pull fetched.
 */
export async function startProxy(target: string): Promise<{ host: string; server: Server; log: ProxyLog[]; setRate(bps: number | undefined): void; setCorrupt(on: boolean): void; close(): Promise<void> }> {
  const upstream = new URL(target);
  const log: ProxyLog[] = [];
  let rate: number | undefined;
  let corrupt = false;
  const server = createServer((req, res) => {
    const entry: ProxyLog = { method: req.method ?? '', path: req.url ?? '', bytes: 0 };
    if (req.headers.range) entry.range = String(req.headers.range);
    log.push(entry);
    const headers = { ...req.headers, host: upstream.host };
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      const slow = rate !== undefined && (req.url ?? '').includes('/blobs/sha256:');
      const flip = corrupt && (req.url ?? '').includes('/blobs/sha256:');
      // Two reasons to hold the upstream back — the client not keeping up (waiting for one
      // `drain`) and the throttle — and it flows again only once neither holds: a throttle
      // timer that resumed it while the response was still full would have every later chunk
      // add one more `drain` listener.
      let awaitingDrain = false;
      let throttled = false;
      const resumeIfFree = (): void => {
        if (!awaitingDrain && !throttled) ures.resume();
      };
      ures.on('data', (chunk: Buffer) => {
        entry.bytes += chunk.length;
        if (flip && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[0] = (chunk[0] as number) ^ 0xff;
        }
        if (!res.write(chunk) && !awaitingDrain) {
          awaitingDrain = true;
          ures.pause();
          res.once('drain', () => {
            awaitingDrain = false;
            resumeIfFree();
          });
        }
        if (slow && rate) {
          throttled = true;
          ures.pause();
          setTimeout(() => {
            throttled = false;
            resumeIfFree();
          }, (chunk.length / rate) * 1000);
        }
      });
      ures.on('end', () => res.end());
      ures.on('error', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    server,
    log,
    setRate(bps) {
      rate = bps;
    },
    setCorrupt(on) {
      corrupt = on;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
