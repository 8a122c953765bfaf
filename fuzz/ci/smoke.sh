# Not yet run by ./scripts/test.sh: see "Open finding" in docs/fuzzing.md. To wire it, move it to scripts/check.d/30-fuzz.sh (it expects $ROOT, set by scripts/test.sh).
# Fuzz smoke run: builds every target in fuzz/ and fuzzes each one for a short, fixed time
# (FUZZ_SECONDS, default 20) starting from its committed corpus. New inputs go to a
# scratch folder, not into the repository; a crash fails the check and leaves its input in
# fuzz/artifacts/<target>/ (docs/fuzzing.md tells how to turn it into a regression input).
#
# The targets are built unoptimised (`--dev`, still with AddressSanitizer and debug
# assertions): an optimised build of str0m and aws-lc for libFuzzer takes over ten minutes
# on two cores, an unoptimised one a fraction of that. Set FUZZ_RELEASE=1 for the optimised
# build that long runs use.
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
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$scratch/$target.log" 2>&1 || status=$?
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units)' "$scratch/$target.log" || true
    if [ "$status" -ne 0 ]; then
      tail -n 60 "$scratch/$target.log" >&2
      echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
      exit 1
    fi
  done
)
