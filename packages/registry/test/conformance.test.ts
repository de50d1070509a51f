/**
 * The OCI distribution-spec v1.1 conformance workflows (pull, push, content discovery, content
 * management), walked against berth's server over real HTTP with plain fetch, checking the
 * status codes and headers the spec requires.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from './support/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };

const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let reg: TestRegistry;
let base: string;

beforeAll(async () => {
  reg = await startTestRegistry();
  base = reg.url;
});
afterAll(async () => {
  await reg.stop();
});

async function req(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array | string } = {}): Promise<Response> {
  return fetch(path.startsWith('http') ? path : `${base}${path}`, { method, redirect: 'manual', ...init } as RequestInit);
}

async function pushBlob(repo: string, data: Uint8Array): Promise<string> {
  const digest = sha256(data);
  const res = await req('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) },
    body: data,
  });
  expect(res.status).toBe(201);
  return digest;
}

async function pushImage(repo: string, tag: string, extra: Record<string, unknown> = {}): Promise<{ digest: string; bytes: string; config: string; layer: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = randomBytes(512);
  const configDigest = await pushBlob(repo, config);
  const layerDigest = await pushBlob(repo, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    ...extra,
  });
  const res = await req('PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: manifest });
  expect(res.status).toBe(201);
  return { digest: sha256(manifest), bytes: manifest, config: configDigest, layer: layerDigest };
}

describe('conformance: pull', () => {
  it('GET /v2/ answers 200 with the API version header', async () => {
    const res = await req('GET', '/v2/');
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('pulls manifests by tag and digest (GET and HEAD) and blobs, with 404s for unknown ones', async () => {
    const img = await pushImage('conf/pull', 'v1');
    for (const ref of ['v1', img.digest]) {
      const head = await req('HEAD', `/v2/conf/pull/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
      expect(head.status).toBe(200);
      expect(head.headers.get('docker-content-digest')).toBe(img.digest);
      expect(head.headers.get('content-type')).toBe(OCI_MANIFEST);
      expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(img.bytes));
      const get = await req('GET', `/v2/conf/pull/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
      expect(get.status).toBe(200);
      expect(await get.text()).toBe(img.bytes);
    }
    const blob = await req('GET', `/v2/conf/pull/blobs/${img.layer}`);
    expect(blob.status).toBe(200);
    expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(img.layer);
    expect(blob.headers.get('docker-content-digest')).toBe(img.layer);
    const headBlob = await req('HEAD', `/v2/conf/pull/blobs/${img.layer}`);
    expect(headBlob.status).toBe(200);
    expect(headBlob.headers.get('content-length')).toBe('512');

    const missingTag = await req('GET', '/v2/conf/pull/manifests/nope');
    expect(missingTag.status).toBe(404);
    expect(((await missingTag.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_UNKNOWN');
    const missingBlob = await req('GET', `/v2/conf/pull/blobs/${sha256('absent')}`);
    expect(missingBlob.status).toBe(404);
    expect(((await missingBlob.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('BLOB_UNKNOWN');
    // A blob in the store is still invisible through a repository that has no link to it.
    expect((await req('HEAD', `/v2/conf/other/blobs/${img.layer}`)).status).toBe(404);
  });

  it('serves byte ranges with 206 and refuses unsatisfiable ones with 416', async () => {
    const data = randomBytes(1000);
    const digest = await pushBlob('conf/range', data);
    const part = await req('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(data.subarray(100, 200));
    const tail = await req('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=900-' } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(data.subarray(900));
    const bad = await req('GET', `/v2/conf/range/blobs/${digest}`, { headers: { Range: 'bytes=2000-3000' } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe('bytes */1000');
  });
});

