#!/usr/bin/env bash
# Browser end-to-end suite (e2e/run.mjs): real Chromium and Firefox ESR processes with fake camera
# and microphone against the real peer-calls server on loopback (or a veth address). Each case starts its own server (and restarts
# it on the same port where the case needs that).
#
#   bash e2e/run.sh                       # cargo build --release, then every case
#   bash e2e/run.sh call reconnect        # only these cases
#   PEERCALLS_BIN=target/debug/peer-calls bash e2e/run.sh   # use an existing binary
#
# Installs what is missing: Debian's chromium and firefox-esr (and node/npm when there is no node)
# with apt-get, and playwright-core and puppeteer-core into e2e/node_modules with `npm ci`.
# Nothing else is downloaded (no browser download: playwright-core drives /usr/bin/chromium,
# puppeteer-core /usr/bin/firefox-esr over WebDriver BiDi).
# Screenshots: ci-artifacts/screenshots/; server logs: ci-artifacts/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
FIREFOX=${FIREFOX:-/usr/bin/firefox-esr}
export CHROMIUM FIREFOX

apt_get_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ -x "$FIREFOX" ] || missing+=(firefox-esr)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt_get_install "${missing[@]}"
fi
[ -d e2e/node_modules/playwright-core ] && [ -d e2e/node_modules/puppeteer-core ] || (cd e2e && npm ci --no-audit --no-fund --loglevel=error)

BIN=${PEERCALLS_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --bin peer-calls
  BIN=target/release/peer-calls
fi
PEERCALLS_BIN=$(realpath "$BIN") exec node e2e/run.mjs "$@"
