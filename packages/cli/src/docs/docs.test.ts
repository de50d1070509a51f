import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../program.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { renderCliDocs, walkCommands } from './reference.js';

const docsDir = fileURLToPath(new URL('../../../../docs/cli/', import.meta.url));

describe('help, docs/cli and completion come from one command tree', () => {
  it('docs/cli/*.md are up to date (regenerate: node packages/cli/dist/bin.cjs docs docs/cli)', async () => {
    const pages = renderCliDocs(buildProgram());
    const onDisk = (await readdir(docsDir)).filter((f) => f.endsWith('.md')).sort();
    expect(onDisk).toEqual([...pages.keys()].sort());
    for (const [name, text] of pages) expect(await readFile(join(docsDir, name), 'utf8'), name).toBe(text);
  });

  it("has docker's command tree, the grouped forms and berth's own commands", () => {
    const paths = walkCommands(buildProgram()).map((c) => c.path.slice(1).join(' '));
    for (const cmd of 'run create start stop restart kill rm ps logs exec attach cp inspect top stats wait pause unpause rename update port commit diff export images pull push build tag rmi save load import history login logout version info events'.split(' ')) {
      expect(paths).toContain(cmd);
    }
    for (const cmd of ['container ls', 'container run', 'image ls', 'image build', 'network create', 'network ls', 'network rm', 'network connect', 'volume create', 'volume ls', 'volume export', 'volume import', 'system df', 'system prune', 'system info', 'system events', 'daemon', 'registry serve', 'completion']) {
      expect(paths).toContain(cmd);
    }
  });

  it('bash completion completes commands, subcommands and flags', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-completion-'));
    try {
      const script = join(dir, 'berth.bash');
      await writeFile(script, bashCompletion(buildProgram()));
      const complete = (words: string[]): string[] => {
        const cword = words.length - 1;
        const r = spawnSync('bash', ['-c', `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${cword}; _berth; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return r.stdout.split('\n').filter(Boolean);
      };
      expect(complete(['berth', 'conta'])).toEqual(['container']);
      expect(complete(['berth', 'container', 'l'])).toEqual(expect.arrayContaining(['ls', 'list', 'logs']));
      expect(complete(['berth', 'ps', '--fo'])).toEqual(['--format']);
      expect(complete(['berth', '-H', 'unix:///x', 'volume', 'ex'])).toEqual(['export']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('zsh completion names every command group', () => {
    const script = zshCompletion(buildProgram());
    expect(script.startsWith('#compdef berth')).toBe(true);
    expect(script).toContain('"container") cands=(');
    expect(script).toContain("'--format'");
    const zsh = spawnSync('sh', ['-c', 'command -v zsh'], { encoding: 'utf8' });
    if (zsh.status === 0) {
      const r = spawnSync('zsh', ['-n'], { input: script, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
  });
});
