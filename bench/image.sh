#!/usr/bin/env bash
# Image pull benchmark: berth (registry → content store + unpacked overlay snapshots) vs
# skopeo copy to an OCI layout + umoci unpack, against Docker's reference registry on loopback.
# Figures are printed and appended to bench/RESULTS.md. Needs skopeo, umoci, docker-registry.
set -euo pipefail
cd "$(dirname "$0")/.."
exec packages/image/node_modules/.bin/tsx --tsconfig tsconfig.json bench/image.ts "$@"
