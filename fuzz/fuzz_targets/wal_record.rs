#![no_main]
//! The `wal_record` target; its body, docs and seeds are in `crates/fuzz-targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conclave_fuzz_targets::wal_record(data));
