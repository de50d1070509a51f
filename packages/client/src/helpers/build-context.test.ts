import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { list as listTar } from 'tar';
import { createBuildContext } from './build-context.js';

describe('build context', () => {
  it('tars the directory without what .dockerignore excludes, keeping the Dockerfile and exceptions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ctx-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      await writeFile(join(dir, '.dockerignore'), '# comment\n*.log\nnode_modules\n**/secret*\n!keep.log\nDockerfile\n');
      await writeFile(join(dir, 'a.log'), 'x');
      await writeFile(join(dir, 'keep.log'), 'x');
      await writeFile(join(dir, 'main.txt'), 'x');
      await mkdir(join(dir, 'node_modules/pkg'), { recursive: true });
      await writeFile(join(dir, 'node_modules/pkg/index.js'), 'x');
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub/secret.key'), 'x');
      await writeFile(join(dir, 'sub/ok.txt'), 'x');
      const entries: string[] = [];
      const stream = await createBuildContext(dir);
      const parser = listTar({ onReadEntry: (e) => entries.push(e.path.replace(/^\.\//, '')) });
      for await (const chunk of stream) parser.write(chunk as Buffer);
      parser.end();
      const files = entries.filter((e) => !e.endsWith('/') && e !== '' && e !== '.');
      expect(files.sort()).toEqual(['.dockerignore', 'Dockerfile', 'keep.log', 'main.txt', 'sub/ok.txt']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
