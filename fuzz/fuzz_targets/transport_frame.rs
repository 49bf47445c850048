#![no_main]
//! The `transport_frame` target; its body, docs and seeds are in `crates/fuzz-targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conclave_fuzz_targets::transport_frame(data));
