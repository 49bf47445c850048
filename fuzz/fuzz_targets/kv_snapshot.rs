#![no_main]
//! The `kv_snapshot` target; its body, docs and seeds are in `crates/fuzz-targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conclave_fuzz_targets::kv_snapshot(data));
