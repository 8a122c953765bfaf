# The forwarding micro-benchmark (engine/benches/forwarding.rs) in the debug build, on a
# small meeting: its check that every packet reaches every subscriber keeps it honest.
# Its timings mean nothing in a debug build; docs/benchmarks.md shows the release run.
cargo bench --profile dev -p engine --bench forwarding --locked -- \
  --rooms 1 --people 3 --seconds 1 --rounds 1
