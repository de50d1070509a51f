#!/usr/bin/env bash
# The whole test suite: set-up, lint, typecheck, then every test. Privileged tests run when this
# runs as root (as CI does) and are skipped with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TURBO_TELEMETRY_DISABLED=1
echo "test: lint"
pnpm lint
echo "test: typecheck"
pnpm typecheck
echo "test: vitest"
pnpm vitest "$@"
