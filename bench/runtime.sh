#!/usr/bin/env bash
# Bundles bench/runtime.ts with esbuild (a devDependency of @berth/runtime), then runs it as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# Inside packages/runtime so the bundle finds native/berth-io.c next to it, as the built package does.
out="packages/runtime/.bench-$$/runtime-bench.mjs"
node --input-type=module -e "
import { createRequire } from 'node:module';
const esbuild = createRequire(process.cwd() + '/packages/runtime/package.json')('esbuild');
const alias = Object.fromEntries(['oci-spec', 'runtime'].map((p) => ['@berth/' + p, process.cwd() + '/packages/' + p + '/src/index.ts']));
await esbuild.build({ entryPoints: ['bench/runtime.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: '$out', alias, logLevel: 'warning',
  banner: { js: \"import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);\" } });
"
trap 'rm -rf "$(dirname "$out")"' EXIT
node "$out" "$@"
