//! The crate's tests: commands against Redis's documented replies, expiry, SCAN, snapshots and
//! properties over random command sequences. One test binary, so one link in debug builds.

mod codec;
mod commands;
mod expiry;
mod harness;
mod memory;
mod properties;
mod scan;
mod snapshot;
