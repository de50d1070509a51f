import { DockerfileParseError } from '../errors.js';
import { chompHeredocContent, parseDockerfileAst } from './ast.js';
import type { Directives, Heredoc, RawInstruction } from './ast.js';

/**
 * Typed Dockerfile instructions. Values are kept as written (variables unexpanded, quotes in
 * ENV/LABEL/ARG values kept): the builder expands them at dispatch time with the environment
 * in force at that step, as Docker does.
 */

export interface SourceLocation {
  startLine: number;
  endLine: number;
  column: number;
}

interface Base {
  loc: SourceLocation;
  /** The logical line as written (continuations joined). */
  original: string;
}

/** RUN/CMD/ENTRYPOINT/HEALTHCHECK command: exec form (`json`) or a shell-form string. */
export interface CommandLine {
  json: boolean;
  /** Exec form: the argv; shell form: a single element, the command text. */
  args: string[];
}

export interface FromInstruction extends Base {
  kind: 'from';
  image: string;
  platform?: string;
  stageName?: string;
}

export interface RunInstruction extends Base {
  kind: 'run';
  command: CommandLine;
  /** Raw `--mount` values, parsed by parseRunMount at dispatch time (they may use ARGs). */
  mounts: string[];
  network?: string;
  security?: string;
  heredocs: Heredoc[];
}

export interface CopyInstruction extends Base {
  kind: 'copy' | 'add';
  sources: string[];
  dest: string;
  /** Sources given as heredocs (`COPY <<EOF /file`). */
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  keepGitDir: boolean;
  json: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends Base {
  kind: 'env';
  pairs: KeyValue[];
}

export interface LabelInstruction extends Base {
  kind: 'label';
  pairs: KeyValue[];
}

export interface ArgDefinition {
  name: string;
  /** Undefined when declared without `=`. */
  defaultValue?: string;
}

export interface ArgInstruction extends Base {
  kind: 'arg';
  args: ArgDefinition[];
}

export interface SingleValueInstruction extends Base {
  kind: 'workdir' | 'user' | 'stopsignal' | 'maintainer';
  value: string;
}

export interface ListInstruction extends Base {
  kind: 'expose' | 'volume';
  values: string[];
  json: boolean;
}

export interface CmdInstruction extends Base {
  kind: 'cmd' | 'entrypoint';
  command: CommandLine;
  /** `CMD` with no arguments (allowed, clears nothing). */
  empty: boolean;
}

export interface ShellInstruction extends Base {
  kind: 'shell';
  shell: string[];
}

export interface HealthcheckInstruction extends Base {
  kind: 'healthcheck';
  /** `HEALTHCHECK NONE` → undefined test. */
  none: boolean;
  command?: CommandLine;
  /** Durations in nanoseconds, as Docker stores them. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface OnbuildInstruction extends Base {
  kind: 'onbuild';
  /** The trigger as written, e.g. `RUN echo hi`. */
  expression: string;
  trigger: Instruction;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | SingleValueInstruction
  | ListInstruction
  | CmdInstruction
  | ShellInstruction
  | HealthcheckInstruction
  | OnbuildInstruction;

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export interface Dockerfile {
  directives: Directives;
  /** ARGs before the first FROM (usable in FROM lines). */
  metaArgs: ArgInstruction[];
  stages: Stage[];
  warnings: string[];
}

class Flags {
  private readonly values = new Map<string, string[]>();
  constructor(
    private readonly raw: RawInstruction,
    private readonly allowed: Record<string, 'string' | 'bool' | 'list'>,
  ) {
    for (const flag of raw.flags) {
      if (!flag.startsWith('--')) this.fail(`invalid flag: ${flag}`, flag);
      const body = flag.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const kind = this.allowed[name];
      if (kind === undefined) this.fail(`unknown flag: ${name}`, flag);
      if (eq < 0) {
        if (kind !== 'bool') this.fail(`missing a value on flag: ${name}`, flag);
        this.add(name, 'true', kind, flag);
        continue;
      }
      const value = body.slice(eq + 1);
      if (kind === 'bool' && value !== 'true' && value !== 'false') {
        this.fail(`expecting boolean value for flag ${name}, not: ${value}`, flag);
      }
      this.add(name, value, kind, flag);
    }
  }
  private add(name: string, value: string, kind: string, flag: string): void {
    const list = this.values.get(name) ?? [];
    if (list.length > 0 && kind !== 'list') this.fail(`duplicate flag specified: ${name}`, flag);
    list.push(value);
    this.values.set(name, list);
  }
  private fail(message: string, flag: string): never {
    const idx = this.raw.original.indexOf(flag.split('=')[0] ?? flag);
    throw new DockerfileParseError(message, this.raw.startLine, idx >= 0 ? this.raw.column + idx : this.raw.column, this.raw.endLine);
  }
  string(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }
  bool(name: string): boolean {
    return this.values.get(name)?.[0] === 'true';
  }
  list(name: string): string[] {
    return this.values.get(name) ?? [];
  }
}

function fail(raw: RawInstruction, message: string): never {
  throw new DockerfileParseError(message, raw.startLine, raw.column, raw.endLine);
}

function loc(raw: RawInstruction): SourceLocation {
  return { startLine: raw.startLine, endLine: raw.endLine, column: raw.column };
}

/** Quote-aware words as BuildKit's parseWords: quotes and escapes are kept for later expansion. */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOk = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = chars[pos] ?? '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (/\s/u.test(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOk || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (/\s/u.test(ch)) {
        phase = 'spaces';
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos] ?? '';
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] ?? '';
    }
    word += ch;
  }
  return words;
}

