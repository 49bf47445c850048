//! `conclave wal inspect|verify DIR`: read-only looks at a node's storage directory, or at every
//! node's under a cluster's data directory (`conclave up` keeps node `N` in `DIR/node-N`), and
//! `conclave wal repair`, the one subcommand that changes a directory (see `wal_repair`).
//!
//! A directory that holds no log at all is refused, never reported as healthy: a typo'd path or
//! the parent of the node directories must not pass a backup job's verification.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use conclave_storage::Report;

/// The `wal` subcommands.
#[derive(Subcommand, Debug)]
pub enum WalCommand {
    /// Print the segments (index ranges, sizes, records), the hard state and the snapshots,
    /// verifying every checksum; problems are listed, not fatal.
    Inspect {
        /// A node's storage directory, or a directory of them (e.g. the one `conclave up`
        /// prints), each of which is inspected.
        dir: PathBuf,
    },
    /// Verify every checksum; exit 1 on the first corruption, naming the file and offset. A torn
    /// tail (a crash mid-write) is not corruption: it is reported with the bytes the next open
    /// cuts. Fails too when the directory holds no log.
    Verify {
        /// A node's storage directory, or a directory of them (e.g. the one `conclave up`
        /// prints), each of which is verified.
        dir: PathBuf,
    },
    /// Rebuild a stopped node whose storage is damaged from its peers, as a learner.
    ///
    /// The cluster removes the node, its files move into DATA_DIR/damaged-STAMP (nothing is
    /// deleted; term and vote are kept), and it is added back as a learner, to promote with
    /// `conclave cluster promote` once caught up. Refuses, changing nothing, when that is not
    /// safe (no leader, too few other voters connected, the node still running, a damaged hard
    /// state) or the admin port refuses the token.
    Repair(Box<crate::wal_repair::RepairArgs>),
}

/// Runs a `wal` subcommand; returns the exit code.
pub fn run(command: &WalCommand) -> Result<i32> {
    match command {
        WalCommand::Inspect { dir } => {
            for store in stores_in(dir)? {
                let report = conclave_storage::inspect(&store)
                    .with_context(|| format!("cannot inspect {}", store.display()))?;
                outln!("{report}");
            }
            Ok(0)
        }
        WalCommand::Verify { dir } => {
            let stores = stores_in(dir)?;
            let mut corrupt = 0;
            for store in &stores {
                match conclave_storage::verify(store) {
                    Ok(report) => {
                        outln!("{report}");
                        outln!("verify: ok");
                    }
                    Err(corruption) => {
                        eprintln!("verify: CORRUPT: {corruption}");
                        corrupt += 1;
                    }
                }
            }
            if stores.len() > 1 {
                outln!(
                    "verified {} logs: {} ok, {corrupt} corrupt",
                    stores.len(),
                    stores.len() - corrupt
                );
            }
            Ok(if corrupt == 0 { 0 } else { 1 })
        }
        WalCommand::Repair(args) => crate::wal_repair::run(args),
    }
}

/// True if `report` found anything a store writes: a segment, a hard state, a snapshot, or a
/// damaged one of those (a problem).
fn holds_a_log(report: &Report) -> bool {
    !report.segments.is_empty()
        || report.hard_state.is_some()
        || !report.snapshots.is_empty()
        || !report.problems.is_empty()
}

/// The store directories to look at: `dir` itself when it holds a log, else each of its
/// subdirectories that does, in name order. An error when there are none.
fn stores_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let report = conclave_storage::inspect(dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    if holds_a_log(&report) {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut stores = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
        if path.is_dir() && conclave_storage::inspect(&path).is_ok_and(|r| holds_a_log(&r)) {
            stores.push(path);
        }
    }
    if stores.is_empty() {
        bail!(
            "{} holds no write-ahead log (no segment, hard-state or snapshot file), and neither \
             does any directory in it; give a node's data directory, or the cluster directory \
             holding node-N directories",
            dir.display()
        );
    }
    stores.sort();
    Ok(stores)
}
