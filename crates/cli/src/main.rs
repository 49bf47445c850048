//! The `conclave` command: the front door to the simulator, the benchmarks and (later) servers.

mod bench_core;
mod sim_cmd;
mod wal_cmd;

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
    /// Run a protocol in the deterministic simulator under seeded faults, checking safety after
    /// every event; exits 1 on a violation (printing the seed and the trace tail).
    Sim(sim_cmd::SimArgs),
    /// Inspect or verify a node's write-ahead log directory.
    Wal {
        #[command(subcommand)]
        which: wal_cmd::WalCommand,
    },
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
        Command::Sim(args) => {
            let code = sim_cmd::run(&args)?;
            std::process::exit(code);
        }
        Command::Wal { which } => {
            let code = wal_cmd::run(&which)?;
            std::process::exit(code);
        }
        Command::Bench { which: BenchCommand::Core(args) } => bench_core::run(&args),
    }
}
