//! Scenario tests of the manual control API, on the test-only primary-backup protocol: each reads
//! as a short story of crashes, partitions and proposals, the way Raft scenarios will.

mod support;

use bytes::Bytes;
use conclave_core::{Index, NodeId, ProposeError, Protocol, Role};
use conclave_sim::{Options, OptionsError, Simulation};
use support::{simulation, PrimaryBackup, PRIMARY};

const SECOND_US: u64 = 1_000_000;

fn three_nodes(seed: u64) -> Simulation<PrimaryBackup> {
    simulation(Options { seed, nodes: 3, ..Options::default() })
}

fn data(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
fn the_fixed_primary_is_the_leader_and_backups_redirect() {
    let mut sim = three_nodes(1);
    assert_eq!(sim.leader(), Some(PRIMARY));
    assert_eq!(sim.status(NodeId(2)).unwrap().role, Role::Follower);
    assert_eq!(
        sim.propose(NodeId(2), data("x")),
        Err(ProposeError::NotLeader { leader_hint: Some(PRIMARY) })
    );
    sim.crash(PRIMARY);
    assert_eq!(sim.leader(), None);
    assert!(sim.status(PRIMARY).is_none() && sim.node(PRIMARY).is_none());
}

#[test]
fn a_proposal_is_applied_everywhere() {
    let mut sim = three_nodes(2);
    let proposal = sim.propose(PRIMARY, data("hello")).unwrap();
    assert_eq!(proposal.index, Index(1));
    // Persisted at once: the sim disk is instant unless a disk latency or disk fault is set.
    assert_eq!(sim.disk(PRIMARY).entries.len(), 1);
    let all_applied =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| s.applied(*id).len() == 1);
    assert!(sim.run_until(all_applied, SECOND_US).unwrap());
    assert_eq!(sim.applied(NodeId(3))[0].data, data("hello"));
    assert_eq!(sim.applied_sequence().len(), 1);
    sim.check_invariants().unwrap();
}

#[test]
fn a_crashed_backup_rebuilds_its_state_machine_after_restart() {
    let mut sim = three_nodes(3);
    for i in 0..5 {
        sim.propose(PRIMARY, data(&format!("a{i}"))).unwrap();
    }
    assert!(sim.run_until(|s| s.applied(NodeId(3)).len() == 5, SECOND_US).unwrap());
    assert!(sim.crash(NodeId(3)));
    assert!(!sim.crash(NodeId(3)), "already down");
    for i in 0..5 {
        sim.propose(PRIMARY, data(&format!("b{i}"))).unwrap();
    }
    // Primary and node 2 form a majority and commit without node 3.
    assert!(sim.run_until(|s| s.applied(PRIMARY).len() == 10, SECOND_US).unwrap());
    assert_eq!(sim.disk(NodeId(3)).entries.len(), 5, "a crashed node's disk does not change");
    assert!(sim.stats().dropped_unreachable > 0, "messages to the crashed node were dropped");

    assert!(sim.restart(NodeId(3)));
    assert!(!sim.restart(NodeId(3)), "already up");
    // Re-applied from index 1 from its own disk, then caught up from the primary.
    assert!(sim.run_until(|s| s.applied(NodeId(3)).len() == 10, SECOND_US).unwrap());
    assert_eq!(sim.applied(NodeId(3)), sim.applied(PRIMARY));
    assert_eq!(sim.counters().crashes, 1);
    assert_eq!(sim.counters().restarts, 1);
    sim.check_invariants().unwrap();
}

#[test]
fn an_isolated_primary_cannot_commit_until_healed() {
    let mut sim = three_nodes(4);
    sim.partition(&[&[PRIMARY], &[NodeId(2), NodeId(3)]]);
    sim.propose(PRIMARY, data("lonely")).unwrap();
    assert!(!sim.run_until(|s| !s.applied(PRIMARY).is_empty(), SECOND_US).unwrap());
    assert_eq!(sim.now_us(), SECOND_US, "run_until stops exactly at its limit");
    assert!(sim.stats().dropped_partition > 0);
    sim.heal();
    assert!(sim.run_until(|s| s.applied(NodeId(2)).len() == 1, SECOND_US).unwrap());
}

