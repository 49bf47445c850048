//! The `conclave` command: the front door to the simulator, the servers and the benchmarks.

// First, so that its `out!` and `outln!` macros are in scope in every module after it.
#[macro_use]
mod output;

mod bench_core;
mod bench_kv;
mod certs_cmd;
mod chaos_cmd;
mod check_cmd;
mod choices;
mod cluster_cmd;
mod kv_cmd;
mod serve_cmd;
mod sim_cmd;
mod tls_args;
mod up_cmd;
mod wal_cmd;
mod wal_repair;

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
    /// Inspect or verify a node's write-ahead log directory, or every node's under a cluster
    /// directory such as the one `conclave up` uses; rebuild a damaged node from its peers.
    Wal {
        #[command(subcommand)]
        which: wal_cmd::WalCommand,
    },
    /// Run one node of a replicated key-value cluster that speaks the Redis protocol.
    Serve(Box<serve_cmd::ServeArgs>),
    /// Start a local cluster of `conclave serve` processes on loopback; Ctrl-C stops it.
    Up(up_cmd::UpArgs),
    /// Get, set, delete or scan keys through any node.
    Kv(kv_cmd::KvArgs),
    /// Show a cluster's status, change its membership or move its leadership.
    Cluster(cluster_cmd::ClusterArgs),
    /// Make a private CA and certificates for a cluster's nodes and a client (for tls_* settings).
    Certs(certs_cmd::CertsArgs),
    /// Run a local cluster of real processes under a seeded nemesis (crash, pause, partition,
    /// membership) while clients record a history; check it and write a report folder. Exits 1
    /// on a linearizability violation or a lost acknowledged write.
    Chaos(Box<chaos_cmd::ChaosArgs>),
    /// Check a recorded history for linearizability (JSON lines, a Jepsen log or Jepsen EDN)
    /// against a model; exits 0 linearizable, 1 not, 2 unusable input, 3 unknown (budget).
    Check(check_cmd::CheckArgs),
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
    /// Load a key-value server (or any Redis server) with concurrent clients and report ops/s
    /// and latency percentiles.
    Kv(bench_kv::KvBenchArgs),
}

fn main() {
    let code = match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) if output::is_closed_pipe(&error) => output::EXIT_CLOSED_PIPE,
        Err(error) => {
            eprintln!("Error: {error:?}");
            1
        }
    };
    output::flush();
    std::process::exit(code);
}

/// Runs the command; returns its exit status.
fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Sim(args) => sim_cmd::run(&args),
        Command::Wal { which } => wal_cmd::run(&which),
        Command::Bench { which: BenchCommand::Core(args) } => bench_core::run(&args).map(|()| 0),
        Command::Bench { which: BenchCommand::Kv(args) } => bench_kv::run(&args).map(|()| 0),
        Command::Serve(args) => serve_cmd::run(&args).map(|()| 0),
        Command::Up(args) => up_cmd::run(&args).map(|()| 0),
        Command::Kv(args) => kv_cmd::run(&args),
        Command::Cluster(args) => cluster_cmd::run(&args),
        Command::Certs(args) => certs_cmd::run(&args),
        Command::Chaos(args) => chaos_cmd::run(&args),
        Command::Check(args) => Ok(check_cmd::run(&args)),
    }
}
