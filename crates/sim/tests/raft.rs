//! The simulator driving the real Raft core: healthy runs must pass under every fault, and each
//! deliberately injected Raft bug must be caught by some seed. (Raft's own scenario tests live with
//! the Raft crate; these check the simulator against a protocol with real elections.)

use conclave_core::{DurableState, NodeId, SeededRng};
use conclave_raft::{Bugs, Config, Raft};
use conclave_sim::{FaultSet, Invariant, Options, Simulation, Violation};

fn raft_simulation(options: Options, bugs: Bugs) -> Simulation<Raft> {
    Simulation::new(
        options,
        move |id: NodeId, all: &[NodeId], durable: DurableState, rng: SeededRng| {
            let mut config = Config::new(id, all.to_vec());
            config.bugs = bugs;
            Raft::new(config, durable, Box::new(rng)).expect("a valid configuration and disk")
        },
    )
    .expect("valid options")
}

fn show(violation: &Violation) -> String {
    format!("{violation}\n{}", violation.recent_trace.join("\n"))
}

#[test]
fn raft_without_faults_elects_once_and_acknowledges_every_op() {
    for seed in 0..3 {
        let options = Options { seed, ops: 500, ..Options::default() };
        let mut sim = raft_simulation(options, Bugs::default());
        let summary = sim.run().unwrap_or_else(|v| panic!("seed {seed}: {}", show(&v)));
        assert!(summary.ops_acknowledged >= 500, "{summary}");
        assert!(summary.leaders_elected >= 1 && summary.elections_started >= 1, "{summary}");
        assert_eq!(summary.network.dropped, 0, "{summary}");
    }
}

#[test]
fn raft_stays_safe_under_every_fault() {
    let (mut elections, mut changes) = (0, 0);
    for seed in 0..6 {
        let options = Options { seed, ops: 1_000, faults: FaultSet::all(), ..Options::default() };
        let mut sim = raft_simulation(options, Bugs::default());
        let summary = sim.run().unwrap_or_else(|v| panic!("seed {seed}: {}", show(&v)));
        assert!(summary.ops_acknowledged >= 1_000, "seed {seed}: {summary}");
        elections += summary.elections_started;
        changes += summary.leader_changes;
    }
    assert!(elections > 6 && changes > 0, "faults never moved leadership");
}

/// Runs seeds until one breaks a safety invariant; returns it.
fn first_violation(bugs: Bugs, faults: &str, seeds: u64) -> Option<Violation> {
    (0..seeds).find_map(|seed| {
        let options =
            Options { seed, ops: 1_000, faults: faults.parse().unwrap(), ..Options::default() };
        raft_simulation(options, bugs).run().err()
    })
}

fn assert_caught(bugs: Bugs, faults: &str, seeds: u64, expected: &[Invariant]) {
    let violation = first_violation(bugs, faults, seeds)
        .unwrap_or_else(|| panic!("{bugs:?} survived {seeds} seeds with faults {faults}"));
    assert!(expected.contains(&violation.invariant), "{bugs:?}: {}", show(&violation));
}

#[test]
fn granting_two_votes_per_term_is_caught() {
    let bugs = Bugs { grant_two_votes_per_term: true, ..Bugs::default() };
    assert_caught(bugs, "all", 40, &[Invariant::ElectionSafety]);
}

#[test]
fn keeping_conflicting_suffixes_is_caught() {
    let bugs = Bugs { skip_truncating_conflicts: true, ..Bugs::default() };
    assert_caught(bugs, "all", 40, &[Invariant::LogMatching, Invariant::StateMachineSafety]);
}

/// Random runs rarely catch this bug: applying on persist makes acknowledgements instant, so the
/// op phase is over within milliseconds of the first election, before the nemesis acts. A
/// scenario reaches it directly: a leader cut off right after a proposal applies an entry that the
/// majority side never commits.
#[test]
fn applying_before_commit_is_caught() {
    let bugs = Bugs { apply_before_commit: true, ..Bugs::default() };
    let mut sim = raft_simulation(Options { seed: 1, ..Options::default() }, bugs);
    assert!(sim.run_until(|s| s.leader().is_some(), 5_000_000).unwrap());
    let leader = sim.leader().unwrap();
    let others: Vec<NodeId> = sim.node_ids().iter().copied().filter(|id| *id != leader).collect();
    sim.partition(&[&[leader], &others]);
    sim.propose(leader, "doomed".into()).unwrap();
    let violation = sim.run_for(5_000_000).unwrap_err();
    assert_eq!(violation.invariant, Invariant::StateMachineSafety, "{}", show(&violation));
}