#[test]
fn a_one_way_cut_blocks_only_its_direction() {
    let mut sim = three_nodes(5);
    sim.crash(NodeId(3));
    // Node 2 hears the primary but its acknowledgements are lost: no majority.
    sim.cut_one_way(NodeId(2), PRIMARY);
    sim.propose(PRIMARY, data("one-way")).unwrap();
    sim.run_for(SECOND_US).unwrap();
    assert_eq!(sim.node(NodeId(2)).unwrap().status().last_index, Index(1), "primary -> 2 works");
    assert!(sim.applied(PRIMARY).is_empty(), "2 -> primary is cut");
    sim.heal();
    assert!(sim.run_until(|s| s.applied(PRIMARY).len() == 1, SECOND_US).unwrap());
}

#[test]
fn messages_in_flight_when_a_partition_forms_are_lost() {
    let mut sim = three_nodes(6);
    sim.propose(PRIMARY, data("in-flight")).unwrap();
    // The Appends are on the wire now (latency is at least 200us); cut everyone off.
    sim.partition(&[&[PRIMARY], &[NodeId(2)], &[NodeId(3)]]);
    sim.run_for(100_000).unwrap();
    assert!(sim.stats().dropped_partition >= 2);
    assert_eq!(sim.disk(NodeId(2)).entries.len(), 0);
}

#[test]
fn lossy_and_duplicating_networks_still_converge() {
    let mut sim = three_nodes(7);
    sim.set_drop_probability(0.3);
    sim.set_duplicate_probability(0.3);
    sim.set_reorder(true);
    sim.set_delay_spike(true);
    for i in 0..20 {
        sim.propose(PRIMARY, data(&format!("w{i}"))).unwrap();
    }
    let done =
        |s: &Simulation<PrimaryBackup>| s.node_ids().iter().all(|id| s.applied(*id).len() == 20);
    assert!(sim.run_until(done, 10 * SECOND_US).unwrap());
    assert!(sim.stats().duplicated > 0 && sim.stats().dropped_random > 0);
    sim.check_invariants().unwrap();
}

#[test]
fn with_node_carries_out_the_work_at_once() {
    let mut sim = three_nodes(8);
    let proposal = sim.with_node(PRIMARY, |p| p.propose(data("direct"))).unwrap().unwrap();
    assert_eq!(sim.disk(PRIMARY).entries[0].index, proposal.index);
    sim.crash(NodeId(2));
    assert!(sim.with_node(NodeId(2), |_| ()).is_none());
}

#[test]
#[should_panic(expected = "propose to crashed node 2")]
fn proposing_to_a_crashed_node_is_a_test_bug() {
    let mut sim = three_nodes(9);
    sim.crash(NodeId(2));
    let _ = sim.propose(NodeId(2), data("x"));
}

#[test]
fn the_same_scenario_replays_identically() {
    let story = || {
        let mut sim = three_nodes(10);
        sim.set_drop_probability(0.2);
        for i in 0..10 {
            sim.propose(PRIMARY, data(&format!("r{i}"))).unwrap();
            sim.run_for(3_000).unwrap();
        }
        sim.crash(NodeId(3));
        sim.run_for(50_000).unwrap();
        sim.restart(NodeId(3));
        sim.run_for(SECOND_US).unwrap();
        (sim.recent_trace(), sim.stats().clone(), sim.now_us())
    };
    assert_eq!(story(), story());
}

#[test]
fn invalid_options_are_refused() {
    let result =
        Simulation::new(Options { nodes: 12, ..Options::default() }, |id, all, durable, _| {
            PrimaryBackup::new(id, all, durable, Default::default())
        });
    assert_eq!(result.err(), Some(OptionsError::Nodes(12)));
}
