import { describe, expect, it } from 'vitest';
import { DockerfileParseError } from '../errors.js';
import { parseDockerfileAst } from './ast.js';
import { parseDockerfile } from './instructions.js';
import type { CopyInstruction, EnvInstruction, RunInstruction } from './instructions.js';
import { ShellLex } from './shell-lex.js';
import { ShellLexError } from '../errors.js';

const env = new Map([
  ['A', 'a'],
  ['EMPTY', ''],
  ['SP', 'x y'],
  ['PATHV', '/usr/local/bin:/usr/bin'],
]);

describe('ShellLex', () => {
  const lex = new ShellLex();
  it.each([
    ['$A', 'a'],
    ['${A}', 'a'],
    ['${UNSET}', ''],
    ['${A:-d}', 'a'],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${A:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['\\$A', '$A'],
    ["'$A'", '$A'],
    ['"$A"', 'a'],
    ['"\\$A"', '$A'],
    ['"a\\b"', 'a\\b'],
    ['a\\ b', 'a b'],
    ['${A:-${SP}}', 'a'],
    ['${UNSET:-${SP}}', 'x y'],
    ['$', '$'],
    ['$1', ''],
    ['${PATHV#*:}', '/usr/bin'],
    ['${PATHV##*/}', 'bin'],
    ['${PATHV%:*}', '/usr/local/bin'],
    ['${PATHV%%/*}', ''],
    ['${PATHV/bin/sbin}', '/usr/local/sbin:/usr/bin'],
    ['${PATHV//bin/sbin}', '/usr/local/sbin:/usr/sbin'],
  ])('%s → %s', (input, expected) => {
    expect(lex.processWord(input, env)).toBe(expected);
  });

  it('reports the names in use', () => {
    const r = lex.processWordWithMatches('$A ${UNSET:-x}', env);
    expect([...r.matched]).toEqual(['A']);
    expect([...r.unmatched]).toEqual(['UNSET']);
  });

  it('splits words, also inside unquoted expansions', () => {
    expect(lex.processWords('$SP "$SP" z', env)).toEqual(['x', 'y', 'x y', 'z']);
    expect(lex.processWords('a "" b', env)).toEqual(['a', 'b']);
    expect(lex.processWords('"" b', env)).toEqual(['b']);
  });

  it('honours the backtick escape token', () => {
    expect(new ShellLex({ escapeToken: '`' }).processWord('C:\\dir` x`$A', env)).toBe('C:\\dir x$A');
  });

  it.each([
    ['${A', "syntax error: missing '}'"],
    ['${}', 'bad substitution'],
    ["'abc", 'single-quote'],
    ['"abc', 'double-quote'],
    ['${UNSET:?must be set}', 'UNSET: must be set'],
    ['${A:x}', 'unsupported modifier'],
  ])('%s fails with %s', (input, message) => {
    expect(() => lex.processWord(input, env)).toThrow(message);
  });
});

describe('parseDockerfileAst', () => {
  it('reads directives only at the top', () => {
    const ast = parseDockerfileAst('# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM a\n# escape=\\\n');
    expect(ast.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '`', check: 'skip=all' });
    const late = parseDockerfileAst('FROM a\n# escape=`\nRUN a \\\n b');
    expect(late.directives.escape).toBe('\\');
    expect(late.instructions[1]?.rest).toBe('a  b');
  });

  it('rejects repeated and invalid directives with the line', () => {
    expect(() => parseDockerfileAst('# escape=`\n# escape=`\nFROM a')).toThrow(/Dockerfile:2:1: only one escape/);
    expect(() => parseDockerfileAst('# escape=x\nFROM a')).toThrow(/invalid escape token/);
  });

  it('joins continuation lines, skipping comments and blank lines inside', () => {
    const ast = parseDockerfileAst('FROM a\nRUN echo a \\\n  # comment\n\n  b \\\n  c\nRUN x');
    const run = ast.instructions[1];
    expect(run?.rest).toBe('echo a   b   c');
    expect(run?.startLine).toBe(2);
    expect(run?.endLine).toBe(6);
    expect(ast.warnings.length).toBe(1);
    expect(ast.instructions[2]?.startLine).toBe(7);
  });

  it('continues with the backtick when it is the escape token', () => {
    const ast = parseDockerfileAst('# escape=`\nFROM a\nRUN dir c:\\ `\n  /b');
    expect(ast.instructions[1]?.rest).toBe('dir c:\\   /b');
  });

  it('collects several heredocs, chomp and quoting', () => {
    const ast = parseDockerfileAst("FROM a\nRUN <<A cat - <<-'B' > /x\nline $X\nA\n\tindented\n\tB\nRUN echo done\n");
    const run = ast.instructions[1];
    expect(run?.heredocs).toEqual([
      { name: 'A', fileDescriptor: 0, expand: true, chomp: false, content: 'line $X\n' },
      { name: 'B', fileDescriptor: 0, expand: false, chomp: true, content: '\tindented\n' },
    ]);
    expect(run?.endLine).toBe(6);
    expect(ast.instructions[2]?.startLine).toBe(7);
  });

  it('treats JSON-form RUN and non-heredoc commands as without heredocs', () => {
    const ast = parseDockerfileAst('FROM a\nRUN ["sh", "<<EOF"]\nUSER <<X\nRUN "<<NO" 3<<FD\nhi\nFD\n');
    expect(ast.instructions[1]?.heredocs).toEqual([]);
    expect(ast.instructions[2]?.heredocs).toEqual([]);
    expect(ast.instructions[3]?.heredocs).toEqual([{ name: 'FD', fileDescriptor: 3, expand: true, chomp: false, content: 'hi\n' }]);
  });

  it('fails on an unterminated heredoc and an empty file', () => {
    expect(() => parseDockerfileAst('FROM a\nRUN <<EOF\nhi\n')).toThrow(/Dockerfile:2:1: unterminated heredoc/);
    expect(() => parseDockerfileAst('# only a comment\n\n')).toThrow(DockerfileParseError);
  });

  it('splits flags with quotes and stops at --', () => {
    const ast = parseDockerfileAst('FROM a\nCOPY --chown="1:2" --link -- --notflag /d\n');
    expect(ast.instructions[1]?.flags).toEqual(['--chown=1:2', '--link']);
    expect(ast.instructions[1]?.rest).toBe('--notflag /d');
  });

  it('strips a byte-order mark', () => {
    expect(parseDockerfileAst('\ufeffFROM a').instructions[0]?.command).toBe('from');
  });
});

