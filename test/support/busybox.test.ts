import { createHash } from 'node:crypto';
import { lstat, readlink, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildBusyboxImage, makeBusyboxRootfs } from './busybox.js';

describe('busybox fixtures', () => {
  it('builds a root filesystem with applet links that stay inside the root', async () => {
    const dir = await makeBusyboxRootfs({ files: { '/etc/motd': 'hello\n' } });
    try {
      expect(await readlink(join(dir, 'bin/sh'))).toBe('busybox');
      expect(await readlink(join(dir, 'usr/bin/wget'))).toBe('../../bin/busybox');
      expect((await lstat(join(dir, 'tmp'))).mode & 0o7777).toBe(0o1777);
      expect(await readFile(join(dir, 'etc/motd'), 'utf8')).toBe('hello\n');
      expect(await readFile(join(dir, 'etc/passwd'), 'utf8')).toMatch(/^berth:x:1000:1000:/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds an image whose digests match its bytes', async () => {
    const image = await buildBusyboxImage({ cmd: ['echo', 'hi'] });
    const hash = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    expect(hash(image.layer.bytes)).toBe(image.layer.digest);
    expect(hash(gunzipSync(image.layer.bytes))).toBe(image.diffId);
    expect(image.config.json.rootfs.diff_ids).toEqual([image.diffId]);
    expect(image.manifest.json.layers[0]?.digest).toBe(image.layer.digest);
    expect(hash(image.manifest.bytes)).toBe(image.manifest.digest);
    expect(image.config.json.config.Cmd).toEqual(['echo', 'hi']);
  });
});
