//! `conclave sim`: run a protocol in the deterministic simulator, once or over a sweep of seeds.

use std::fs::File;
use std::io::BufWriter;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use conclave_core::NodeId;
use conclave_raft::{Config, Raft};
use conclave_sim::{FaultSet, Options, Simulation, Violation};

/// The protocols the simulator can run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProtocolName {
    /// The Raft core (pre-vote, check-quorum, batched and pipelined replication).
    Raft,
}

/// Options of `conclave sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// The protocol to simulate.
    #[arg(long, value_enum, default_value_t = ProtocolName::Raft)]
    protocol: ProtocolName,
    /// Nodes in the cluster (1 to 9).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Client operations (writes and reads) that must be acknowledged before the fault phase
    /// ends.
    #[arg(long, default_value_t = 1000)]
    ops: u64,
    /// Concurrent simulated clients, each with one operation in flight.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The share of client operations that are reads (ReadIndex, lease, and through followers),
    /// each checked against the writes: 0 to 1.
    #[arg(long, default_value_t = 0.2)]
    read_ratio: f64,
    /// Nodes outside the initial membership, for the `membership` fault to add (default: 2 with
    /// that fault, 0 without).
    #[arg(long)]
    spares: Option<usize>,
    /// How far each node's clock may run fast or slow, as a fraction (0.1 = ±10%): tests that
    /// lease reads hold within their drift margin.
    #[arg(long, default_value_t = 0.0)]
    clock_drift: f64,
    /// The seed every random choice derives from; the same seed replays the same run exactly.
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    seed: u64,
    /// Sweep a range of seeds, e.g. `1..500` (inclusive); prints every failing seed.
    #[arg(long, value_parser = parse_seed_range)]
    seeds: Option<RangeInclusive<u64>>,
    /// Faults the nemesis injects: a comma list of partition, crash, drop, delay, duplicate,
    /// reorder, torn-write, fsync-error, slow-disk (or `disk` for the three disk faults),
    /// membership (add, promote and remove members, joint changes), transfer (leadership
    /// transfers); or `all`, or `none`.
    #[arg(long, default_value = "partition,crash,drop,delay,duplicate")]
    faults: FaultSet,
    /// Write every event as a JSON line to FILE (single runs only).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    trace: Option<PathBuf>,
    /// Length of one protocol tick, in virtual microseconds.
    #[arg(long, default_value_t = 10_000)]
    tick_us: u64,
    /// Raft: election timeout in ticks (each timeout is drawn from [N, 2N)).
    #[arg(long, default_value_t = 10)]
    election_ticks: u32,
    /// Raft: ticks between heartbeats.
    #[arg(long, default_value_t = 1)]
    heartbeat_ticks: u32,
    /// Raft: turn pre-vote off.
    #[arg(long)]
    no_pre_vote: bool,
    /// Raft: turn check-quorum (and the follower lease) off.
    #[arg(long)]
    no_check_quorum: bool,
    /// Raft: most entries per AppendEntries message.
    #[arg(long, default_value_t = 256)]
    append_entries_max: usize,
    /// Raft: most AppendEntries messages in flight per follower.
    #[arg(long, default_value_t = 64)]
    inflight_max: usize,
    /// Raft: ticks of the election timeout a leader does not trust its lease for, leaving room
    /// for clock drift (lease reads).
    #[arg(long, default_value_t = 2)]
    lease_margin_ticks: u32,
    /// Skip the commit-durability check (that no node lacking a just-committed entry could still
    /// be elected), leaving only the checks that see data actually lost.
    #[arg(long)]
    no_commit_durability_check: bool,
    /// In sweeps, print only failing seeds and the tally.
    #[arg(long)]
    quiet: bool,
    /// Run a deliberately broken Raft variant, to watch the simulator catch it.
    #[cfg(feature = "bug-injection")]
    #[arg(long, value_enum)]
    bug: Vec<BugName>,
}

/// The deliberately broken Raft variants (see `conclave_raft::Bugs`).
#[cfg(feature = "bug-injection")]
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BugName {
    /// Commit entries of older terms by counting replicas (Figure 8).
    Figure8Commit,
    /// Leave the vote out of the persisted hard state.
    ForgetVote,
    /// Grant a second vote in the same term.
    DoubleVote,
    /// Keep a conflicting suffix instead of truncating it.
    NoTruncate,
    /// Apply entries once durable, before they are committed.
    ApplyBeforeCommit,
}

fn parse_seed_range(text: &str) -> Result<RangeInclusive<u64>, String> {
    let (low, high) =
        text.split_once("..").ok_or_else(|| format!("expected LOW..HIGH, got `{text}`"))?;
    let high = high.strip_prefix('=').unwrap_or(high);
    let low: u64 = low.trim().parse().map_err(|_| format!("bad seed `{low}`"))?;
    let high: u64 = high.trim().parse().map_err(|_| format!("bad seed `{high}`"))?;
    if low > high {
        return Err(format!("empty range {low}..{high}"));
    }
    Ok(low..=high)
}

impl SimArgs {
    fn options(&self, seed: u64) -> Options {
        Options {
            nodes: self.nodes,
            seed,
            tick_us: self.tick_us,
            ops: self.ops,
            clients: self.clients,
            read_ratio: self.read_ratio,
            spare_nodes: self.spares,
            clock_drift: self.clock_drift,
            faults: self.faults,
            check_commit_durability: !self.no_commit_durability_check,
            ..Options::default()
        }
    }

