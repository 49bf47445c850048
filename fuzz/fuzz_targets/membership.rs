#![no_main]
//! The `membership` target; its body, docs and seeds are in `crates/fuzz-targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conclave_fuzz_targets::membership(data));
