#!/usr/bin/env bash
# berthd vs dockerd: API throughput and `docker run --rm` through the docker CLI.
# Figures are printed and appended to bench/RESULTS.md (BENCH_NO_WRITE=1 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
exec packages/daemon/node_modules/.bin/tsx --tsconfig tsconfig.json bench/daemon.ts "$@"
