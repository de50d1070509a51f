import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The allowed arrows between packages, from DESIGN.md's table. A package may import only the
// packages listed here, in its package.json and in its sources.
const allowed: Record<string, string[]> = {
  'oci-spec': [],
  registry: ['oci-spec'],
  image: ['oci-spec', 'registry'],
  runtime: ['oci-spec'],
  daemon: ['oci-spec', 'registry', 'image', 'runtime'],
  client: ['oci-spec'],
  cli: ['oci-spec', 'client', 'daemon', 'registry'],
};

const root = new URL('..', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry) && !/\.test\.ts$/.test(entry) ? [path] : [];
  });
}

describe('dependency arrows', () => {
  it('covers every package in packages/', () => {
    expect(readdirSync(join(root, 'packages')).sort()).toEqual(Object.keys(allowed).sort());
  });

  for (const [name, deps] of Object.entries(allowed)) {
    it(`@berth/${name} depends only on ${deps.length ? deps.join(', ') : 'no other berth package'}`, () => {
      const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      const declared = Object.keys(manifest.dependencies ?? {})
        .filter((dep) => dep.startsWith('@berth/'))
        .map((dep) => dep.slice('@berth/'.length));
      expect(declared.filter((dep) => !deps.includes(dep))).toEqual([]);

      const imported = new Set<string>();
      for (const file of sourceFiles(join(root, 'packages', name, 'src'))) {
        const text = readFileSync(file, 'utf8');
        for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"]@berth\/([a-z-]+)/g)) imported.add(match[1]!);
        // Reaching into another package's sources bypasses its public entry.
        expect(text, `${file} imports another package by relative path`).not.toMatch(/['"](\.\.\/)+\.\.\/[a-z-]+\/src\//);
      }
      expect([...imported].filter((dep) => dep !== name && !deps.includes(dep))).toEqual([]);
    });
  }
});
