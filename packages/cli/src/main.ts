import { CommanderError } from 'commander';
import { ExitError, writeOut } from './context.js';
import { buildProgram } from './program.js';
import type { ProgramState } from './program.js';

/**
 * Runs berth with `argv` (process.argv form) and resolves with the exit code:
 * the command's own (a container's exit status for run/start -a/exec), 125 for usage errors
 * (as docker), 1 for daemon and other errors, 126/127 when a container's command cannot run.
 */
export async function main(argv: string[]): Promise<number> {
  const state: ProgramState = { exitCode: 0 };
  const program = buildProgram(state, firstOperand(argv.slice(2)));
  program.exitOverride();
  program.configureOutput({
    writeOut: (text) => writeOut(1, text),
    writeErr: (text) => writeOut(2, text),
    outputError: (text, write) => write(text),
  });
  for (const cmd of allCommands(program)) {
    cmd.exitOverride();
    cmd.showHelpAfterError(`See '${commandPath(cmd)} --help'.`);
  }
  try {
    await program.parseAsync(argv);
    return state.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      if (error.code === 'commander.executeSubCommandAsync') return 0;
      // Usage errors: commander has printed the message and the usage hint.
      return 125;
    }
    if (error instanceof ExitError) {
      if (error.message) writeOut(2, error.message.endsWith('\n') ? error.message : `${error.message}\n`);
      return error.exitCode;
    }
    const { describeError } = await import('./errors.js');
    const described = describeError(error, state.cli?.host);
    writeOut(2, `${described.message}\n`);
    return described.exitCode;
  } finally {
    await state.cli?.dispose();
  }
}

/**
 * The command name on a command line: the first word that is not a global option (or a global
 * option's value). `-H x ps` → `ps`; `--help` → undefined (help needs the whole tree).
 */
export function firstOperand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-H' || arg === '--host' || arg === '-l' || arg === '--log-level') i++;
    else if (arg === '-h' || arg === '--help') return undefined;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

function allCommands(cmd: import('commander').Command): import('commander').Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

function commandPath(cmd: import('commander').Command): string {
  const names: string[] = [];
  for (let c: import('commander').Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
