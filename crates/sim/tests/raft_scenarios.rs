//! Raft scenario tests in the simulator: the situations the classic Raft lab suites check, each
//! told as a short story. Safety invariants are checked after every event of every scenario.

mod raft_support;

use bytes::Bytes;
use conclave_core::{EntryKind, Index, NodeId, Protocol, Role};
use conclave_sim::{FaultSet, Invariant, Options};
use raft_support::*;

#[test]
fn initial_election_elects_one_leader_and_terms_stay_stable() {
    for seed in 0..5 {
        let mut sim = cluster(3, seed);
        let leader = elect(&mut sim);
        let term = term_of(&sim, leader);
        let elections = sim.counters().elections_started;
        run_for(&mut sim, 5_000_000);
        assert_eq!(sim.leader(), Some(leader), "seed {seed}: leadership moved without faults");
        assert_eq!(sim.counters().elections_started, elections, "seed {seed}: spurious elections");
        for id in sim.node_ids() {
            assert_eq!(term_of(&sim, *id), term, "seed {seed}: node {id} is in another term");
            assert_eq!(sim.status(*id).unwrap().leader, Some(leader), "seed {seed}: node {id}");
        }
    }
}

#[test]
fn a_leader_cut_off_is_replaced_and_no_leader_rises_without_a_majority() {
    let mut sim = cluster(3, 11);
    let old = elect(&mut sim);
    let rest = others(&sim, &[old]);
    sim.partition(&[&[old], &rest]);
    run_until(&mut sim, "a new leader on the majority side", |s| {
        s.leader().is_some_and(|l| l != old)
    });
    // Check-quorum: the isolated leader notices it lost its majority and steps down.
    run_until(&mut sim, "the old leader to step down", |s| role(s, old) != Some(Role::Leader));
    // Split everyone: no side has a majority, so no leader may exist.
    let ids = sim.node_ids().to_vec();
    sim.partition(&[&[ids[0]], &[ids[1]], &[ids[2]]]);
    run_until(&mut sim, "the leader to step down", |s| leaders(s).is_empty());
    let elections_before = sim.counters().elections_started;
    run_for(&mut sim, 3_000_000);
    assert!(leaders(&sim).is_empty(), "a leader without a majority: {:?}", leaders(&sim));
    // Pre-vote keeps isolated nodes from even starting real elections (and inflating terms).
    assert_eq!(sim.counters().elections_started, elections_before);
    sim.heal();
    let leader = elect(&mut sim);
    sim.propose(leader, Bytes::from_static(b"after-heal")).unwrap();
    run_until(&mut sim, "the write to apply everywhere", |s| {
        all_applied(s, &[Bytes::from_static(b"after-heal")])
    });
}

#[test]
fn many_elections_under_repeated_partitions() {
    let mut sim = cluster(5, 21);
    elect(&mut sim);
    let ids = sim.node_ids().to_vec();
    let mut leaders_seen = std::collections::BTreeSet::new();
    for round in 0..20 {
        // Rotate which three nodes form the majority; the other two are apart.
        let majority: Vec<NodeId> = (0..3).map(|k| ids[(round + k) % 5]).collect();
        let minority = others(&sim, &majority);
        sim.partition(&[&majority, &[minority[0]], &[minority[1]]]);
        run_until(&mut sim, "a leader in the majority", |s| {
            s.leader().is_some_and(|l| majority.contains(&l))
        });
        leaders_seen.insert(sim.leader().unwrap());
        let marker = Bytes::from(format!("round-{round}"));
        let leader = sim.leader().unwrap();
        sim.propose(leader, marker.clone()).unwrap();
        run_until(&mut sim, "the round's write to commit", |s| {
            majority.iter().all(|id| applied_commands(s, *id).contains(&marker))
        });
    }
    sim.heal();
    run_until(&mut sim, "every round's write everywhere", |s| {
        all_applied(s, &payloads("round", 0))
    });
    assert!(leaders_seen.len() >= 3, "leadership barely moved: {leaders_seen:?}");
    let every_round: Vec<Bytes> = (0..20).map(|r| Bytes::from(format!("round-{r}"))).collect();
    run_until(&mut sim, "all rounds applied on all nodes", |s| all_applied(s, &every_round));
}