describe('conformance: push', () => {
  it('POST then PUT (monolithic in two requests)', async () => {
    const data = randomBytes(2048);
    const post = await req('POST', '/v2/conf/push/blobs/uploads/');
    expect(post.status).toBe(202);
    const location = post.headers.get('location')!;
    expect(location).toMatch(/^\/v2\/conf\/push\/blobs\/uploads\//);
    expect(post.headers.get('docker-upload-uuid')).toBeTruthy();
    const put = await req('PUT', `${location}?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) },
      body: data,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/conf/push/blobs/${sha256(data)}`);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(data));
  });

  it('POST with digest= (single request monolithic)', async () => {
    const data = randomBytes(100);
    const res = await req('POST', `/v2/conf/push/blobs/uploads/?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: data,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v2/conf/push/blobs/${sha256(data)}`);
    expect((await req('HEAD', `/v2/conf/push/blobs/${sha256(data)}`)).status).toBe(200);
  });

  it('chunked: PATCH in order, 416 out of order, GET status 204 with Range, PUT to close', async () => {
    const data = randomBytes(3000);
    const post = await req('POST', '/v2/conf/chunked/blobs/uploads/', { headers: { 'Content-Length': '0' } });
    expect(post.status).toBe(202);
    let location = post.headers.get('location')!;
    const p1 = await req('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999', 'Content-Length': '1000' },
      body: data.subarray(0, 1000),
    });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-999');
    location = p1.headers.get('location')!;
    const outOfOrder = await req('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '2000-2999', 'Content-Length': '1000' },
      body: data.subarray(2000),
    });
    expect(outOfOrder.status).toBe(416);
    const status = await req('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-999');
    expect(status.headers.get('location')).toBe(location);
    const p2 = await req('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1000-1999', 'Content-Length': '1000' },
      body: data.subarray(1000, 2000),
    });
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-1999');
    // The last chunk may come with the closing PUT.
    const put = await req('PUT', `${p2.headers.get('location')!}?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '1000' },
      body: data.subarray(2000),
    });
    expect(put.status).toBe(201);
    const get = await req('GET', `/v2/conf/chunked/blobs/${sha256(data)}`);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(data);
  });

  it('a wrong digest is DIGEST_INVALID and nothing is stored', async () => {
    const data = randomBytes(100);
    const wrong = sha256('something else');
    const res = await req('POST', `/v2/conf/bad/blobs/uploads/?digest=${wrong}`, { body: data });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DIGEST_INVALID');
    expect((await req('HEAD', `/v2/conf/bad/blobs/${wrong}`)).status).toBe(404);
    expect((await req('HEAD', `/v2/conf/bad/blobs/${sha256(data)}`)).status).toBe(404);

    const post = await req('POST', '/v2/conf/bad/blobs/uploads/');
    const put = await req('PUT', `${post.headers.get('location')!}?digest=${wrong}`, { body: data });
    expect(put.status).toBe(400);
    // The failed session is gone.
    expect((await req('GET', post.headers.get('location')!)).status).toBe(404);
  });

  it('cross-repository mount: 201 when the source has it, 202 session when not', async () => {
    const data = randomBytes(300);
    const digest = await pushBlob('conf/mount-src', data);
    const mounted = await req('POST', `/v2/conf/mount-dst/blobs/uploads/?mount=${digest}&from=conf/mount-src`);
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/conf/mount-dst/blobs/${digest}`);
    expect((await req('HEAD', `/v2/conf/mount-dst/blobs/${digest}`)).status).toBe(200);
    const fallback = await req('POST', `/v2/conf/mount-dst2/blobs/uploads/?mount=${sha256('nope')}&from=conf/mount-src`);
    expect(fallback.status).toBe(202);
    expect(fallback.headers.get('location')).toMatch(/\/blobs\/uploads\//);
  });

  it('manifests: PUT by tag and by digest; a wrong digest, a missing blob and a type mismatch are refused', async () => {
    const img = await pushImage('conf/man', 'first');
    const byDigest = await req('PUT', `/v2/conf/man/manifests/${img.digest}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: img.bytes });
    expect(byDigest.status).toBe(201);
    expect(byDigest.headers.get('location')).toBe(`/v2/conf/man/manifests/${img.digest}`);
    expect(byDigest.headers.get('docker-content-digest')).toBe(img.digest);

    const wrong = await req('PUT', `/v2/conf/man/manifests/${sha256('x')}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: img.bytes });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DIGEST_INVALID');

    const missing = JSON.stringify({ ...JSON.parse(img.bytes), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('missing'), size: 7 }] });
    const res = await req('PUT', '/v2/conf/man/manifests/broken', { headers: { 'Content-Type': OCI_MANIFEST }, body: missing });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_BLOB_UNKNOWN');

    const mismatch = await req('PUT', '/v2/conf/man/manifests/mismatch', { headers: { 'Content-Type': OCI_INDEX }, body: img.bytes });
    expect(mismatch.status).toBe(400);
    expect(((await mismatch.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_INVALID');

    const invalid = await req('PUT', '/v2/conf/man/manifests/invalid', { headers: { 'Content-Type': OCI_MANIFEST }, body: '{"schemaVersion":2,"layers":"no"}' });
    expect(invalid.status).toBe(400);
    expect((await req('GET', '/v2/conf/man/manifests/invalid')).status).toBe(404);

    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const tooBig = await req('PUT', '/v2/conf/man/manifests/huge', { headers: { 'Content-Type': OCI_MANIFEST }, body: huge });
    expect(tooBig.status).toBe(413);
  });

  it('an index needs its child manifests in the repository', async () => {
    const img = await pushImage('conf/index', 'amd64');
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: Buffer.byteLength(img.bytes), platform: { os: 'linux', architecture: 'amd64' } }],
    });
    const ok = await req('PUT', '/v2/conf/index/manifests/multi', { headers: { 'Content-Type': OCI_INDEX }, body: index });
    expect(ok.status).toBe(201);
    const get = await req('GET', '/v2/conf/index/manifests/multi');
    expect(get.headers.get('content-type')).toBe(OCI_INDEX);
    const elsewhere = await req('PUT', '/v2/conf/index2/manifests/multi', { headers: { 'Content-Type': OCI_INDEX }, body: index });
    expect(elsewhere.status).toBe(400);
  });
});

