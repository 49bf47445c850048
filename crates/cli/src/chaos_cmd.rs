//! `conclave chaos`: a Jepsen-style run against real `conclave serve` processes on loopback.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use conclave_chaos::cluster::NodeSettings;
use conclave_chaos::nemesis::{FaultSet, Schedule};
use conclave_chaos::workload::Workload;
use conclave_chaos::ChaosConfig;
use conclave_core::ReadConsistency;

use crate::choices::read_modes;

/// Flags of `conclave chaos`.
#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// How long clients and faults run, e.g. `60s`, `2m`, `500ms` (then the cluster is healed,
    /// every key read once more, and the history checked).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time: Duration,
    /// Decides the fault schedule and the clients' choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The report folder: summary, history, check, HTML timeline, nemesis log, time series and
    /// node logs (default `chaos-report/seed-N`).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Keys the clients spread over.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Share of operations that are reads.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// The clients' read mode (stale follower reads are not linearizable by design: use it to
    /// see the checker catch them).
    #[arg(long, default_value_t = ReadConsistency::Linearizable, value_parser = read_modes())]
    pub read_mode: ReadConsistency,
    /// The faults the nemesis injects; the help lists them from the chaos runner's one list.
    #[arg(long, default_value = "all", help = FaultSet::help())]
    pub faults: FaultSet,
    /// Quiet time between fault episodes, e.g. `500ms..2s`.
    #[arg(long, default_value = "500ms..2s", value_parser = parse_range)]
    pub fault_gap: (Duration, Duration),
    /// Length of a fault episode, e.g. `1s..4s`.
    #[arg(long, default_value = "1s..4s", value_parser = parse_range)]
    pub fault_length: (Duration, Duration),
    /// Longest pause of a client between two operations (paces the load so the history stays
    /// checkable).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub think: Duration,
    /// How long a client waits for a reply before it counts the operation as unknown.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The nodes' tick.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// The nodes' election timeout, in ticks.
    #[arg(long, default_value_t = 10)]
    pub election_ticks: u32,
    /// Snapshot every this many entries (small, so snapshots and catch-up happen during a run).
    #[arg(long, default_value_t = 2000)]
    pub snapshot_entries: u64,
    /// Wall time the linearizability check may take.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub check_budget: Duration,
}

/// Parses `250ms`, `30s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?}: use ms, s or m")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `LOW..HIGH` durations.
fn parse_range(text: &str) -> Result<(Duration, Duration), String> {
    let (low, high) =
        text.split_once("..").ok_or_else(|| format!("expected LOW..HIGH, got {text:?}"))?;
    let (low, high) = (parse_duration(low)?, parse_duration(high)?);
    if low > high {
        return Err(format!("{text:?}: the low end is above the high end"));
    }
    Ok((low, high))
}

/// Runs the experiment and returns the exit status: 0 linearizable with nothing lost, 1 a
/// violation or a lost acknowledged write, 3 the check ran out of budget.
pub fn run(args: &ChaosArgs) -> Result<i32> {
    if args.nodes == 0 || args.nodes > 9 {
        bail!("--nodes must be 1 to 9");
    }
    if args.clients == 0 || args.keys == 0 {
        bail!("--clients and --keys must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        bail!("--read-ratio must be between 0 and 1");
    }
    let binary = std::env::current_exe().context("finding the conclave binary")?;
    let report_dir = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("chaos-report/seed-{}", args.seed)));
    let config = ChaosConfig {
        binary,
        nodes: args.nodes,
        duration: args.time,
        seed: args.seed,
        report_dir,
        workload: Workload {
            clients: args.clients,
            keys: args.keys,
            read_ratio: args.read_ratio,
            read_mode: args.read_mode,
            timeout: args.timeout,
            think: args.think,
        },
        schedule: Schedule {
            faults: args.faults.clone(),
            gap: args.fault_gap,
            length: args.fault_length,
        },
        node_settings: NodeSettings {
            binary: std::env::current_exe().context("finding the conclave binary")?,
            tick_ms: args.tick_ms,
            election_ticks: args.election_ticks,
            election_wait_ms: 1000,
            request_timeout_ms: args.timeout.as_millis().max(100) as u64,
            snapshot_entries: args.snapshot_entries,
        },
        check_budget: args.check_budget,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(conclave_chaos::run(&config))?;
    out!("{}", outcome.summary);
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(
            parse_range("500ms..2s"),
            Ok((Duration::from_millis(500), Duration::from_secs(2)))
        );
        assert!(parse_range("3s..1s").is_err());
        assert!(parse_range("3s").is_err());
    }
}
