# The browser client in real Chromium against the real server (e2e/run.mjs): calls, chat and
# files, screen share, late joiner and hang-up, reconnect after a server restart, mute and
# camera off, visible-tile subscriptions, error pages. The debug binary built for the cargo
# tests is used, so no release build is needed here. Screenshots: ci-artifacts/screenshots/.
PEERCALLS_BIN="$ROOT/target/debug/peer-calls" bash "$ROOT/e2e/run.sh"
