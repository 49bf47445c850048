//! Snapshot paths of the driver, on the test-only primary-backup protocol with snapshots every N
//! entries: images taken on `snapshot_due`, logs compacted behind them, a lagging backup caught up
//! with the whole state (`Ready::snapshot` beyond what it applied), restarts from a disk snapshot,
//! and the checker catching a damaged image.

mod support;

use bytes::Bytes;
use conclave_core::{Index, NodeId};
use conclave_sim::{FaultSet, Invariant, Options, Simulation};
use support::{simulation_with, Bugs, PrimaryBackup, Settings, PRIMARY};

const SECOND_US: u64 = 1_000_000;

fn snapshotting(every: u64) -> Settings {
    Settings { bugs: Bugs::default(), snapshot_every: every }
}

fn three_nodes(seed: u64, settings: Settings) -> Simulation<PrimaryBackup> {
    simulation_with(Options { seed, nodes: 3, ..Options::default() }, settings)
}

fn propose_many(sim: &mut Simulation<PrimaryBackup>, prefix: &str, count: usize) {
    for i in 0..count {
        sim.propose(PRIMARY, Bytes::from(format!("{prefix}{i}"))).unwrap();
    }
}

fn applied_len(sim: &Simulation<PrimaryBackup>, id: NodeId) -> usize {
    sim.applied(id).len()
}

fn traced(sim: &Simulation<PrimaryBackup>, needle: &str) -> bool {
    sim.recent_trace().iter().any(|line| line.contains(needle))
}

#[test]
fn images_are_taken_and_the_log_is_compacted_behind_them() {
    let mut sim = three_nodes(1, snapshotting(10));
    propose_many(&mut sim, "a", 25);
    let all_applied =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| applied_len(s, *id) == 25);
    assert!(sim.run_until(all_applied, SECOND_US).unwrap());
    for id in sim.node_ids().to_vec() {
        let disk = sim.disk(id);
        let snapshot = disk.snapshot.as_ref().unwrap_or_else(|| panic!("node {id}: no snapshot"));
        assert!(snapshot.index >= Index(20), "node {id}: snapshot at {}", snapshot.index);
        assert_eq!(snapshot.membership.voters, sim.node_ids().to_vec());
        // The log after the snapshot (empty when the snapshot covers everything).
        assert!(disk.entries.iter().all(|e| e.index > snapshot.index), "node {id}");
        assert!(disk.entries.first().is_none_or(|e| e.index == snapshot.index.next()));
        assert_eq!(sim.status(id).unwrap().snapshot_index, snapshot.index);
    }
    assert!(sim.counters().snapshots_taken >= 3, "{:?}", sim.counters());
    sim.check_invariants().unwrap();
}

#[test]
fn a_lagging_backup_is_caught_up_with_the_whole_state() {
    let mut sim = three_nodes(2, snapshotting(10));
    sim.crash(NodeId(3));
    propose_many(&mut sim, "b", 35);
    assert!(sim.run_until(|s| applied_len(s, PRIMARY) == 35, SECOND_US).unwrap());
    // The primary compacted what node 3 lacks: only a snapshot can bring it up to date.
    let compacted_to = sim.disk(PRIMARY).snapshot.as_ref().unwrap().index;
    assert!(compacted_to >= Index(30));
    assert!(sim.disk(NodeId(3)).entries.is_empty() && sim.disk(NodeId(3)).snapshot.is_none());

    sim.restart(NodeId(3));
    assert!(sim.run_until(|s| applied_len(s, NodeId(3)) == 35, SECOND_US).unwrap());
    assert_eq!(sim.applied(NodeId(3)), sim.applied(PRIMARY));
    assert!(sim.stats().sent_by_kind.get("Install").is_some_and(|n| *n >= 1));
    let installed = sim.disk(NodeId(3)).snapshot.as_ref().expect("installed durably").index;
    assert!(installed >= compacted_to);
    assert!(sim.counters().snapshots_restored >= 1);
    sim.check_invariants().unwrap();
}

#[test]
fn a_restart_restores_the_state_machine_from_the_disk_snapshot() {
    let mut sim = three_nodes(3, snapshotting(10));
    propose_many(&mut sim, "c", 25);
    assert!(sim.run_until(|s| applied_len(s, NodeId(2)) == 25, SECOND_US).unwrap());
    let snapshot_index = sim.disk(NodeId(2)).snapshot.as_ref().unwrap().index;
    let before = sim.applied(NodeId(2)).to_vec();
    sim.crash(NodeId(2));
    sim.restart(NodeId(2));
    // Restored at once from the disk, then the rest re-applied from the log after it.
    assert!(traced(&sim, &format!(r#""ev":"restore","node":2,"index":{snapshot_index}"#)));
    assert_eq!(sim.applied(NodeId(2)), &before[..sim.applied(NodeId(2)).len()]);
    assert!(sim.applied(NodeId(2)).len() as u64 >= snapshot_index.0);
    assert!(sim.run_until(|s| applied_len(s, NodeId(2)) == 25, SECOND_US).unwrap());
    assert_eq!(sim.applied(NodeId(2)), &before[..]);
    sim.check_invariants().unwrap();
}

#[test]
fn snapshots_and_installs_keep_every_invariant_under_every_fault() {
    let (mut taken, mut restored, mut installs, mut torn) = (0, 0, 0, 0);
    for seed in 0..8 {
        let options = Options { seed, ops: 1_000, faults: FaultSet::all(), ..Options::default() };
        let mut sim = simulation_with(options, snapshotting(25));
        let summary = sim.run().unwrap_or_else(|violation| {
            panic!("seed {seed}: {violation}\n{}", violation.recent_trace.join("\n"))
        });
        assert!(summary.ops_acknowledged >= 1_000, "seed {seed}: {summary}");
        taken += summary.snapshots_taken;
        restored += summary.snapshots_restored;
        installs += summary.network.sent_by_kind.get("Install").copied().unwrap_or(0);
        torn += summary.torn_writes;
    }
    assert!(
        taken > 100 && restored > 10 && installs > 0 && torn > 0,
        "{taken} {restored} {installs} {torn}"
    );
}

#[test]
fn a_damaged_image_is_caught_by_state_machine_safety() {
    let settings =
        Settings { bugs: Bugs { corrupt_install: true, ..Bugs::default() }, snapshot_every: 10 };
    let mut sim = three_nodes(4, settings);
    sim.crash(NodeId(3));
    propose_many(&mut sim, "d", 25);
    assert!(sim.run_until(|s| applied_len(s, PRIMARY) == 25, SECOND_US).unwrap());
    sim.restart(NodeId(3));
    let violation = sim.run_for(SECOND_US).unwrap_err();
    assert_eq!(violation.invariant, Invariant::StateMachineSafety, "{violation}");
    assert!(violation.detail.contains("node 3"), "{violation}");
}
