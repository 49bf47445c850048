//! `conclave sim`: run a protocol in the deterministic simulator, once or over a sweep of seeds;
//! shrink a failing run to a small replay file, and replay such files.

mod scenario;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use conclave_core::{DurableState, NodeId, SeededRng};
use conclave_raft::{Config, Raft};
use conclave_sim::{
    raft_observers, shrink, FaultSet, Options, OptionsError, ShrinkProgress, ShrinkStep,
    Simulation, Violation,
};

use scenario::{RaftSettings, RecordedViolation, Scenario};

#[cfg(feature = "bug-injection")]
use crate::choices::bug_variants;
#[cfg(feature = "bug-injection")]
use conclave_raft::BugVariant;

/// The protocols the simulator can run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProtocolName {
    /// The Raft core (pre-vote, check-quorum, batched and pipelined replication).
    Raft,
}

/// Options of `conclave sim`.
#[derive(Args, Debug)]
#[command(after_help = "\
Shrinking and replay: a failing run with --shrink is reduced to a small run that breaks the same \
invariant, written as a replay file with its trace next to it. A replay file is JSON: the \
protocol settings, the options (seed included) and the fault schedule, one fault per line \
({\"at_us\": .., \"fault\": \"crash\", \"node\": 2, \"for_us\": ..}); --replay FILE runs exactly \
that, and --record FILE writes any run as one. Format and fault kinds: docs/TESTING.md, \
\"Replay files\".")]
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
    /// The faults the nemesis injects; the help lists them from the simulator's one list.
    #[arg(long, default_value = "partition,crash,drop,delay,duplicate", help = FaultSet::help())]
    faults: FaultSet,
    /// Write every event as a JSON line to FILE (single runs only).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    trace: Option<PathBuf>,
    /// Write the client history in the checker's JSON-lines format (docs/HISTORY.md) to FILE,
    /// for `conclave check` and its HTML timeline (single runs only). Every run's history is
    /// checked for linearizability at its end either way.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    history: Option<PathBuf>,
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
    /// Run exactly the scenario in FILE, a replay file written by `--shrink` or `--record`: its
    /// protocol settings, options, seed and fault schedule (the other run flags cannot be
    /// given). Exits 1 if it breaks an invariant, 0 if not.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "seed", "seeds", "nodes", "ops", "clients", "read_ratio", "spares", "clock_drift",
        "faults", "tick_us", "election_ticks", "heartbeat_ticks", "no_pre_vote",
        "no_check_quorum", "append_entries_max", "inflight_max", "lease_margin_ticks",
        "no_commit_durability_check",
    ])]
    replay: Option<PathBuf>,
    /// If the run breaks an invariant, shrink it to a small run breaking the same one (fewer
    /// nodes, clients, operations and faults, shorter faults) and write that as a replay file
    /// (see --out) with its trace next to it. Exits 1 when it shrank a violation, 0 when the run
    /// passed (nothing to shrink).
    #[arg(long, conflicts_with = "seeds")]
    shrink: bool,
    /// Where --shrink writes the reproducer [default: conclave-shrunk-SEED.json]; its trace
    /// goes next to it, with `.trace.jsonl` in place of `.json`.
    #[arg(long, value_name = "FILE", requires = "shrink")]
    out: Option<PathBuf>,
    /// Most simulations --shrink may run (each one is a whole run, usually milliseconds).
    #[arg(long, value_name = "RUNS", default_value_t = 2000)]
    shrink_budget: u64,
    /// Most wall-clock seconds --shrink may take; it then keeps the smallest run found so far.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    shrink_time: u64,
    /// Write this run as a replay file, the nemesis's faults written down as a schedule, so that
    /// `--replay FILE` repeats it exactly (and it can be edited).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    record: Option<PathBuf>,
    /// Run a deliberately broken Raft variant, to watch the simulator catch it.
    #[cfg(feature = "bug-injection")]
    #[arg(long, value_parser = bug_variants())]
    bug: Vec<BugVariant>,
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
    /// The run the flags describe, for `seed`.
    fn scenario(&self, seed: u64) -> Scenario {
        let options = Options {
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
        };
        let raft = RaftSettings {
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            pre_vote: !self.no_pre_vote,
            check_quorum: !self.no_check_quorum,
            append_entries_max: self.append_entries_max,
            inflight_max: self.inflight_max,
            lease_margin_ticks: self.lease_margin_ticks,
            bugs: self.bug_names(),
        };
        Scenario { raft, options, violation: None }
    }

    #[cfg(feature = "bug-injection")]
    fn bug_names(&self) -> Vec<String> {
        self.bug.iter().map(|bug| bug.as_str().to_string()).collect()
    }

    #[cfg(not(feature = "bug-injection"))]
    fn bug_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Node `id`'s Raft configuration under `settings`, among the initial `voters`.
