//! Membership changes in the simulator: growing and shrinking under load (one voter at a time
//! and through joint consensus), replacing every member, removing the leader, a change cut off
//! from the old majority, and a lagging learner that must not be promoted. Every invariant,
//! configuration safety included, is checked after every event.

mod raft_support;

use bytes::Bytes;
use conclave_core::{
    EntryKind, Index, Membership, MembershipChange, MembershipError, NodeId, Protocol, Role,
};
use conclave_raft::Raft;
use conclave_sim::{Options, Simulation};
use raft_support::*;

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().map(|i| NodeId(*i)).collect()
}

/// `voters` initial voters and `spares` nodes outside the membership.
fn cluster_with_spares(voters: usize, spares: usize, seed: u64) -> Simulation<Raft> {
    let options = Options { nodes: voters, spare_nodes: Some(spares), seed, ..Options::default() };
    raft_sim(options, |config| config.learner_lag_max = 50)
}

/// Writes that keep flowing to whoever leads, and the ones that were acknowledged (applied by
/// the node that accepted them, in the term it accepted them).
#[derive(Default)]
struct Load {
    next: u64,
    proposed: Vec<(NodeId, Index, conclave_core::Term, Bytes)>,
}

impl Load {
    /// Proposes a few writes at the current leader, if any.
    fn push(&mut self, sim: &mut Simulation<Raft>) {
        let Some(leader) = sim.leader() else { return };
        for _ in 0..3 {
            let data = Bytes::from(format!("load-{}", self.next));
            self.next += 1;
            if let Ok(p) = sim.propose(leader, data.clone()) {
                self.proposed.push((leader, p.index, p.term, data));
            }
        }
    }

    /// The writes whose acceptor applied them as proposed: acknowledged to the client.
    fn acknowledged(&self, sim: &Simulation<Raft>) -> Vec<Bytes> {
        self.proposed
            .iter()
            .filter(|(node, index, term, data)| {
                sim.applied(*node).get((index.0 - 1) as usize).is_some_and(|e| {
                    e.term == *term && e.kind == EntryKind::Command && e.data == *data
                })
            })
            .map(|(_, _, _, data)| data.clone())
            .collect()
    }
}

/// Runs for `us` while the load keeps writing every 5 ms.
fn run_loaded(sim: &mut Simulation<Raft>, load: &mut Load, us: u64) {
    let end = sim.now_us() + us;
    while sim.now_us() < end {
        load.push(sim);
        run_for(sim, 5_000);
    }
}

/// The index of the newest configuration entry in `node`'s log (0 without one).
fn config_index(sim: &Simulation<Raft>, node: NodeId) -> Index {
    let Some(raft) = sim.node(node) else { return Index(0) };
    let log = raft.log();
    let mut index = log.last_index();
    while index >= log.first_index() && index.0 > 0 {
        if log.entry(index).is_some_and(|e| e.kind == EntryKind::Config) {
            return index;
        }
        index = index.prev();
    }
    Index(0)
}

/// Asks the leader for `change` (retrying while another change or an election is under way) and
/// waits, under load, until a leader holds the resulting simple membership committed. Returns it.
fn change(sim: &mut Simulation<Raft>, load: &mut Load, change: MembershipChange) -> Membership {
    let deadline = sim.now_us() + PATIENCE_US;
    loop {
        assert!(sim.now_us() < deadline, "change {change:?} never accepted");
        let leader = elect(sim);
        match sim.with_node(leader, |n| n.change_membership(change.clone())).unwrap() {
            Ok(_) => break,
            Err(MembershipError::ChangeInProgress | MembershipError::NotLeader { .. }) => {
                run_loaded(sim, load, 10_000)
            }
            Err(error) => panic!("{change:?} refused: {error}"),
        }
    }
    let settled = |s: &Simulation<Raft>| {
        s.leader().is_some_and(|l| {
            let raft = s.node(l).unwrap();
            !raft.membership().is_joint() && raft.log().committed() >= config_index(s, l)
        })
    };
    while !settled(sim) {
        assert!(sim.now_us() < deadline, "change {change:?} never completed");
        run_loaded(sim, load, 5_000);
    }
    let leader = sim.leader().unwrap();
    sim.node(leader).unwrap().membership().clone()
}

