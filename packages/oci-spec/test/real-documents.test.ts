// Documents written by real tools installed on this machine (scripts/setup.sh installs them):
// runc writes config.json, umoci writes an OCI image layout, skopeo converts it to Docker
// schema2. Every document they produce must pass berth's validators, and every blob they
// reference must verify against its digest.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MediaType,
  createVerifyStream,
  parseDigest,
  parseJson,
  selectManifest,
  validateDockerManifest,
  validateImageConfig,
  validateImageIndex,
  validateImageLayout,
  validateImageManifest,
  validateRuntimeSpec,
  verifyDigest,
  type Descriptor,
} from '@berth/oci-spec';

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-oci-spec-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('runc spec', () => {
  it('writes a config.json that validates, rootful and rootless', () => {
    for (const rootless of [false, true]) {
      const bundle = join(dir, rootless ? 'rootless' : 'rootful');
      run('mkdir', ['-p', bundle]);
      run('runc', ['spec', '--bundle', bundle, ...(rootless ? ['--rootless'] : [])]);
      const spec = validateRuntimeSpec(parseJson(readFileSync(join(bundle, 'config.json')), 'config.json'));
      expect(spec.root?.path).toBe('rootfs');
      expect(spec.linux?.namespaces?.some((n) => n.type === 'user')).toBe(rootless);
      if (rootless) expect(spec.linux?.uidMappings?.[0]?.size).toBe(1);
    }
  });
});

describe('umoci image layout and skopeo conversion', () => {
  let layout: string;
  beforeAll(() => {
    layout = join(dir, 'layout');
    const file = join(dir, 'hello.txt');
    writeFileSync(file, 'hello\n');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:v1`]);
    run('umoci', ['insert', '--image', `${layout}:v1`, file, '/hello.txt']);
    run('umoci', ['config', '--image', `${layout}:v1`, '--config.cmd', 'sh', '--config.exposedports', '80/tcp', '--config.volume', '/data']);
  });

  const blobPath = (root: string, digest: string): string => {
    const { algorithm, encoded } = parseDigest(digest);
    return join(root, 'blobs', algorithm, encoded);
  };
  const readBlob = (root: string, desc: Descriptor): Buffer => {
    const bytes = readFileSync(blobPath(root, desc.digest));
    expect(bytes.byteLength).toBe(desc.size);
    expect(verifyDigest(bytes, desc.digest)).toBe(true);
    return bytes;
  };

  it('validates oci-layout, index.json, the manifest, the config and verifies the layer', async () => {
    validateImageLayout(parseJson(readFileSync(join(layout, 'oci-layout'))));
    const index = validateImageIndex(parseJson(readFileSync(join(layout, 'index.json'))));
    const desc = selectManifest(index, { os: 'linux', architecture: 'amd64' });
    expect(desc?.annotations?.['org.opencontainers.image.ref.name']).toBe('v1');
    const manifest = validateImageManifest(parseJson(readBlob(layout, desc!)));
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]?.mediaType).toBe(MediaType.LayerGzip);
    const config = validateImageConfig(parseJson(readBlob(layout, manifest.config)));
    expect(config.config?.Cmd).toEqual(['sh']);
    expect(config.config?.ExposedPorts).toEqual({ '80/tcp': {} });
    expect(config.config?.Volumes).toEqual({ '/data': {} });
    expect(config.rootfs.diff_ids).toHaveLength(1);
    const layer = manifest.layers[0]!;
    await pipeline(
      createReadStream(blobPath(layout, layer.digest)),
      createVerifyStream(layer.digest, layer.size),
      new Writable({ write: (_c, _e, cb) => cb() }),
    );
  });

  it('skopeo --format v2s2 output is a valid Docker schema2 manifest with a valid config', () => {
    const out = join(dir, 'v2s2');
    run('skopeo', ['copy', '--format', 'v2s2', `oci:${layout}:v1`, `dir:${out}`]);
    const manifest = validateDockerManifest(parseJson(readFileSync(join(out, 'manifest.json'))));
    expect(manifest.config.mediaType).toBe(MediaType.DockerConfig);
    expect(manifest.layers[0]?.mediaType).toBe(MediaType.DockerLayerGzip);
    // skopeo's dir: transport names blobs by encoded digest.
    const configBytes = readFileSync(join(out, parseDigest(manifest.config.digest).encoded));
    expect(verifyDigest(configBytes, manifest.config.digest)).toBe(true);
    expect(validateImageConfig(parseJson(configBytes)).config?.Cmd).toEqual(['sh']);
  });
});
