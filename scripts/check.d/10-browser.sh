# The browser client: unit tests of its pure parts in Node (e2e/unit/, no browser), then the
# client in real Chromium and Firefox ESR against the real server (e2e/run.mjs): calls, chat
# and files, screen share, late joiner and hang-up, reconnect after a server restart, mute and
# camera off, visible-tile subscriptions, error pages, TLS, TURN, ICE-TCP, ICE failure explained,
# 20% loss each way, the bandwidth estimate of a capped downlink. The debug binary built for the cargo tests
# is used, so no release build is needed here. Screenshots: ci-artifacts/screenshots/.
node --test "$ROOT/e2e/unit/"
PEERCALLS_BIN="$ROOT/target/debug/peer-calls" bash "$ROOT/e2e/run.sh"
