#!/usr/bin/env node
/**
 * The `berth` executable: loads the bundled CLI (dist/berth.cjs) with a V8 code cache.
 *
 * A CLI run is mostly start-up; compiling the ~350 KB bundle is a fifth of it. V8 can serialise
 * the code it compiled (including the functions a run called) and take it back on the next run,
 * which is what Node 22's module compile cache does; Node 20 has no such switch, so this does it by
 * hand with vm.Script's `cachedData`. The cache sits next to the bundle (or under
 * ~/.cache/berth when dist/ is not writable), is named after the Node version and the bundle's
 * size and mtime, and is rewritten when V8 rejects it. Any failure falls back to a plain require.
 *
 * This file is built on its own and imports nothing but Node built-ins.
 */
import { isAscii } from 'node:buffer';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import vm from 'node:vm';

declare const __dirname: string;

const bundle = join(__dirname, 'berth.cjs');

function cachePaths(): string[] {
  const { size, mtimeMs } = statSync(bundle);
  const name = `berth.cjs.${process.version}-${process.arch}-${size}-${Math.trunc(mtimeMs)}.v8cache`;
  const home = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return [join(__dirname, '.cache', name), join(home, 'berth', name)];
}

/** Caches of earlier builds or Node versions are never read again: remove them. */
function pruneCaches(keep: string): void {
  try {
    const dir = dirname(keep);
    for (const old of readdirSync(dir)) {
      if (old !== basename(keep) && old.startsWith('berth.cjs.') && old.endsWith('.v8cache')) rmSync(join(dir, old), { force: true });
    }
  } catch {
    // a cache left behind only takes space
  }
}

function writeCache(paths: string[], data: Buffer): void {
  for (const path of paths) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, data);
      renameSync(tmp, path);
      pruneCaches(path);
      return;
    } catch {
      // not writable here: try the next place
    }
  }
}

function run(): void {
  const loader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (loader === undefined || process.env['BERTH_NO_CODE_CACHE'] === '1') {
    createRequire(bundle)(bundle);
    return;
  }
  const paths = cachePaths();
  let cachedData: Buffer | undefined;
  for (const path of paths) {
    try {
      cachedData = readFileSync(path);
      break;
    } catch {
      // no cache there
    }
  }
  const bytes = readFileSync(bundle);
  // The build writes ASCII (tsup.config.ts): read as Latin-1, a copy, not a UTF-8 decode.
  const source = (isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8')).replace(/^#!.*/, '');
  // The wrapper stays on the bundle's first line, so line numbers in stack traces are the bundle's.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __bimp) {${source}\n})`, {
    filename: bundle,
    cachedData,
    importModuleDynamically: loader,
  });
  const fn = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string, i: (s: string) => Promise<unknown>) => void;
  const mod = new Module(bundle);
  mod.filename = bundle;
  if (cachedData === undefined || script.cachedDataRejected === true) {
    // After the run, so the functions it compiled are in the cache too.
    process.once('exit', () => writeCache(paths, script.createCachedData()));
  }
  // import() from code V8 took from a cache has no loader hook; this file's import() does (see
  // tsup.config.ts), and resolves from the same directory as the bundle.
  fn.call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, __dirname, (specifier) => import(specifier));
}

run();
