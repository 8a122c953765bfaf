# Real browsers against the real server: the page works end to end. The debug binary
# built for the cargo tests is used, so no release build is needed here.
PEERCALLS_BIN="$ROOT/target/debug/peer-calls" bash "$ROOT/e2e/run.sh"