describe('conformance: content discovery', () => {
  it('lists tags sorted, with n/last pagination and a Link header', async () => {
    const tags = ['b', 'a', 'c', 'd', 'e'];
    const img = await pushImage('conf/tags', 'seed');
    for (const tag of tags) {
      const res = await req('PUT', `/v2/conf/tags/manifests/${tag}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: img.bytes });
      expect(res.status).toBe(201);
    }
    const all = await req('GET', '/v2/conf/tags/tags/list');
    expect(await all.json()).toEqual({ name: 'conf/tags', tags: ['a', 'b', 'c', 'd', 'e', 'seed'] });
    const page = await req('GET', '/v2/conf/tags/tags/list?n=2');
    expect(((await page.json()) as { tags: string[] }).tags).toEqual(['a', 'b']);
    expect(page.headers.get('link')).toBe('</v2/conf/tags/tags/list?n=2&last=b>; rel="next"');
    const next = await req('GET', '/v2/conf/tags/tags/list?n=2&last=b');
    expect(((await next.json()) as { tags: string[] }).tags).toEqual(['c', 'd']);
    const lastPage = await req('GET', '/v2/conf/tags/tags/list?n=10&last=d');
    expect(((await lastPage.json()) as { tags: string[] }).tags).toEqual(['e', 'seed']);
    expect(lastPage.headers.get('link')).toBeNull();
    const zero = await req('GET', '/v2/conf/tags/tags/list?n=0');
    expect(((await zero.json()) as { tags: string[] }).tags).toEqual([]);
    const unknown = await req('GET', '/v2/conf/none/tags/list');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('NAME_UNKNOWN');
  });

  it('lists the catalog with pagination', async () => {
    await pushImage('conf/cat-a', 'x');
    await pushImage('conf/cat-b', 'x');
    const res = await req('GET', '/v2/_catalog');
    const repos = ((await res.json()) as { repositories: string[] }).repositories;
    expect(repos).toEqual([...repos].sort());
    expect(repos).toEqual(expect.arrayContaining(['conf/cat-a', 'conf/cat-b']));
    const page = await req('GET', '/v2/_catalog?n=1&last=conf/cat-a');
    expect(((await page.json()) as { repositories: string[] }).repositories).toEqual(['conf/cat-b']);
  });

  it('referrers: OCI-Subject on PUT, listing with artifactType filter, empty index for an unknown subject', async () => {
    const subject = await pushImage('conf/refs', 'subject');
    const subjectDesc = { mediaType: OCI_MANIFEST, digest: subject.digest, size: Buffer.byteLength(subject.bytes) };
    await pushBlob('conf/refs', Buffer.from('{}'));
    const sig = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.signature',
      config: EMPTY,
      layers: [EMPTY],
      subject: subjectDesc,
      annotations: { 'org.example.kind': 'sig' },
    });
    const put = await req('PUT', `/v2/conf/refs/manifests/${sha256(sig)}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: sig });
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
    const sbom = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { ...EMPTY, mediaType: 'application/vnd.example.sbom' },
      layers: [EMPTY],
      subject: subjectDesc,
    });
    await pushBlob('conf/refs', Buffer.from('{}'));
    const put2 = await req('PUT', `/v2/conf/refs/manifests/${sha256(sbom)}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: sbom });
    expect(put2.status).toBe(201);

    const list = await req('GET', `/v2/conf/refs/referrers/${subject.digest}`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe(OCI_INDEX);
    const index = (await list.json()) as { schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests).toHaveLength(2);
    expect(index.manifests).toEqual(
      expect.arrayContaining([
        { mediaType: OCI_MANIFEST, digest: sha256(sig), size: Buffer.byteLength(sig), artifactType: 'application/vnd.example.signature', annotations: { 'org.example.kind': 'sig' } },
        // Without artifactType the config's media type stands in, as the spec says.
        { mediaType: OCI_MANIFEST, digest: sha256(sbom), size: Buffer.byteLength(sbom), artifactType: 'application/vnd.example.sbom' },
      ]),
    );
    const filtered = await req('GET', `/v2/conf/refs/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sha256(sbom)]);
    const none = await req('GET', `/v2/conf/refs/referrers/${sha256('no subject')}`);
    expect(none.status).toBe(200);
    expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    const bad = await req('GET', '/v2/conf/refs/referrers/sha256:nothex');
    expect(bad.status).toBe(400);

    // Deleting a referrer removes it from the list.
    expect((await req('DELETE', `/v2/conf/refs/manifests/${sha256(sig)}`)).status).toBe(202);
    const after = await req('GET', `/v2/conf/refs/referrers/${subject.digest}`);
    expect(((await after.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sha256(sbom)]);
  });
});

