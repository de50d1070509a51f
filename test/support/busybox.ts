/**
 * Test fixtures built from the host's `busybox-static` binary: a root filesystem directory and a
 * single-layer OCI image. Nothing is downloaded; every byte comes from /bin/busybox and this file.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { arch, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export const BUSYBOX_BINARY = '/bin/busybox';

export const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'berth:x:1000:1000:berth test user:/home/berth:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

export const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'www-data:x:33:',
  'wheel:x:10:berth',
  'audio:x:29:berth',
  'berth:x:1000:',
  'nogroup:x:65534:',
  '',
].join('\n');

export interface BusyboxRootfsOptions {
  /** Extra files to write, by path inside the root (`/etc/motd` → contents). */
  files?: Record<string, string | Uint8Array>;
}

/**
 * Fills `dir` with a busybox root filesystem: /bin/busybox, a symlink per applet at the path
 * busybox reports (`bin/sh`, `usr/bin/wget`…), /etc/passwd and /etc/group with root, daemon,
 * www-data, berth (1000, in groups wheel and audio) and nobody, and the usual empty directories.
 */
export async function buildBusyboxRootfs(dir: string, options: BusyboxRootfsOptions = {}): Promise<void> {
  for (const sub of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home/berth', 'var/www', 'proc', 'sys', 'dev', 'run']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await copyFile(BUSYBOX_BINARY, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const { stdout } = await run(BUSYBOX_BINARY, ['--list-full']);
  for (const applet of stdout.split('\n').filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    // Relative links, so that on the host they point into the root and not at the host's busybox.
    const target = relative(dirname(`/${applet}`), '/bin/busybox');
    await symlink(target, join(dir, applet)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  await writeFile(join(dir, 'etc/passwd'), PASSWD);
  await writeFile(join(dir, 'etc/group'), GROUP);
  for (const [path, contents] of Object.entries(options.files ?? {})) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, contents);
  }
}

/** Creates a temporary directory holding a busybox root filesystem; remove it with `rm`. */
export async function makeBusyboxRootfs(options: BusyboxRootfsOptions = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-busybox-rootfs-'));
  await buildBusyboxRootfs(dir, options);
  return dir;
}

export interface BusyboxImageOptions extends BusyboxRootfsOptions {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  exposedPorts?: string[];
  /** Media types: OCI (default) or Docker schema2. */
  format?: 'oci' | 'docker';
}

export interface BlobFixture {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Uint8Array;
}

export interface BusyboxImage {
  /** The compressed layer (tar+gzip). */
  layer: BlobFixture;
  /** sha256 of the uncompressed layer tar. */
  diffId: string;
  /** The uncompressed layer tar. */
  layerTar: Uint8Array;
  config: BlobFixture & { json: ImageConfigFixture };
  manifest: BlobFixture & { json: ManifestFixture };
}

export interface ImageConfigFixture {
  created: string;
  architecture: string;
  os: string;
  config: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: Array<{ created: string; created_by: string; empty_layer?: boolean }>;
}

export interface ManifestFixture {
  schemaVersion: 2;
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The Go architecture name of this host, as image configs spell it. */
export function hostArchitecture(): string {
  const table: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };
  return table[arch()] ?? arch();
}

/** Packs a directory into a reproducible tar (sorted names, uid/gid 0, mtime 0). */
export async function tarDirectory(dir: string): Promise<Uint8Array> {
  const { stdout } = await run(
    'tar',
    ['-C', dir, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=gnu', '-cf', '-', '.'],
    { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
  );
  return new Uint8Array(stdout);
}

/** A single-layer busybox image, as the bytes a registry or an image layout would hold. */
export async function buildBusyboxImage(options: BusyboxImageOptions = {}): Promise<BusyboxImage> {
  const dir = await makeBusyboxRootfs(options);
  try {
    const layerTar = await tarDirectory(dir);
    const gz = new Uint8Array(gzipSync(layerTar, { level: 6 }));
    const docker = options.format === 'docker';
    const layer: BlobFixture = {
      mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: sha256(gz),
      size: gz.byteLength,
      bytes: gz,
    };
    const diffId = sha256(layerTar);
    const created = '2026-01-01T00:00:00Z';
    const containerConfig: Record<string, unknown> = {
      Env: options.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: options.cmd ?? ['sh'],
    };
    if (options.entrypoint) containerConfig.Entrypoint = options.entrypoint;
    if (options.labels) containerConfig.Labels = options.labels;
    if (options.workingDir) containerConfig.WorkingDir = options.workingDir;
    if (options.exposedPorts) containerConfig.ExposedPorts = Object.fromEntries(options.exposedPorts.map((p) => [p, {}]));
    const configJson: ImageConfigFixture = {
      created,
      architecture: hostArchitecture(),
      os: 'linux',
      config: containerConfig,
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'berth test fixture: busybox from busybox-static' }],
    };
    const configBytes = new TextEncoder().encode(JSON.stringify(configJson));
    const config = {
      mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
      digest: sha256(configBytes),
      size: configBytes.byteLength,
      bytes: configBytes,
      json: configJson,
    };
    const manifestJson: ManifestFixture = {
      schemaVersion: 2,
      mediaType: docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    };
    const manifestBytes = new TextEncoder().encode(JSON.stringify(manifestJson));
    const manifest = {
      mediaType: manifestJson.mediaType,
      digest: sha256(manifestBytes),
      size: manifestBytes.byteLength,
      bytes: manifestBytes,
      json: manifestJson,
    };
    return { layer, diffId, layerTar, config, manifest };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes the image as an OCI image layout directory (oci-layout, index.json, blobs/sha256/…),
 * tagged `ref` through the `org.opencontainers.image.ref.name` annotation.
 */
export async function writeOciLayout(dir: string, image: BusyboxImage, ref = 'latest'): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const blob of [image.layer, image.config, image.manifest]) {
    await writeFile(join(dir, 'blobs/sha256', blob.digest.slice('sha256:'.length)), blob.bytes);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: image.manifest.mediaType,
        digest: image.manifest.digest,
        size: image.manifest.size,
        annotations: { 'org.opencontainers.image.ref.name': ref },
      },
    ],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}
