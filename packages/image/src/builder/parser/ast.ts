import { DockerfileParseError, ShellLexError } from '../errors.js';
import { ShellLex } from './shell-lex.js';

/**
 * The first stage of Dockerfile parsing: bytes → a list of raw instructions with their flags,
 * arguments, heredoc bodies and line ranges, following BuildKit's frontend/dockerfile/parser
 * (directives, continuation lines, comments, heredocs). Typed instructions come from
 * `parseDockerfile` (instructions.ts) on top of this.
 */

export interface Heredoc {
  /** The terminator word, quotes removed. */
  name: string;
  /** `3<<EOF` → 3; 0 when not given. */
  fileDescriptor: number;
  /** False when any part of the terminator word was quoted: the body is not expanded. */
  expand: boolean;
  /** `<<-EOF`: leading tabs are stripped from the body lines and the terminator. */
  chomp: boolean;
  /** The body as written (with line endings), before chomping. */
  content: string;
}

export interface Directives {
  escape: '\\' | '`';
  syntax?: string;
  check?: string;
}

export interface RawInstruction {
  /** Lower-case instruction name (`run`, `copy`, …). */
  command: string;
  /** The instruction name as written. */
  commandAsWritten: string;
  /** `--name=value` flags with quotes removed, in order. */
  flags: string[];
  /** Everything after the flags, continuation lines joined, trimmed. */
  rest: string;
  /** The joined logical line (continuations removed, comments dropped). */
  original: string;
  heredocs: Heredoc[];
  /** 1-based first and last physical lines. */
  startLine: number;
  endLine: number;
  /** 1-based column of the instruction name on its first line. */
  column: number;
  /** Comment lines directly above the instruction. */
  comments: string[];
}

export interface DockerfileAst {
  directives: Directives;
  instructions: RawInstruction[];
  warnings: string[];
}

const HEREDOC_COMMANDS = new Set(['run', 'copy', 'add']);
const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const HEREDOC_RE = /^(\d*)<<(-?)([^<]*)$/;
const VALID_DIRECTIVES = new Set(['escape', 'syntax', 'check']);
const WHITESPACE_RE = /[\t\v\f\r ]+/;

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}

function trimLeadingWhitespace(s: string): string {
  return s.replace(/^\s+/u, '');
}

function isComment(line: string): boolean {
  return trimLeadingWhitespace(trimNewline(line)).startsWith('#');
}

class DirectiveParser {
  done = false;
  private readonly seen = new Set<string>();
  readonly directives: Directives = { escape: '\\' };
  private continuation = makeContinuationRegex('\\');

  /** Looks at a line for a directive; throws a plain message on an invalid one. */
  possibleDirective(line: string): string | undefined {
    if (this.done) return undefined;
    const match = DIRECTIVE_RE.exec(line);
    if (!match) {
      this.done = true;
      return undefined;
    }
    const key = (match[1] ?? '').toLowerCase();
    const value = match[2] ?? '';
    if (!VALID_DIRECTIVES.has(key)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(key)) return `only one ${key} parser directive can be used`;
    this.seen.add(key);
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') return `invalid escape token '${value}' does not match \` or \\`;
      this.directives.escape = value;
      this.continuation = makeContinuationRegex(value);
    } else if (key === 'syntax') {
      this.directives.syntax = value;
    } else {
      this.directives.check = value;
    }
    return undefined;
  }

  /** Removes a trailing continuation token; `continued` when the logical line goes on. */
  trimContinuation(line: string): { line: string; continued: boolean } {
    if (this.continuation.test(line)) {
      return { line: line.replace(this.continuation, '$1'), continued: true };
    }
    return { line, continued: false };
  }
}

function makeContinuationRegex(escape: string): RegExp {
  const e = escape === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function splitLines(input: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const i = input.indexOf('\n', start);
    if (i < 0) {
      if (start < input.length) lines.push(input.slice(start));
      return lines;
    }
    lines.push(input.slice(start, i + 1));
    start = i + 1;
  }
}

/**
 * Splits `--flag=value` words off the start of the arguments (quotes and backslashes inside a
 * flag are removed; a bare `--` ends the flags), as BuildKit's extractBuilderFlags does.
 */
export function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOk = false;
  const chars = Array.from(line);
  let offset = 0; // code-unit offset of chars[pos]
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = chars[pos] ?? '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (/\s/u.test(ch)) {
        offset += ch.length;
        continue;
      }
      if (ch !== '-' || chars[pos + 1] !== '-') return { rest: line.slice(offset), flags };
      phase = 'word';
    }
    if (pos === chars.length) {
      if (word !== '--' && (blankOk || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (/\s/u.test(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(offset), flags };
        if (blankOk || word.length > 0) flags.push(word);
        word = '';
        blankOk = false;
        offset += ch.length;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
        offset += ch.length;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === chars.length) {
          offset += ch.length;
          continue;
        }
        offset += ch.length;
        pos++;
        ch = chars[pos] ?? '';
      }
      word += ch;
      offset += ch.length;
      continue;
    }
    // in quote
    if (ch === quote) {
      phase = 'word';
      offset += ch.length;
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === chars.length) {
        phase = 'word';
        offset += ch.length;
        continue;
      }
      offset += ch.length;
      pos++;
      ch = chars[pos] ?? '';
    }
    word += ch;
    offset += ch.length;
  }
  return { rest: '', flags };
}

function heredocFromWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const match = HEREDOC_RE.exec(word);
  if (!match) return undefined;
  const rest = match[3] ?? '';
  if (rest.length === 0) return undefined;
  const plain = new ShellLex({ skipUnsetEnv: true });
  const words = plain.processWords(rest, new Map());
  if (words.length !== 1) return undefined;
  const raw = new ShellLex({ skipUnsetEnv: true, rawQuotes: true });
  const wordsRaw = raw.processWords(rest, new Map());
  if (wordsRaw.length !== words.length) {
    throw new ShellLexError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0] ?? '';
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return {
    name,
    fileDescriptor: Number.parseInt(match[1] || '0', 10),
    expand: quotes(name) === quotes(wordsRaw[0] ?? ''),
    chomp: match[2] === '-',
  };
}

/** The heredoc terminators named on an instruction line, in order. */
export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = new ShellLex({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, new Map());
  } catch {
    words = [];
  }
  const docs: Omit<Heredoc, 'content'>[] = [];
  for (const word of words) {
    const doc = heredocFromWord(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** `<<-` bodies: leading tabs of every line removed. */
export function chompHeredocContent(content: string): string {
  return content.replace(/^\t+/gm, '');
}

function splitCommand(line: string): { command: string; flags: string[]; rest: string } {
  const trimmed = line.trim();
  const m = WHITESPACE_RE.exec(trimmed);
  if (!m) return { command: trimmed, flags: [], rest: '' };
  const command = trimmed.slice(0, m.index);
  const { rest, flags } = extractFlags(trimmed.slice(m.index + m[0].length));
  return { command, flags, rest: rest.trim() };
}

function isJsonForm(rest: string): boolean {
  const t = rest.trimStart();
  if (!t.startsWith('[')) return false;
  try {
    return Array.isArray(JSON.parse(t));
  } catch {
    return false;
  }
}

function canContainHeredoc(command: string, rest: string): boolean {
  if (command === 'onbuild') {
    const sub = splitCommand(rest);
    return HEREDOC_COMMANDS.has(sub.command.toLowerCase()) && !isJsonForm(sub.rest);
  }
  return HEREDOC_COMMANDS.has(command) && !isJsonForm(rest);
}

/**
 * Parses Dockerfile text into raw instructions. Throws only `DockerfileParseError`, with the
 * line (and column where known) of the problem.
 */
export function parseDockerfileAst(input: string): DockerfileAst {
  const lines = splitLines(input.startsWith('\ufeff') ? input.slice(1) : input);
  const d = new DirectiveParser();
  const instructions: RawInstruction[] = [];
  const warnings: string[] = [];
  let comments: string[] = [];
  let index = 0;

  const processLine = (raw: string, stripLeft: boolean, lineNo: number): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeadingWhitespace(token);
    const error = d.possibleDirective(token);
    if (error) throw new DockerfileParseError(error, lineNo);
    return token.startsWith('#') ? '' : token;
  };

  while (index < lines.length) {
    const raw = lines[index] ?? '';
    const lineNo = index + 1;
    index++;
    if (isComment(raw)) comments.push(trimNewline(trimLeadingWhitespace(raw)).slice(1).trim());
    const processed = processLine(raw, true, lineNo);
    const column = trimNewline(raw).length - trimLeadingWhitespace(trimNewline(raw)).length + 1;
    const startLine = lineNo;
    let { line, continued } = d.trimContinuation(processed);
    if (!continued && line === '') continue;

    let emptyContinuation = false;
    while (continued && index < lines.length) {
      const next = lines[index] ?? '';
      const nextNo = index + 1;
      index++;
      const bytes = processLine(next, false, nextNo);
      if (isComment(next)) continue;
      if (trimLeadingWhitespace(trimNewline(bytes)).length === 0) {
        emptyContinuation = true;
        continue;
      }
      const r = d.trimContinuation(bytes);
      line += r.line;
      continued = r.continued;
    }
    if (emptyContinuation) warnings.push(`Empty continuation line found in: ${line}`);

    const { command: commandAsWritten, flags, rest } = splitCommand(line);
    const command = commandAsWritten.toLowerCase();
    const node: RawInstruction = {
      command,
      commandAsWritten,
      flags,
      rest,
      original: line,
      heredocs: [],
      startLine,
      endLine: index,
      column,
      comments,
    };

    if (canContainHeredoc(command, rest)) {
      let docs: Omit<Heredoc, 'content'>[];
      try {
        docs = heredocsFromLine(line);
      } catch (error) {
        throw new DockerfileParseError(error instanceof Error ? error.message : String(error), startLine, column, index, { cause: error });
      }
      for (const doc of docs) {
        let content = '';
        let terminated = false;
        while (index < lines.length) {
          const bodyLine = lines[index] ?? '';
          index++;
          let candidate = trimNewline(bodyLine);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += bodyLine;
        }
        if (!terminated) throw new DockerfileParseError('unterminated heredoc', startLine, column, index);
        node.heredocs.push({ ...doc, content });
      }
      node.endLine = index;
    }
    instructions.push(node);
    comments = [];
  }

  if (instructions.length === 0) throw new DockerfileParseError('file with no instructions', Math.max(lines.length, 1));
  return { directives: d.directives, instructions, warnings };
}
