//! The `conclave` command: the front door to the simulator, the benchmarks and (later) servers.

mod bench_core;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Conclave: build, break and measure consensus.
#[derive(Parser, Debug)]
#[command(name = "conclave", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Commands per second of an in-memory Raft cluster stepped on one thread (the core alone).
    Core(bench_core::CoreBenchArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { which: BenchCommand::Core(args) } => bench_core::run(&args),
    }
}
