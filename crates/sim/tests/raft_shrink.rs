//! Replaying runs from their fault schedules, and shrinking failing runs to small reproducers.
//!
//! A random run's faults are recorded as a schedule; fed back through `Options::fault_schedule`
//! with the same seed it must be the same run, byte for byte. Shrinking then works on that
//! schedule: each deliberately broken Raft variant (the failing seeds `raft_bugs.rs` finds) must
//! shrink to a run that breaks the same invariant, is no larger than the original in any
//! dimension, and is small enough to read. The bounds below are the measured sizes with margin;
//! `docs/TESTING.md` records the measurements.

mod raft_support;

use std::time::Instant;

use conclave_core::NodeId;
use conclave_raft::{Bugs, Config};
use conclave_sim::{
    shrink, FaultAction, FaultSet, Invariant, Options, OptionsError, ScheduledFault, ShrinkError,
    Shrunk,
};
use raft_support::*;

/// Enough for every variant below to reach a local minimum (they take 60 to 400 runs).
const SHRINK_RUNS_MAX: u64 = 1_500;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `options` with a trace; returns the outcome, the trace, the events minus nemesis steps,
/// and the faults started.
fn traced_run(
    options: Options,
    bugs: Bugs,
) -> (Result<(), Invariant>, Vec<u8>, u64, Vec<ScheduledFault>) {
    let (mut sim, buffer) = traced_raft_sim(options, move |config| config.bugs = bugs);
    let outcome = sim.run().map(|_| ()).map_err(|violation| violation.invariant);
    sim.flush_trace();
    let counters = sim.counters();
    let events = counters.events_processed - counters.nemesis_steps;
    let trace = buffer.0.borrow().clone();
    (outcome, trace, events, sim.fault_schedule().to_vec())
}

#[test]
fn a_recorded_run_replays_from_its_schedule_byte_for_byte() {
    // Passing runs with every fault, and one failing run of a broken variant.
    let double_vote = Bugs { grant_two_votes_per_term: true, ..Bugs::default() };
    for (seed, bugs) in [(3, Bugs::default()), (8, Bugs::default()), (2, double_vote)] {
        let options = Options { seed, ops: 400, faults: FaultSet::all(), ..Options::default() };
        let (outcome, trace, events, schedule) = traced_run(options.clone(), bugs);
        assert!(!schedule.is_empty() || outcome.is_err(), "seed {seed} injected no fault");
        let replay_options = Options { fault_schedule: Some(schedule.clone()), ..options };
        let (replay_outcome, replay_trace, replay_events, replay_schedule) =
            traced_run(replay_options, bugs);
        assert_eq!(replay_outcome, outcome, "seed {seed}");
        assert_eq!(fnv1a(&replay_trace), fnv1a(&trace), "seed {seed}: the traces differ");
        assert_eq!(replay_events, events, "seed {seed}");
        assert_eq!(replay_schedule, schedule, "seed {seed}: the replay injected other faults");
    }
}

