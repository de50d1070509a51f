/**
 * Online garbage collection: runs while the server keeps serving pushes and pulls, deletes
 * only blobs no manifest references, and never one that an in-flight push relies on.
 */
import { createHash, randomBytes } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import { randomImage, type Blob } from './support/layout.js';
import { startTestRegistry, type TestRegistry } from './support/registry.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const source = (bytes: Uint8Array) => (offset: number) => Readable.from([Buffer.from(bytes).subarray(offset)]);

let reg: TestRegistry;
let client: RegistryClient;
beforeEach(async () => {
  reg = await startTestRegistry();
  client = new RegistryClient({ credentials: new StaticCredentials() });
});
afterEach(async () => {
  await reg.stop();
});

/** Makes a blob look committed two hours ago, i.e. outside the default grace period. */
async function age(blob: { digest: string }): Promise<void> {
  const hex = blob.digest.slice('sha256:'.length);
  const past = new Date(Date.now() - 2 * 60 * 60_000);
  await utimes(join(reg.root, 'blobs', 'sha256', hex.slice(0, 2), hex), past, past);
}

async function pushImage(repo: string, tag: string, img = randomImage()): Promise<typeof img> {
  for (const b of [img.layer, img.config]) await client.pushBlob(`${reg.host}/${repo}`, b, source(b.bytes));
  await client.pushManifest(`${reg.host}/${repo}:${tag}`, img.manifest.bytes, img.manifest.mediaType);
  return img;
}

async function pushOrphan(repo: string): Promise<Blob> {
  const bytes = randomBytes(5000);
  const blob = { mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length, bytes };
  await client.pushBlob(`${reg.host}/${repo}`, blob, source(bytes));
  return blob;
}

describe('online garbage collection', () => {
  it('deletes old unreferenced blobs, keeps referenced and young ones', async () => {
    const kept = await pushImage('gc/app', 'v1');
    const orphan = await pushOrphan('gc/app');
    const young = await pushOrphan('gc/app');
    for (const b of [kept.layer, kept.config, kept.manifest, orphan]) await age(b);

    const report = await reg.collectGarbage();
    expect(report.blobsDeleted).toEqual([orphan.digest]);
    expect(report.bytesFreed).toBe(orphan.size);
    expect(report.blobsKept).toBe(1);
    expect(await client.blobExists(`${reg.host}/gc/app`, orphan.digest)).toBe(false);
    expect(await client.blobExists(`${reg.host}/gc/app`, young.digest)).toBe(true);
    expect((await client.getManifest(`${reg.host}/gc/app:v1`)).descriptor.digest).toBe(kept.manifest.digest);
    for (const b of [kept.layer, kept.config]) {
      const chunks: Buffer[] = [];
      for await (const c of await client.fetchBlob(`${reg.host}/gc/app`, b)) chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(b.digest);
    }
  });

  it('collects an image once its manifest is deleted, but not blobs another manifest shares', async () => {
    const a = await pushImage('gc/a', 'v1');
    const b = randomImage();
    // b shares a's layer.
    const shared = { ...b, layer: a.layer };
    const manifest = JSON.parse(Buffer.from(b.manifest.bytes).toString()) as { layers: unknown[] };
    manifest.layers = [{ mediaType: a.layer.mediaType, digest: a.layer.digest, size: a.layer.size }];
    const mbytes = Buffer.from(JSON.stringify(manifest));
    await client.pushBlob(`${reg.host}/gc/b`, a.layer, () => Readable.from([]), { mountFrom: 'gc/a' });
    await client.pushBlob(`${reg.host}/gc/b`, shared.config, source(shared.config.bytes));
    await client.pushManifest(`${reg.host}/gc/b:v1`, mbytes, b.manifest.mediaType);
    await client.deleteManifest(`${reg.host}/gc/a`, a.manifest.digest);
    for (const x of [a.layer, a.config, a.manifest, shared.config, { digest: sha256(mbytes) }]) await age(x);

    const report = await reg.collectGarbage();
    expect(report.blobsDeleted.sort()).toEqual([a.config.digest, a.manifest.digest].sort());
    expect(await client.blobExists(`${reg.host}/gc/b`, a.layer.digest)).toBe(true);
    // The links of deleted blobs are gone from the repository too.
    expect(await client.blobExists(`${reg.host}/gc/a`, a.config.digest)).toBe(false);
  });

  it('a blob guarded by a push during the run survives even outside the grace period', async () => {
    const orphan = await pushOrphan('gc/guard');
    await age(orphan);
    const app = reg.server.registry;
    const run = app.collectGarbage({ gracePeriodMs: 0 });
    // What a manifest PUT or a mount does before relying on a blob.
    await app.gc.guard(orphan.digest);
    const report = await run;
    expect(report.blobsDeleted).not.toContain(orphan.digest);
    expect(await client.blobExists(`${reg.host}/gc/guard`, orphan.digest)).toBe(true);
  });

  it('runs while pushes and pulls continue; every image pushed meanwhile stays whole', async () => {
    const old = await Promise.all([pushOrphan('gc/busy'), pushOrphan('gc/busy'), pushOrphan('gc/busy')]);
    for (const o of old) await age(o);
    // An upload in flight during the collection: its bytes are not a blob yet and must survive.
    const partial = randomBytes(300_000);
    const post = await fetch(`${reg.url}/v2/gc/busy/blobs/uploads/`, { method: 'POST' });
    const location = new URL(post.headers.get('location')!, reg.url).toString();
    await fetch(location, { method: 'PATCH', body: partial.subarray(0, 100_000), headers: { 'Content-Range': '0-99999' } });

    const pushes = Array.from({ length: 8 }, (_, i) => pushImage('gc/busy', `t${i}`));
    const reports = [];
    for (let i = 0; i < 4; i++) {
      reports.push(await reg.collectGarbage({ gracePeriodMs: 60_000 }));
    }
    const images = await Promise.all(pushes);
    reports.push(await reg.collectGarbage({ gracePeriodMs: 60_000 }));
    const deleted = new Set(reports.flatMap((r) => r.blobsDeleted));
    expect([...deleted].sort()).toEqual(old.map((o) => o.digest).sort());

    for (const [i, img] of images.entries()) {
      expect((await client.getManifest(`${reg.host}/gc/busy:t${i}`)).descriptor.digest).toBe(img.manifest.digest);
      for (const b of [img.layer, img.config]) expect(await client.blobExists(`${reg.host}/gc/busy`, b.digest)).toBe(true);
    }
    const put = await fetch(`${location}?digest=${sha256(partial)}`, {
      method: 'PUT',
      body: partial.subarray(100_000),
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    expect(await client.blobExists(`${reg.host}/gc/busy`, sha256(partial))).toBe(true);
    expect(reports.every((r) => r.uploadsPurged.length === 0)).toBe(true);
  });

  it('removes abandoned upload sessions older than uploadMaxAgeMs', async () => {
    const post = await fetch(`${reg.url}/v2/gc/abandoned/blobs/uploads/`, { method: 'POST' });
    const location = new URL(post.headers.get('location')!, reg.url).toString();
    expect((await reg.collectGarbage()).uploadsPurged).toEqual([]);
    await new Promise((r) => setTimeout(r, 20));
    const report = await reg.collectGarbage({ uploadMaxAgeMs: 10 });
    expect(report.uploadsPurged).toEqual([post.headers.get('docker-upload-uuid')]);
    expect((await fetch(location)).status).toBe(404);
  });
});