/** Exec form when the arguments are a JSON array of strings; undefined for shell form. */
function parseJsonArray(raw: RawInstruction, rest: string): string[] | undefined {
  const t = rest.trimStart();
  if (!t.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((v): v is string => typeof v === 'string')) {
    fail(raw, 'when using JSON array syntax, arrays must be comprised of strings only');
  }
  return parsed;
}

function commandLine(raw: RawInstruction, rest: string): CommandLine {
  const json = parseJsonArray(raw, rest);
  return json ? { json: true, args: json } : { json: false, args: [rest] };
}

function splitWhitespace(rest: string): string[] {
  return rest.split(/[\t\v\f\r ]+/).filter((s) => s.length > 0);
}

function parseNameVal(raw: RawInstruction, rest: string, key: string, escape: string): KeyValue[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) fail(raw, `${key} requires at least one argument`);
  if (!(words[0] ?? '').includes('=')) {
    const m = /[\t\v\f\r ]+/.exec(rest);
    if (!m) fail(raw, `${key} must have two arguments`);
    return [{ key: rest.slice(0, m.index), value: rest.slice(m.index + m[0].length) }];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) fail(raw, `Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
}

/** Go's time.ParseDuration subset used by HEALTHCHECK: "1m30s", "500ms", "2h". Nanoseconds. */
export function parseGoDuration(value: string): number | undefined {
  if (value === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let pos = 0;
  if (value.length === 0) return undefined;
  while (pos < value.length) {
    re.lastIndex = pos;
    const m = re.exec(value);
    if (!m) return undefined;
    total += Number.parseFloat(m[1] ?? '0') * (units[m[2] ?? ''] ?? 0);
    pos = re.lastIndex;
  }
  return Math.round(total);
}

function parseHealthcheck(raw: RawInstruction, rest: string, base: Base): HealthcheckInstruction {
  const flags = new Flags(raw, {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
  if (!m) fail(raw, 'HEALTHCHECK requires an argument');
  const type = (m[1] ?? '').toUpperCase();
  const args = m[2] ?? '';
  if (type === 'NONE') {
    if (args.length > 0) fail(raw, 'HEALTHCHECK NONE takes no arguments');
    if (raw.flags.length > 0) fail(raw, 'HEALTHCHECK NONE takes no flags');
    return { ...base, kind: 'healthcheck', none: true };
  }
  if (type !== 'CMD') fail(raw, `Unknown type "${type}" in HEALTHCHECK (try CMD)`);
  if (args.length === 0) fail(raw, 'Missing command after HEALTHCHECK CMD');
  const duration = (name: string): number | undefined => {
    const v = flags.string(name);
    if (v === undefined) return undefined;
    const d = parseGoDuration(v);
    if (d === undefined) fail(raw, `invalid duration for --${name}: ${v}`);
    if (d !== 0 && d < 1e6) fail(raw, `${name} cannot be less than 1ms`);
    return d;
  };
  const retriesRaw = flags.string('retries');
  let retries: number | undefined;
  if (retriesRaw !== undefined) {
    if (!/^-?\d+$/.test(retriesRaw)) fail(raw, `invalid value for --retries: ${retriesRaw}`);
    retries = Number.parseInt(retriesRaw, 10);
    if (retries < 0) fail(raw, '--retries cannot be negative');
  }
  const cmd = commandLine(raw, args);
  return {
    ...base,
    kind: 'healthcheck',
    none: false,
    command: cmd,
    interval: duration('interval'),
    timeout: duration('timeout'),
    startPeriod: duration('start-period'),
    startInterval: duration('start-interval'),
    retries,
  };
}

function noFlags(raw: RawInstruction): void {
  new Flags(raw, {});
}

/** Converts one raw instruction into a typed one; throws DockerfileParseError. */
export function toInstruction(raw: RawInstruction, escape: string): Instruction {
  const base: Base = { loc: loc(raw), original: raw.original };
  const rest = raw.rest;
  const name = raw.command.toUpperCase();
  switch (raw.command) {
    case 'from': {
      const flags = new Flags(raw, { platform: 'string' });
      const args = splitWhitespace(rest);
      if (args.length !== 1 && args.length !== 3) fail(raw, 'FROM requires either one or three arguments');
      if (args.length === 3 && (args[1] ?? '').toLowerCase() !== 'as') {
        fail(raw, 'FROM requires either one or three arguments (FROM <image> [AS <name>])');
      }
      const stageName = args.length === 3 ? (args[2] ?? '').toLowerCase() : undefined;
      if (stageName !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
        fail(raw, `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
      }
      return { ...base, kind: 'from', image: args[0] ?? '', platform: flags.string('platform'), stageName };
    }
    case 'run': {
      const flags = new Flags(raw, { mount: 'list', network: 'string', security: 'string' });
      if (rest.length === 0) fail(raw, 'RUN requires at least one argument');
      const command = commandLine(raw, rest);
      const network = flags.string('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
        fail(raw, `unsupported network mode: ${network}`);
      }
      const security = flags.string('security');
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) {
        fail(raw, `unsupported security mode: ${security}`);
      }
      return {
        ...base,
        kind: 'run',
        command,
        mounts: flags.list('mount'),
        network,
        security,
        heredocs: command.json ? [] : raw.heredocs,
      };
    }
    case 'copy':
    case 'add': {
      const isAdd = raw.command === 'add';
      const allowed: Record<string, 'string' | 'bool' | 'list'> = {
        chown: 'string',
        chmod: 'string',
        link: 'bool',
        parents: 'bool',
        exclude: 'list',
      };
      if (isAdd) {
        allowed.checksum = 'string';
        allowed['keep-git-dir'] = 'bool';
      } else allowed.from = 'string';
      const flags = new Flags(raw, allowed);
      const json = parseJsonArray(raw, rest);
      const words = json ?? splitWhitespace(rest);
      const heredocs = json ? [] : raw.heredocs;
      const heredocWords = new Set<string>();
      if (heredocs.length > 0) {
        for (const w of words) if (/^\d*<<-?/.test(w)) heredocWords.add(w);
      }
      const sources = words.slice(0, -1);
      const dest = words[words.length - 1];
      if (dest === undefined || (sources.length === 0 && heredocs.length === 0)) {
        fail(raw, `${name} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      if (heredocWords.has(dest)) fail(raw, `${name} destination cannot be a heredoc`);
      const chmod = flags.string('chmod');
      if (chmod !== undefined && !/^[0-7]{1,4}$/.test(chmod) && !/^([ugoa]*[-+=][rwxXst]*)(,[ugoa]*[-+=][rwxXst]*)*$/.test(chmod)) {
        fail(raw, `invalid chmod parameter: ${chmod}`);
      }
      return {
        ...base,
        kind: raw.command,
        sources: sources.filter((s) => !heredocWords.has(s)),
        dest,
        heredocs: heredocs.map((h) => (h.chomp ? { ...h, content: chompHeredocContent(h.content) } : h)),
        from: flags.string('from'),
        chown: flags.string('chown'),
        chmod,
        link: flags.bool('link'),
        parents: flags.bool('parents'),
        exclude: flags.list('exclude'),
        checksum: flags.string('checksum'),
        keepGitDir: flags.bool('keep-git-dir'),
        json: json !== undefined,
      };
    }
    case 'env':
    case 'label': {
      noFlags(raw);
      return { ...base, kind: raw.command, pairs: parseNameVal(raw, rest, name, escape) };
    }
    case 'arg': {
      noFlags(raw);
      const words = parseWords(rest, escape);
      if (words.length === 0) fail(raw, 'ARG requires at least one argument');
      return {
        ...base,
        kind: 'arg',
        args: words.map((w) => {
          const eq = w.indexOf('=');
          const argName = eq < 0 ? w : w.slice(0, eq);
          if (argName.length === 0) fail(raw, `ARG names can not be blank`);
          return eq < 0 ? { name: argName } : { name: argName, defaultValue: w.slice(eq + 1) };
        }),
      };
    }
    case 'workdir':
    case 'user':
    case 'stopsignal':
    case 'maintainer': {
      noFlags(raw);
      if (rest.length === 0) fail(raw, `${name} requires exactly one argument`);
      if (raw.command === 'stopsignal' && splitWhitespace(rest).length !== 1) {
        fail(raw, 'STOPSIGNAL requires exactly one argument');
      }
      return { ...base, kind: raw.command, value: rest };
    }
    case 'expose': {
      noFlags(raw);
      const values = splitWhitespace(rest);
      if (values.length === 0) fail(raw, 'EXPOSE requires at least one argument');
      return { ...base, kind: 'expose', values, json: false };
    }
    case 'volume': {
      noFlags(raw);
      const json = parseJsonArray(raw, rest);
      const values = json ?? splitWhitespace(rest);
      if (values.length === 0) fail(raw, 'VOLUME requires at least one argument');
      for (const v of values) if (v.trim().length === 0) fail(raw, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', values, json: json !== undefined };
    }
    case 'cmd':
    case 'entrypoint': {
      noFlags(raw);
      if (rest.length === 0) return { ...base, kind: raw.command, command: { json: true, args: [] }, empty: true };
      return { ...base, kind: raw.command, command: commandLine(raw, rest), empty: false };
    }
    case 'shell': {
      noFlags(raw);
      const json = parseJsonArray(raw, rest);
      if (!json) fail(raw, 'SHELL requires the arguments to be in JSON form');
      if (json.length === 0) fail(raw, 'SHELL requires at least one argument');
      return { ...base, kind: 'shell', shell: json };
    }
    case 'healthcheck':
      return parseHealthcheck(raw, rest, base);
    case 'onbuild': {
      noFlags(raw);
      if (rest.length === 0) fail(raw, 'ONBUILD requires at least one argument');
      const m = /^\s*(\S+)/.exec(rest);
      const sub = (m?.[1] ?? '').toLowerCase();
      if (sub === 'onbuild') fail(raw, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (sub === 'from' || sub === 'maintainer') fail(raw, `${sub.toUpperCase()} isn't allowed as an ONBUILD trigger`);
      const trigger = parseTrigger(rest, raw, escape);
      return { ...base, kind: 'onbuild', expression: rest, trigger };
    }
    default:
      fail(raw, `unknown instruction: ${raw.commandAsWritten}`);
  }
}

