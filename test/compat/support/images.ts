import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildBusyboxImage, writeOciLayout, type BusyboxImageOptions } from '../../support/busybox.js';
import { docker } from './berthd.js';

const run = promisify(execFile);

/**
 * Loads the busybox fixture into berthd as `name` with `docker load` (a tarball holding both a
 * docker-archive manifest.json and an OCI layout, as Docker 25+ writes).
 */
export async function loadBusybox(env: NodeJS.ProcessEnv, name = 'busybox:latest', options: BusyboxImageOptions = {}): Promise<void> {
  const image = await buildBusyboxImage(options);
  const dir = await mkdtemp(join(tmpdir(), 'berth-compat-image-'));
  try {
    await writeOciLayout(join(dir, 'layout'), image);
    await writeFile(
      join(dir, 'layout', 'manifest.json'),
      JSON.stringify([
        {
          Config: `blobs/sha256/${image.config.digest.slice(7)}`,
          RepoTags: [name],
          Layers: [`blobs/sha256/${image.layer.digest.slice(7)}`],
        },
      ]),
    );
    await run('tar', ['-C', join(dir, 'layout'), '-cf', join(dir, 'image.tar'), '.']);
    const loaded = await docker(env, ['load', '-i', join(dir, 'image.tar')]);
    if (loaded.code !== 0) throw new Error(`docker load failed: ${loaded.stderr}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
