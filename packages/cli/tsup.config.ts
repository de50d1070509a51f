import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import type { Plugin as TsupPlugin } from 'tsup';
import type { Plugin } from 'esbuild';

// Two builds:
// - the library (`dist/index.js`, ESM with types) for tools that import @berth/cli;
// - the `berth` executable: `dist/bin.cjs`, a launcher that loads `dist/berth.cjs` — one CommonJS
//   file with commander, the client and the commands in it — with a V8 code cache (src/launch.ts). A CLI run is dominated by start-up, and Node loads one CommonJS file faster
//   than an ES module graph of chunks (no module linking, one read, one compile). @berth/daemon
//   and @berth/registry stay external and are imported (real `import()`) only by `berth daemon`
//   and `berth registry serve`; tar and dockerignore are required only by the commands using them.
//
// `@berth/oci-spec` (imported by the client for BerthError only) resolves to a light stand-in:
// its real entry loads ajv and its schemas, which costs more than `berth ps` itself.
// See src/bundle/oci-spec-errors.ts.
const lightOciSpec: Plugin = {
  name: 'berth-light-oci-spec',
  setup(build) {
    const target = fileURLToPath(new URL('./src/bundle/oci-spec-errors.ts', import.meta.url));
    build.onResolve({ filter: /^@berth\/oci-spec$/ }, () => ({ path: target }));
  },
};

// commander requires node:child_process at load for executable subcommands, which berth does
// not use; loading it costs ~6 ms of every run. It is required on first use instead.
const lazyChildProcess: Plugin = {
  name: 'berth-lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.namespace !== 'berth-lazy' && /[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'berth-lazy' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'berth-lazy' }, () => ({
      contents:
        "let cp; module.exports = new Proxy({}, { get(_, key) { cp ??= require('node:child_process'); return cp[key]; } });",
      loader: 'js',
    }));
  },
};

// V8 drops the dynamic-import hook of code it takes from a code cache ("A dynamic import callback
// was not specified"), so berth.cjs cannot use import() when the launcher runs it from its cache.
// Its import() calls (built-ins and the external packages, all loaded on demand) go through
// `__bimp`, which the launcher passes in as an argument of the wrapper it compiles; loaded any
// other way (a plain require), the bundle falls back to its own import().
const importThroughLauncher: TsupPlugin = {
  name: 'berth-import-through-launcher',
  renderChunk(code, info) {
    if (!info.path.endsWith('berth.cjs')) return undefined;
    const replaced = code.replace(/(?<![.\w$])import\(("[^"]+")\)/g, '__bimp($1)');
    // Any import() left (not a method named import) has a computed specifier: fail the build.
    const strings = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g;
    const left = /(?<![.\w$])import\((?![^()]*\)\s*\{)/.exec(replaced.replace(strings, '""'));
    if (left) throw new Error(`berth.cjs: an import() with a computed specifier cannot go through the launcher: ${replaced.slice(left.index, left.index + 80)}`);
    const banner = 'var __bimp = typeof __bimp == "function" ? __bimp : (s) => import(s);';
    let at = replaced.startsWith('#!') ? replaced.indexOf('\n') + 1 : 0;
    if (replaced.startsWith('"use strict";', at)) at += '"use strict";'.length;
    return { code: replaced.slice(0, at) + banner + replaced.slice(at) };
  },
};

const external = ['@berth/daemon', '@berth/registry', '@berth/image', '@berth/runtime', 'tar', '@balena/dockerignore'];

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: { entry: 'src/index.ts' },
    sourcemap: true,
    clean: false,
    splitting: true,
    noExternal: ['@berth/client', '@berth/oci-spec', 'ky'],
    external,
    esbuildPlugins: [lightOciSpec],
  },
  {
    // dist/bin.cjs is the launcher (src/launch.ts: built-ins only, loads dist/berth.cjs with a code
    // cache); dist/berth.cjs is the CLI.
    entry: { bin: 'src/launch.ts', berth: 'src/bin.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: false,
    splitting: false,
    noExternal: ['@berth/client', '@berth/oci-spec', 'ky', 'commander'],
    external,
    // Whitespace and syntax are minified (identifiers kept, for readable stack traces): a smaller
    // file is read, hashed and compiled faster at every start.
    esbuildOptions(options) {
      options.minifyWhitespace = true;
      options.minifySyntax = true;
      // ASCII only (non-ASCII escaped): the launcher then reads the file as Latin-1, a plain copy,
      // and V8 compiles a one-byte string instead of decoding UTF-8 into a two-byte one.
      options.charset = 'ascii';
      // Licence notices of bundled packages go to berth.cjs.LEGAL.txt (they hold non-ASCII).
      options.legalComments = 'linked';
    },
    // node: prefixes are kept so that lazyChildProcess sees commander's `node:child_process`.
    removeNodeProtocol: false,
    esbuildPlugins: [lightOciSpec, lazyChildProcess],
    plugins: [importThroughLauncher],
  },
]);
