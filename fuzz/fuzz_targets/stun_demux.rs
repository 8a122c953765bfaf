#![no_main]
//! See `fuzz_targets::stun_demux` (fuzz/targets/src/lib.rs) for what this target feeds where.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::stun_demux(data));
