//! End-to-end runs of the simulator on the test-only primary-backup protocol: random workloads
//! with and without faults, determinism of traces, and deliberate bugs the checker must catch.

mod support;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use conclave_core::{Index, NodeId, SeededRng, Status};
use conclave_sim::{
    raft_observers, Breach, FaultSet, HistoryKind, Invariant, NemesisAction, Observer, Options,
    Simulation,
};
use support::{simulation, simulation_with_bugs, Bugs, PrimaryBackup, PRIMARY};

/// The primary-backup protocol's own invariant, which the simulator knows nothing about: the
/// primary commits only what a majority holds durably, so whenever any node reports a commit
/// index, a majority of the disks must hold that index already (a crash can never take it
/// back). Raft's commit durability asks about elections, which this protocol does not hold.
struct MajorityDurable;

/// The name it reports under.
const MAJORITY_DURABLE: Invariant = Invariant::Protocol("majority-durable-commit");

impl Observer<PrimaryBackup> for MajorityDurable {
    fn name(&self) -> &'static str {
        MAJORITY_DURABLE.name()
    }

    fn on_status(
        &mut self,
        sim: &Simulation<PrimaryBackup>,
        node: NodeId,
        previous: Option<Status>,
        status: Status,
    ) -> Result<(), Breach> {
        if previous.is_some_and(|previous| previous.commit == status.commit) {
            return Ok(());
        }
        let voters = sim.initial_voters();
        let holding: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|id| {
                let disk = sim.disk(*id);
                let snapshot = disk.snapshot.as_ref().map_or(Index(0), |s| s.index);
                let entries = disk.entries.last().map_or(Index(0), |e| e.index);
                snapshot.max(entries) >= status.commit
            })
            .collect();
        if holding.len() * 2 > voters.len() {
            return Ok(());
        }
        Err(Breach::new(
            MAJORITY_DURABLE,
            format!(
                "node {node} reports commit {} but only nodes {holding:?} hold it durably",
                status.commit
            ),
        ))
    }
}

/// A primary-backup simulation checked by Raft's invariants (its log obeys them too) and by its
/// own, registered the same way.
fn checked_by_its_own_invariant(options: Options, bugs: Bugs) -> Simulation<PrimaryBackup> {
    let options = Options { check_commit_durability: false, ..options };
    Simulation::builder(options, move |id, all, durable, _rng| {
        PrimaryBackup::new(id, all, durable, bugs)
    })
    .observers(raft_observers())
    .observer(Box::new(MajorityDurable))
    .build()
    .unwrap()
}

/// A `Write` whose bytes the test can read after handing it to the simulation.
#[derive(Clone, Default)]
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn traced_run(options: Options) -> Vec<u8> {
    let buffer = SharedBuffer::default();
    let mut sim = Simulation::with_trace(
        options,
        |id, all, durable, _rng| PrimaryBackup::new(id, all, durable, Bugs::default()),
        Box::new(buffer.clone()),
    )
    .unwrap();
    sim.run()
        .unwrap_or_else(|violation| panic!("{violation}\n{}", violation.recent_trace.join("\n")));
    drop(sim);
    Rc::try_unwrap(buffer.0).expect("sim dropped").into_inner()
}

#[test]
fn fault_free_run_acknowledges_every_op_and_converges() {
    let mut sim = simulation(Options { seed: 1, ops: 500, ..Options::default() });
    let summary = sim.run().unwrap();
    assert!(summary.ops_acknowledged >= 500, "{summary}");
    assert!(summary.ops_phase_completed && summary.warnings.is_empty(), "{summary}");
    assert!(summary.commit_index >= Index(500), "{summary}");
    for id in sim.node_ids().to_vec() {
        assert_eq!(sim.applied(id).len() as u64, summary.commit_index.0, "node {id}");
        assert_eq!(sim.disk(id).hard_state.commit, summary.commit_index, "node {id}");
    }
    assert_eq!(summary.leaders_elected, 1);
    assert_eq!(summary.elections_started, 0);
    let net = &summary.network;
    assert_eq!(net.dropped, 0);
    assert_eq!(net.sent_by_kind.values().sum::<u64>(), net.sent);
    assert!(net.sent_by_kind["Append"] > 0 && net.sent_by_kind["Ack"] > 0);
    assert!(net.delivered <= net.sent);
    assert!(summary.latency_p50_us > 0 && summary.latency_p50_us <= summary.latency_p99_us);
    // With a healthy primary a write takes about two network hops plus a little waiting.
    assert!(summary.latency_p99_us < 20_000, "{summary}");
}

