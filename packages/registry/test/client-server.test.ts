/**
 * berth's RegistryClient against berth's server in-process (real HTTP on loopback), plus small
 * misbehaving HTTP servers for what a well-behaved registry never does (wrong bytes, redirects
 * to other hosts, 429/503 with Retry-After).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Digester } from '@berth/oci-spec';
import {
  BlobUnknownError,
  DockerConfigCredentials,
  ManifestUnknownError,
  NameUnknownError,
  RegistryClient,
  StaticCredentials,
  TooManyRequestsError,
  UnauthorizedError,
} from '@berth/registry';
import { buildBusyboxImage, type BusyboxImage } from '../../../test/support/busybox.js';
import { blobOf, descriptor, randomImage } from './support/layout.js';
import { startTestRegistry, type TestRegistry } from './support/registry.js';

const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const none = new StaticCredentials();

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function bytesSource(bytes: Uint8Array): (offset: number) => Readable {
  return (offset) => Readable.from([Buffer.from(bytes).subarray(offset)]);
}

/** A plain HTTP server for behaviours a real registry should not have. */
async function fakeServer(handler: http.RequestListener): Promise<{ server: http.Server; host: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let reg: TestRegistry;
let client: RegistryClient;
let busybox: BusyboxImage;
let tmp: string;

beforeAll(async () => {
  reg = await startTestRegistry();
  client = new RegistryClient({ credentials: none });
  busybox = await buildBusyboxImage();
  tmp = await mkdtemp(join(tmpdir(), 'berth-client-test-'));
});
afterAll(async () => {
  await reg.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function pushBusybox(repo: string, tag: string): Promise<void> {
  for (const blob of [busybox.layer, busybox.config]) {
    await client.pushBlob(repo, blob, bytesSource(blob.bytes));
  }
  await client.pushManifest(`${repo}:${tag}`, busybox.manifest.bytes, busybox.manifest.mediaType);
}

describe('RegistryClient ↔ berth registry', () => {
  it('pushes busybox and pulls it back verified: resolve, manifest, blobs', async () => {
    const repo = `${reg.host}/client/busybox`;
    await pushBusybox(repo, 'v1');
    const desc = await client.resolve(`${repo}:v1`);
    expect(desc).toEqual({ mediaType: busybox.manifest.mediaType, digest: busybox.manifest.digest, size: busybox.manifest.size });
    const got = await client.getManifest(`${repo}:v1`);
    expect(got.descriptor.digest).toBe(busybox.manifest.digest);
    expect(Buffer.from(got.bytes).equals(Buffer.from(busybox.manifest.bytes))).toBe(true);
    expect(await client.getImageManifest(`${repo}@${busybox.manifest.digest}`)).toMatchObject({ descriptor: desc });
    const progress: number[] = [];
    const layer = await readAll(await client.fetchBlob(repo, busybox.layer, { onProgress: (n) => progress.push(n) }));
    expect(sha256(layer)).toBe(busybox.layer.digest);
    expect(progress.at(-1)).toBe(busybox.layer.size);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    // A second push finds everything in place.
    expect(await client.pushBlob(repo, busybox.layer, bytesSource(busybox.layer.bytes))).toEqual({ outcome: 'exists' });
    expect(await client.blobExists(repo, busybox.config.digest)).toBe(true);
    expect(await client.blobExists(repo, sha256('nothing'))).toBe(false);
  });

  it('pushes in chunks with progress, and resumes an interrupted upload from the server Range', async () => {
    const repo = `${reg.host}/client/chunked`;
    const data = randomBytes(1_000_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    const progress: number[] = [];
    expect(await client.pushBlob(repo, desc, bytesSource(data), { chunkSize: 300_000, onProgress: (n) => progress.push(n) })).toEqual({
      outcome: 'uploaded',
    });
    expect(progress.at(-1)).toBe(data.length);
    expect(sha256(await readAll(await client.fetchBlob(repo, desc)))).toBe(desc.digest);

    // An upload that stopped after 400 kB (a client that crashed): resume from its URL.
    const data2 = randomBytes(900_000);
    const desc2 = { mediaType: 'application/octet-stream', digest: sha256(data2), size: data2.length };
    const post = await fetch(`${reg.url}/v2/client/chunked/blobs/uploads/`, { method: 'POST' });
    const location = new URL(post.headers.get('location')!, reg.url).toString();
    const patch = await fetch(location, { method: 'PATCH', body: data2.subarray(0, 400_000), headers: { 'Content-Range': '0-399999' } });
    expect(patch.status).toBe(202);
    const opened: number[] = [];
    const result = await client.pushBlob(repo, desc2, (offset) => {
      opened.push(offset);
      return Readable.from([data2.subarray(offset)]);
    }, { uploadUrl: location, chunkSize: 200_000 });
    expect(result).toEqual({ outcome: 'uploaded' });
    expect(opened[0]).toBe(400_000);
    expect(sha256(await readAll(await client.fetchBlob(repo, desc2)))).toBe(desc2.digest);
  });

  it('resumes a download from an offset, verifying the whole blob with a supplied digester', async () => {
    const repo = `${reg.host}/client/range`;
    const data = randomBytes(500_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    await client.pushBlob(repo, desc, bytesSource(data));
    const digester = new Digester().update(data.subarray(0, 123_456));
    const rest = await readAll(await client.fetchBlob(repo, desc, { offset: 123_456, digester }));
    expect(rest.length).toBe(data.length - 123_456);
    expect(sha256(Buffer.concat([data.subarray(0, 123_456), rest]))).toBe(desc.digest);
    const wrongStart = new Digester().update(randomBytes(123_456));
    await expect(readAll(await client.fetchBlob(repo, desc, { offset: 123_456, digester: wrongStart }))).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
  });

  it('mounts blobs across repositories', async () => {
    const data = randomBytes(10_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    await client.pushBlob(`${reg.host}/client/mount-from`, desc, bytesSource(data));
    const result = await client.pushBlob(`${reg.host}/client/mount-to`, desc, () => {
      throw new Error('must not upload');
    }, { mountFrom: 'client/mount-from' });
    expect(result).toEqual({ outcome: 'mounted' });
    expect(await client.blobExists(`${reg.host}/client/mount-to`, desc.digest)).toBe(true);
  });

  it('lists tags with and without pagination, and the catalog', async () => {
    const repo = `${reg.host}/client/tags`;
    await pushBusybox(repo, 't0');
    for (const tag of ['t3', 't1', 't2']) await client.pushManifest(`${repo}:${tag}`, busybox.manifest.bytes, busybox.manifest.mediaType);
    expect(await client.listTags(repo)).toEqual(['t0', 't1', 't2', 't3']);
    expect(await client.listTags(repo, { n: 2 })).toEqual(['t0', 't1']);
    expect(await client.listTags(repo, { n: 2, last: 't1' })).toEqual(['t2', 't3']);
    const catalog = await client.catalog(reg.host);
    expect(catalog).toEqual(expect.arrayContaining(['client/busybox', 'client/tags']));
    const paged = new RegistryClient({ credentials: none });
    expect(await paged.catalog(reg.host, { n: 1 })).toHaveLength(1);
    await expect(client.listTags(`${reg.host}/client/none`)).rejects.toBeInstanceOf(NameUnknownError);
  });

  it('pushes artifacts with a subject and lists referrers, filtered by artifactType', async () => {
    const repo = `${reg.host}/client/referrers`;
    await pushBusybox(repo, 'v1');
    const empty = blobOf('application/vnd.oci.empty.v1+json', '{}');
    await client.pushBlob(repo, empty, bytesSource(empty.bytes));
    const subject = { mediaType: busybox.manifest.mediaType, digest: busybox.manifest.digest, size: busybox.manifest.size };
    const artifact = (type: string): Buffer =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: type, config: descriptor(empty), layers: [descriptor(empty)], subject }));
    const sig = artifact('application/vnd.example.sig');
    const sbom = artifact('application/vnd.example.sbom');
    expect(await client.pushManifest(repo, sig, 'application/vnd.oci.image.manifest.v1+json')).toBe(sha256(sig));
    await client.pushManifest(repo, sbom, 'application/vnd.oci.image.manifest.v1+json');
    const all = await client.referrers(repo, busybox.manifest.digest);
    expect(all.map((d) => d.digest).sort()).toEqual([sha256(sig), sha256(sbom)].sort());
    const sigs = await client.referrers(repo, busybox.manifest.digest, { artifactType: 'application/vnd.example.sig' });
    expect(sigs).toEqual([{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(sig), size: sig.length, artifactType: 'application/vnd.example.sig' }]);
  });

  it('deletes manifests and blobs; the typed errors follow', async () => {
    const repo = `${reg.host}/client/delete`;
    await pushBusybox(repo, 'v1');
    await client.deleteManifest(repo, busybox.manifest.digest);
    await expect(client.getManifest(`${repo}:v1`)).rejects.toBeInstanceOf(ManifestUnknownError);
    await expect(client.resolve(`${repo}:v1`)).rejects.toBeInstanceOf(ManifestUnknownError);
    await client.deleteBlob(repo, busybox.layer.digest);
    await expect(client.fetchBlob(repo, busybox.layer)).rejects.toBeInstanceOf(BlobUnknownError);
    await expect(client.deleteBlob(repo, busybox.layer.digest)).rejects.toBeInstanceOf(BlobUnknownError);
  });

  it('pushes a Docker schema2 image and a multi-arch index; selects the platform', async () => {
    const repo = `${reg.host}/client/multi`;
    const amd = randomImage({ architecture: 'amd64', docker: true });
    const arm = randomImage({ architecture: 'arm64', docker: true });
    for (const img of [amd, arm]) {
      for (const b of [img.layer, img.config]) await client.pushBlob(repo, b, bytesSource(b.bytes));
      await client.pushManifest(repo, img.manifest.bytes, img.manifest.mediaType);
    }
    const list = blobOf(
      'application/vnd.docker.distribution.manifest.list.v2+json',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          descriptor(amd.manifest, { platform: { os: 'linux', architecture: 'amd64' } }),
          descriptor(arm.manifest, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
        ],
      }),
    );
    await client.pushManifest(`${repo}:latest`, list.bytes, list.mediaType);
    const chosen = await client.getImageManifest(`${repo}:latest`, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(chosen.descriptor.digest).toBe(arm.manifest.digest);
    expect(chosen.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    await expect(client.getImageManifest(`${repo}:latest`, { platform: 'linux/s390x' })).rejects.toBeInstanceOf(ManifestUnknownError);
  });

  it('limits concurrent blob transfers to `concurrency`', async () => {
    const repo = `${reg.host}/client/concurrency`;
    const a = randomBytes(4096);
    const b = randomBytes(4096);
    const da = { mediaType: 'application/octet-stream', digest: sha256(a), size: a.length };
    const db = { mediaType: 'application/octet-stream', digest: sha256(b), size: b.length };
    await client.pushBlob(repo, da, bytesSource(a));
    await client.pushBlob(repo, db, bytesSource(b));
    const one = new RegistryClient({ credentials: none, concurrency: 1 });
    const first = await one.fetchBlob(repo, da);
    let secondStarted = false;
    const second = one.fetchBlob(repo, db).then((s) => {
      secondStarted = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(secondStarted).toBe(false);
    expect(sha256(await readAll(first))).toBe(da.digest);
    expect(sha256(await readAll(await second))).toBe(db.digest);
    expect(secondStarted).toBe(true);
  });

  it('a blob whose bytes do not match the descriptor fails the stream', async () => {
    const repo = `${reg.host}/client/verify`;
    const data = randomBytes(50_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    await client.pushBlob(repo, desc, bytesSource(data));
    await expect(readAll(await client.fetchBlob(repo, { ...desc, size: data.length - 1 }))).rejects.toMatchObject({ code: 'SIZE_INVALID' });
  });
});

describe('RegistryClient auth', () => {
  let authReg: TestRegistry;
  let tokenReg: TestRegistry;
  beforeAll(async () => {
    const htpasswd = join(tmp, 'htpasswd');
    await writeFile(htpasswd, `alice:${bcrypt.hashSync('wonderland', 8)}\n`);
    authReg = await startTestRegistry({ htpasswd });
    tokenReg = await startTestRegistry({ htpasswd, auth: 'token' });
  });
  afterAll(async () => {
    await authReg.stop();
    await tokenReg.stop();
  });

  it('basic auth: anonymous and wrong passwords are refused, right ones work', async () => {
    await expect(new RegistryClient({ credentials: none }).catalog(authReg.host)).rejects.toBeInstanceOf(UnauthorizedError);
    const wrong = new RegistryClient({ credentials: new StaticCredentials({ [authReg.host]: { username: 'alice', password: 'nope' } }) });
    await expect(wrong.listTags(`${authReg.host}/x/y`)).rejects.toBeInstanceOf(UnauthorizedError);
    const alice = new RegistryClient({ credentials: new StaticCredentials({ [authReg.host]: { username: 'alice', password: 'wonderland' } }) });
    await alice.pushBlob(`${authReg.host}/auth/basic`, busybox.config, bytesSource(busybox.config.bytes));
    expect(await alice.blobExists(`${authReg.host}/auth/basic`, busybox.config.digest)).toBe(true);
  });

  it('bearer tokens: challenge, token per scope, cached', async () => {
    const alice = new RegistryClient({ credentials: new StaticCredentials({ [tokenReg.host]: { username: 'alice', password: 'wonderland' } }) });
    const repo = `${tokenReg.host}/auth/token`;
    await alice.pushBlob(repo, busybox.layer, bytesSource(busybox.layer.bytes));
    await alice.pushBlob(repo, busybox.config, bytesSource(busybox.config.bytes));
    await alice.pushManifest(`${repo}:v1`, busybox.manifest.bytes, busybox.manifest.mediaType);
    expect((await alice.getManifest(`${repo}:v1`)).descriptor.digest).toBe(busybox.manifest.digest);
    const tokenRequests = tokenReg.logs.filter((e) => e.path.startsWith('/token'));
    // One token for pull,push and one for pull: cached across the other requests.
    expect(tokenRequests.length).toBeGreaterThanOrEqual(1);
    expect(tokenRequests.length).toBeLessThanOrEqual(3);
    expect(tokenRequests.every((e) => e.status === 200 && e.user === 'alice')).toBe(true);
    const anonymous = new RegistryClient({ credentials: none });
    await expect(anonymous.getManifest(`${repo}:v1`)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('identity tokens: a refresh token from the OAuth2 password grant buys access tokens', async () => {
    const login = await fetch(`${tokenReg.url}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wonderland', access_type: 'offline', service: 'berth-registry', client_id: 'test' }),
    });
    expect(login.status).toBe(200);
    const { refresh_token: refresh } = (await login.json()) as { refresh_token: string };
    expect(refresh).toBeTruthy();
    const withIdentity = new RegistryClient({ credentials: new StaticCredentials({ [tokenReg.host]: { identityToken: refresh } }) });
    await withIdentity.pushBlob(`${tokenReg.host}/auth/identity`, busybox.config, bytesSource(busybox.config.bytes));
    expect(await withIdentity.blobExists(`${tokenReg.host}/auth/identity`, busybox.config.digest)).toBe(true);
    const forged = new RegistryClient({ credentials: new StaticCredentials({ [tokenReg.host]: { identityToken: `${refresh}x` } }) });
    await expect(forged.blobExists(`${tokenReg.host}/auth/identity`, busybox.config.digest)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('reads ~/.docker/config.json: inline auths and a docker-credential-* helper', async () => {
    const inline = join(tmp, 'config-inline.json');
    await writeFile(inline, JSON.stringify({ auths: { [`http://${authReg.host}`]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }));
    const c1 = new RegistryClient({ credentials: new DockerConfigCredentials(inline) });
    expect(await c1.blobExists(`${authReg.host}/auth/basic`, busybox.config.digest)).toBe(true);

    const bin = join(tmp, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-berthtest');
    await writeFile(
      helper,
      `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${authReg.host}" ]; then echo '{"ServerURL":"${authReg.host}","Username":"alice","Secret":"wonderland"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n`,
    );
    await chmod(helper, 0o755);
    const withHelper = join(tmp, 'config-helper.json');
    await writeFile(withHelper, JSON.stringify({ credHelpers: { [authReg.host]: 'berthtest' } }));
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const c2 = new RegistryClient({ credentials: new DockerConfigCredentials(withHelper) });
      expect(await c2.blobExists(`${authReg.host}/auth/basic`, busybox.config.digest)).toBe(true);
      const store = new DockerConfigCredentials(join(tmp, 'config-store.json'));
      await writeFile(store.file, JSON.stringify({ credsStore: 'berthtest' }));
      expect(await store.get(authReg.host)).toEqual({ username: 'alice', password: 'wonderland' });
      expect(await store.get('other.example:5000')).toBeUndefined();
    } finally {
      process.env.PATH = oldPath;
    }
  });
});

describe('RegistryClient against misbehaving servers', () => {
  it('never sends credentials to the host a redirect points at', async () => {
    const seen: Array<string | undefined> = [];
    const data = randomBytes(1000);
    const cdn = await fakeServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'Content-Length': data.length }).end(data);
    });
    const origin = await fakeServer((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('bob:secret').toString('base64')}`) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"' }).end();
        return;
      }
      res.writeHead(307, { Location: `http://${cdn.host}/blob-data` }).end();
    });
    try {
      const c = new RegistryClient({ credentials: new StaticCredentials({ [origin.host]: { username: 'bob', password: 'secret' } }) });
      const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
      const body = await readAll(await c.fetchBlob(`${origin.host}/r/x`, desc));
      expect(sha256(body)).toBe(desc.digest);
      expect(seen).toEqual([undefined]);
    } finally {
      await cdn.close();
      await origin.close();
    }
  });

  it('retries 429 and 503 honouring Retry-After, then gives a typed error', async () => {
    let calls = 0;
    const manifest = busybox.manifest;
    const flaky = await fakeServer((req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(429, { 'Retry-After': '1' }).end();
      if (calls === 2) return void res.writeHead(503, { 'Retry-After': '0' }).end();
      res.writeHead(200, { 'Content-Type': manifest.mediaType, 'Docker-Content-Digest': manifest.digest, 'Content-Length': manifest.size }).end(manifest.bytes);
    });
    const always = await fakeServer((_req, res) => {
      res.writeHead(429, { 'Retry-After': '0', 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
    });
    try {
      const started = Date.now();
      const got = await new RegistryClient({ credentials: none, backoffMs: 10 }).getManifest(`${flaky.host}/r/x:v1`);
      expect(got.descriptor.digest).toBe(manifest.digest);
      expect(calls).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      const err = await new RegistryClient({ credentials: none, maxAttempts: 2, backoffMs: 10 }).getManifest(`${always.host}/r/x:v1`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooManyRequestsError);
      expect((err as Error).message).toContain('slow down');
    } finally {
      await flaky.close();
      await always.close();
    }
  });

  it('refuses a manifest whose bytes do not match the digest the registry claims', async () => {
    const m = busybox.manifest;
    const liar = await fakeServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': m.mediaType, 'Docker-Content-Digest': sha256('other'), 'Content-Length': m.size }).end(m.bytes);
    });
    try {
      await expect(new RegistryClient({ credentials: none }).getManifest(`${liar.host}/r/x:v1`)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    } finally {
      await liar.close();
    }
  });

  it('a blob stream with the wrong content fails with DIGEST_INVALID', async () => {
    const good = randomBytes(2000);
    const bad = randomBytes(2000);
    const server = await fakeServer((_req, res) => void res.writeHead(200, { 'Content-Length': bad.length }).end(bad));
    try {
      const desc = { mediaType: 'application/octet-stream', digest: sha256(good), size: good.length };
      await expect(readAll(await new RegistryClient({ credentials: none }).fetchBlob(`${server.host}/r/x`, desc))).rejects.toMatchObject({
        code: 'DIGEST_INVALID',
      });
    } finally {
      await server.close();
    }
  });
});