describe('conformance: content management', () => {
  it('deletes tags, manifests and blobs with 202, then 404', async () => {
    const img = await pushImage('conf/del', 'keep');
    await req('PUT', '/v2/conf/del/manifests/drop', { headers: { 'Content-Type': OCI_MANIFEST }, body: img.bytes });
    expect((await req('DELETE', '/v2/conf/del/manifests/drop')).status).toBe(202);
    expect((await req('GET', '/v2/conf/del/manifests/drop')).status).toBe(404);
    expect((await req('GET', '/v2/conf/del/manifests/keep')).status).toBe(200);

    expect((await req('DELETE', `/v2/conf/del/manifests/${img.digest}`)).status).toBe(202);
    expect((await req('GET', `/v2/conf/del/manifests/${img.digest}`)).status).toBe(404);
    // Deleting the manifest untags it everywhere in the repository.
    expect((await req('GET', '/v2/conf/del/manifests/keep')).status).toBe(404);
    expect((await req('DELETE', `/v2/conf/del/manifests/${img.digest}`)).status).toBe(404);

    expect((await req('DELETE', `/v2/conf/del/blobs/${img.layer}`)).status).toBe(202);
    expect((await req('GET', `/v2/conf/del/blobs/${img.layer}`)).status).toBe(404);
    expect((await req('DELETE', `/v2/conf/del/blobs/${img.layer}`)).status).toBe(404);
  });

  it('cancels an upload with 204, after which it is unknown', async () => {
    const post = await req('POST', '/v2/conf/cancel/blobs/uploads/');
    const location = post.headers.get('location')!;
    expect((await req('DELETE', location)).status).toBe(204);
    expect((await req('GET', location)).status).toBe(404);
    expect((await req('DELETE', location)).status).toBe(404);
  });

  it('refuses invalid names and unsupported methods', async () => {
    const bad = await req('GET', '/v2/Bad_Name/tags/list');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('NAME_INVALID');
    const method = await req('POST', '/v2/conf/x/manifests/latest');
    expect(method.status).toBe(405);
  });

  it('writes a structured access log line per request', () => {
    const entry = reg.logs.find((e) => e.path === '/v2/' && e.method === 'GET');
    expect(entry).toMatchObject({ method: 'GET', status: 200, path: '/v2/' });
    expect(typeof entry?.durationMs).toBe('number');
    expect(reg.logs.some((e) => e.status === 404 && e.error === 'MANIFEST_UNKNOWN')).toBe(true);
  });
});
