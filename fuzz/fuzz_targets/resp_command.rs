#![no_main]
//! The `resp_command` target; its body, docs and seeds are in `crates/fuzz-targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| conclave_fuzz_targets::resp_command(data));