    fn raft_config(&self, id: NodeId, all: &[NodeId]) -> Config {
        let mut config = Config::new(id, all.to_vec());
        config.election_ticks = self.election_ticks;
        config.heartbeat_ticks = self.heartbeat_ticks;
        config.pre_vote = !self.no_pre_vote;
        config.check_quorum = !self.no_check_quorum;
        config.append_entries_max = self.append_entries_max;
        config.inflight_messages_max = self.inflight_max;
        config.lease_margin_ticks = self.lease_margin_ticks;
        #[cfg(feature = "bug-injection")]
        for bug in &self.bug {
            let bugs = &mut config.bugs;
            match bug {
                BugName::Figure8Commit => bugs.commit_old_terms_by_counting = true,
                BugName::ForgetVote => bugs.forget_to_persist_vote = true,
                BugName::DoubleVote => bugs.grant_two_votes_per_term = true,
                BugName::NoTruncate => bugs.skip_truncating_conflicts = true,
                BugName::ApplyBeforeCommit => bugs.apply_before_commit = true,
            }
        }
        config
    }

    /// Builds the simulation for one seed, checking the protocol configuration first so a bad
    /// flag is reported by name instead of failing inside the run.
    fn simulation(&self, seed: u64, trace: Option<BufWriter<File>>) -> Result<Simulation<Raft>> {
        let voters: Vec<NodeId> = (1..=self.nodes as u64).map(NodeId).collect();
        let template = self.raft_config(NodeId(1), &voters);
        template.validate().context("invalid Raft configuration")?;
        // Every node, spares included, starts from the same settings and the initial voters.
        let factory = move |id: NodeId, voters: &[NodeId], durable, rng| {
            let config = Config { id, voters: voters.to_vec(), ..template.clone() };
            Raft::new(config, durable, Box::new(rng))
                .expect("configuration validated before the run")
        };
        let options = self.options(seed);
        options.validate().context("invalid simulation options")?;
        let simulation = match trace {
            Some(sink) => Simulation::with_trace(options, factory, Box::new(sink)),
            None => Simulation::new(options, factory),
        };
        simulation.context("invalid simulation options")
    }
}

/// Runs `conclave sim`; returns the process exit code (0 clean, 1 a violation or liveness failure).
pub fn run(args: &SimArgs) -> Result<i32> {
    match args.protocol {
        ProtocolName::Raft => {}
    }
    match &args.seeds {
        Some(range) => sweep(args, range.clone()),
        None => single(args),
    }
}

fn single(args: &SimArgs) -> Result<i32> {
    let trace = match &args.trace {
        Some(path) => Some(BufWriter::new(
            File::create(path)
                .with_context(|| format!("cannot create trace file {}", path.display()))?,
        )),
        None => None,
    };
    let mut simulation = args.simulation(args.seed, trace)?;
    let start = Instant::now();
    let outcome = simulation.run();
    let wall = start.elapsed();
    simulation.flush_trace();
    if let Some(err) = simulation.trace_error() {
        bail!("writing the trace failed: {err}");
    }
    match outcome {
        Ok(summary) => {
            println!("{summary}");
            let events = summary.events_processed as f64;
            println!(
                "wall time {:.3}s, {:.0} simulated events/s",
                wall.as_secs_f64(),
                events / wall.as_secs_f64().max(1e-9)
            );
            // Liveness failures come back as violations; warnings (an op phase cut short by
            // faults) are printed with the summary and do not fail the run.
            Ok(0)
        }
        Err(violation) => {
            report_violation(&violation);
            Ok(1)
        }
    }
}

fn report_violation(violation: &Violation) {
    eprintln!("SAFETY VIOLATION: {violation}");
    eprintln!("replay: conclave sim --seed {} (with the same options)", violation.seed);
    eprintln!("last events of the trace:");
    for line in &violation.recent_trace {
        eprintln!("  {line}");
    }
}

fn sweep(args: &SimArgs, range: RangeInclusive<u64>) -> Result<i32> {
    let start = Instant::now();
    let mut failing = Vec::new();
    let mut warned = 0;
    let mut events = 0;
    let total = range.end() - range.start() + 1;
    for seed in range {
        match args.simulation(seed, None)?.run() {
            Ok(summary) => {
                events += summary.events_processed;
                if !summary.warnings.is_empty() {
                    warned += 1;
                }
                if !args.quiet {
                    println!(
                        "seed {seed}: ok, {} ops, {} elections, commit {}, virtual {:.1}s{}",
                        summary.ops_acknowledged,
                        summary.elections_started,
                        summary.commit_index,
                        summary.virtual_time_us as f64 / 1e6,
                        if summary.warnings.is_empty() { "" } else { " (warnings)" }
                    );
                }
            }
            Err(violation) => {
                println!("seed {seed}: FAILED {violation}");
                failing.push(seed);
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "swept {total} seeds in {wall:.1}s ({:.0} events/s): {} failed, {warned} with warnings",
        events as f64 / wall.max(1e-9),
        failing.len()
    );
    if !failing.is_empty() {
        let list: Vec<String> = failing.iter().map(u64::to_string).collect();
        println!("failing seeds: {}", list.join(" "));
    }
    Ok(i32::from(!failing.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_and_reject_nonsense() {
        assert_eq!(parse_seed_range("1..500"), Ok(1..=500));
        assert_eq!(parse_seed_range("3..=4"), Ok(3..=4));
        assert!(parse_seed_range("9..2").is_err());
        assert!(parse_seed_range("x..2").is_err());
        assert!(parse_seed_range("12").is_err());
    }
}
