#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu host for berth, then installs and builds the workspace.
# Idempotent: a second run installs nothing new and only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# What berth and its tests use from the distribution: OCI runtimes and the monitor, the busybox
# binary that test images are built from, independent tools for compatibility tests (skopeo,
# umoci, Docker's reference registry, Docker's own dockerd as the reference engine the client and
# CLI tests also run against), firewall and network tools, a small init, gcc for the runtime's
# attach helper, xattr tools, and the decompressors the builder's ADD uses.
APT_PACKAGES=(
  ca-certificates curl iproute2 util-linux procps tmux xz-utils bzip2
  runc crun conmon tini catatonit gcc libc6-dev
  iptables nftables
  busybox-static skopeo umoci docker-registry docker.io attr isal
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    echo "setup: run this script as root, or install them with apt-get first." >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  echo "setup: installing pnpm $want_pnpm"
  npm install -g "pnpm@$want_pnpm"
fi

export TURBO_TELEMETRY_DISABLED=1 CI=${CI:-}
pnpm install --frozen-lockfile
pnpm build
