# Browser end-to-end tests: Debian's Chromium, curl, and playwright-core from npm.
apt_install chromium curl ca-certificates
(cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error)
