/** serveRegistry itself: TLS, graceful shutdown, address parsing. */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveRegistry } from '@berth/registry';
import { startTestRegistry } from './support/registry.js';
import { randomImage, writeDirImage } from './support/layout.js';

const run = promisify(execFile);
const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-registry-server-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('serveRegistry', () => {
  it('serves HTTPS with the given certificate; skopeo pushes over TLS', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const registry = await serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'tls-root'), tlsCert: cert, tlsKey: key, log: false, gc: false });
    try {
      expect(registry.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { readFile } = await import('node:fs/promises');
      const ca = await readFile(cert);
      const status = await new Promise<number>((resolve, reject) => {
        https.get(`${registry.url}/v2/`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(200);
      const img = randomImage();
      const src = join(dir, 'img');
      await writeDirImage(src, [img.layer, img.config], img.manifest);
      await run('skopeo', ['--insecure-policy', 'copy', '--dest-cert-dir', dir, '--dest-tls-verify=false', `dir:${src}`, `docker://127.0.0.1:${registry.port}/tls/img:1`]);
      const manifest = await new Promise<string>((resolve, reject) => {
        https.get(`${registry.url}/v2/tls/img/manifests/1`, { ca }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
        }).on('error', reject);
      });
      expect(sha256(Buffer.from(manifest))).toBe(img.manifest.digest);
    } finally {
      await registry.close();
    }
  });

  it('shuts down gracefully: an in-flight download completes, new connections are refused', async () => {
    const reg = await startTestRegistry();
    try {
      const data = randomBytes(32 * 1024 * 1024);
      const put = await fetch(`${reg.url}/v2/shutdown/x/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', body: data });
      expect(put.status).toBe(201);
      const res = await fetch(`${reg.url}/v2/shutdown/x/blobs/${sha256(data)}`);
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      const closing = reg.close();
      const chunks: Uint8Array[] = [first.value!];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
      await closing;
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
      await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
    } finally {
      await reg.stop();
    }
  });

  it('refuses a malformed address and half a TLS configuration', async () => {
    await expect(serveRegistry({ addr: 'nonsense', root: join(dir, 'x') })).rejects.toThrow(/invalid listen address/);
    await expect(serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'x'), tlsCert: 'a.pem' })).rejects.toThrow(/tlsCert and tlsKey/);
  });
});
