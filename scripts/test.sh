#!/usr/bin/env bash
# Runs every test of the project on a fresh machine that has only the Rust toolchain.
#
#   1. scripts/setup.d/*.sh   install what the tests need (Debian packages, npm packages),
#                             each file for one feature; they skip what is already there
#   2. format, lints, the Rust test suite (unit, virtual-time, loopback, binary tests)
#   3. scripts/check.d/*.sh   further checks that are not cargo tests (browser end-to-end,
#                             fuzz smoke runs), each file for one feature
#
# Any failure stops the run with a non-zero exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT

log() { printf '\n== %s\n' "$*"; }

# Installs Debian packages that are missing; runs `apt-get update` at most once.
APT_UPDATED=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "$APT_UPDATED" -eq 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
export -f apt_install 2>/dev/null || true

log "toolchain"
cargo --version
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

# A full run writes about 5 GiB (the test build, the fuzz build, Chromium). A disk that
# fills up mid-run fails far from the cause: the linker dies with "Bus error".
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
echo "free disk space: $((free_kib / 1024)) MiB"
if [ "$free_kib" -lt $((5 * 1024 * 1024)) ]; then
  echo "warning: less than 5 GiB free; the run may fail for want of space" >&2
fi

for f in scripts/setup.d/*.sh; do
  [ -e "$f" ] || continue
  log "setup: $f"
  # shellcheck source=/dev/null
  source "$f"
done

log "format"
cargo fmt --all -- --check

log "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

for f in scripts/check.d/*.sh; do
  [ -e "$f" ] || continue
  log "check: $f"
  # shellcheck source=/dev/null
  source "$f"
done

log "all tests passed"
