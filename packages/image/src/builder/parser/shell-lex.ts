import { ShellLexError } from '../errors.js';

/**
 * Variable expansion and word splitting as Dockerfiles do it (BuildKit's shell lexer):
 * `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
 * `${name:?msg}`, `${name?msg}`, `${name#pat}`, `${name##pat}`, `${name%pat}`, `${name%%pat}`,
 * `${name/pat/repl}`, `${name//pat/repl}`; single quotes are literal, double quotes expand `$` and
 * let the escape token escape `"`, `$` and itself; outside quotes the escape token escapes any
 * character. This is not a shell: no command substitution, no globbing, no arithmetic.
 *
 * Every error is a `ShellLexError`; nothing else is thrown for any input.
 */

export type EnvLookup = ReadonlyMap<string, string> | ((name: string) => string | undefined);

export interface ShellLexOptions {
  escapeToken?: string;
  /** Keep quote characters in the result (used to find heredoc words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave `$name` of unset variables as written instead of expanding to ''. */
  skipUnsetEnv?: boolean;
}

export interface ExpansionResult {
  result: string;
  /** Names looked up and found (set, possibly empty). */
  matched: Set<string>;
  /** Names looked up and not set. */
  unmatched: Set<string>;
}

const EOF = '';

class Words {
  private words: string[] = [];
  private word = '';
  private inWord = false;

