# cargo-fuzz, for scripts/check.d/30-fuzz.sh. It runs on the stable toolchain with
# RUSTC_BOOTSTRAP=1 (see docs/fuzzing.md); only the cargo subcommand is installed here.
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version
