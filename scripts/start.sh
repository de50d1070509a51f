#!/usr/bin/env bash
# The main job: set up the host, build berth, and show that the CLI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node packages/cli/dist/bin.js --version
