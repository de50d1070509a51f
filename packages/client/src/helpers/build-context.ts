// fs.promises is read on use: importing node:fs/promises loads it (and readline) at start-up.
import { promises as fsp } from 'node:fs';
import { relative, resolve } from 'node:path';
import { Readable } from 'node:stream';

export interface BuildContextOptions {
  /** Dockerfile path relative to the context (default `Dockerfile`); always sent even if ignored. */
  dockerfile?: string;
}

/** Patterns of a `.dockerignore` file (comments and blank lines dropped). */
export async function readDockerignore(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(resolve(dir, '.dockerignore'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/**
 * The build context of `dir` as a tar stream, leaving out what `.dockerignore` excludes (docker's
 * rules: `**`, `!` exceptions, last match wins). The Dockerfile and `.dockerignore` are always sent,
 * as the docker CLI does. Files stream from disk; nothing is buffered whole.
 */
export async function createBuildContext(dir: string, options: BuildContextOptions = {}): Promise<Readable> {
  // Loaded here, not at module load: importing the client must stay cheap for short-lived CLIs.
  const [{ default: dockerignoreModule }, { create: createTar }] = await Promise.all([import('@balena/dockerignore'), import('tar')]);
  const root = resolve(dir);
  const patterns = await readDockerignore(root);
  // The package is CommonJS (`module.exports = factory`) typed as a default export.
  type Factory = () => { add(patterns: string[]): { ignores(path: string): boolean } };
  const mod = dockerignoreModule as unknown as Factory & { default?: Factory };
  const factory = (mod.default ?? mod) as Factory;
  const matcher = factory().add(patterns);
  const dockerfile = relative(root, resolve(root, options.dockerfile ?? 'Dockerfile'));
  const keep = new Set([dockerfile, '.dockerignore']);
  const pack = createTar(
    {
      cwd: root,
      portable: true,
      filter: (path: string) => {
        const rel = path.replace(/^\.\/?/, '');
        if (rel === '' || keep.has(rel)) return true;
        return !matcher.ignores(rel);
      },
    },
    ['.'],
  );
  return Readable.from(pack as AsyncIterable<Buffer>);
}
