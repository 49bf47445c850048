//! `conclave wal inspect|verify DIR`: read-only looks at a node's storage directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

/// The `wal` subcommands.
#[derive(Subcommand, Debug)]
pub enum WalCommand {
    /// Print the segments (index ranges, sizes, records), the hard state and the snapshots,
    /// verifying every checksum; problems are listed, not fatal.
    Inspect {
        /// The node's storage directory.
        dir: PathBuf,
    },
    /// Verify every checksum; exit 1 on the first corruption, naming the file and offset.
    Verify {
        /// The node's storage directory.
        dir: PathBuf,
    },
}

/// Runs a `wal` subcommand; returns the exit code.
pub fn run(command: &WalCommand) -> Result<i32> {
    match command {
        WalCommand::Inspect { dir } => {
            let report = conclave_storage::inspect(dir)
                .with_context(|| format!("cannot inspect {}", dir.display()))?;
            outln!("{report}");
            Ok(0)
        }
        WalCommand::Verify { dir } => match conclave_storage::verify(dir) {
            Ok(report) => {
                outln!("{report}");
                outln!("verify: ok");
                Ok(0)
            }
            Err(corruption) => {
                eprintln!("verify: CORRUPT: {corruption}");
                Ok(1)
            }
        },
    }
}
