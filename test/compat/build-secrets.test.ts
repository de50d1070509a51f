/**
 * `POST /build` driven by a plain streaming HTTP request — no BuildKit session — with a secret
 * for `RUN --mount=type=secret` (X-Berth-Build-Secrets) and a cache mount: the secret is usable
 * in the step and reaches neither the image's files nor its history.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../support/privileged.js';
import { docker, startBerthd, type BerthdInstance } from './support/berthd.js';
import { loadBusybox } from './support/images.js';

const run = promisify(execFile);

function post(socket: string, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'POST', headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describePrivileged('compat: /build with secrets and cache mounts over a plain request', () => {
  let berthd: BerthdInstance | undefined;
  let dir = '';

  beforeAll(async () => {
    berthd = await startBerthd();
    await loadBusybox(berthd.env, 'busybox:latest');
    dir = await mkdtemp(join(tmpdir(), 'berth-build-secrets-'));
  });

  afterAll(async () => {
    await berthd?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes a secret to RUN --mount=type=secret and keeps it out of the image', async () => {
    const ctx = join(dir, 'ctx');
    await run('mkdir', ['-p', ctx]);
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM busybox:latest',
        'RUN --mount=type=secret,id=token --mount=type=cache,target=/cache sh -c \'echo seen > /cache/mark && sha256sum < /run/secrets/token > /token-sum\'',
        '',
      ].join('\n'),
    );
    const { stdout: tar } = await run('tar', ['-C', ctx, '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 1 << 20 });
    const secrets = Buffer.from(JSON.stringify({ token: Buffer.from('s3cret-value').toString('base64') })).toString('base64');
    const res = await post(berthd!.socket, '/build?t=secret-test:1&dockerfile=Dockerfile', { 'Content-Type': 'application/x-tar', 'X-Berth-Build-Secrets': secrets }, tar);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('errorDetail');
    expect(res.text).toContain('Successfully tagged secret-test:1');

    // The step read the secret (its hash is what the step wrote), yet its value is nowhere below.
    const sum = await docker(berthd!.env, ['run', '--rm', 'secret-test:1', 'cat', '/token-sum']);
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update('s3cret-value').digest('hex'));
    const secretFile = await docker(berthd!.env, ['run', '--rm', 'secret-test:1', 'ls', '/run/secrets/token']);
    expect(secretFile.code).not.toBe(0);
    const history = await docker(berthd!.env, ['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'secret-test:1']);
    expect(history.stdout).toContain('/run/secrets/token');
    expect(history.stdout).not.toContain('s3cret-value');
    // No file of the image's root filesystem holds the secret's value.
    const leaked = await docker(berthd!.env, ['run', '--rm', 'secret-test:1', 'sh', '-c', 'find / -xdev -type f | xargs grep -l s3cret-value; true']);
    expect(leaked.stdout.trim()).toBe('');
  });

  it('refuses a malformed secrets header with 400 and a message', async () => {
    const res = await post(berthd!.socket, '/build?t=bad:1', { 'Content-Type': 'application/x-tar', 'X-Berth-Build-Secrets': 'bm90IGpzb24' }, Buffer.alloc(1024));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).message).toMatch(/X-Berth-Build-Secrets/);
  });
});
