#!/usr/bin/env bash
# Builds the server, starts it on a free local port (two shards, so the two browsers land on
# different shards), runs e2e/smoke.mjs against it, and stops it again.
#
#   bash e2e/run.sh                      # cargo build --release, then the test
#   PEERCALLS_BIN=target/debug/peer-calls bash e2e/run.sh   # use an existing binary
#
# Needs: Debian's chromium (/usr/bin/chromium, or set CHROMIUM) and node; installs
# playwright-core into e2e/node_modules with `npm ci` when it is missing.
# The server's log is ci-artifacts/e2e-server.log; screenshots are in ci-artifacts/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${PEERCALLS_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --bin peer-calls
  BIN=target/release/peer-calls
fi
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "FAIL: no Chromium; apt-get install -y chromium" >&2; exit 1; }
[ -d e2e/node_modules/playwright-core ] || (cd e2e && npm ci --no-audit --no-fund)

mkdir -p ci-artifacts
LOG=ci-artifacts/e2e-server.log
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
RUST_LOG=${RUST_LOG:-info} "$BIN" --bind "127.0.0.1:$PORT" --udp-port 0 --shards 2 --room-spread 1 --no-pin \
  >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT

# Wait (at most 10 s) until the page is served.
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "FAIL: the server exited; see $LOG" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done

if ! PEERCALLS_URL="http://127.0.0.1:$PORT" node e2e/smoke.mjs; then
  echo "--- last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
