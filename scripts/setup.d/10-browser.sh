# Browser end-to-end tests: Debian's Chromium (driven headless by playwright-core from npm) and
# Firefox ESR (driven by puppeteer-core over WebDriver BiDi: Playwright drives only its own patched
# Firefox). Neither npm package downloads a browser. The machine's Node.js and npm are used;
# Debian's are installed only where there is no node.
apt_install chromium firefox-esr ca-certificates openssl
command -v node >/dev/null 2>&1 || apt_install nodejs npm
(cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error)