#[test]
fn every_fault_keeps_the_protocol_safe() {
    let (mut crashes, mut partitions, mut dropped, mut duplicated) = (0, 0, 0, 0);
    for seed in 0..8 {
        let options = Options { seed, ops: 1_000, faults: FaultSet::all(), ..Options::default() };
        let mut sim = simulation(options);
        let summary = sim.run().unwrap_or_else(|violation| {
            panic!("seed {seed}: {violation}\n{}", violation.recent_trace.join("\n"))
        });
        assert!(summary.ops_acknowledged >= 1_000, "seed {seed}: {summary}");
        crashes += summary.crashes;
        partitions += summary.partitions;
        dropped += summary.network.dropped_random;
        duplicated += summary.network.duplicated;
    }
    // Every kind of fault actually happened somewhere in these runs.
    assert!(crashes > 0 && partitions > 0 && dropped > 0 && duplicated > 0);
}

#[test]
fn base_loss_and_duplication_are_survived() {
    let options = Options {
        seed: 4,
        ops: 200,
        nodes: 3,
        drop_probability: 0.2,
        duplicate_probability: 0.2,
        ..Options::default()
    };
    let summary = simulation(options).run().unwrap();
    assert!(summary.network.dropped_random > 0 && summary.network.duplicated > 0);
}

#[test]
fn a_single_node_cluster_commits_alone() {
    let mut sim = simulation(Options { seed: 2, nodes: 1, ops: 50, ..Options::default() });
    let summary = sim.run().unwrap();
    assert!(summary.ops_acknowledged >= 50);
    assert_eq!(summary.network.sent, 0);
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace_and_another_seed_differs() {
    let options = Options { seed: 11, ops: 500, faults: FaultSet::all(), ..Options::default() };
    let first = traced_run(options.clone());
    let second = traced_run(options.clone());
    assert!(first.len() > 10_000, "trace of {} bytes", first.len());
    assert!(first == second, "two runs of one seed produced different traces");
    let other = traced_run(Options { seed: 12, ..options });
    assert!(first != other);
    let text = String::from_utf8(first).unwrap();
    for line in text.lines() {
        assert!(line.starts_with("{\"t\":") && line.ends_with('}'), "{line}");
    }
    for event in
        ["send", "deliver", "drop", "crash", "restart", "apply", "commit", "client", "heal"]
    {
        assert!(text.contains(&format!("\"ev\":\"{event}\"")), "no {event} event in the trace");
    }
}

#[test]
fn the_client_history_pairs_every_outcome_with_an_invoke() {
    let options = Options { seed: 5, ops: 200, faults: FaultSet::all(), ..Options::default() };
    let mut sim = simulation(options);
    let summary = sim.run().unwrap();
    let history = sim.history();
    let oks = history
        .iter()
        .filter(|e| matches!(e.kind, HistoryKind::Ok { .. } | HistoryKind::ReadOk { .. }))
        .count();
    assert_eq!(oks as u64, summary.ops_acknowledged);
    // Per client, events alternate: invoke, then exactly one outcome.
    for client in 0..4 {
        let mut open = false;
        for event in history.iter().filter(|e| e.client == client) {
            let is_invoke =
                matches!(event.kind, HistoryKind::Invoke { .. } | HistoryKind::InvokeRead { .. });
            assert_ne!(is_invoke, open, "client {client}: {event:?}");
            open = is_invoke;
        }
    }
    assert!(history.windows(2).all(|pair| pair[0].time_us <= pair[1].time_us));
}

#[test]
fn two_leaders_in_one_term_are_caught() {
    let bugs = Bugs { two_leaders: true, ..Bugs::default() };
    let mut sim = simulation_with_bugs(Options { seed: 1, ops: 10, ..Options::default() }, bugs);
    let violation = sim.run().unwrap_err();
    assert_eq!(violation.invariant, Invariant::ElectionSafety, "{violation}");
    assert_eq!(violation.seed, 1);
    // The simulation stays stopped.
    assert_eq!(sim.run_for(1_000).unwrap_err(), violation);
}

#[test]
fn a_primary_that_forgets_its_log_is_caught() {
    let bugs = Bugs { amnesia: true, ..Bugs::default() };
    let options = Options { seed: 3, nodes: 3, ..Options::default() };
    let mut sim = simulation_with_bugs(options, bugs);
    sim.propose(NodeId(1), "first".into()).unwrap();
    assert!(sim.run_until(|s| s.applied(NodeId(2)).len() == 1, 1_000_000).unwrap());
    sim.crash(NodeId(1));
    sim.restart(NodeId(1));
    // The amnesiac primary hands out index 1 again, with other data.
    sim.propose(NodeId(1), "second".into()).unwrap();
    let violation = sim.run_for(1_000_000).unwrap_err();
    assert_eq!(violation.invariant, Invariant::LogMatching, "{violation}");
    assert!(!violation.recent_trace.is_empty() && violation.recent_trace.len() <= 50);
}

#[test]
fn a_random_run_finds_the_amnesia_bug_too() {
    let bugs = Bugs { amnesia: true, ..Bugs::default() };
    let caught = (0..5).any(|seed| {
        let options =
            Options { seed, ops: 300, faults: "crash".parse().unwrap(), ..Options::default() };
        simulation_with_bugs(options, bugs).run().is_err()
    });
    assert!(caught);
}

#[test]
fn no_progress_without_faults_is_a_liveness_violation() {
    let bugs = Bugs { refuse_proposals: true, ..Bugs::default() };
    let options = Options { seed: 1, ops: 10, ops_time_max_us: 2_000_000, ..Options::default() };
    let violation = simulation_with_bugs(options, bugs).run().unwrap_err();
    assert_eq!(violation.invariant, Invariant::Liveness, "{violation}");
}

#[test]
fn no_progress_under_faults_is_only_a_warning() {
    let bugs = Bugs { refuse_proposals: true, ..Bugs::default() };
    let options = Options {
        seed: 1,
        ops: 10,
        ops_time_max_us: 2_000_000,
        faults: "drop".parse().unwrap(),
        ..Options::default()
    };
    let summary = simulation_with_bugs(options, bugs).run().unwrap();
    assert!(!summary.ops_phase_completed);
    assert_eq!(summary.warnings.len(), 1, "{summary}");
}

#[test]
fn the_protocols_own_invariant_holds_under_every_fault() {
    for seed in 0..4 {
        let options = Options { seed, ops: 500, faults: FaultSet::all(), ..Options::default() };
        checked_by_its_own_invariant(options, Bugs::default()).run().unwrap_or_else(|violation| {
            panic!("seed {seed}: {violation}\n{}", violation.recent_trace.join("\n"))
        });
    }
}

/// A primary that counts its own unsynced entries durable breaks nothing Raft's checks can see
/// until a crash loses such an entry; with no crash at all, only the protocol's own invariant,
/// registered beside them, notices that a commit rests on too few disks.
#[test]
fn the_protocols_own_invariant_catches_what_the_general_checks_cannot_see() {
    let bugs = Bugs { early_durable: true, ..Bugs::default() };
    let faults: FaultSet = "slow-disk".parse().unwrap();
    let caught = (0..10).find_map(|seed| {
        let options = Options { seed, ops: 300, faults, ..Options::default() };
        let violation = checked_by_its_own_invariant(options.clone(), bugs).run().err()?;
        Some((options, violation))
    });
    let (options, violation) = caught.expect("a slow primary disk in 10 seeds");
    assert_eq!(violation.invariant, MAJORITY_DURABLE, "{violation}");
    assert_eq!(violation.invariant.name(), "majority-durable-commit");
    assert!(violation.detail.contains("hold it durably"), "{violation}");
    // The same run with only the standard observers passes: the check is the protocol's own.
    simulation_with_bugs(options, bugs).run().unwrap();
}

/// The primary-backup protocol's own nemesis action: bounce the fixed primary (crash it and
/// restart it at once from its disk), the moment this protocol is most fragile. The simulator's
/// nemesis knows nothing of primaries.
struct BouncePrimary;

impl NemesisAction<PrimaryBackup> for BouncePrimary {
    fn name(&self) -> &'static str {
        "bounce-primary"
    }

    fn gap_us(&self) -> (u64, u64) {
        (50_000, 300_000)
    }

    fn inject(&mut self, sim: &mut Simulation<PrimaryBackup>, _rng: &mut SeededRng) {
        sim.crash(PRIMARY);
        sim.restart(PRIMARY);
    }
}