#[test]
fn basic_agreement_every_node_applies_the_same_sequence() {
    let mut sim = cluster(3, 31);
    let leader = elect(&mut sim);
    let data = payloads("agree", 10);
    propose_all(&mut sim, leader, &data);
    run_until(&mut sim, "all writes everywhere", |s| all_applied(s, &data));
    for id in sim.node_ids() {
        assert_eq!(applied_commands(&sim, *id), data, "node {id}");
    }
}

#[test]
fn agreement_despite_a_failed_follower() {
    let mut sim = cluster(3, 41);
    let leader = elect(&mut sim);
    let follower = others(&sim, &[leader])[0];
    sim.crash(follower);
    let data = payloads("one-down", 5);
    propose_all(&mut sim, leader, &data);
    run_until(&mut sim, "commit with two of three", |s| all_applied(s, &data));
    sim.restart(follower);
    run_until(&mut sim, "the restarted follower to catch up", |s| {
        applied_commands(s, follower) == data
    });
}

#[test]
fn no_agreement_without_a_majority_then_recovery() {
    let mut sim = cluster(5, 51);
    let leader = elect(&mut sim);
    let followers = others(&sim, &[leader]);
    for id in &followers[..3] {
        sim.crash(*id);
    }
    let commit_before = sim.status(leader).unwrap().commit;
    let write = Bytes::from_static(b"needs-a-majority");
    let proposal = sim.propose(leader, write.clone()).unwrap();
    // Less than an election timeout: check-quorum has not deposed the leader yet, and nothing
    // may commit with two of five.
    run_for(&mut sim, 80_000);
    assert_eq!(sim.status(leader).unwrap().commit, commit_before, "committed without a majority");
    run_for(&mut sim, 2_000_000);
    assert!(sim
        .node_ids()
        .iter()
        .all(|id| sim.status(*id).is_none_or(|s| s.commit < proposal.index)));
    for id in &followers[..3] {
        sim.restart(*id);
    }
    let leader = elect(&mut sim);
    // The write may survive (the leader kept it) or have been overwritten by a leader that never
    // saw it; either way a new write commits and every node agrees.
    sim.propose(leader, Bytes::from_static(b"after-recovery")).unwrap();
    run_until(&mut sim, "recovery write everywhere", |s| {
        all_applied(s, &[Bytes::from_static(b"after-recovery")])
    });
    let reference = applied_commands(&sim, leader);
    for id in sim.node_ids() {
        assert_eq!(applied_commands(&sim, *id), reference, "node {id}");
    }
}

#[test]
fn concurrent_proposals_all_commit_once_in_one_order() {
    let mut sim = cluster(5, 61);
    let leader = elect(&mut sim);
    let data = payloads("concurrent", 200);
    // All proposed before any message moves: they travel batched and pipelined.
    let proposals: Vec<Index> =
        data.iter().map(|d| sim.propose(leader, d.clone()).unwrap().index).collect();
    for pair in proposals.windows(2) {
        assert_eq!(pair[1], pair[0].next(), "proposals got non-consecutive indexes");
    }
    run_until(&mut sim, "all writes everywhere", |s| all_applied(s, &data));
    for id in sim.node_ids() {
        assert_eq!(applied_commands(&sim, *id), data, "node {id}");
    }
}