#[test]
fn a_hand_written_schedule_is_injected_exactly_and_undone_on_time() {
    let schedule = vec![
        ScheduledFault {
            at_us: 300_000,
            action: FaultAction::Crash { node: NodeId(2) },
            duration_us: Some(50_000),
        },
        ScheduledFault {
            at_us: 400_000,
            action: FaultAction::Partition {
                groups: vec![vec![NodeId(1)], vec![NodeId(2), NodeId(3)]],
            },
            duration_us: Some(200_000),
        },
    ];
    // The fault kinds enabled do not matter to a schedule: none are drawn.
    let options = Options {
        nodes: 3,
        seed: 5,
        ops: 300,
        fault_schedule: Some(schedule.clone()),
        ..Options::default()
    };
    let (mut sim, buffer) = traced_raft_sim(options, |_| {});
    sim.run().unwrap_or_else(|violation| panic!("{}", show(&violation)));
    assert_eq!(sim.fault_schedule(), schedule.as_slice());
    let trace = String::from_utf8(buffer.0.borrow().clone()).unwrap();
    for line in [
        r#"{"t":300000,"ev":"crash","node":2}"#,
        r#"{"t":350000,"ev":"restart","node":2}"#,
        r#"{"t":400000,"ev":"partition","groups":[[1],[2,3]]}"#,
        r#"{"t":600000,"ev":"heal"}"#,
    ] {
        assert!(trace.lines().any(|l| l == line), "the trace lacks {line}");
    }
    let crashes = trace.lines().filter(|l| l.contains(r#""ev":"crash""#)).count();
    assert_eq!(crashes, 1, "nothing but the schedule is injected");
}

#[test]
fn a_schedule_naming_a_node_outside_the_cluster_is_refused() {
    let fault = ScheduledFault {
        at_us: 0,
        action: FaultAction::Crash { node: NodeId(4) },
        duration_us: Some(1),
    };
    let options = Options { nodes: 3, fault_schedule: Some(vec![fault]), ..Options::default() };
    let error = options.validate().unwrap_err();
    assert!(matches!(error, OptionsError::Schedule { index: 0, .. }), "{error}");
    assert!(error.to_string().contains("node 4"), "{error}");
}

#[test]
fn a_passing_run_has_nothing_to_shrink() {
    let options = Options { seed: 1, ops: 100, faults: FaultSet::all(), ..Options::default() };
    let error = shrink(options, raft_builder(|_| {}), 10, |_| true).unwrap_err();
    assert!(matches!(error, ShrinkError::NoViolation { seed: 1 }), "{error}");
}

/// The largest a shrunk reproducer may be: measured sizes with margin.
struct Bounds {
    nodes: usize,
    ops: u64,
    faults: usize,
    events: u64,
}

/// Shrinks the failing run of `name` at `seed` (every fault on, `ops` operations) and checks the
/// reproducer: it replays to the same invariant, is no larger than the original in any dimension
/// and strictly smaller in events, and is within `bounds`.
// Wall time is reported, never used: the shrinker itself reads no clock.
#[allow(clippy::disallowed_methods)]
fn shrinks_small(
    name: &str,
    bugs: Bugs,
    configure: fn(&mut Config),
    seed: u64,
    ops: u64,
    bounds: Bounds,
) -> Shrunk {
    let options = Options { seed, ops, faults: FaultSet::all(), ..Options::default() };
    let setup = move |config: &mut Config| {
        configure(config);
        config.bugs = bugs;
    };
    let started = Instant::now();
    let shrunk = shrink(options, raft_builder(setup), SHRINK_RUNS_MAX, |_| true)
        .unwrap_or_else(|error| panic!("{name} seed {seed}: {error}"));
    let (original, small) = (shrunk.original, shrunk.shrunk);
    eprintln!(
        "{name} seed {seed}: {} runs in {:.2?}\n  from {original}\n  to   {small}\n  {}",
        shrunk.runs,
        started.elapsed(),
        shrunk.violation
    );
    let target = shrunk.original_violation.invariant;
    assert!(shrunk.complete, "the budget ran out before a local minimum");

    // (a) The reproducer, run afresh, breaks the same invariant at the same moment.
    let mut replay = raft_builder(setup)(shrunk.options.clone()).expect("valid options");
    let violation = replay.run().expect_err("the reproducer fails");
    assert_eq!(violation.invariant, target, "{}", show(&violation));
    assert_eq!(violation, shrunk.violation);
    assert_eq!(replay.counters().events_processed, small.events);

    // (b) No larger than the original in any dimension; strictly fewer events.
    assert!(small.nodes <= original.nodes && small.spares <= original.spares);
    assert!(small.clients <= original.clients && small.ops <= original.ops);
    assert!(small.ops_acknowledged <= original.ops_acknowledged.max(small.ops));
    assert!(small.faults <= original.faults && small.fault_time_us <= original.fault_time_us);
    assert!(small.events < original.events, "{small} vs {original}");

    // (c) Small enough to read.
    assert!(small.nodes <= bounds.nodes, "{small}");
    assert!(small.ops <= bounds.ops, "{small}");
    assert!(small.faults <= bounds.faults, "{small}");
    assert!(small.events <= bounds.events, "{small}");
    shrunk
}

#[test]
fn forget_vote_shrinks_to_a_two_node_election() {
    let bugs = Bugs { forget_to_persist_vote: true, ..Bugs::default() };
    let bounds = Bounds { nodes: 3, ops: 2, faults: 1, events: 100 };
    let shrunk = shrinks_small("forget-vote", bugs, |_| {}, 0, 1_000, bounds);
    assert_eq!(shrunk.violation.invariant, Invariant::DurablePromises);
}

#[test]
fn double_vote_shrinks_to_two_leaders_in_a_tiny_cluster() {
    let bugs = Bugs { grant_two_votes_per_term: true, ..Bugs::default() };
    let bounds = Bounds { nodes: 3, ops: 2, faults: 2, events: 100 };
    let shrunk = shrinks_small("double-vote", bugs, |_| {}, 2, 1_000, bounds);
    assert_eq!(shrunk.violation.invariant, Invariant::ElectionSafety);
}

#[test]
fn no_truncate_shrinks_to_a_few_operations_and_faults() {
    let bugs = Bugs { skip_truncating_conflicts: true, ..Bugs::default() };
    let bounds = Bounds { nodes: 3, ops: 30, faults: 3, events: 1_000 };
    shrinks_small("no-truncate", bugs, |_| {}, 0, 1_000, bounds);
}

#[test]
fn apply_before_commit_shrinks_to_a_few_operations() {
    let bugs = Bugs { apply_before_commit: true, ..Bugs::default() };
    let bounds = Bounds { nodes: 3, ops: 20, faults: 3, events: 400 };
    shrinks_small("apply-before-commit", bugs, |_| {}, 1, 1_000, bounds);
}

#[test]
fn figure8_commit_shrinks_from_fifty_thousand_events_to_a_few_hundred() {
    let bugs = Bugs { commit_old_terms_by_counting: true, ..Bugs::default() };
    // As in raft_bugs.rs: entries one at a time, or the bug stays latent.
    let one_at_a_time = |config: &mut Config| {
        config.append_entries_max = 1;
        config.inflight_messages_max = 1;
    };
    let bounds = Bounds { nodes: 3, ops: 100, faults: 12, events: 3_000 };
    let shrunk = shrinks_small("figure8-commit", bugs, one_at_a_time, 6, 2_000, bounds);
    assert!(shrunk.original.events > 50_000, "{}", shrunk.original);
}

#[test]
fn shrinking_is_deterministic() {
    let bugs = Bugs { grant_two_votes_per_term: true, ..Bugs::default() };
    let run = || {
        let options =
            Options { seed: 2, ops: 1_000, faults: FaultSet::all(), ..Options::default() };
        shrink(options, raft_builder(move |config| config.bugs = bugs), 500, |_| true).unwrap()
    };
    let (first, second) = (run(), run());
    assert_eq!(first.options, second.options);
    assert_eq!(first.violation, second.violation);
    assert_eq!(first.runs, second.runs);
}

#[test]
fn the_budget_stops_shrinking_with_the_best_run_so_far() {
    let bugs = Bugs { skip_truncating_conflicts: true, ..Bugs::default() };
    let options = Options { seed: 0, ops: 1_000, faults: FaultSet::all(), ..Options::default() };
    let mut reports = 0;
    let shrunk = shrink(options, raft_builder(move |config| config.bugs = bugs), 20, |progress| {
        reports += 1;
        assert!(progress.runs <= 20);
        true
    })
    .unwrap();
    assert_eq!((shrunk.runs, reports), (20, 20));
    assert!(!shrunk.complete);
    assert!(shrunk.shrunk.events <= shrunk.original.events);
    assert_eq!(shrunk.violation.invariant, shrunk.original_violation.invariant);
}
