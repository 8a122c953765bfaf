# Fuzz smoke run: builds every target in fuzz/ and fuzzes each one for a short, fixed time
# (FUZZ_SECONDS, default 20) starting from its committed corpus. New inputs go to a
# scratch folder, not into the repository; a crash fails the check and leaves its input in
# fuzz/artifacts/<target>/ (docs/fuzzing.md tells how to turn it into a regression input).
#
# The targets are built with `--dev` (AddressSanitizer, debug assertions, overflow
# checks) and, through fuzz/Cargo.toml, opt-level 1 for the crates they use: about six
# minutes on two cores, where an optimised build takes over ten and a fully unoptimised
# one runs str0m's SDP parser too slowly to replay the corpora in the time given. Set
# FUZZ_RELEASE=1 for the optimised build that long runs use.
#
# The per-input timeout is 120 s (FUZZ_TIMEOUT): the first input of a shard target
# builds the connected world (two DTLS handshakes, ~3 s fully unoptimised on an idle
# machine), and on a loaded machine that once passed a 30 s timeout (docs/fuzzing.md,
# "Timeouts"). A real hang still fails the run.
(
  cd "$ROOT/fuzz"
  export RUSTC_BOOTSTRAP=1
  seconds=${FUZZ_SECONDS:-20}
  profile=(--dev)
  [ "${FUZZ_RELEASE:-0}" = 1 ] && profile=()
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  cargo fuzz build "${profile[@]}"
  for target in $(cargo fuzz list); do
    echo "fuzzing $target for ${seconds}s"
    mkdir -p "$scratch/$target"
    status=0
    cargo fuzz run "${profile[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-120}" -rss_limit_mb=2048 -print_final_stats=1 \
      >"$scratch/$target.log" 2>&1 || status=$?
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units)' "$scratch/$target.log" || true
    if [ "$status" -ne 0 ]; then
      tail -n 60 "$scratch/$target.log" >&2
      echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
      exit 1
    fi
  done
)