#[test]
fn a_partitioned_old_leader_rejoins_and_its_uncommitted_entries_are_discarded() {
    let mut sim = cluster(5, 71);
    let old = elect(&mut sim);
    let companion = others(&sim, &[old])[0];
    let majority = others(&sim, &[old, companion]);
    sim.partition(&[&[old, companion], &majority]);
    let doomed = payloads("doomed", 3);
    propose_all(&mut sim, old, &doomed);
    run_until(&mut sim, "a leader in the majority", |s| {
        s.leader().is_some_and(|l| majority.contains(&l))
    });
    let new = sim.leader().unwrap();
    let kept = payloads("kept", 3);
    propose_all(&mut sim, new, &kept);
    run_until(&mut sim, "the majority to commit", |s| {
        majority.iter().all(|id| {
            let applied = applied_commands(s, *id);
            kept.iter().all(|k| applied.contains(k))
        })
    });
    sim.heal();
    run_until(&mut sim, "everyone to converge", |s| all_applied(s, &kept));
    for id in sim.node_ids() {
        let applied = applied_commands(&sim, *id);
        assert!(
            doomed.iter().all(|d| !applied.contains(d)),
            "node {id} applied an uncommitted entry"
        );
        let log = sim.node(*id).unwrap().log();
        let held: Vec<Bytes> = (1..=log.last_index().0)
            .filter_map(|i| log.entry(Index(i)))
            .map(|e| e.data.clone())
            .collect();
        assert!(
            doomed.iter().all(|d| !held.contains(d)),
            "node {id} still holds an uncommitted entry"
        );
    }
}

#[test]
fn a_follower_far_behind_with_a_conflicting_log_catches_up_in_few_round_trips() {
    let options = Options { nodes: 5, seed: 81, ..Options::default() };
    let (mut sim, trace) = traced_raft_sim(options, |_| {});
    let old = elect(&mut sim);
    let straggler = others(&sim, &[old])[0];
    let majority = others(&sim, &[old, straggler]);
    // The old leader replicates 300 entries that only the straggler stores.
    sim.partition(&[&[old, straggler], &majority]);
    propose_all(&mut sim, old, &payloads("conflicting", 300));
    run_until(&mut sim, "the straggler to store them", |s| {
        s.node(straggler).unwrap().log().last_index().0 >= 300
    });
    sim.crash(old);
    // Meanwhile the majority commits 300 different entries.
    run_until(&mut sim, "a majority leader", |s| s.leader().is_some_and(|l| majority.contains(&l)));
    let leader = sim.leader().unwrap();
    let winners = payloads("winner", 300);
    propose_all(&mut sim, leader, &winners);
    run_until(&mut sim, "the majority to apply", |s| {
        majority.iter().all(|id| applied_commands(s, *id) == winners)
    });
    // Reconnect the straggler and count the leader's AppendEntries to it until it has caught up.
    sim.flush_trace();
    let mark = trace.0.borrow().len();
    sim.heal();
    run_until(&mut sim, "the straggler to catch up", |s| applied_commands(s, straggler) == winners);
    sim.flush_trace();
    let tail = String::from_utf8(trace.0.borrow()[mark..].to_vec()).unwrap();
    let pattern = format!(
        "\"ev\":\"send\",\"from\":{},\"to\":{},\"kind\":\"AppendEntries\"",
        leader.0, straggler.0
    );
    let appends = tail.lines().filter(|l| l.contains(&pattern)).count();
    // One probe rejected with a conflict hint, the jump over the conflicting term, and the 300+
    // entries in two batches of 256: a handful of messages, where one-entry-at-a-time
    // backtracking would need hundreds of round trips.
    assert!(appends <= 8, "{appends} AppendEntries to catch up a 300-entry conflict");
}

#[test]
fn messages_per_agreement_are_bounded_in_a_healthy_cluster() {
    let mut sim = cluster(3, 91);
    let leader = elect(&mut sim);
    run_for(&mut sim, 200_000);
    let count = |s: &conclave_sim::Simulation<conclave_raft::Raft>| {
        let by_kind = &s.stats().sent_by_kind;
        by_kind.get("AppendEntries").copied().unwrap_or(0)
            + by_kind.get("AppendEntriesResponse").copied().unwrap_or(0)
    };
    let before = count(&sim);
    let agreements = 50;
    for i in 0..agreements {
        let write = Bytes::from(format!("one-at-a-time-{i}"));
        sim.propose(leader, write.clone()).unwrap();
        run_until(&mut sim, "the write to apply on the leader", |s| {
            applied_commands(s, leader).contains(&write)
        });
    }
    let per_agreement = (count(&sim) - before) as f64 / agreements as f64;
    // One AppendEntries and one answer per follower; the commit index rides on the next heartbeat.
    assert!(per_agreement <= 4.0, "{per_agreement} replication messages per agreement (3 nodes)");
}

