//! The bodies of Conclave's fuzz targets: every decoder that reads bytes from a client, a peer or
//! the disk, driven with arbitrary input.
//!
//! Each target is a function of a byte string that returns normally on any input: it panics only
//! when the code under test panics or breaks a property the target checks (a decoded value that
//! does not survive being encoded and decoded again, a resumable parser that disagrees with a
//! one-shot parse, a recovered log that loses a write acknowledged after recovery). The
//! libFuzzer binaries in `fuzz/` (a cargo workspace of their own, built with `cargo fuzz`) call
//! these functions, and this crate's tests replay the seed inputs and every saved regression
//! input (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) on every test run, without a
//! fuzzer. `docs/TESTING.md` says how to run the fuzzer.

mod admin;
mod input;
mod kv;
mod raft;
mod resp;
mod transport;
mod wal;

pub use admin::admin_http;
pub use kv::kv_snapshot;
pub use raft::{membership, raft_message, runtime_envelope};
pub use resp::{resp_command, resp_frame};
pub use transport::transport_frame;
pub use wal::{wal_record, wal_recovery};

/// A fuzz target: its name (the binary in `fuzz/` and the directory of its inputs), its body, and
/// inputs that reach deep into the decoder, to start the fuzzer's corpus from.
pub struct Target {
    /// The name of the target's binary and input directories.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Valid inputs, built with the encoders, so the corpus starts past the first checks.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, in the order `.ci/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "resp_command", run: resp_command, seeds: resp::command_seeds },
    Target { name: "resp_frame", run: resp_frame, seeds: resp::frame_seeds },
    Target { name: "transport_frame", run: transport_frame, seeds: transport::seeds },
    Target { name: "raft_message", run: raft_message, seeds: raft::message_seeds },
    Target { name: "membership", run: membership, seeds: raft::membership_seeds },
    Target { name: "wal_record", run: wal_record, seeds: wal::record_seeds },
    Target { name: "wal_recovery", run: wal_recovery, seeds: wal::recovery_seeds },
    Target { name: "kv_snapshot", run: kv_snapshot, seeds: kv::seeds },
    Target { name: "runtime_envelope", run: runtime_envelope, seeds: raft::envelope_seeds },
    Target { name: "admin_http", run: admin_http, seeds: admin::seeds },
];

#[cfg(test)]
mod replay;