  addChar(ch: string): void {
    if (/\s/u.test(ch) && this.inWord) {
      if (this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!/\s/u.test(ch)) {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0 || this.inWord) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Scanner {
  private readonly chars: string[];
  private pos = 0;
  constructor(input: string) {
    this.chars = Array.from(input);
  }
  peek(): string {
    return this.chars[this.pos] ?? EOF;
  }
  next(): string {
    const ch = this.chars[this.pos] ?? EOF;
    if (ch !== EOF) this.pos++;
    return ch;
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class ShellWord {
  private readonly scanner: Scanner;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    input: string,
    private readonly env: EnvLookup,
    private readonly escapeToken: string,
    private readonly rawQuotes: boolean,
    private readonly rawEscapes: boolean,
    private readonly skipUnsetEnv: boolean,
  ) {
    this.scanner = new Scanner(input);
  }

  private getEnv(name: string): string | undefined {
    const value = typeof this.env === 'function' ? this.env(name) : this.env.get(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  process(): { result: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stopChar: string, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    const words = new Words();
    while (this.scanner.peek() !== EOF) {
      let ch = this.scanner.peek();
      if (stopChar !== EOF && ch === stopChar) {
        this.scanner.next();
        return { result, words: words.getWords() };
      }
      if (ch === "'" || ch === '"' || ch === '$') {
        const tmp =
          ch === "'" ? this.processSingleQuote() : ch === '"' ? this.processDoubleQuote() : this.processDollar();
        result += tmp;
        if (ch === '$') words.addString(tmp);
        else words.addRawString(tmp);
        continue;
      }
      ch = this.scanner.next();
      if (ch === this.escapeToken) {
        if (rawEscapes) {
          words.addRawChar(ch);
          result += ch;
        }
        ch = this.scanner.next();
        if (ch === EOF) break;
        words.addRawChar(ch);
      } else {
        words.addChar(ch);
      }
      result += ch;
    }
    if (stopChar !== EOF) {
      throw new ShellLexError(`unexpected end of statement while looking for matching ${stopChar}`);
    }
    return { result, words: words.getWords() };
  }

  private processSingleQuote(): string {
    let result = '';
    const open = this.scanner.next();
    if (this.rawQuotes) result += open;
    for (;;) {
      const ch = this.scanner.next();
      if (ch === EOF) throw new ShellLexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.scanner.next();
    if (this.rawQuotes) result += open;
    for (;;) {
      if (this.scanner.peek() === EOF) {
        throw new ShellLexError('unexpected end of statement while looking for matching double-quote');
      }
      let ch = this.scanner.peek();
      if (ch === '"') {
        this.scanner.next();
        if (this.rawQuotes) result += ch;
        return result;
      }
      if (ch === '$') {
        result += this.processDollar();
        continue;
      }
      ch = this.scanner.next();
      if (ch === this.escapeToken) {
        if (this.rawEscapes) result += ch;
        const peek = this.scanner.peek();
        if (peek === EOF) continue;
        if (peek === '"' || peek === '$' || peek === this.escapeToken) ch = this.scanner.next();
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    while (this.scanner.peek() !== EOF) {
      const ch = this.scanner.peek();
      if (name.length === 0 && /\p{Nd}/u.test(ch)) {
        while (this.scanner.peek() !== EOF && /\p{Nd}/u.test(this.scanner.peek())) name += this.scanner.next();
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) return this.scanner.next();
      if (!/[\p{L}\p{Nd}_]/u.test(ch)) break;
      name += this.scanner.next();
    }
    return name;
  }

  private processDollar(): string {
    this.scanner.next(); // '$'
    if (this.scanner.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.skipUnsetEnv) return `$${name}`;
      return value ?? '';
    }
    this.scanner.next(); // '{'
    const first = this.scanner.peek();
    if (first === EOF) throw new ShellLexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ShellLexError('syntax error: bad substitution');
    const name = this.processName();
    const ch = this.scanner.next();
    switch (ch) {
      case '}': {
        const value = this.getEnv(name);
        if (value === undefined && this.skipUnsetEnv) return `\${${name}}`;
        return value ?? '';
      }
      case EOF:
        throw new ShellLexError("syntax error: missing '}'");
      case ':': {
        const modifier = this.scanner.next();
        const word = this.wordUntilBrace();
        const value = this.getEnv(name);
        if (this.skipUnsetEnv && value === undefined) return `\${${name}:${modifier}${word}}`;
        switch (modifier) {
          case '+':
            return value !== undefined && value !== '' ? word : '';
          case '-':
            return value === undefined || value === '' ? word : value;
          case '?':
            if (value === undefined || value === '') {
              throw new ShellLexError(`${name}: ${word === '' ? 'is not allowed to be empty' : word}`);
            }
            return value;
          default:
            throw new ShellLexError(`unsupported modifier (${modifier === EOF ? 'EOF' : modifier}) in substitution`);
        }
      }
      case '+':
      case '-':
      case '?': {
        const word = this.wordUntilBrace();
        const value = this.getEnv(name);
        if (this.skipUnsetEnv && value === undefined) return `\${${name}${ch}${word}}`;
        if (ch === '+') return value !== undefined ? word : '';
        if (ch === '-') return value ?? word;
        if (value === undefined) {
          throw new ShellLexError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`);
        }
        return value;
      }
      case '#':
      case '%': {
        let longest = false;
        if (this.scanner.peek() === ch) {
          this.scanner.next();
          longest = true;
        }
        const pattern = this.wordUntilBrace();
        const value = this.getEnv(name);
        if (this.skipUnsetEnv && value === undefined) {
          return `\${${name}${ch}${longest ? ch : ''}${pattern}}`;
        }
        return ch === '#' ? trimPrefix(value ?? '', pattern, longest) : trimSuffix(value ?? '', pattern, longest);
      }
      case '/': {
        let all = false;
        if (this.scanner.peek() === '/') {
          this.scanner.next();
          all = true;
        }
        const { pattern, replacement } = this.patternAndReplacement();
        const value = this.getEnv(name);
        if (this.skipUnsetEnv && value === undefined) {
          return `\${${name}/${all ? '/' : ''}${pattern}/${replacement}}`;
        }
        return replacePattern(value ?? '', pattern, replacement, all);
      }
      default:
        throw new ShellLexError(`unsupported modifier (${ch}) in substitution`);
    }
  }

  private wordUntilBrace(): string {
    try {
      return this.processStopOn('}', this.rawEscapes).result;
    } catch (error) {
      if (this.scanner.peek() === EOF) throw new ShellLexError("syntax error: missing '}'");
      throw error;
    }
  }

  private patternAndReplacement(): { pattern: string; replacement: string } {
    let pattern = '';
    for (;;) {
      const ch = this.scanner.next();
      if (ch === EOF) throw new ShellLexError("syntax error: missing '}'");
      if (ch === '/') break;
      if (ch === '}') return { pattern, replacement: '' };
      if (ch === this.escapeToken) {
        const n = this.scanner.next();
        if (n === EOF) throw new ShellLexError("syntax error: missing '}'");
        pattern += `\\${n}`;
        continue;
      }
      pattern += ch;
    }
    return { pattern, replacement: this.wordUntilBrace() };
  }
}

/** A shell pattern (`*`, `?`, `[...]`) as an anchored-or-not regular expression source. */
function patternToRegexSource(pattern: string): string {
  let out = '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? '';
    if (ch === '*') out += '[\\s\\S]*';
    else if (ch === '?') out += '[\\s\\S]';
    else if (ch === '\\') {
      const n = chars[++i];
      out += n === undefined ? '\\\\' : escapeRegex(n);
    } else if (ch === '[') {
      const close = chars.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = chars.slice(i + 1, close).join('');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else out += escapeRegex(ch);
  }
  return out;
}

function escapeRegex(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function compile(source: string): RegExp | undefined {
  try {
    return new RegExp(source, 'u');
  } catch {
    return undefined;
  }
}

function trimPrefix(value: string, pattern: string, longest: boolean): string {
  const re = compile(`^(?:${patternToRegexSource(pattern)})$`);
  if (!re) return value;
  const chars = Array.from(value);
  if (longest) {
    for (let i = chars.length; i >= 0; i--) if (re.test(chars.slice(0, i).join(''))) return chars.slice(i).join('');
  } else {
    for (let i = 0; i <= chars.length; i++) if (re.test(chars.slice(0, i).join(''))) return chars.slice(i).join('');
  }
  return value;
}

function trimSuffix(value: string, pattern: string, longest: boolean): string {
  const re = compile(`^(?:${patternToRegexSource(pattern)})$`);
  if (!re) return value;
  const chars = Array.from(value);
  if (longest) {
    for (let i = 0; i <= chars.length; i++) if (re.test(chars.slice(i).join(''))) return chars.slice(0, i).join('');
  } else {
    for (let i = chars.length; i >= 0; i--) if (re.test(chars.slice(i).join(''))) return chars.slice(0, i).join('');
  }
  return value;
}

function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  if (pattern === '') return value;
  // Greedy leftmost match, as the shell does.
  const source = patternToRegexSource(pattern);
  if (!compile(source)) return value;
  return value.replace(new RegExp(source, all ? 'gu' : 'u'), () => replacement);
}

export class ShellLex {
  readonly escapeToken: string;
  private readonly options: ShellLexOptions;

  constructor(options: ShellLexOptions = {}) {
    this.escapeToken = options.escapeToken ?? '\\';
    this.options = options;
  }

  private word(input: string, env: EnvLookup): ShellWord {
    return new ShellWord(
      input,
      env,
      this.escapeToken,
      this.options.rawQuotes ?? false,
      this.options.rawEscapes ?? false,
      this.options.skipUnsetEnv ?? false,
    );
  }

  /** Expands one word: quotes removed, variables substituted, no splitting. */
  processWord(input: string, env: EnvLookup): string {
    return this.word(input, env).process().result;
  }

  /** Like processWord, also reporting which variable names were used. */
  processWordWithMatches(input: string, env: EnvLookup): ExpansionResult {
    const w = this.word(input, env);
    const { result } = w.process();
    return { result, matched: w.matched, unmatched: w.unmatched };
  }

  /** Expands and splits on unquoted whitespace (including whitespace that expansions produce). */
  processWords(input: string, env: EnvLookup): string[] {
    return this.word(input, env).process().words;
  }

  processWordsWithMatches(input: string, env: EnvLookup): { words: string[]; matched: Set<string>; unmatched: Set<string> } {
    const w = this.word(input, env);
    const { words } = w.process();
    return { words, matched: w.matched, unmatched: w.unmatched };
  }
}