/// Waits until every member has applied every acknowledged write, and checks nothing was lost.
fn converge_members(sim: &mut Simulation<Raft>, load: &Load, members: &[NodeId]) {
    let acknowledged = load.acknowledged(sim);
    assert!(acknowledged.len() > 20, "the load barely ran: {} writes", acknowledged.len());
    run_until(sim, "every member to apply every acknowledged write", |s| {
        members.iter().all(|m| {
            let applied = applied_commands(s, *m);
            acknowledged.iter().all(|w| applied.contains(w))
        })
    });
    sim.check_invariants().unwrap_or_else(|v| panic!("{}", show(&v)));
}

fn wait_caught_up(sim: &mut Simulation<Raft>, load: &mut Load, node: NodeId) {
    let deadline = sim.now_us() + PATIENCE_US;
    loop {
        let leader = elect(sim);
        let last = sim.node(leader).unwrap().log().last_index();
        let applied = sim.applied(node).len() as u64;
        if applied + 10 >= last.0 {
            return;
        }
        assert!(sim.now_us() < deadline, "learner {node} never caught up");
        run_loaded(sim, load, 5_000);
    }
}

#[test]
fn grow_three_to_five_and_shrink_back_under_load_through_joint_consensus() {
    for seed in 400..403 {
        let mut sim = cluster_with_spares(3, 2, seed);
        let mut load = Load::default();
        elect(&mut sim);
        run_loaded(&mut sim, &mut load, 100_000);
        for learner in [4, 5] {
            let m = change(&mut sim, &mut load, MembershipChange::AddLearner(NodeId(learner)));
            assert!(m.is_learner(NodeId(learner)));
        }
        // Learners replicate but never campaign.
        wait_caught_up(&mut sim, &mut load, NodeId(4));
        wait_caught_up(&mut sim, &mut load, NodeId(5));
        assert!(sim.node(NodeId(4)).unwrap().status().role == Role::Follower);
        // Two voters at once: the leader goes through the joint membership and leaves it itself.
        let grow = MembershipChange::Replace { voters: ids(&[1, 2, 3, 4, 5]), learners: vec![] };
        let leader = loop {
            // Under load a learner's acknowledgements trail the leader's log a little: retry
            // until both are within the lag bound.
            let leader = elect(&mut sim);
            match sim.with_node(leader, |n| n.change_membership(grow.clone())).unwrap() {
                Ok(_) => break leader,
                Err(MembershipError::LearnerLagging { .. } | MembershipError::ChangeInProgress) => {
                    run_for(&mut sim, 2_000)
                }
                Err(error) => panic!("seed {seed}: {error}"),
            }
        };
        let joint = sim.node(leader).unwrap().membership().clone();
        assert!(joint.is_joint(), "{joint}");
        assert_eq!(
            (joint.voters.clone(), joint.outgoing.clone()),
            (ids(&[1, 2, 3, 4, 5]), ids(&[1, 2, 3]))
        );
        let settled = |s: &Simulation<Raft>| {
            s.leader().and_then(|l| s.node(l)).is_some_and(|n| {
                *n.membership() == Membership::new(ids(&[1, 2, 3, 4, 5]))
                    && n.log().committed() >= config_index(s, n.status().id)
            })
        };
        while !settled(&sim) {
            run_loaded(&mut sim, &mut load, 5_000);
        }
        run_loaded(&mut sim, &mut load, 200_000);
        // And back down to three, dropping two voters at once.
        let leader = sim.leader().unwrap();
        let keep: Vec<NodeId> = {
            let mut v = vec![leader];
            v.extend(ids(&[1, 2, 3, 4, 5]).into_iter().filter(|id| *id != leader).take(2));
            v.sort();
            v
        };
        let m = change(
            &mut sim,
            &mut load,
            MembershipChange::Replace { voters: keep.clone(), learners: vec![] },
        );
        assert_eq!(m, Membership::new(keep.clone()), "seed {seed}");
        run_loaded(&mut sim, &mut load, 200_000);
        converge_members(&mut sim, &load, &keep);
    }
}