fn raft_config(settings: &RaftSettings, id: NodeId, voters: &[NodeId]) -> Result<Config> {
    let mut config = Config::new(id, voters.to_vec());
    config.election_ticks = settings.election_ticks;
    config.heartbeat_ticks = settings.heartbeat_ticks;
    config.pre_vote = settings.pre_vote;
    config.check_quorum = settings.check_quorum;
    config.append_entries_max = settings.append_entries_max;
    config.inflight_messages_max = settings.inflight_max;
    config.lease_margin_ticks = settings.lease_margin_ticks;
    set_bugs(&mut config, &settings.bugs)?;
    Ok(config)
}

#[cfg(feature = "bug-injection")]
fn set_bugs(config: &mut Config, names: &[String]) -> Result<()> {
    for name in names {
        name.parse::<BugVariant>()?.enable(&mut config.bugs);
    }
    Ok(())
}

#[cfg(not(feature = "bug-injection"))]
fn set_bugs(_config: &mut Config, names: &[String]) -> Result<()> {
    if let Some(name) = names.first() {
        bail!(
            "this run injects the bug `{name}`, which needs a binary built with \
             `--features bug-injection`"
        );
    }
    Ok(())
}

/// Builds simulations of Raft under one set of settings, for any options (the shrinker varies
/// the node count and the seed).
struct RaftBuilder {
    /// Every node's configuration but its id and the voters.
    template: Config,
}

impl RaftBuilder {
    /// Checks the protocol configuration once, up front, so a bad setting is reported by name
    /// instead of failing inside a run.
    fn new(settings: &RaftSettings) -> Result<RaftBuilder> {
        let template = raft_config(settings, NodeId(1), &[NodeId(1)])?;
        template.validate().context("invalid Raft configuration")?;
        Ok(RaftBuilder { template })
    }

    /// A simulation of `options`, tracing to `trace` if given.
    fn build(
        &self,
        options: Options,
        trace: Option<Box<dyn Write>>,
    ) -> Result<Simulation<Raft>, OptionsError> {
        let template = self.template.clone();
        // Every node, spares included, starts from the same settings and the initial voters.
        let factory =
            move |id: NodeId, voters: &[NodeId], durable: DurableState, rng: SeededRng| {
                let config = Config { id, voters: voters.to_vec(), ..template.clone() };
                Raft::new(config, durable, Box::new(rng))
                    .expect("configuration validated before the run")
            };
        // Raft's invariants come in as observers, like any protocol's.
        let builder = Simulation::builder(options, factory).observers(raft_observers());
        match trace {
            Some(sink) => builder.trace(sink),
            None => builder,
        }
        .build()
    }
}

/// One simulation of `scenario`, tracing to `trace` if given.
fn simulation(scenario: &Scenario, trace: Option<Box<dyn Write>>) -> Result<Simulation<Raft>> {
    let builder = RaftBuilder::new(&scenario.raft)?;
    builder.build(scenario.options.clone(), trace).context("invalid simulation options")
}

/// Creates `path` for writing, buffered.
fn create(path: &Path, what: &str) -> Result<BufWriter<File>> {
    let file =
        File::create(path).with_context(|| format!("cannot create {what} {}", path.display()))?;
    Ok(BufWriter::new(file))
}