function parseTrigger(expression: string, parent: RawInstruction, escape: string): Instruction {
  const ast = parseDockerfileAst(`${escape === '`' ? '# escape=`\n' : ''}${expression}\n${parent.heredocs.map((h) => h.content + h.name + '\n').join('')}`);
  const first = ast.instructions[0];
  if (!first) fail(parent, 'ONBUILD requires at least one argument');
  return toInstruction({ ...first, startLine: parent.startLine, endLine: parent.endLine, column: parent.column }, escape);
}

/**
 * Parses a Dockerfile into stages of typed instructions. Throws only `DockerfileParseError`
 * (line and column of the offending instruction) for any input.
 */
export function parseDockerfile(input: string): Dockerfile {
  try {
    const ast = parseDockerfileAst(input);
    const escape = ast.directives.escape;
    const metaArgs: ArgInstruction[] = [];
    const stages: Stage[] = [];
    for (const raw of ast.instructions) {
      const instruction = toInstruction(raw, escape);
      if (instruction.kind === 'from') {
        const stage: Stage = { index: stages.length, from: instruction, instructions: [] };
        if (instruction.stageName !== undefined) {
          if (stages.some((s) => s.name === instruction.stageName)) {
            fail(raw, `duplicate stage name "${instruction.stageName}"`);
          }
          stage.name = instruction.stageName;
        }
        stages.push(stage);
        continue;
      }
      const current = stages[stages.length - 1];
      if (!current) {
        if (instruction.kind !== 'arg') fail(raw, `no build stage in current context: ${raw.commandAsWritten} must come after FROM`);
        metaArgs.push(instruction);
        continue;
      }
      current.instructions.push(instruction);
    }
    if (stages.length === 0) throw new DockerfileParseError('dockerfile contains no stages to build', 1);
    return { directives: ast.directives, metaArgs, stages, warnings: ast.warnings };
  } catch (error) {
    if (error instanceof DockerfileParseError) throw error;
    // Anything else is a bug; report it as a parse error of the whole file rather than crash.
    throw new DockerfileParseError(`internal parser error: ${error instanceof Error ? error.message : String(error)}`, 1, 1, 1, {
      cause: error,
    });
  }
}
