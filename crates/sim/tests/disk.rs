//! The simulated disk end to end, on the test-only primary-backup protocol: writes durable only
//! when they complete (in order), the unsynced tail lost in a crash, torn records cut by recovery,
//! failed syncs stopping a node, slow disks, and a protocol bug that only a disk with latency
//! exposes.

mod support;

use bytes::Bytes;
use conclave_core::{Index, NodeId};
use conclave_sim::{Fault, FaultSet, Invariant, Options, Simulation};
use support::{
    simulation, simulation_with, simulation_with_bugs, Bugs, PrimaryBackup, Settings, PRIMARY,
};

const SECOND_US: u64 = 1_000_000;

/// Three nodes whose disk writes take exactly `latency_us`.
fn with_disk_latency(seed: u64, latency_us: u64) -> Simulation<PrimaryBackup> {
    let options = Options {
        seed,
        nodes: 3,
        disk_latency_min_us: latency_us,
        disk_latency_max_us: latency_us,
        ..Options::default()
    };
    simulation(options)
}

fn data(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn traced(sim: &Simulation<PrimaryBackup>, needle: &str) -> Option<String> {
    sim.recent_trace().into_iter().find(|line| line.contains(needle))
}

#[test]
fn a_write_is_durable_only_when_it_completes_and_writes_complete_in_order() {
    let mut sim = with_disk_latency(1, 1_000);
    let start = sim.now_us();
    for i in 0..3 {
        sim.propose(PRIMARY, data(&format!("w{i}"))).unwrap();
    }
    assert_eq!(sim.pending_writes(PRIMARY), 3);
    assert!(sim.disk(PRIMARY).entries.is_empty(), "issued is not durable");
    // Each write completes 1 ms after it was issued, in the order they were issued.
    let durable = |s: &Simulation<PrimaryBackup>| -> Vec<Index> {
        s.disk(PRIMARY).entries.iter().map(|e| e.index).collect()
    };
    sim.run_until(|s| !s.disk(PRIMARY).entries.is_empty(), SECOND_US).unwrap();
    assert_eq!(sim.now_us() - start, 1_000);
    assert_eq!(durable(&sim), vec![Index(1)]);
    assert!(sim.applied(PRIMARY).is_empty());
    sim.run_for(0).unwrap();
    assert_eq!(durable(&sim), vec![Index(1), Index(2), Index(3)]);
    assert_eq!(sim.now_us() - start, 1_000);
    let all =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| s.applied(*id).len() == 3);
    assert!(sim.run_until(all, SECOND_US).unwrap());
    sim.check_invariants().unwrap();
}

