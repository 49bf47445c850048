//! Linearizable reads in the simulator: ReadIndex at the leader and through followers, a deposed
//! leader that must not serve stale data, and lease reads whose safety depends on the clock-drift
//! margin. Every served read is checked by the simulator against the writes applied before it
//! began (`linearizable-read`).

mod raft_support;

use bytes::Bytes;
use conclave_core::{NodeId, ReadError, ReadMode};
use conclave_raft::{Config, Raft};
use conclave_sim::{Invariant, Options, ReadFailure, Simulation};
use raft_support::*;

/// Waits for the outcome of read `id`.
fn outcome(sim: &mut Simulation<Raft>, id: u64) -> conclave_sim::ReadOutcome {
    run_until(sim, "the read's outcome", |s| s.read_outcomes().iter().any(|o| o.id == id));
    sim.read_outcomes().iter().find(|o| o.id == id).unwrap().clone()
}

/// Writes `data` through the leader and waits until `node` applied it.
fn write(sim: &mut Simulation<Raft>, leader: NodeId, data: &str) -> Bytes {
    let data = Bytes::from(data.to_string());
    sim.propose(leader, data.clone()).unwrap();
    let expected = data.clone();
    run_until(sim, "the write to apply on the leader", move |s| {
        applied_commands(s, leader).last() == Some(&expected)
    });
    data
}

#[test]
fn read_index_at_the_leader_and_through_followers_sees_the_latest_write() {
    for seed in 500..505 {
        let mut sim = cluster(5, seed);
        let leader = elect(&mut sim);
        for round in 0..5 {
            let latest = write(&mut sim, leader, &format!("w{round}"));
            for node in sim.node_ids().to_vec() {
                for mode in [ReadMode::ReadIndex, ReadMode::Lease] {
                    let id = sim.read(node, mode).unwrap();
                    let served = outcome(&mut sim, id).result.unwrap_or_else(|e| {
                        panic!("seed {seed}: {mode} read at node {node} failed: {e:?}")
                    });
                    assert_eq!(served.value.unwrap().1, latest, "seed {seed} node {node}");
                }
            }
        }
    }
}

#[test]
fn a_lease_read_needs_no_round_trip_and_read_index_needs_one() {
    let mut sim = cluster(3, 510);
    let leader = elect(&mut sim);
    write(&mut sim, leader, "x");
    run_for(&mut sim, 50_000);
    assert!(sim.node(leader).unwrap().lease_valid());
    let heartbeats = sim.stats().sent_by_kind.get("Heartbeat").copied().unwrap_or(0);
    let id = sim.read(leader, ReadMode::Lease).unwrap();
    // Served within the call: no message needed.
    assert!(sim.read_outcomes().iter().any(|o| o.id == id && o.result.is_ok()));
    assert_eq!(sim.stats().sent_by_kind.get("Heartbeat").copied().unwrap_or(0), heartbeats);
    let id = sim.read(leader, ReadMode::ReadIndex).unwrap();
    assert!(!sim.read_outcomes().iter().any(|o| o.id == id), "ReadIndex waits for a quorum");
    assert!(sim.stats().sent_by_kind["Heartbeat"] > heartbeats, "a heartbeat round went out");
    assert!(outcome(&mut sim, id).result.is_ok());
}