#[test]
fn every_member_is_replaced_one_by_one_without_losing_a_write() {
    let mut sim = cluster_with_spares(3, 3, 410);
    let mut load = Load::default();
    elect(&mut sim);
    run_loaded(&mut sim, &mut load, 100_000);
    for (old, new) in [(1, 4), (2, 5), (3, 6)] {
        change(&mut sim, &mut load, MembershipChange::AddLearner(NodeId(new)));
        wait_caught_up(&mut sim, &mut load, NodeId(new));
        change(&mut sim, &mut load, MembershipChange::Promote(NodeId(new)));
        let m = change(&mut sim, &mut load, MembershipChange::Remove(NodeId(old)));
        assert!(!m.is_member(NodeId(old)) && m.voters.contains(&NodeId(new)), "{m}");
        run_loaded(&mut sim, &mut load, 50_000);
    }
    let leader = sim.leader().unwrap();
    assert!([4, 5, 6].contains(&leader.0), "leader {leader} is not a new member");
    assert_eq!(*sim.node(leader).unwrap().membership(), Membership::new(ids(&[4, 5, 6])));
    // The old members may stop now; the new ones carry every acknowledged write.
    for old in 1..=3 {
        sim.crash(NodeId(old));
    }
    run_loaded(&mut sim, &mut load, 300_000);
    converge_members(&mut sim, &load, &ids(&[4, 5, 6]));
}

#[test]
fn a_removed_leader_commits_its_removal_then_hands_over_at_once() {
    let mut sim = cluster(5, 420);
    let mut load = Load::default();
    let old = elect(&mut sim);
    run_loaded(&mut sim, &mut load, 100_000);
    let proposal = sim.with_node(old, |n| n.change_membership(MembershipChange::Remove(old)));
    let proposal = proposal.unwrap().unwrap();
    // Still leading (and replicating) until the removal commits, without counting itself.
    assert_eq!(role(&sim, old), Some(Role::Leader));
    let removed_at = sim.now_us();
    run_until(&mut sim, "another leader", |s| s.leader().is_some_and(|l| l != old));
    let new = sim.leader().unwrap();
    // The handover (TimeoutNow to an up-to-date voter) beats an election timeout (100-200 ms).
    assert!(sim.now_us() - removed_at < 60_000, "took {} us", sim.now_us() - removed_at);
    assert!(!sim.node(new).unwrap().membership().is_member(old));
    run_until(&mut sim, "the new leader to commit past the removal", |s| {
        s.node(new).is_some_and(|n| n.log().committed() >= proposal.index)
    });
    assert_eq!(role(&sim, old), Some(Role::Follower));
    // The removed node never campaigns again, and the cluster carries on without it.
    run_loaded(&mut sim, &mut load, 1_000_000);
    assert!(sim.leader().is_some_and(|l| l != old));
    assert_eq!(role(&sim, old), Some(Role::Follower));
    let members = others(&sim, &[old]);
    converge_members(&mut sim, &load, &members);
}

