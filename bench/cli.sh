#!/usr/bin/env bash
# Startup cost of the berth CLI against the docker CLI, same daemon, same run.
#
#   bash bench/cli.sh            # starts a private berthd (berth daemon) — or dockerd if berthd
#                                # cannot start — on a temporary socket, then measures
#   BENCH_HOST=unix:///path bash bench/cli.sh   # use a daemon that is already running
#
# Prints the median wall time of N runs of `berth version`, `docker version`, `berth ps`,
# `docker ps`, and the ratios. NODE_EXTRA_CA_CERTS is unset for berth (Node reads and parses the
# whole bundle at start when it is set: ~+300 ms here); the script also reports a run with it set.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-15}
BERTH="node packages/cli/dist/bin.cjs"
[ -f packages/cli/dist/bin.cjs ] || { (cd packages/client && npx tsup >/dev/null) && (cd packages/cli && npx tsup >/dev/null); }
command -v docker >/dev/null || { echo "bench/cli.sh: the docker CLI is needed for the comparison" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-bench-cli.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  umount -R --lazy "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

engine=""
if [ -n "${BENCH_HOST:-}" ]; then
  host=$BENCH_HOST; engine="given"
else
  host="unix://$tmp/berthd.sock"
  $BERTH daemon -H "$host" --data-root "$tmp/data" --exec-root "$tmp/exec" >"$tmp/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 1 100); do DOCKER_HOST=$host docker version >/dev/null 2>&1 && { engine="berthd"; break; }; kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.2; done
  if [ -z "$engine" ]; then
    kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
    command -v dockerd >/dev/null || { echo "bench/cli.sh: berthd did not start ($(tail -3 "$tmp/daemon.log")) and dockerd is not installed" >&2; exit 1; }
    host="unix://$tmp/docker.sock"
    dockerd --host "$host" --data-root "$tmp/ddata" --exec-root "$tmp/dexec" --pidfile "$tmp/d.pid" --iptables=false --ip6tables=false --ip-masq=false --bridge=none >"$tmp/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 150); do DOCKER_HOST=$host docker version >/dev/null 2>&1 && { engine="dockerd"; break; }; sleep 0.2; done
    [ -n "$engine" ] || { echo "bench/cli.sh: no daemon came up" >&2; exit 1; }
  fi
fi

median_ms() { # command... → median wall time in ms over N runs (after one warm-up)
  "$@" >/dev/null 2>&1 || true
  local times=()
  for _ in $(seq 1 "$N"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N)
    times+=($(( (e - s) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

export DOCKER_HOST=$host BERTH_HOST=$host
node_ms=$(env -u NODE_EXTRA_CA_CERTS bash -c "$(declare -f median_ms); N=$N; median_ms node -e 0")
# The floor for any Node client: node starts, sends one request over the socket with node:net,
# reads the answer, exits (no HTTP library, no parsing, no output).
floor_ms=""
if [[ $host == unix://* ]]; then
  floor_js="const s=require('net').connect('${host#unix://}');s.on('connect',()=>s.write('GET /containers/json HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'));s.resume();"
  floor_ms=$(env -u NODE_EXTRA_CA_CERTS bash -c "$(declare -f median_ms); N=$N; median_ms node -e \"$floor_js\"")
fi
bv=$(env -u NODE_EXTRA_CA_CERTS bash -c "$(declare -f median_ms); N=$N; median_ms $BERTH version")
dv=$(median_ms docker version)
bp=$(env -u NODE_EXTRA_CA_CERTS bash -c "$(declare -f median_ms); N=$N; median_ms $BERTH ps")
dp=$(median_ms docker ps)
ca=""
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then ca=$(median_ms $BERTH ps); fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "engine: $engine at $host; $N runs each; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %6s ms\n' "node -e 0" "$node_ms"
[ -n "$floor_ms" ] && printf '%-28s %6s ms\n' "node + one request (net)" "$floor_ms"
printf '%-28s %6s ms\n' "berth version" "$bv" "docker version" "$dv" "berth ps" "$bp" "docker ps" "$dp"
echo "berth version / docker version: $(ratio "$bv" "$dv")"
echo "berth ps / docker ps:           $(ratio "$bp" "$dp")   (goal: <= 1.50)"
echo "node -e 0 / docker ps:          $(ratio "$node_ms" "$dp")   (what Node itself costs)"
[ -n "$floor_ms" ] && echo "node + one request / docker ps: $(ratio "$floor_ms" "$dp")   (the floor for a Node client)"
[ -n "$ca" ] && echo "berth ps with NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS set: $ca ms"
exit 0