fn bounced(
    options: Options,
    bugs: Bugs,
    sink: Option<Box<dyn Write>>,
) -> Simulation<PrimaryBackup> {
    let options = Options { check_commit_durability: false, ..options };
    let builder = Simulation::builder(options, move |id, all, durable, _rng| {
        PrimaryBackup::new(id, all, durable, bugs)
    })
    .observers(raft_observers())
    .nemesis_action(Box::new(BouncePrimary));
    match sink {
        Some(sink) => builder.trace(sink),
        None => builder,
    }
    .build()
    .unwrap()
}

#[test]
fn the_protocols_own_nemesis_action_is_injected_deterministically() {
    let options = Options { seed: 4, ops: 300, ..Options::default() };
    let traces: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let buffer = SharedBuffer::default();
            let summary = bounced(options.clone(), Bugs::default(), Some(Box::new(buffer.clone())))
                .run()
                .unwrap_or_else(|violation| panic!("{violation}"));
            // No built-in fault is enabled: every crash is the action's.
            assert!(summary.crashes > 0, "{summary}");
            let trace = buffer.0.borrow().clone();
            trace
        })
        .collect();
    assert_eq!(traces[0], traces[1]);
    let text = String::from_utf8(traces[0].clone()).unwrap();
    assert!(text.contains(r#""ev":"action","name":"bounce-primary""#));
}

#[test]
fn the_protocols_own_nemesis_action_finds_the_amnesia_bug() {
    let bugs = Bugs { amnesia: true, ..Bugs::default() };
    let options = Options { seed: 1, ops: 300, ..Options::default() };
    // Without faults the bug never shows; with the action alone, it does.
    simulation_with_bugs(options.clone(), bugs).run().unwrap();
    let violation = bounced(options, bugs, None).run().unwrap_err();
    assert!(
        [Invariant::LogMatching, Invariant::StateMachineSafety].contains(&violation.invariant),
        "{violation}"
    );
}
