#!/usr/bin/env bash
# Bundles bench/network.ts with the esbuild that vitest's vite brings, then runs it (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)/network-bench.mjs"
node --input-type=module -e "
import { createRequire } from 'node:module';
const fromVitest = createRequire(createRequire(process.cwd() + '/package.json').resolve('vitest/package.json'));
const esbuild = createRequire(fromVitest.resolve('vite/package.json'))('esbuild');
const alias = Object.fromEntries(['oci-spec', 'runtime'].map((p) => ['@berth/' + p, process.cwd() + '/packages/' + p + '/src/index.ts']));
await esbuild.build({ entryPoints: ['bench/network.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: '$out', alias, logLevel: 'warning' });
"
node "$out"
rm -rf "$(dirname "$out")"