#[test]
fn state_survives_a_crash_and_restart_of_every_node() {
    let mut sim = cluster(3, 101);
    let leader = elect(&mut sim);
    let data = payloads("durable", 20);
    propose_all(&mut sim, leader, &data);
    run_until(&mut sim, "all writes everywhere", |s| all_applied(s, &data));
    for id in sim.node_ids().to_vec() {
        sim.crash(id);
    }
    for id in sim.node_ids().to_vec() {
        sim.restart(id);
    }
    let leader = elect(&mut sim);
    // The state machines are rebuilt from the durable logs alone.
    run_until(&mut sim, "re-application after restart", |s| all_applied(s, &data));
    for id in sim.node_ids() {
        assert_eq!(applied_commands(&sim, *id), data, "node {id}");
    }
    let more = payloads("after-restart", 3);
    propose_all(&mut sim, leader, &more);
    run_until(&mut sim, "new writes after restart", |s| all_applied(s, &more));
}

/// Figure 8 of the Raft paper, scripted. S1 leads and replicates an entry to S2 only; S5 wins the
/// next term and writes a conflicting entry at the same index, then dies; S1 returns, wins a later
/// term and replicates its old entry to S3, so a majority stores it. Counting replicas would now
/// commit it, yet S5 could still win an election and overwrite it. Entries go one at a time (so
/// the old entry reaches S3 before the new term's no-op), and pre-vote and check-quorum are off,
/// as in the paper, so that `campaign` elects exactly the node the story needs.
///
/// Returns S1's commit index once it reaches the old entry's index, and how many nodes then hold
/// an entry of S1's current term: the correct rule commits the old entry only through one.
fn figure_8(commit_old_terms_by_counting: bool) -> Result<(Index, usize), conclave_sim::Violation> {
    let options = Options { nodes: 5, seed: 8, ..Options::default() };
    let mut sim = raft_sim(options, move |config| {
        config.append_entries_max = 1;
        config.inflight_messages_max = 1;
        config.pre_vote = false;
        config.check_quorum = false;
        config.bugs.commit_old_terms_by_counting = commit_old_terms_by_counting;
    });
    let [s1, s2, s3, s4, s5] = [1, 2, 3, 4, 5].map(NodeId);
    let campaign_until_leader = |sim: &mut conclave_sim::Simulation<conclave_raft::Raft>,
                                 who: NodeId| {
        for _ in 0..5 {
            sim.with_node(who, |n| n.campaign());
            sim.run_for(30_000)?;
            if sim.leader() == Some(who) {
                return Ok(());
            }
        }
        panic!("node {who} never won");
    };
    // S1 leads, is cut off with S2, and replicates an entry to S2 only.
    campaign_until_leader(&mut sim, s1)?;
    sim.run_for(100_000)?;
    sim.partition(&[&[s1, s2], &[s3, s4, s5]]);
    let old = sim.propose(s1, Bytes::from_static(b"old-term-entry")).unwrap();
    sim.run_until(|s| s.node(s2).unwrap().log().last_index() >= old.index, PATIENCE_US)?;
    sim.crash(s1);
    // S5 wins the next term with S3 and S4; its no-op lands at the same index; it dies at once.
    sim.partition(&[&[s2], &[s3, s4, s5]]);
    sim.with_node(s5, |n| n.campaign());
    sim.run_until(|s| s.leader() == Some(s5), PATIENCE_US)?;
    sim.partition(&[&[s5], &[s2], &[s3, s4]]);
    assert_eq!(sim.node(s5).unwrap().log().entry(old.index).unwrap().kind, EntryKind::Noop);
    sim.crash(s5);
    // S1 returns and wins a later term; it replicates its old entry to S3, one entry at a time.
    sim.restart(s1);
    sim.partition(&[&[s1, s2, s3, s4]]);
    campaign_until_leader(&mut sim, s1)?;
    let term = sim.node(s1).unwrap().term();
    sim.run_until(|s| s.status(s1).unwrap().commit >= old.index, PATIENCE_US)?;
    let holding_current_term = sim
        .node_ids()
        .iter()
        .filter_map(|id| sim.node(*id))
        .filter(|n| n.log().last_term() == term)
        .count();
    Ok((sim.status(s1).unwrap().commit, holding_current_term))
}

