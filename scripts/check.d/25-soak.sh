# A two-minute soak (`peer-calls bench soak`): calls come and go on one server, and its
# memory, file descriptors and threads after the second minute must not have grown past the
# first's. The debug build, a small load: CPU per packet means nothing here; the 30-minute
# run by hand, and its figures, are in docs/benchmarks.md.
"$ROOT/target/debug/peer-calls" bench soak --minutes 2 --rooms 2 --people 3 \
  --json "$ROOT/target/bench/soak-ci.json"
