#![no_main]
//! See `fuzz_targets::shard_srtp` (fuzz/targets/src/lib.rs) for what this target feeds where.
//! One connected world serves many inputs unless FUZZ_FRESH_WORLD is set; a panic in a
//! harness client's str0m breaks that client, not the run.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_targets::reuse_worlds();
    fuzz_targets::quiet_client_panics();
    fuzz_targets::shard_srtp(data)
});
