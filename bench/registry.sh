#!/usr/bin/env bash
# Registry throughput benchmark: berth's registry vs Docker's reference registry, skopeo as client.
# Figures are printed and appended to bench/RESULTS.md. Needs skopeo and docker-registry (setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec packages/registry/node_modules/.bin/tsx --tsconfig tsconfig.json bench/registry.ts "$@"
