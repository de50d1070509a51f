import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainIds, openImageStore } from './image-store.js';
import type { ImageRecord, ImageStore } from './image-store.js';

const hex = (c: string): string => c.repeat(64);
const record = (id: string, manifest = `sha256:${hex('e')}`): ImageRecord => ({
  id,
  target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest, size: 10 },
  manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest, size: 10 },
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: id, size: 10 },
  layers: [],
  repoDigests: [`docker.io/library/busybox@${manifest}`],
  storedAt: new Date().toISOString(),
});

describe('chainIds', () => {
  it('follows chainID(n) = sha256(chainID(n-1) + " " + diffID(n))', () => {
    const a = `sha256:${hex('a')}`;
    const b = `sha256:${hex('b')}`;
    const [c0, c1] = chainIds([a, b]);
    expect(c0).toBe(a);
    // sha256 of "sha256:aaa… sha256:bbb…", computed independently with coreutils sha256sum
    expect(c1).toBe('sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c');
    expect(chainIds([a, b])[1]).toBe(c1);
    expect(chainIds([b, a])[1]).not.toBe(c1);
  });
});

describe('ImageStore', () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-images-'));
    store = await openImageStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves names, full and short IDs and digest references like docker', async () => {
    const id = `sha256:${hex('1')}`;
    await store.put(record(id), ['docker.io/library/busybox:latest']);
    expect(store.resolve('busybox').id).toBe(id);
    expect(store.resolve('busybox:latest').id).toBe(id);
    expect(store.resolve('docker.io/library/busybox').id).toBe(id);
    expect(store.resolve(id).id).toBe(id);
    expect(store.resolve(hex('1')).id).toBe(id);
    expect(store.resolve('1111').id).toBe(id);
    expect(store.resolve(`busybox@sha256:${hex('e')}`).id).toBe(id);
    expect(() => store.resolve('busybox:other')).toThrow('No such image: busybox:other');
    expect(() => store.resolve('alpine')).toThrow(/No such image/);
  });

  it('keeps several names per image, untags, and survives a reopen', async () => {
    const id = `sha256:${hex('2')}`;
    await store.put(record(id), ['docker.io/library/busybox:latest']);
    await store.tag(id, 'localhost:5000/x');
    expect(store.namesOf(id)).toEqual(['docker.io/library/busybox:latest', 'localhost:5000/x:latest']);
    expect(await store.untag('busybox')).toBe(id);
    expect(store.get(id)?.repoDigests).toEqual([]);
    const again = await openImageStore(dir);
    expect(again.namesOf(id)).toEqual(['localhost:5000/x:latest']);
    await expect(again.tag(id, 'x@sha256:' + hex('3'))).rejects.toMatchObject({ category: 'invalid' });
  });

  it('moves a tag to a new image, leaving the old one dangling', async () => {
    const a = `sha256:${hex('4')}`;
    const b = `sha256:${hex('5')}`;
    await store.put(record(a), ['docker.io/library/app:1']);
    await store.put(record(b, `sha256:${hex('f')}`), ['docker.io/library/app:1']);
    expect(store.resolve('app:1').id).toBe(b);
    expect(store.namesOf(a)).toEqual([]);
    expect(store.get(a)).toBeDefined();
  });

  it('refuses an ambiguous ID prefix', async () => {
    await store.put(record(`sha256:ab${hex('0').slice(2)}`));
    await store.put(record(`sha256:ac${hex('0').slice(2)}`));
    expect(() => store.resolve('a')).toThrow(/ambiguous/);
  });
});