/// Runs `conclave sim`; returns the process exit code (0 clean, 1 a violation or liveness failure).
pub fn run(args: &SimArgs) -> Result<i32> {
    match args.protocol {
        ProtocolName::Raft => {}
    }
    if let Some(path) = &args.replay {
        #[cfg(feature = "bug-injection")]
        if !args.bug.is_empty() {
            bail!("--bug cannot be given with --replay: the replay file names its bugs");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read replay file {}", path.display()))?;
        let scenario = Scenario::from_json(&text)
            .with_context(|| format!("bad replay file {}", path.display()))?;
        return single(args, &scenario, Some(path));
    }
    match &args.seeds {
        Some(range) => sweep(args, range.clone()),
        None => single(args, &args.scenario(args.seed), None),
    }
}

/// One run of `scenario` (read from `replayed`, if given): summary or violation, then the
/// replay file (`--record`) and the shrinking (`--shrink`) asked for.
fn single(args: &SimArgs, scenario: &Scenario, replayed: Option<&Path>) -> Result<i32> {
    let trace = match &args.trace {
        Some(path) => Some(Box::new(create(path, "trace file")?) as Box<dyn Write>),
        None => None,
    };
    let mut simulation = simulation(scenario, trace)?;
    let start = Instant::now();
    let outcome = simulation.run();
    let wall = start.elapsed();
    simulation.flush_trace();
    if let Some(err) = simulation.trace_error() {
        bail!("writing the trace failed: {err}");
    }
    if let Some(path) = &args.history {
        let events = conclave_sim::to_check_events(simulation.history(), scenario.options.clients);
        let mut text = String::new();
        for event in events {
            text.push_str(&serde_json::to_string(&event).context("encoding the history")?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    match &outcome {
        Ok(summary) => {
            outln!("{summary}");
            let events = summary.events_processed as f64;
            outln!(
                "wall time {:.3}s, {:.0} simulated events/s",
                wall.as_secs_f64(),
                events / wall.as_secs_f64().max(1e-9)
            );
            // Liveness failures come back as violations; warnings (an op phase cut short by
            // faults) are printed with the summary and do not fail the run.
        }
        Err(violation) => report_violation(violation, replayed, args.shrink),
    }
    if replayed.is_some() {
        compare_with_recording(scenario.violation.as_ref(), outcome.as_ref().err());
    }
    if let Some(path) = &args.record {
        let mut options = scenario.options.clone();
        options.spare_nodes = Some(options.spares());
        options.fault_schedule = Some(simulation.fault_schedule().to_vec());
        let violation = outcome.as_ref().err().map(RecordedViolation::from);
        let recorded = Scenario { raft: scenario.raft.clone(), options, violation };
        write_scenario(path, &recorded)?;
        outln!("recorded the run in {} (replay: conclave sim --replay {0})", path.display());
    }
    match outcome {
        Ok(_) => {
            if args.shrink {
                outln!("no violation: nothing to shrink");
            }
            Ok(0)
        }
        Err(_) if args.shrink => {
            shrink_and_write(args, scenario)?;
            Ok(1)
        }
        Err(_) => Ok(1),
    }
}

fn report_violation(violation: &Violation, replayed: Option<&Path>, shrinking: bool) {
    eprintln!("SAFETY VIOLATION: {violation}");
    match replayed {
        Some(path) => eprintln!("replay: conclave sim --replay {}", path.display()),
        None => eprintln!("replay: conclave sim --seed {} (with the same options)", violation.seed),
    }
    if !shrinking {
        eprintln!("shrink: add --shrink to reduce it to a small replay file");
    }
    eprintln!("last events of the trace:");
    for line in &violation.recent_trace {
        eprintln!("  {line}");
    }
}

/// Says whether a replay broke the invariant its file recorded.
fn compare_with_recording(recorded: Option<&RecordedViolation>, now: Option<&Violation>) {
    match (recorded, now) {
        (Some(recorded), Some(now)) if recorded.invariant == now.invariant.name() => {
            outln!("replay: reproduced the recorded {} violation", recorded.invariant);
        }
        (None, None) => outln!("replay: no violation, as recorded"),
        (recorded, now) => {
            let describe =
                |invariant: Option<&str>| invariant.unwrap_or("no violation").to_string();
            outln!(
                "replay: the file recorded {}, this run gave {}",
                describe(recorded.map(|r| r.invariant.as_str())),
                describe(now.map(|v| v.invariant.name()))
            );
        }
    }
}

fn write_scenario(path: &Path, scenario: &Scenario) -> Result<()> {
    let mut file = create(path, "replay file")?;
    file.write_all(scenario.to_json().as_bytes())
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write replay file {}", path.display()))
}

/// Where the trace of replay file `path` goes: `x.json` → `x.trace.jsonl`.
fn trace_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    path.with_file_name(format!("{stem}.trace.jsonl"))
}

/// Shrinks the failing `scenario`, printing progress, then writes the reproducer as a replay
/// file and its trace, and prints the sizes before and after.
fn shrink_and_write(args: &SimArgs, scenario: &Scenario) -> Result<()> {
    let started = Instant::now();
    let deadline = Duration::from_secs(args.shrink_time);
    let builder = RaftBuilder::new(&scenario.raft)?;
    eprintln!("shrinking (at most {} runs or {}s)...", args.shrink_budget, args.shrink_time);
    // Progress on stderr: each kept reduction that changed more than fault durations, and a
    // heartbeat every 200 runs.
    let mut shown = None;
    let mut heartbeat_at = 200;
    let report = |progress: &ShrinkProgress| {
        let best = progress.best;
        let shape = (best.nodes, best.spares, best.clients, best.ops, best.faults, best.events);
        let reduction = !matches!(progress.step, ShrinkStep::Original | ShrinkStep::Replay);
        if progress.kept && reduction && shown != Some(shape) {
            eprintln!("  run {:>4} {:<15} kept: {best}", progress.runs, progress.step.name());
            shown = Some(shape);
        } else if progress.runs >= heartbeat_at {
            eprintln!("  run {:>4} ...", progress.runs);
        }
        if progress.runs >= heartbeat_at {
            heartbeat_at += 200;
        }
        started.elapsed() < deadline
    };
    let shrunk = shrink(
        scenario.options.clone(),
        |options| builder.build(options, None),
        args.shrink_budget,
        report,
    )
    .context("shrinking failed")?;
    let wall = started.elapsed().as_secs_f64();

    let seed = scenario.options.seed;
    let out =
        args.out.clone().unwrap_or_else(|| PathBuf::from(format!("conclave-shrunk-{seed}.json")));
    let violation = RecordedViolation::from(&shrunk.violation);
    let reproducer = Scenario {
        raft: scenario.raft.clone(),
        options: shrunk.options.clone(),
        violation: Some(violation),
    };
    write_scenario(&out, &reproducer)?;

    // The reproducer's trace, from one more run: the file and the trace describe the same run.
    let trace_out = trace_path(&out);
    let sink: Box<dyn Write> = Box::new(create(&trace_out, "trace file")?);
    let mut traced =
        builder.build(shrunk.options.clone(), Some(sink)).context("invalid simulation options")?;
    let replayed = traced.run();
    traced.flush_trace();
    if let Some(err) = traced.trace_error() {
        bail!("writing the trace failed: {err}");
    }
    if replayed.as_ref().err() != Some(&shrunk.violation) {
        bail!("the reproducer did not replay the same way: {replayed:?}");
    }

    let how = if shrunk.complete { "no smaller run found" } else { "budget spent" };
    outln!("shrunk in {} runs, {wall:.1}s ({how})", shrunk.runs);
    outln!("  before: {}", shrunk.original);
    outln!("  after:  {}", shrunk.shrunk);
    outln!("  {}", shrunk.violation);
    outln!("wrote {} (replay: conclave sim --replay {0})", out.display());
    let lines =
        std::fs::read(&trace_out).map_or(0, |bytes| bytes.iter().filter(|b| **b == b'\n').count());
    outln!("and its trace {} ({lines} lines)", trace_out.display());
    Ok(())
}

fn sweep(args: &SimArgs, range: RangeInclusive<u64>) -> Result<i32> {
    let start = Instant::now();
    let mut failing = Vec::new();
    let mut warned = 0;
    let mut events = 0;
    let total = range.end() - range.start() + 1;
    for seed in range {
        match simulation(&args.scenario(seed), None)?.run() {
            Ok(summary) => {
                events += summary.events_processed;
                if !summary.warnings.is_empty() {
                    warned += 1;
                }
                if !args.quiet {
                    outln!(
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
                outln!("seed {seed}: FAILED {violation}");
                failing.push(seed);
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    outln!(
        "swept {total} seeds in {wall:.1}s ({:.0} events/s): {} failed, {warned} with warnings",
        events as f64 / wall.max(1e-9),
        failing.len()
    );
    if !failing.is_empty() {
        let list: Vec<String> = failing.iter().map(u64::to_string).collect();
        outln!("failing seeds: {}", list.join(" "));
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
