# Browser end-to-end tests: Debian's Chromium (driven headless by playwright-core from npm, which
# downloads no browser of its own). The machine's Node.js and npm are used; Debian's are
# installed only where there is no node.
apt_install chromium ca-certificates openssl
command -v node >/dev/null 2>&1 || apt_install nodejs npm
(cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error)