describe('parseDockerfile', () => {
  const df = [
    '# syntax=docker/dockerfile:1',
    'ARG BASE=busybox',
    'FROM --platform=linux/amd64 ${BASE} AS Build',
    'ENV A=1 B="two words" C=${A}',
    'ENV OLD value with spaces',
    'ARG X Y=2',
    'RUN --mount=type=cache,target=/c --network=none echo hi',
    'RUN ["echo", "exec"]',
    'COPY --from=build --chown=1:1 --chmod=644 --exclude=*.md --exclude=x a b /dst/',
    'ADD --checksum=sha256:abc https://example.com/f /f',
    'COPY <<EOF /etc/x',
    'hello',
    'EOF',
    'WORKDIR /w',
    'USER nobody',
    'LABEL a=b "c d"=e',
    'EXPOSE 80/tcp 53/udp',
    'VOLUME ["/v1", "/v2"]',
    'CMD echo cmd',
    'ENTRYPOINT ["/bin/sh", "-c"]',
    'STOPSIGNAL SIGTERM',
    'HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost',
    'SHELL ["/bin/sh", "-ec"]',
    'ONBUILD RUN echo trigger',
    'FROM scratch',
    '',
  ].join('\n');
  const parsed = parseDockerfile(df);

  it('splits meta ARGs and stages', () => {
    expect(parsed.metaArgs[0]?.args).toEqual([{ name: 'BASE', defaultValue: 'busybox' }]);
    expect(parsed.stages.length).toBe(2);
    expect(parsed.stages[0]?.from).toMatchObject({ image: '${BASE}', platform: 'linux/amd64', stageName: 'build' });
    expect(parsed.stages[0]?.name).toBe('build');
    expect(parsed.stages[1]?.from.image).toBe('scratch');
  });

  it('types every instruction', () => {
    const ins = parsed.stages[0]?.instructions ?? [];
    expect(ins.map((i) => i.kind)).toEqual([
      'env', 'env', 'arg', 'run', 'run', 'copy', 'add', 'copy', 'workdir', 'user', 'label', 'expose', 'volume',
      'cmd', 'entrypoint', 'stopsignal', 'healthcheck', 'shell', 'onbuild',
    ]);
    expect((ins[0] as EnvInstruction).pairs).toEqual([
      { key: 'A', value: '1' },
      { key: 'B', value: '"two words"' },
      { key: 'C', value: '${A}' },
    ]);
    expect((ins[1] as EnvInstruction).pairs).toEqual([{ key: 'OLD', value: 'value with spaces' }]);
    const run = ins[3] as RunInstruction;
    expect(run.mounts).toEqual(['type=cache,target=/c']);
    expect(run.network).toBe('none');
    expect(run.command).toEqual({ json: false, args: ['echo hi'] });
    expect((ins[4] as RunInstruction).command).toEqual({ json: true, args: ['echo', 'exec'] });
    const copy = ins[5] as CopyInstruction;
    expect(copy).toMatchObject({ from: 'build', chown: '1:1', chmod: '644', exclude: ['*.md', 'x'], sources: ['a', 'b'], dest: '/dst/' });
    expect(ins[6]).toMatchObject({ kind: 'add', checksum: 'sha256:abc', sources: ['https://example.com/f'] });
    expect(ins[7]).toMatchObject({ kind: 'copy', sources: [], dest: '/etc/x', heredocs: [{ name: 'EOF', content: 'hello\n' }] });
    expect(ins[16]).toMatchObject({ kind: 'healthcheck', interval: 5e9, retries: 3, command: { json: false, args: ['wget -q localhost'] } });
    expect(ins[18]).toMatchObject({ kind: 'onbuild', expression: 'RUN echo trigger', trigger: { kind: 'run' } });
    expect(ins[7]?.loc).toEqual({ startLine: 11, endLine: 13, column: 1 });
  });

  it.each([
    ['FROM a\nFOO bar', /Dockerfile:2:1: unknown instruction: FOO/],
    ['RUN x', /Dockerfile:1:1: no build stage/],
    ['FROM a b', /one or three arguments/],
    ['FROM a\nCOPY --bogus=1 a b', /Dockerfile:2:6: unknown flag: bogus/],
    ['FROM a\nCOPY a', /requires at least two arguments/],
    ['FROM a\nRUN --network=weird x', /unsupported network mode/],
    ['FROM a\nSHELL sh -c', /JSON form/],
    ['FROM a\nENV', /requires at least one argument/],
    ['FROM a\nENV A', /must have two arguments/],
    ['FROM a\nCMD ["a", 1]', /strings only/],
    ['FROM a\nONBUILD ONBUILD RUN x', /Chaining ONBUILD/],
    ['FROM a\nHEALTHCHECK FOO x', /Unknown type/],
    ['FROM a AS x\nFROM b AS x', /duplicate stage name/],
    ['FROM a\nCOPY --chmod=999 a b', /invalid chmod/],
  ])('%j fails', (input, message) => {
    expect(() => parseDockerfile(input)).toThrow(DockerfileParseError);
    expect(() => parseDockerfile(input)).toThrow(message);
  });
});