#[test]
fn a_deposed_leader_never_serves_a_stale_read() {
    for check_quorum in [true, false] {
        for seed in 520..525 {
            let options = Options { nodes: 5, seed, ..Options::default() };
            let mut sim = raft_sim(options, move |c: &mut Config| c.check_quorum = check_quorum);
            let old = elect(&mut sim);
            write(&mut sim, old, "before");
            let buddy = others(&sim, &[old])[0];
            let majority = others(&sim, &[old, buddy]);
            sim.partition(&[&[old, buddy], &majority]);
            run_until(&mut sim, "a new leader in the majority", |s| {
                majority
                    .iter()
                    .any(|m| s.node(*m).is_some_and(|n| n.role() == conclave_core::Role::Leader))
            });
            let new = *majority
                .iter()
                .find(|m| sim.node(**m).unwrap().role() == conclave_core::Role::Leader)
                .unwrap();
            write(&mut sim, new, "after");
            // The old leader (still leading, without check-quorum) and its follower: every read
            // fails; none returns "before".
            for node in [old, buddy] {
                for mode in [ReadMode::ReadIndex, ReadMode::Lease] {
                    match sim.read(node, mode) {
                        Err(_) => {}
                        Ok(id) => {
                            let result = outcome(&mut sim, id).result;
                            assert!(
                                matches!(
                                    result,
                                    Err(ReadFailure::Protocol(
                                        ReadError::Timeout | ReadError::NotLeader { .. }
                                    ))
                                ),
                                "seed {seed} check_quorum {check_quorum}: {mode} read at {node} gave {result:?}"
                            );
                        }
                    }
                }
            }
            // Healed, the same nodes read the new write.
            sim.heal();
            run_until(&mut sim, "the old leader to learn the new write", |s| {
                applied_commands(s, old).last().is_some_and(|w| &w[..] == b"after")
            });
            let id = sim.read(old, ReadMode::ReadIndex).unwrap();
            let served = outcome(&mut sim, id).result.unwrap();
            assert_eq!(&served.value.unwrap().1[..], b"after");
        }
    }
}

/// The lease scenario: the leader's clock runs slow (each of its ticks lasts 1.3 ticks) and the
/// followers' fast (0.7), so the followers' promise not to elect anyone else runs out in real time
/// well before the leader thinks its lease does. The leader is cut off, the followers elect a new
/// leader and commit a write, and the old leader is asked for a lease read while it still trusts
/// its lease. Returns whether the simulator reported a stale read.
fn lease_read_after_drift(seed: u64, margin: u32) -> Option<Invariant> {
    let options = Options { nodes: 3, seed, ..Options::default() };
    let mut sim = raft_sim(options, move |c: &mut Config| c.lease_margin_ticks = margin);
    let old = elect(&mut sim);
    let tick = sim.options().tick_us;
    sim.set_tick_us(old, tick * 13 / 10);
    let followers = others(&sim, &[old]);
    for follower in &followers {
        sim.set_tick_us(*follower, tick * 7 / 10);
    }
    write(&mut sim, old, "before");
    run_for(&mut sim, 5 * tick);
    sim.partition(&[&[old], &followers]);
    let leader_elsewhere = |s: &Simulation<Raft>| {
        followers
            .iter()
            .find(|f| s.node(**f).is_some_and(|n| n.role() == conclave_core::Role::Leader))
            .copied()
    };
    run_until(&mut sim, "a new leader", |s| leader_elsewhere(s).is_some());
    let new = leader_elsewhere(&sim).unwrap();
    sim.propose(new, Bytes::from_static(b"after")).unwrap();
    run_until(&mut sim, "the new write to apply", |s| {
        applied_commands(s, new).last().is_some_and(|w| &w[..] == b"after")
    });
    let lease_valid = sim.node(old).unwrap().lease_valid();
    if sim.read(old, ReadMode::Lease).is_err() {
        // Check-quorum already deposed it: nothing to serve, nothing stale.
        assert!(!lease_valid);
        return None;
    }
    let violation = sim.run_for(tick).err().map(|v| v.invariant);
    if violation.is_some() {
        assert!(lease_valid, "only a leader trusting its lease can serve a stale read");
    }
    violation
}

#[test]
fn lease_reads_are_safe_within_the_drift_margin_and_the_checker_catches_them_without() {
    // With no margin, a 30% slow leader clock against 30% fast followers lets the old leader
    // serve a stale lease read in some runs: the simulator must catch it.
    let unsafe_runs: Vec<u64> =
        (530..560).filter(|seed| lease_read_after_drift(*seed, 0).is_some()).collect();
    eprintln!("stale lease reads without a margin: {} of 30 runs", unsafe_runs.len());
    assert!(!unsafe_runs.is_empty(), "no stale lease read without a margin: the check is blind");
    for seed in &unsafe_runs {
        assert_eq!(lease_read_after_drift(*seed, 0), Some(Invariant::LinearizableRead));
    }
    // A margin of 5 of 10 ticks covers that drift ((10 - 5) x 1.3 < 10 x 0.7): never stale.
    for seed in 530..560 {
        assert_eq!(lease_read_after_drift(seed, 5), None, "seed {seed}");
    }
}
