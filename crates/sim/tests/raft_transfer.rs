//! Leadership transfer in the simulator: to an up-to-date follower, to a lagging one (caught up
//! first), and to a crashed node (abandoned after an election timeout). Every invariant is
//! checked throughout.

mod raft_support;

use bytes::Bytes;
use conclave_core::{ProposeError, Role};
use raft_support::*;

#[test]
fn leadership_moves_to_an_up_to_date_follower_well_within_an_election_timeout() {
    for seed in 300..305 {
        let mut sim = cluster(5, seed);
        let old = elect(&mut sim);
        run_for(&mut sim, 200_000);
        let target = others(&sim, &[old])[1];
        let started = sim.now_us();
        sim.with_node(old, |n| n.transfer_leadership(target)).unwrap().unwrap();
        run_until(&mut sim, "the target to lead", |s| s.leader() == Some(target));
        // An election timeout is 100-200 ms of virtual time; a transfer is a round trip or two.
        assert!(sim.now_us() - started < 50_000, "seed {seed}: took {} us", sim.now_us() - started);
        let write = Bytes::from_static(b"after the transfer");
        sim.propose(target, write.clone()).unwrap();
        run_until(&mut sim, "the write everywhere", |s| {
            all_applied(s, std::slice::from_ref(&write))
        });
    }
}

#[test]
fn a_lagging_target_is_caught_up_and_loses_nothing() {
    let mut sim = cluster(5, 310);
    let old = elect(&mut sim);
    let target = others(&sim, &[old])[0];
    let rest = others(&sim, &[target]);
    sim.partition(&[&[target], &rest]);
    let data = payloads("before-transfer", 50);
    propose_all(&mut sim, old, &data);
    run_until(&mut sim, "the majority to apply", |s| applied_commands(s, old) == data);
    sim.heal();
    sim.with_node(old, |n| n.transfer_leadership(target)).unwrap().unwrap();
    assert_eq!(sim.propose(old, Bytes::from_static(b"x")), Err(ProposeError::LeadershipTransfer));
    run_until(&mut sim, "the target to lead", |s| s.leader() == Some(target));
    run_until(&mut sim, "the new leader to apply everything", |s| {
        applied_commands(s, target) == data
    });
}

#[test]
fn a_transfer_to_a_crashed_node_is_abandoned_and_the_leader_resumes() {
    let mut sim = cluster(3, 320);
    let leader = elect(&mut sim);
    let target = others(&sim, &[leader])[0];
    sim.crash(target);
    sim.with_node(leader, |n| n.transfer_leadership(target)).unwrap().unwrap();
    assert_eq!(
        sim.propose(leader, Bytes::from_static(b"x")),
        Err(ProposeError::LeadershipTransfer)
    );
    // Within one election timeout (10 ticks of 10 ms) plus a tick, the transfer is abandoned.
    run_for(&mut sim, 110_000);
    assert_eq!(sim.node(leader).unwrap().leader_transfer_target(), None);
    assert_eq!(sim.node(leader).unwrap().role(), Role::Leader);
    let write = Bytes::from_static(b"accepted again");
    sim.propose(leader, write.clone()).unwrap();
    run_until(&mut sim, "the write on the live nodes", |s| {
        all_applied(s, std::slice::from_ref(&write))
    });
}