#[test]
fn a_crash_loses_the_unsynced_tail_and_nothing_durable() {
    let mut sim = with_disk_latency(2, 5_000);
    sim.propose(PRIMARY, data("durable")).unwrap();
    assert!(sim.run_until(|s| s.disk(PRIMARY).entries.len() == 1, SECOND_US).unwrap());
    sim.propose(PRIMARY, data("lost-1")).unwrap();
    sim.propose(PRIMARY, data("lost-2")).unwrap();
    assert!(sim.crash(PRIMARY));
    let lost = traced(&sim, r#""ev":"disk-lost","node":1"#).expect("the loss is traced");
    assert!(lost.contains(r#""entries":2"#), "{lost}");
    assert_eq!(sim.disk(PRIMARY).entries.len(), 1);
    assert_eq!(sim.pending_writes(PRIMARY), 0);
    assert_eq!(sim.counters().writes_lost, 2);
    // The restarted primary reuses the lost positions; every invariant still holds.
    sim.restart(PRIMARY);
    sim.propose(PRIMARY, data("after")).unwrap();
    let all =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| s.applied(*id).len() == 2);
    assert!(sim.run_until(all, SECOND_US).unwrap());
    assert_eq!(sim.applied(NodeId(3))[1].data, data("after"));
    sim.check_invariants().unwrap();
}

#[test]
fn a_power_cut_tears_the_write_in_flight_and_recovery_cuts_it() {
    let mut sim = with_disk_latency(3, 5_000);
    sim.propose(PRIMARY, data("torn")).unwrap();
    assert!(sim.power_cut(PRIMARY));
    assert!(traced(&sim, r#""ev":"torn""#).is_none(), "cut at recovery, not at the crash");
    sim.restart(PRIMARY);
    let torn = traced(&sim, r#""ev":"torn","node":1"#).expect("recovery reports the cut");
    // A record of "torn" is 25 + 4 bytes; a torn one holds fewer.
    let bytes: u64 = torn.rsplit(':').next().unwrap().trim_end_matches('}').parse().unwrap();
    assert!((1..29).contains(&bytes), "{torn}");
    assert!(sim.disk(PRIMARY).entries.is_empty());
    assert_eq!(sim.counters().torn_writes, 1);
    sim.check_invariants().unwrap();
}

#[test]
fn a_failed_sync_stops_the_node_and_its_write_is_not_durable() {
    let mut sim = with_disk_latency(4, 1_000);
    sim.fail_next_sync(PRIMARY, true);
    sim.propose(PRIMARY, data("unsynced")).unwrap();
    sim.run_for(10_000).unwrap();
    assert!(!sim.is_up(PRIMARY), "a node must stop after a failed sync");
    assert!(traced(&sim, r#""ev":"fsync-error","node":1"#).is_some());
    assert!(sim.disk(PRIMARY).entries.is_empty());
    assert_eq!(sim.counters().sync_failures, 1);
    // It restarts from what was durable; the next sync succeeds.
    sim.restart(PRIMARY);
    sim.propose(PRIMARY, data("synced")).unwrap();
    assert!(sim.run_until(|s| s.applied(PRIMARY).len() == 1, SECOND_US).unwrap());
    assert_eq!(sim.applied(PRIMARY)[0].data, data("synced"));
}

#[test]
fn a_slow_disk_delays_progress_but_not_safety() {
    let mut sim = with_disk_latency(5, 100);
    sim.set_slow_disks(&[NodeId(2), NodeId(3)]);
    assert!(traced(&sim, r#""ev":"slow-disk","nodes":[2,3]"#).is_some());
    for i in 0..50 {
        sim.propose(PRIMARY, data(&format!("s{i}"))).unwrap();
        sim.run_for(2_000).unwrap();
    }
    let all =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| s.applied(*id).len() == 50);
    assert!(sim.run_until(all, 10 * SECOND_US).unwrap());
    sim.set_slow_disks(&[]);
    assert!(traced(&sim, r#""ev":"slow-disk","nodes":[]"#).is_some());
    sim.check_invariants().unwrap();
}

#[test]
fn every_disk_fault_keeps_the_protocol_safe_and_happens() {
    let (mut lost, mut torn, mut failed) = (0, 0, 0);
    for seed in 0..8 {
        let faults: FaultSet = "crash,partition,disk".parse().unwrap();
        let options = Options { seed, ops: 1_000, faults, ..Options::default() };
        let summary = simulation(options).run().unwrap_or_else(|violation| {
            panic!("seed {seed}: {violation}\n{}", violation.recent_trace.join("\n"))
        });
        assert!(summary.ops_acknowledged >= 1_000, "seed {seed}: {summary}");
        // The client history, with its unknown outcomes, was checked and has a linearization.
        assert_eq!(summary.linearizability, "linearizable", "seed {seed}: {summary}");
        lost += summary.writes_lost;
        torn += summary.torn_writes;
        failed += summary.sync_failures;
    }
    assert!(lost > 0 && torn > 0 && failed > 0, "lost {lost}, torn {torn}, failed {failed}");
}

#[test]
fn disk_faults_replay_byte_for_byte() {
    let run = || {
        let options = Options {
            seed: 9,
            ops: 300,
            faults: FaultSet::of(&[
                Fault::TornWrite,
                Fault::FsyncError,
                Fault::SlowDisk,
                Fault::Crash,
            ]),
            ..Options::default()
        };
        let mut sim =
            simulation_with(options, Settings { bugs: Bugs::default(), snapshot_every: 20 });
        let summary = sim.run().unwrap();
        (summary, sim.recent_trace(), sim.counters().clone())
    };
    assert_eq!(run(), run());
}

/// A node that counts its entries durable before its disk says so is safe on an instant disk
/// (nothing is ever in flight for a crash to lose), and caught once writes can take longer than a
/// network round trip (a slow disk): the primary commits an entry that a backup applies, a crash
/// loses the primary's copy, and the primary reuses the position for another.
#[test]
fn counting_unsynced_entries_durable_is_caught_only_when_writes_take_time() {
    let bugs = Bugs { early_durable: true, ..Bugs::default() };
    for seed in 0..5 {
        let options =
            Options { seed, ops: 500, faults: "crash".parse().unwrap(), ..Options::default() };
        simulation_with_bugs(options, bugs)
            .run()
            .unwrap_or_else(|violation| panic!("instant disk, seed {seed}: {violation}"));
    }
    let caught = (0..20).find_map(|seed| {
        let faults: FaultSet = "crash,slow-disk".parse().unwrap();
        let options = Options { seed, ops: 1_000, faults, ..Options::default() };
        simulation_with_bugs(options, bugs).run().err()
    });
    let violation = caught.expect("the bug survived 20 seeds with a disk that takes time");
    eprintln!("caught: {violation}");
    assert!(
        [Invariant::LogMatching, Invariant::StateMachineSafety, Invariant::AcknowledgedWrite]
            .contains(&violation.invariant),
        "{violation}"
    );
}
