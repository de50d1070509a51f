import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { firstOperand } from './main.js';
import { buildProgram } from './program.js';

/** Every command's path with its options and arguments, for comparing two trees. */
function shape(cmd: Command, prefix = ''): string[] {
  const path = `${prefix}${cmd.name()}`;
  const own = `${path} [${cmd.aliases().join(',')}] ${cmd.options.map((o) => o.flags).join(' ')} | ${cmd.registeredArguments.map((a) => a.name()).join(' ')}`;
  return [own, ...cmd.commands.flatMap((c) => shape(c, `${path} `))];
}

describe('the command tree built on demand', () => {
  it('finds the command name after global options', () => {
    expect(firstOperand(['ps', '-a'])).toBe('ps');
    expect(firstOperand(['-H', 'unix:///x.sock', 'container', 'ls'])).toBe('container');
    expect(firstOperand(['--host', 'tcp://h:2376', '-D', '--log-level', 'debug', 'images'])).toBe('images');
    expect(firstOperand(['--host=unix:///x', 'version'])).toBe('version');
    expect(firstOperand(['--help'])).toBeUndefined();
    expect(firstOperand(['-h', 'ps'])).toBeUndefined();
    expect(firstOperand([])).toBeUndefined();
  });

  it('builds exactly the full tree\'s subtree for each top-level command', () => {
    const full = buildProgram();
    expect(full.commands.length).toBeGreaterThan(40);
    for (const cmd of full.commands) {
      const partial = buildProgram(undefined, cmd.name());
      expect(partial.commands.map((c) => c.name())).toEqual([cmd.name()]);
      expect(shape(partial.commands[0]!)).toEqual(shape(cmd));
      // The root keeps its own options either way.
      expect(partial.options.map((o) => o.flags)).toEqual(full.options.map((o) => o.flags));
    }
  });

  it('builds every command when the name is not a top-level one (help, typos)', () => {
    const full = buildProgram().commands.map((c) => c.name());
    expect(buildProgram(undefined, 'help').commands.map((c) => c.name())).toEqual(full);
    expect(buildProgram(undefined, 'pss').commands.map((c) => c.name())).toEqual(full);
  });
});