#[test]
fn a_change_cut_off_from_the_old_majority_never_commits_and_is_undone() {
    let mut sim = cluster_with_spares(3, 1, 430);
    let mut load = Load::default();
    let old = elect(&mut sim);
    run_loaded(&mut sim, &mut load, 100_000);
    let majority = others(&sim, &[old, NodeId(4)]);
    // The leader and the newcomer on one side, the old majority on the other.
    sim.partition(&[&[old, NodeId(4)], &majority]);
    let added =
        sim.with_node(old, |n| n.change_membership(MembershipChange::AddLearner(NodeId(4))));
    let added = added.unwrap().unwrap();
    assert!(sim.node(old).unwrap().membership().is_learner(NodeId(4)));
    // A second change is refused while the first is uncommitted.
    let second = sim.with_node(old, |n| n.change_membership(MembershipChange::Remove(majority[0])));
    assert_eq!(second.unwrap(), Err(MembershipError::ChangeInProgress));
    run_until(&mut sim, "the majority to elect a leader", |s| {
        s.leader().is_some_and(|l| majority.contains(&l))
    });
    let new = sim.leader().unwrap();
    let writes = payloads("majority", 10);
    propose_all(&mut sim, new, &writes);
    run_until(&mut sim, "the majority to apply", |s| applied_commands(s, new).ends_with(&writes));
    assert!(sim.node(old).unwrap().log().committed() < added.index, "the change committed");
    sim.heal();
    // The old leader's uncommitted configuration is overwritten; its membership reverts.
    run_until(&mut sim, "the old leader to drop the change", |s| {
        s.node(old).is_some_and(|n| !n.membership().is_member(NodeId(4)))
            && applied_commands(s, old).ends_with(&writes)
    });
    // Done properly, through the new leader, it works.
    let m = change(&mut sim, &mut load, MembershipChange::AddLearner(NodeId(4)));
    assert!(m.is_learner(NodeId(4)));
    wait_caught_up(&mut sim, &mut load, NodeId(4));
    let members = ids(&[1, 2, 3, 4]);
    converge_members(&mut sim, &load, &members);
}

#[test]
fn a_learner_that_cannot_catch_up_is_not_promoted() {
    let mut sim = cluster_with_spares(3, 1, 440);
    let mut load = Load::default();
    elect(&mut sim);
    change(&mut sim, &mut load, MembershipChange::AddLearner(NodeId(4)));
    sim.crash(NodeId(4));
    run_loaded(&mut sim, &mut load, 300_000); // Far more than 50 entries (the lag bound).
    let leader = sim.leader().unwrap();
    let promote =
        sim.with_node(leader, |n| n.change_membership(MembershipChange::Promote(NodeId(4))));
    assert!(matches!(
        promote.unwrap(),
        Err(MembershipError::LearnerLagging { id: NodeId(4), max: 50, .. })
    ));
    let replace = MembershipChange::Replace { voters: ids(&[1, 2, 4]), learners: vec![] };
    let replace = sim.with_node(leader, |n| n.change_membership(replace));
    assert!(matches!(replace.unwrap(), Err(MembershipError::LearnerLagging { .. })));
    // Adding a fresh node straight as a voter is refused too: it must learn first.
    let fresh = MembershipChange::Replace { voters: ids(&[1, 2, 3, 5]), learners: vec![] };
    assert!(matches!(
        sim.with_node(leader, |n| n.change_membership(fresh)).unwrap(),
        Err(MembershipError::Invalid(_))
    ));
    // Back up and caught up, it is promoted.
    sim.restart(NodeId(4));
    wait_caught_up(&mut sim, &mut load, NodeId(4));
    let m = change(&mut sim, &mut load, MembershipChange::Promote(NodeId(4)));
    assert_eq!(m.voters, ids(&[1, 2, 3, 4]));
    converge_members(&mut sim, &load, &ids(&[1, 2, 3, 4]));
}

#[test]
fn membership_survives_restarts_of_every_node() {
    let mut sim = cluster_with_spares(3, 1, 450);
    let mut load = Load::default();
    elect(&mut sim);
    change(&mut sim, &mut load, MembershipChange::AddLearner(NodeId(4)));
    wait_caught_up(&mut sim, &mut load, NodeId(4));
    change(&mut sim, &mut load, MembershipChange::Promote(NodeId(4)));
    let m = change(&mut sim, &mut load, MembershipChange::Remove(NodeId(1)));
    for id in 1..=4 {
        sim.crash(NodeId(id));
    }
    for id in 1..=4 {
        sim.restart(NodeId(id));
    }
    elect(&mut sim);
    for id in 2..=4 {
        assert_eq!(*sim.node(NodeId(id)).unwrap().membership(), m, "node {id} after restart");
    }
    assert_ne!(sim.leader(), Some(NodeId(1)));
    run_loaded(&mut sim, &mut load, 200_000);
    converge_members(&mut sim, &load, &ids(&[2, 3, 4]));
}
