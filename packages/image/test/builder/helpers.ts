import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import type { BuildResult } from '@berth/image';
import { LayeredFs } from '../../src/builder/fs/layered-fs.js';

/** The merged root filesystem of a built image, read from the builder's unpacked layers. */
export function imageFs(root: string, result: BuildResult): LayeredFs {
  const dirs = result.config.rootfs.diff_ids.map((d) => join(root, 'layers', d.slice('sha256:'.length))).reverse();
  return new LayeredFs(dirs);
}

export async function readImageFile(root: string, result: BuildResult, path: string): Promise<string | undefined> {
  const bytes = await imageFs(root, result).readFile(path.split('/').filter(Boolean));
  return bytes?.toString('utf8');
}

export async function statImageFile(root: string, result: BuildResult, path: string): Promise<Stats | undefined> {
  return imageFs(root, result).stat(path.split('/').filter(Boolean));
}

/** Names of the unpacked layer directories the builder holds (to see whether a build wrote one). */
export async function layerDirs(root: string): Promise<string[]> {
  const names = await readdir(join(root, 'layers'));
  const out: string[] = [];
  for (const n of names) if ((await lstat(join(root, 'layers', n))).isDirectory()) out.push(n);
  return out.sort();
}
