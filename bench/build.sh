#!/usr/bin/env bash
# Dockerfile build benchmark: berth's builder vs docker build (legacy and BuildKit, when
# Debian's docker.io is installed). Figures are printed and appended to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec packages/image/node_modules/.bin/tsx --tsconfig tsconfig.json bench/build.ts "$@"