#[test]
fn figure_8_an_old_term_entry_is_committed_only_through_a_current_term_entry() {
    let (commit, holding) = figure_8(false).unwrap_or_else(|v| panic!("{}", show(&v)));
    assert!(commit >= Index(3), "the old entry (index 2) was committed alone: commit {commit}");
    assert!(holding >= 3, "committed while only {holding} nodes hold an entry of the current term");
}

#[test]
fn figure_8_counting_old_term_replicas_is_caught() {
    let violation = figure_8(true).expect_err("the broken commit rule went unnoticed");
    assert_eq!(violation.invariant, Invariant::CommitDurability, "{}", show(&violation));
}

#[test]
fn agreement_on_an_unreliable_network() {
    let faults: FaultSet = "drop,duplicate,delay,reorder".parse().unwrap();
    for seed in 0..4 {
        let options = Options {
            nodes: 5,
            seed,
            ops: 300,
            faults,
            drop_probability: 0.05,
            ..Options::default()
        };
        let summary =
            raft_sim(options, |_| {}).run().unwrap_or_else(|v| panic!("seed {seed}: {}", show(&v)));
        assert!(summary.ops_acknowledged >= 300, "seed {seed}: {summary}");
        assert!(
            summary.network.dropped > 0 && summary.network.duplicated > 0,
            "seed {seed}: {summary}"
        );
    }
}

#[test]
fn churn_nodes_crash_and_restart_continuously_and_acknowledged_writes_survive() {
    let faults: FaultSet = "crash".parse().unwrap();
    let mut crashes = 0;
    for seed in 0..4 {
        let options = Options { nodes: 5, seed, ops: 2_000, faults, ..Options::default() };
        let mut sim = raft_sim(options, |_| {});
        // The run ends by checking every acknowledged write against the final applied sequence.
        let summary = sim.run().unwrap_or_else(|v| panic!("seed {seed}: {}", show(&v)));
        assert!(summary.ops_acknowledged >= 2_000, "seed {seed}: {summary}");
        crashes += summary.crashes;
    }
    assert!(crashes >= 40, "only {crashes} crashes over four runs: that is not churn");
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace() {
    let run = |seed| {
        let options =
            Options { nodes: 5, seed, ops: 300, faults: FaultSet::all(), ..Options::default() };
        let (mut sim, trace) = traced_raft_sim(options, |_| {});
        sim.run().unwrap_or_else(|v| panic!("{}", show(&v)));
        sim.flush_trace();
        let bytes = trace.0.borrow().clone();
        bytes
    };
    let first = run(5);
    assert!(first.len() > 10_000, "suspiciously short trace");
    assert_eq!(first, run(5), "same seed, different trace");
    assert_ne!(first, run(6), "different seeds, same trace");
}

#[test]
fn proposals_to_a_follower_are_refused_with_the_leader_as_hint() {
    let mut sim = cluster(3, 111);
    let leader = elect(&mut sim);
    run_for(&mut sim, 100_000);
    let follower = others(&sim, &[leader])[0];
    let refusal = sim.propose(follower, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(refusal, conclave_core::ProposeError::NotLeader { leader_hint: Some(leader) });
    assert!(sim.node(follower).unwrap().status().leader == Some(leader));
}
