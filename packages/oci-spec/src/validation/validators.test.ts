import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../digest/digest.js';
import { ValidationError } from './validation-error.js';
import {
  parseJson,
  validateDescriptor,
  validateDistributionError,
  validateDockerManifest,
  validateDockerManifestList,
  validateImageConfig,
  validateImageIndex,
  validateImageLayout,
  validateImageManifest,
  validateManifest,
  validateRuntimeSpec,
  validateRuntimeState,
} from './validators.js';

type Json = Record<string, unknown>;

function fixture(name: string): Json {
  return JSON.parse(readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), 'utf8')) as Json;
}

/** A deep copy of `doc` changed by `mutate`. */
function broken(doc: Json, mutate: (d: Json) => void): Json {
  const copy = structuredClone(doc);
  mutate(copy);
  return copy;
}

function rejection(validate: (v: unknown) => unknown, doc: unknown): ValidationError {
  try {
    validate(doc);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('document was accepted');
}

/** Asserts the document is rejected with a message naming `path` and saying `what`. */
function expectRejected(validate: (v: unknown) => unknown, doc: unknown, path: string, what: string): void {
  const error = rejection(validate, doc);
  expect(error.code).toBe('INVALID_DOCUMENT');
  expect(error.category).toBe('invalid');
  expect(error.issues.map((i) => i.path)).toContain(path);
  expect(error.message).toContain(`${path} ${what}`);
}

describe('Docker Hub-style manifest list', () => {
  const list = fixture('docker-hub-manifest-list.json');

  it('is accepted and typed', () => {
    const v = validateDockerManifestList(list);
    expect(v.manifests).toHaveLength(10);
    expect(v.manifests[4]?.platform).toEqual({ architecture: 'arm64', os: 'linux', variant: 'v8' });
  });

  it.each([
    ['/manifests/2/platform', 'is required', (d: Json) => { delete (d.manifests as Json[])[2]!.platform; }],
    ['/manifests/0/platform/architecture', 'is required', (d: Json) => { delete ((d.manifests as Json[])[0]!.platform as Json).architecture; }],
    ['/manifests/1/digest', 'must be a sha256 or sha512 digest', (d: Json) => { (d.manifests as Json[])[1]!.digest = 'sha256:1234'; }],
    ['/manifests/3/size', 'must be integer (got string)', (d: Json) => { (d.manifests as Json[])[3]!.size = '528'; }],
    ['/mediaType', 'must be "application/vnd.docker.distribution.manifest.list.v2+json"', (d: Json) => { d.mediaType = 'application/vnd.oci.image.index.v1+json'; }],
    ['/schemaVersion', 'must be 2 (got 1)', (d: Json) => { d.schemaVersion = 1; }],
    ['/manifests', 'is required', (d: Json) => { delete d.manifests; }],
  ])('rejects a broken %s', (path, what, mutate) => {
    expectRejected(validateDockerManifestList, broken(list, mutate), path, what);
  });
});

describe('OCI index with attestation manifests', () => {
  const index = fixture('oci-index-with-attestations.json');

  it('is accepted', () => {
    const v = validateImageIndex(index);
    expect(v.manifests.filter((m) => m.platform?.os === 'unknown')).toHaveLength(2);
    expect(v.manifests[2]?.annotations?.['vnd.docker.reference.type']).toBe('attestation-manifest');
  });

  it.each([
    ['/manifests/2/annotations/vnd.docker.reference.digest', 'must be string (got integer)', (d: Json) => {
      ((d.manifests as Json[])[2]!.annotations as Json)['vnd.docker.reference.digest'] = 5;
    }],
    ['/manifests/0/mediaType', 'must be a media type', (d: Json) => { (d.manifests as Json[])[0]!.mediaType = 'not a media type'; }],
    ['/manifests/1/platform/os', 'is required', (d: Json) => { delete ((d.manifests as Json[])[1]!.platform as Json).os; }],
    ['/manifests', 'must be array (got object)', (d: Json) => { d.manifests = {}; }],
    ['/mediaType', 'must be "application/vnd.oci.image.index.v1+json"', (d: Json) => { d.mediaType = 'application/vnd.oci.image.manifest.v1+json'; }],
  ])('rejects a broken %s', (path, what, mutate) => {
    expectRejected(validateImageIndex, broken(index, mutate), path, what);
  });

  it('accepts an image layout index.json', () => {
    expect(validateImageIndex(fixture('layout-index.json')).manifests[0]?.annotations?.['org.opencontainers.image.ref.name']).toBe('v1.0');
  });
});

describe('image manifests', () => {
  const oci = fixture('oci-manifest.json');
  const artifact = fixture('oci-artifact-manifest.json');
  const docker = fixture('docker-manifest.json');

  it('accepts OCI, artifact and Docker schema2 manifests', () => {
    expect(validateImageManifest(oci).layers).toHaveLength(3);
    const a = validateImageManifest(artifact);
    expect(a.artifactType).toBe('application/vnd.example.sbom.v1');
    expect(a.subject?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(validateDockerManifest(docker).layers[1]?.urls).toHaveLength(1);
  });

  it('accepts an empty layer list (image-spec v1.1 only recommends one)', () => {
    expect(validateImageManifest(broken(oci, (d) => { d.layers = []; })).layers).toEqual([]);
  });

  it.each([
    ['/layers/0/digest', 'must be a sha256 or sha512 digest (sha256:<64 lowercase hex>) (got "sha256:XYZ")', (d: Json) => { (d.layers as Json[])[0]!.digest = 'sha256:XYZ'; }],
    ['/layers/1/size', 'must be >= 0', (d: Json) => { (d.layers as Json[])[1]!.size = -1; }],
    ['/config', 'is required', (d: Json) => { delete d.config; }],
    ['/config/mediaType', 'is required', (d: Json) => { delete (d.config as Json).mediaType; }],
    ['/annotations/com.example.key1', 'must be string (got boolean)', (d: Json) => { (d.annotations as Json)['com.example.key1'] = true; }],
    ['/schemaVersion', 'must be 2', (d: Json) => { d.schemaVersion = '2'; }],
  ])('rejects a broken OCI manifest at %s', (path, what, mutate) => {
    expectRejected(validateImageManifest, broken(oci, mutate), path, what);
  });

  it.each([
    ['/artifactType', 'must be a media type', (d: Json) => { d.artifactType = 'sbom'; }],
    ['/subject/digest', 'is required', (d: Json) => { delete (d.subject as Json).digest; }],
    ['/config/data', 'must be standard base64', (d: Json) => { (d.config as Json).data = 'not base64!'; }],
    ['/config/data', 'decodes to 3 bytes but size is 2', (d: Json) => { (d.config as Json).data = Buffer.from('{ }').toString('base64'); }],
    ['/config/data', 'does not match digest', (d: Json) => { (d.config as Json).data = Buffer.from('[]').toString('base64'); }],
  ])('rejects a broken artifact manifest at %s', (path, what, mutate) => {
    expectRejected(validateImageManifest, broken(artifact, mutate), path, what);
  });

  it.each([
    ['/mediaType', 'is required', (d: Json) => { delete d.mediaType; }],
    ['/layers/1/urls/0', 'must be a URL', (d: Json) => { ((d.layers as Json[])[1]!.urls as string[])[0] = 'no url here'; }],
    ['/layers', 'must be array (got null)', (d: Json) => { d.layers = null; }],
  ])('rejects a broken Docker manifest at %s', (path, what, mutate) => {
    expectRejected(validateDockerManifest, broken(docker, mutate), path, what);
  });

  it('reports several problems at once', () => {
    const error = rejection(validateImageManifest, broken(oci, (d) => {
      delete d.config;
      (d.layers as Json[])[2]!.size = 1.5;
    }));
    expect(error.issues.map((i) => i.path)).toEqual(['/config', '/layers/2/size']);
    expect(error.path).toBe('/config');
    expect(error.message).toMatch(/^invalid image manifest: \/config is required; \/layers\/2\/size must be integer/);
  });

  it('rejects non-objects at the document level', () => {
    expectRejected(validateImageManifest, [], '', 'must be object (got array)');
    expect(rejection(validateImageManifest, 'x').message).toBe('invalid image manifest: (document) must be object (got string)');
  });
});

describe('descriptor', () => {
  it('accepts embedded data that matches, with sha512 too', () => {
    const data = Buffer.from('hello');
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const desc = { mediaType: 'text/plain', digest: digestOf(data, algorithm), size: 5, data: data.toString('base64') };
      expect(validateDescriptor(desc)).toBe(desc);
    }
  });

  it('accepts platform, urls and artifactType', () => {
    expect(
      validateDescriptor({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf('x'),
        size: 1,
        urls: ['https://example.com/blob'],
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.features': ['x'] },
        artifactType: 'application/vnd.example+json',
        annotations: { a: 'b' },
      }).platform?.variant,
    ).toBe('v8');
  });

  it.each([
    ['/digest', 'must be a sha256 or sha512 digest', { mediaType: 'a/b', digest: `md5:${'a'.repeat(32)}`, size: 1 }],
    ['/size', 'is required', { mediaType: 'a/b', digest: digestOf('x') }],
    ['/platform/os', 'must be string (got integer)', { mediaType: 'a/b', digest: digestOf('x'), size: 1, platform: { os: 1, architecture: 'x' } }],
    ['/urls', 'must be array (got string)', { mediaType: 'a/b', digest: digestOf('x'), size: 1, urls: 'http://x' }],
  ])('rejects a broken %s', (path, what, doc) => {
    expectRejected(validateDescriptor, doc, path, what);
  });
});

describe('image config', () => {
  const config = fixture('image-config.json');

  it('accepts a Docker-built config with history, healthcheck, ports and volumes', () => {
    const c = validateImageConfig(config);
    expect(c.config?.Healthcheck?.Retries).toBe(3);
    expect(Object.keys(c.config?.ExposedPorts ?? {})).toEqual(['80/tcp', '443/tcp', '53/udp']);
    expect(c.history).toHaveLength(4);
    expect(c.rootfs.diff_ids).toHaveLength(2);
  });

  it('accepts "config": null and drops it from the typed value', () => {
    const c = validateImageConfig({ architecture: 'amd64', os: 'linux', config: null, rootfs: { type: 'layers', diff_ids: [] } });
    expect('config' in c).toBe(false);
  });

  it('accepts a minimal config', () => {
    expect(validateImageConfig({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }).os).toBe('linux');
  });

  it.each([
    ['/rootfs/diff_ids/1', 'must be a sha256 or sha512 digest', (d: Json) => { ((d.rootfs as Json).diff_ids as string[])[1] = 'abc'; }],
    ['/rootfs/type', 'must be "layers"', (d: Json) => { (d.rootfs as Json).type = 'tar'; }],
    ['/architecture', 'is required', (d: Json) => { delete d.architecture; }],
    ['/created', 'must be an RFC 3339 date-time', (d: Json) => { d.created = 'yesterday'; }],
    ['/history/2/empty_layer', 'must be boolean (got string)', (d: Json) => { (d.history as Json[])[2]!.empty_layer = 'yes'; }],
    ['/config/Healthcheck/Interval', 'must be >= 0', (d: Json) => { ((d.config as Json).Healthcheck as Json).Interval = -5; }],
    ['/config/Healthcheck/Test', 'must be array or null (got string)', (d: Json) => { ((d.config as Json).Healthcheck as Json).Test = 'curl'; }],
    ['/config/ExposedPorts/http', 'is not a valid key: must be a port like "80/tcp" (got "http")', (d: Json) => { ((d.config as Json).ExposedPorts as Json).http = {}; }],
    ['/config/ExposedPorts/80~1tcp', 'must be object (got boolean)', (d: Json) => { ((d.config as Json).ExposedPorts as Json)['80/tcp'] = true; }],
    ['/config/Volumes/~1var~1cache~1nginx', 'must be object (got string)', (d: Json) => { ((d.config as Json).Volumes as Json)['/var/cache/nginx'] = 'yes'; }],
    ['/config/Env/1', 'must be string (got integer)', (d: Json) => { ((d.config as Json).Env as unknown[])[1] = 3; }],
  ])('rejects a broken %s', (path, what, mutate) => {
    expectRejected(validateImageConfig, broken(config, mutate), path, what);
  });
});

describe('image layout', () => {
  it('accepts oci-layout and rejects other versions', () => {
    expect(validateImageLayout(fixture('oci-layout.json')).imageLayoutVersion).toBe('1.0.0');
    expectRejected(validateImageLayout, { imageLayoutVersion: '2.0.0' }, '/imageLayoutVersion', 'must be "1.0.0" (got "2.0.0")');
    expectRejected(validateImageLayout, {}, '/imageLayoutVersion', 'is required');
  });
});

describe('runtime spec', () => {
  const runc = fixture('runc-config.json');
  const full = fixture('runtime-config-full.json');

  it('accepts a runc spec config.json', () => {
    const spec = validateRuntimeSpec(runc);
    expect(spec.linux?.namespaces?.map((n) => n.type)).toEqual(['pid', 'network', 'ipc', 'uts', 'mount']);
    expect(spec.process?.capabilities?.bounding).toContain('CAP_KILL');
  });

  it('accepts a config with every Linux section', () => {
    const spec = validateRuntimeSpec(full);
    expect(spec.linux?.resources?.memory?.limit).toBe(536870912);
    expect(spec.linux?.resources?.blockIO?.throttleReadBpsDevice?.[0]?.rate).toBe(104857600);
    expect(spec.hooks?.createRuntime?.[0]?.timeout).toBe(10);
    expect(spec.linux?.seccomp?.syscalls).toHaveLength(3);
    expect(spec.mounts?.[4]?.uidMappings?.[0]?.hostID).toBe(100000);
  });

  it.each([
    ['/process/cwd', 'must be an absolute path', runc, (d: Json) => { (d.process as Json).cwd = 'relative'; }],
    ['/process/user', 'is required', runc, (d: Json) => { delete (d.process as Json).user; }],
    ['/process/user/uid', 'must be >= 0', runc, (d: Json) => { ((d.process as Json).user as Json).uid = -1; }],
    ['/process/capabilities/bounding/1', 'must be a capability name', runc, (d: Json) => { (((d.process as Json).capabilities as Json).bounding as string[])[1] = 'KILL'; }],
    ['/process/rlimits/0/type', 'must be an rlimit name', runc, (d: Json) => { (((d.process as Json).rlimits as Json[])[0]!).type = 'nofile'; }],
    ['/process/rlimits/0/soft', 'is required', runc, (d: Json) => { delete (((d.process as Json).rlimits as Json[])[0]!).soft; }],
    ['/root/path', 'is required', runc, (d: Json) => { delete (d.root as Json).path; }],
    ['/mounts/3/destination', 'is required', runc, (d: Json) => { delete (d.mounts as Json[])[3]!.destination; }],
    ['/mounts/1/options', 'must be array (got string)', runc, (d: Json) => { (d.mounts as Json[])[1]!.options = 'nosuid'; }],
    ['/ociVersion', 'is required', runc, (d: Json) => { delete d.ociVersion; }],
    ['/linux/namespaces/4/type', 'must be one of "pid", "network"', runc, (d: Json) => { ((d.linux as Json).namespaces as Json[])[4]!.type = 'mnt'; }],
    ['/linux/maskedPaths/0', 'must be an absolute path', runc, (d: Json) => { ((d.linux as Json).maskedPaths as string[])[0] = 'proc/acpi'; }],
    ['/linux/readonlyPaths', 'must be array (got string)', runc, (d: Json) => { (d.linux as Json).readonlyPaths = '/proc/bus'; }],
    ['/linux/resources/devices/0/allow', 'is required', runc, (d: Json) => { delete (((d.linux as Json).resources as Json).devices as Json[])[0]!.allow; }],
    ['/linux/resources/devices/0/access', 'must match', runc, (d: Json) => { (((d.linux as Json).resources as Json).devices as Json[])[0]!.access = 'rwx'; }],
    ['/linux/uidMappings/0/size', 'is required', full, (d: Json) => { delete ((d.linux as Json).uidMappings as Json[])[0]!.size; }],
    ['/linux/gidMappings/0/hostID', 'must be integer (got string)', full, (d: Json) => { ((d.linux as Json).gidMappings as Json[])[0]!.hostID = '100000'; }],
    ['/linux/resources/memory/limit', 'must be integer (got string)', full, (d: Json) => { (((d.linux as Json).resources as Json).memory as Json).limit = '512m'; }],
    ['/linux/resources/memory/swappiness', 'must be <= 100', full, (d: Json) => { (((d.linux as Json).resources as Json).memory as Json).swappiness = 200; }],
    ['/linux/resources/cpu/cpus', 'must be string (got integer)', full, (d: Json) => { (((d.linux as Json).resources as Json).cpu as Json).cpus = 2; }],
    ['/linux/resources/pids/limit', 'is required', full, (d: Json) => { (((d.linux as Json).resources as Json).pids as Json) = {}; }],
    ['/linux/resources/blockIO/throttleReadBpsDevice/0/rate', 'is required', full, (d: Json) => {
      delete ((((d.linux as Json).resources as Json).blockIO as Json).throttleReadBpsDevice as Json[])[0]!.rate;
    }],
    ['/linux/resources/blockIO/weight', 'must be <= 1000', full, (d: Json) => { (((d.linux as Json).resources as Json).blockIO as Json).weight = 5000; }],
    ['/linux/cgroupsPath', 'must be string (got boolean)', full, (d: Json) => { (d.linux as Json).cgroupsPath = true; }],
    ['/linux/seccomp/defaultAction', 'must be one of', full, (d: Json) => { ((d.linux as Json).seccomp as Json).defaultAction = 'ALLOW'; }],
    ['/linux/seccomp/syscalls/0/names', 'must NOT have fewer than 1 items', full, (d: Json) => { (((d.linux as Json).seccomp as Json).syscalls as Json[])[0]!.names = []; }],
    ['/linux/seccomp/syscalls/1/args/0/op', 'must be one of', full, (d: Json) => {
      ((((d.linux as Json).seccomp as Json).syscalls as Json[])[1]!.args as Json[])[0]!.op = '==';
    }],
    ['/linux/sysctl/net.core.somaxconn', 'must be string (got integer)', full, (d: Json) => { ((d.linux as Json).sysctl as Json)['net.core.somaxconn'] = 1024; }],
    ['/linux/devices/0/type', 'must be one of "c", "b", "u", "p"', full, (d: Json) => { ((d.linux as Json).devices as Json[])[0]!.type = 'x'; }],
    ['/hooks/poststop/0/path', 'is required', full, (d: Json) => { delete ((d.hooks as Json).poststop as Json[])[0]!.path; }],
    ['/hooks/createRuntime/0/timeout', 'must be >= 1', full, (d: Json) => { ((d.hooks as Json).createRuntime as Json[])[0]!.timeout = 0; }],
    ['/mounts/4/uidMappings/0/containerID', 'is required', full, (d: Json) => { delete ((d.mounts as Json[])[4]!.uidMappings as Json[])[0]!.containerID; }],
  ])('rejects a broken %s', (path, what, doc, mutate) => {
    expectRejected(validateRuntimeSpec, broken(doc, mutate), path, what);
  });
});

describe('runtime state', () => {
  const state = fixture('runc-state.json');
  it('accepts runc state output, and a stopped container without pid', () => {
    expect(validateRuntimeState(state).status).toBe('running');
    expect(validateRuntimeState(broken(state, (d) => { d.status = 'stopped'; delete d.pid; })).pid).toBeUndefined();
  });
  it.each([
    ['/status', 'must be one of', (d: Json) => { d.status = 'exited'; }],
    ['/bundle', 'is required', (d: Json) => { delete d.bundle; }],
    ['/pid', 'must be >= 0', (d: Json) => { d.pid = -1; }],
  ])('rejects a broken %s', (path, what, mutate) => {
    expectRejected(validateRuntimeState, broken(state, mutate), path, what);
  });
});

describe('distribution error body', () => {
  it('accepts registry errors with any detail', () => {
    expect(validateDistributionError(fixture('distribution-error.json')).errors.map((e) => e.code)).toEqual([
      'MANIFEST_UNKNOWN',
      'UNAUTHORIZED',
    ]);
  });
  it.each([
    ['/errors', 'is required', {}],
    ['/errors/0/code', 'is required', { errors: [{ message: 'x' }] }],
    ['/errors/0/code', 'must be an uppercase error code', { errors: [{ code: 'blob unknown' }] }],
    ['/errors/0/message', 'must be string (got integer)', { errors: [{ code: 'DENIED', message: 403 }] }],
  ])('rejects a broken %s', (path, what, doc) => {
    expectRejected(validateDistributionError, doc, path, what);
  });
});

describe('parseJson', () => {
  it('parses bytes and text', () => {
    expect(parseJson(new TextEncoder().encode('{"a":1}'))).toEqual({ a: 1 });
    expect(parseJson('[1]')).toEqual([1]);
  });
  it('throws ValidationError naming the document on bad JSON', () => {
    const error = rejection((v) => parseJson(v as string, 'image manifest'), '{"a":');
    expect(error.message).toMatch(/^invalid image manifest: \(document\) is not valid JSON: /);
  });
});

describe('validateManifest', () => {
  const oci = fixture('oci-manifest.json');
  const list = fixture('docker-hub-manifest-list.json');
  const index = fixture('oci-index-with-attestations.json');
  const docker = fixture('docker-manifest.json');

  it('dispatches on the given media type, the document, or its shape', () => {
    expect(validateManifest(list).mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(validateManifest(docker, 'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8').mediaType).toBe(
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    expect(validateManifest(index, 'application/json').mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const bareIndex = broken(index, (d) => { delete d.mediaType; });
    expect(validateManifest(bareIndex).mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const bareManifest = broken(oci, (d) => { delete d.mediaType; });
    const m = validateManifest(bareManifest);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    if (m.mediaType === 'application/vnd.oci.image.manifest.v1+json') expect(m.manifest.layers).toHaveLength(3);
  });

  it('rejects disagreement, unsupported types and non-objects', () => {
    expectRejected((v) => validateManifest(v, 'application/vnd.oci.image.index.v1+json'), oci, '/mediaType', 'is application/vnd.oci.image.manifest.v1+json but the document was given as application/vnd.oci.image.index.v1+json');
    expectRejected((v) => validateManifest(v), broken(oci, (d) => { d.mediaType = 'application/vnd.docker.distribution.manifest.v1+prettyjws'; }), '/mediaType', 'has unsupported manifest media type');
    expectRejected((v) => validateManifest(v), 'x', '', 'must be a JSON object');
    expectRejected((v) => validateManifest(v, 'application/vnd.docker.distribution.manifest.v2+json'), broken(docker, (d) => { delete d.config; }), '/config', 'is required');
  });
});