describe('fuzz', () => {
  // Deterministic PRNG so that a failure can be replayed.
  let seed = 0x9e3779b9;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = [
    'FROM ', 'RUN ', 'COPY ', 'ADD ', 'ENV ', 'ARG ', 'ONBUILD ', 'HEALTHCHECK ', 'SHELL ', '<<', '<<-', 'EOF', '\n', '\\', '`',
    '"', "'", '$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '[', ']', ',', '=', '--', ' ', '\t', 'a', '1', '\r',
    '# escape=`\n', '\u00e9', '\ufeff', 'AS x ', 'CMD [', '"x"', '\u0000', '\ud800',
  ];
  const seeds = [
    'FROM busybox\nRUN echo hi\n',
    'ARG A=1\nFROM a AS b\nCOPY --from=b <<EOF /x\nhi\nEOF\n',
    '# escape=`\nFROM a\nRUN a `\n b\n',
    'FROM a\nONBUILD RUN <<X\nx\nX\nHEALTHCHECK --interval=1s CMD ["a"]\n',
  ];

  it('throws nothing but DockerfileParseError for random and mutated inputs', () => {
    let parsedOk = 0;
    for (let i = 0; i < 4000; i++) {
      let input: string;
      if (i % 2 === 0) {
        input = Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]).join('');
      } else {
        const base = Array.from(seeds[rand(seeds.length)] ?? '');
        for (let m = rand(6); m >= 0; m--) {
          const pos = rand(base.length + 1);
          if (rand(2) === 0) base.splice(pos, 1);
          else base.splice(pos, 0, alphabet[rand(alphabet.length)] ?? '');
        }
        input = base.join('');
      }
      try {
        parseDockerfile(input);
        parsedOk++;
      } catch (error) {
        if (!(error instanceof DockerfileParseError) || /internal parser error/.test(error.message)) {
          throw new Error(`input ${JSON.stringify(input)} threw ${String(error)}`);
        }
      }
    }
    // The mutations keep some inputs valid, so both paths are exercised.
    expect(parsedOk).toBeGreaterThan(0);
  });

  it('expands random words throwing nothing but ShellLexError', () => {
    const pieces = ['$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '"', "'", '\\', '`', 'A', 'SP', 'x', ' ', '*', '[', ']', '!'];
    const lexers = [new ShellLex(), new ShellLex({ escapeToken: '`' }), new ShellLex({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true })];
    for (let i = 0; i < 5000; i++) {
      const word = Array.from({ length: rand(24) }, () => pieces[rand(pieces.length)]).join('');
      for (const lex of lexers) {
        try {
          lex.processWord(word, env);
          lex.processWords(word, env);
        } catch (error) {
          if (!(error instanceof ShellLexError)) throw new Error(`word ${JSON.stringify(word)} threw ${String(error)}`);
        }
      }
    }
  });
});
