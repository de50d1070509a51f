import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceNotFoundError } from '../errors.js';
import { BuildContext, hashContextPath, matchComponent } from './build-context.js';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';

describe('parseDockerignore', () => {
  it('cleans patterns like Docker', () => {
    expect(parseDockerignore('# comment\n  a/  \n!./b\n/c/d\n\n./e/../f\n  # not a comment\n')).toEqual([
      { pattern: 'a', exclusion: false },
      { pattern: 'b', exclusion: true },
      { pattern: 'c/d', exclusion: false },
      { pattern: 'f', exclusion: false },
      { pattern: '# not a comment', exclusion: false },
    ]);
  });
});

describe('IgnoreMatcher (moby/patternmatcher semantics)', () => {
  const cases: [string, string, boolean][] = [
    ['*.md', 'README.md', true],
    ['*.md', 'docs/README.md', false],
    ['**/*.md', 'docs/deep/README.md', true],
    ['**/*.md', 'README.md', true],
    ['docs', 'docs/a/b.txt', true],
    ['docs/**', 'docs/a/b.txt', true],
    ['docs/**', 'docs', false],
    ['/secret', 'secret', true],
    ['./secret', 'secret/x', true],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['**', 'anything/at/all', true],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['node_modules', 'src/node_modules', false],
    ['**/node_modules', 'src/node_modules/x', true],
    // Without wildcards the pattern is compared as written (patternmatcher's exact match).
    ['\\*literal', '*literal', false],
    ['file.txt', 'filextxt', false],
  ];
  it.each(cases)('%s vs %s → %s', (pattern, path, expected) => {
    expect(IgnoreMatcher.fromText(pattern).ignores(path)).toBe(expected);
  });

  it('lets the last matching pattern win, with ! exceptions', () => {
    const m = IgnoreMatcher.fromText('*.log\n!important.log\nlogs\n!logs/keep.txt\n');
    expect(m.ignores('debug.log')).toBe(true);
    expect(m.ignores('a.log')).toBe(true);
    expect(m.ignores('important.log')).toBe(false);
    expect(m.ignores('logs/x.txt')).toBe(true);
    expect(m.ignores('logs/keep.txt')).toBe(false);
    expect(m.hasExceptions).toBe(true);
    const again = IgnoreMatcher.fromText('!important.log\n*.log\n');
    expect(again.ignores('important.log')).toBe(true);
  });

  it('never ignores the context root', () => {
    expect(IgnoreMatcher.fromText('*\n').ignores('.')).toBe(false);
    expect(IgnoreMatcher.fromText('*\n').ignores('x')).toBe(true);
  });
});

describe('matchComponent (filepath.Match)', () => {
  it.each([
    ['*.txt', 'a.txt', true],
    ['*.txt', 'a.md', false],
    ['f?le', 'file', true],
    ['[!a]x', 'bx', true],
    ['[!a]x', 'ax', false],
  ])('%s %s', (p, n, e) => expect(matchComponent(p, n)).toBe(e));
});

describe('BuildContext', () => {
  let dir: string;
  let outside: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-ctx-unit-'));
    outside = await mkdtemp(join(tmpdir(), 'berth-outside-'));
    await writeFile(join(outside, 'secret'), 'outside secret');
    await mkdir(join(dir, 'src/sub'), { recursive: true });
    await writeFile(join(dir, 'src/a.txt'), 'a');
    await writeFile(join(dir, 'src/b.md'), 'b');
    await writeFile(join(dir, 'src/sub/c.txt'), 'c');
    await writeFile(join(dir, 'ignored.txt'), 'i');
    await writeFile(join(dir, '.dockerignore'), 'ignored.txt\n');
    await symlink(join(outside, 'secret'), join(dir, 'abs-link'));
    await symlink('../../../../../../../../..' + outside + '/secret', join(dir, 'rel-link'));
    await symlink('src', join(dir, 'dirlink'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('expands globs per component and leaves ignored files out', async () => {
    const ctx = await BuildContext.fromDirectory(dir);
    expect(await ctx.resolveSources('src/*.txt', undefined)).toEqual(['src/a.txt']);
    expect(await ctx.resolveSources('src/*', undefined)).toEqual(['src/a.txt', 'src/b.md', 'src/sub']);
    await expect(ctx.resolveSources('*.txt', undefined)).rejects.toThrow(/no source files/);
  });

  it('refuses ignored and missing sources', async () => {
    const ctx = await BuildContext.fromDirectory(dir);
    await expect(ctx.resolveSources('ignored.txt', undefined)).rejects.toThrow(SourceNotFoundError);
    await expect(ctx.resolveSources('nope', undefined)).rejects.toThrow(/not found/);
  });

  it('keeps ../ and symlinks pointing outside inside the context', async () => {
    const ctx = await BuildContext.fromDirectory(dir);
    expect(await ctx.resolveSources('../../src/a.txt', undefined)).toEqual(['src/a.txt']);
    await expect(ctx.resolveSources('abs-link', undefined)).rejects.toThrow(SourceNotFoundError);
    await expect(ctx.resolveSources('rel-link', undefined)).rejects.toThrow(SourceNotFoundError);
    expect(await ctx.resolveSources('dirlink/a.txt', undefined)).toEqual(['src/a.txt']);
    await expect(ctx.readFile('abs-link')).rejects.toThrow(SourceNotFoundError);
  });

  it('hashes content, not timestamps', async () => {
    const excluded = () => false;
    const h1 = await hashContextPath(dir, 'src', excluded);
    await writeFile(join(dir, 'src/a.txt'), 'a');
    expect(await hashContextPath(dir, 'src', excluded)).toBe(h1);
    await writeFile(join(dir, 'src/a.txt'), 'A');
    expect(await hashContextPath(dir, 'src', excluded)).not.toBe(h1);
    await writeFile(join(dir, 'src/a.txt'), 'a');
  });

  it('reads a context from a tar stream and removes it on close', async () => {
    const stream = tar.c({ cwd: dir, portable: true }, ['src', '.dockerignore', 'ignored.txt']);
    const ctx = await BuildContext.fromTar(Readable.from(stream as unknown as AsyncIterable<Buffer>));
    expect(await ctx.resolveSources('src/sub/c.txt', undefined)).toEqual(['src/sub/c.txt']);
    await expect(ctx.resolveSources('ignored.txt', undefined)).rejects.toThrow(SourceNotFoundError);
    await ctx.close();
    await expect(BuildContext.fromDirectory(ctx.root)).rejects.toThrow(/not a directory/);
  });
});
