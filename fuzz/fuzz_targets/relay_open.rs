#![no_main]
//! See `fuzz_targets::relay_open` (fuzz/targets/src/lib.rs) for what this target feeds where.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::relay_open(data));
