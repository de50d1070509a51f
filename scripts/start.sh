#!/usr/bin/env bash
# The main job, safe to re-run: set up the host, start berthd in the background if it is not
# running, build a small web server image from the host's busybox-static binary, and run it as a
# container serving a page on a published port from a named volume.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

bash scripts/setup.sh

SOCKET=${BERTH_SOCKET:-/run/berth/berth.sock}
PORT=${BERTH_WEB_PORT:-8080}
LOG=/var/log/berthd.log
export BERTH_HOST="unix://$SOCKET"

# `berth` on the PATH, pointing at this checkout (only if the name is free or already ours).
if [ "$(id -u)" -eq 0 ] && { [ ! -e /usr/local/bin/berth ] || [ -L /usr/local/bin/berth ]; }; then
  ln -sf "$repo/packages/cli/dist/bin.cjs" /usr/local/bin/berth
fi
berth() { node "$repo/packages/cli/dist/bin.cjs" "$@"; }

ping_daemon() { curl -sf --max-time 2 --unix-socket "$SOCKET" http://berth/_ping >/dev/null 2>&1; }

if ping_daemon; then
  echo "start: berthd is already running on $SOCKET"
else
  echo "start: starting berthd on $SOCKET (log: $LOG)"
  nohup setsid node "$repo/packages/cli/dist/bin.cjs" daemon -H "unix://$SOCKET" >>"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do ping_daemon && break; sleep 0.5; done
  if ! ping_daemon; then
    echo "start: berthd did not answer on $SOCKET within 30 s; its log ($LOG) ends with:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
fi

# The build context: the example's Dockerfile and page, plus the host's busybox binary.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp examples/web/Dockerfile examples/web/index.html "$context/"
cp /bin/busybox "$context/busybox"

echo "start: building berth-example/web from $repo/examples/web"
berth build -t berth-example/web:latest "$context"

# Re-runs replace the container but keep the named volume (and whatever was written to it).
berth rm -f berth-web >/dev/null 2>&1 || true
berth volume create berth-web-data >/dev/null
echo "start: running berth-web (port $PORT -> 80, volume berth-web-data at /www)"
berth run -d --name berth-web -p "$PORT:80" -v berth-web-data:/www berth-example/web:latest >/dev/null

page=""
for _ in $(seq 1 20); do
  page=$(curl -sf --max-time 2 "http://127.0.0.1:$PORT/" || true)
  [ -n "$page" ] && break
  sleep 0.25
done
if [ -z "$page" ]; then
  echo "start: the container runs but http://127.0.0.1:$PORT/ did not answer; see: berth logs berth-web" >&2
  exit 1
fi

berth ps --filter name=berth-web
cat <<EOT

The page at http://127.0.0.1:$PORT/ says:
$(echo "$page" | sed -n 's:.*<h1>\(.*\)</h1>.*:  \1:p')

What next:
  berth ps                      list containers
  berth logs -f berth-web       follow the web server's log
  berth exec -it berth-web sh   a shell in the container
  berth volume inspect berth-web-data
  DOCKER_HOST=$BERTH_HOST docker ps     the docker CLI works against berthd too
  berth rm -f berth-web         stop and remove the container (the volume stays)
EOT
