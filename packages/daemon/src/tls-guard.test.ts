import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDaemonArgs } from './args.js';
import { startDaemon } from './daemon.js';

describe('startDaemon: TLS on non-loopback tcp:// addresses', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses --tls without --tlsverify on a non-loopback address before touching anything', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-tlsguard-'));
    const { options } = parseDaemonArgs(
      ['-H', 'tcp://0.0.0.0:0', '--tls', '--tlscert', join(dir, 'c.pem'), '--tlskey', join(dir, 'k.pem'), '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec')],
      () => {
        throw new Error('ENOENT');
      },
    );
    expect(options.tls).toEqual({ verify: false, cert: join(dir, 'c.pem'), key: join(dir, 'k.pem') });
    await expect(startDaemon(options)).rejects.toThrow(/refusing to listen on tcp:\/\/0\.0\.0\.0:0 with --tls but without --tlsverify/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('still refuses plain tcp:// on a non-loopback address without --allow-insecure-tcp', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-tlsguard-'));
    await expect(startDaemon({ hosts: ['tcp://0.0.0.0:0'], dataRoot: join(dir, 'data'), execRoot: join(dir, 'exec') })).rejects.toThrow(/without TLS/);
    expect(await readdir(dir)).toEqual([]);
  });
});
