//! Unit tests of the Raft handlers, driving single nodes message by message.

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, Envelope, HardState, Index, NodeId, Protocol, Ready, Role, SeededRng, Term,
};

use crate::memory_cluster::MemoryCluster;
use crate::{AppendResult, Config, Message, Raft};

fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

fn node_with(id: u64, n: u64, durable: DurableState, configure: impl Fn(&mut Config)) -> Raft {
    let mut config = Config::new(NodeId(id), ids(n));
    configure(&mut config);
    Raft::new(config, durable, Box::new(SeededRng::new(id))).unwrap()
}

fn node(id: u64, n: u64) -> Raft {
    node_with(id, n, DurableState::default(), |_| {})
}

fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms.iter().enumerate().map(|(i, t)| Entry::noop(Index(i as u64 + 1), Term(*t))).collect()
}

fn durable(term: u64, terms: &[u64]) -> DurableState {
    DurableState {
        hard_state: HardState { term: Term(term), vote: None, commit: Index(0) },
        snapshot: None,
        entries: log_of(terms),
    }
}

fn msg(from: u64, to: u64, msg: Message) -> Envelope<Message> {
    Envelope { from: NodeId(from), to: NodeId(to), msg }
}

/// Takes a Ready and reports its entries durable, as a driver would. Generic so that a cluster
/// node is driven through its contract check, not around it.
fn drive<P: Protocol<Message = Message>>(node: &mut P) -> Ready<Message> {
    let ready = node.ready();
    if let Some(last) = ready.entries.last() {
        node.on_persisted(last.index, last.term);
    }
    ready
}

fn tick_until_role(node: &mut Raft, role: Role) {
    for _ in 0..100 {
        if node.role() == role {
            return;
        }
        node.tick();
    }
    panic!("never became {role}");
}

#[test]
fn pre_vote_does_not_raise_anyones_term() {
    let mut candidate = node(1, 3);
    tick_until_role(&mut candidate, Role::PreCandidate);
    assert_eq!(candidate.term(), Term(0));
    let ready = drive(&mut candidate);
    let requests = &ready.messages;
    assert_eq!(requests.len(), 2, "pre-votes go out at once: they promise nothing");
    assert!(ready.persisted_messages.is_empty());
    let mut voter = node(2, 3);
    voter.step(requests[0].clone());
    assert_eq!(voter.term(), Term(0), "a pre-vote must not raise the voter's term");
    let ready = drive(&mut voter);
    assert!(matches!(
        ready.persisted_messages[0].msg,
        Message::RequestVoteResponse { granted: true, pre_vote: true, term: Term(1) }
    ));
    candidate.step(ready.persisted_messages[0].clone());
    assert_eq!(candidate.role(), Role::Candidate);
    assert_eq!(candidate.term(), Term(1));
}

#[test]
fn vote_is_persisted_before_the_grant_is_sent() {
    let mut voter = node(2, 3);
    let request = Message::RequestVote {
        term: Term(5),
        last_log_index: Index(0),
        last_log_term: Term(0),
        pre_vote: false,
        leader_transfer: false,
    };
    voter.step(msg(1, 2, request));
    let ready = drive(&mut voter);
    assert_eq!(ready.hard_state.unwrap().vote, Some(NodeId(1)));
    assert_eq!(ready.hard_state.unwrap().term, Term(5));
    assert!(ready.messages.is_empty(), "a granted vote must wait for the disk");
    assert!(matches!(
        ready.persisted_messages[0].msg,
        Message::RequestVoteResponse { granted: true, .. }
    ));
}

#[test]
fn one_vote_per_term_and_only_for_an_up_to_date_log() {
    // Without check-quorum: a restarted node would otherwise refuse every vote for one
    // election timeout (it may have acknowledged a leader whose lease still runs).
    let mut voter = node_with(3, 3, durable(2, &[1, 2]), |c| c.check_quorum = false);
    let ask = |last_index, last_term| Message::RequestVote {
        term: Term(3),
        last_log_index: Index(last_index),
        last_log_term: Term(last_term),
        pre_vote: false,
        leader_transfer: false,
    };
    voter.step(msg(1, 3, ask(5, 1)));
    let ready = drive(&mut voter);
    assert!(matches!(
        ready.persisted_messages[0].msg,
        Message::RequestVoteResponse { granted: false, .. }
    ));
    voter.step(msg(1, 3, ask(2, 2)));
    let ready = drive(&mut voter);
    assert!(matches!(
        ready.persisted_messages[0].msg,
        Message::RequestVoteResponse { granted: true, .. }
    ));
    voter.step(msg(2, 3, ask(9, 2)));
    let ready = drive(&mut voter);
    assert!(matches!(
        ready.persisted_messages[0].msg,
        Message::RequestVoteResponse { granted: false, .. }
    ));
}

#[test]
fn a_follower_hearing_its_leader_ignores_vote_requests() {
    let mut follower = node(2, 3);
    follower.step(msg(1, 2, Message::Heartbeat { term: Term(1), commit: Index(0), read_round: 0 }));
    drive(&mut follower);
    let request = Message::RequestVote {
        term: Term(9),
        last_log_index: Index(9),
        last_log_term: Term(9),
        pre_vote: false,
        leader_transfer: false,
    };
    follower.step(msg(3, 2, request.clone()));
    assert_eq!(follower.term(), Term(1), "in the leader's lease a vote request changes nothing");
    assert!(drive(&mut follower).persisted_messages.is_empty());
    for _ in 0..10 {
        follower.tick();
    }
    follower.step(msg(3, 2, request));
    assert_eq!(
        follower.term(),
        Term(9),
        "after an election timeout without the leader, it listens"
    );
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut cluster = MemoryCluster::new(3, 5, false, |_| {});
    let leader = cluster.elect(200).unwrap();
    let node = cluster.node(leader);
    // Cut it off: tick it alone, discarding what it sends.
    // Within one election timeout of its last answer it steps down, not later.
    for _ in 0..node.config().election_ticks {
        node.tick();
        drive(node);
    }
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.status().leader, None);
}

#[test]
fn leader_skips_a_whole_conflicting_term_per_round_trip() {
    // The leader holds 1 then 100 entries of term 2; the follower 1 then 100 entries of term 3
    // from a leader that never committed them. One-entry-at-a-time backtracking would take about
    // 100 round trips; the conflict-term hint takes the whole term in one.
    let mut leader_terms = vec![1];
    leader_terms.extend(std::iter::repeat_n(2, 100));
    let mut follower_terms = vec![1];
    follower_terms.extend(std::iter::repeat_n(3, 100));
    let mut leader = node_with(1, 3, durable(4, &leader_terms), |c| c.pre_vote = false);
    let mut follower = node_with(2, 3, durable(4, &follower_terms), |_| {});
    tick_until_role(&mut leader, Role::Candidate);
    drive(&mut leader);
    let term = leader.term();
    // Node 3 (not modelled) grants the vote; the follower would refuse: its last term is later.
    leader.step(msg(3, 1, Message::RequestVoteResponse { term, granted: true, pre_vote: false }));
    assert_eq!(leader.role(), Role::Leader);
    let to_follower = |ready: Ready<Message>| -> Vec<Envelope<Message>> {
        ready
            .messages
            .into_iter()
            .chain(ready.persisted_messages)
            .filter(|m| m.to == NodeId(2))
            .collect()
    };
    let mut inbox = to_follower(drive(&mut leader));
    let mut round_trips = 0;
    while !inbox.is_empty() && round_trips < 50 {
        round_trips += 1;
        for m in inbox.drain(..) {
            follower.step(m);
        }
        for reply in all_messages(drive(&mut follower)) {
            leader.step(reply);
        }
        inbox = to_follower(drive(&mut leader));
    }
    assert_eq!(follower.log().last_index(), leader.log().last_index());
    for i in 1..=leader.log().last_index().0 {
        assert_eq!(follower.log().term(Index(i)), leader.log().term(Index(i)), "index {i}");
    }
    // Probe at the end (rejected, hint: term 3 starts at 2), then the whole suffix in one go.
    assert!(round_trips <= 3, "took {round_trips} round trips");
}

/// Every message of a Ready, in the order a driver would send them.
fn all_messages(ready: Ready<Message>) -> Vec<Envelope<Message>> {
    ready.messages.into_iter().chain(ready.persisted_messages).collect()
}

#[test]
fn stale_rejections_are_ignored_while_pipelining() {
    let mut cluster = MemoryCluster::new(3, 9, false, |_| {});
    let leader = cluster.elect(200).unwrap();
    for i in 0..5 {
        cluster.propose(leader, Bytes::from(vec![i])).unwrap();
    }
    cluster.settle();
    let follower = NodeId(leader.0 % 3 + 1);
    let term = cluster.node(leader).term();
    let matched = cluster.node(leader).progress[&follower].matched;
    let stale = Message::AppendEntriesResponse {
        term,
        result: AppendResult::Reject {
            prev_index: Index(1),
            hint_index: Index(1),
            hint_term: None,
        },
    };
    cluster.node(leader).step(msg(follower.0, leader.0, stale));
    assert_eq!(cluster.node(leader).progress[&follower].matched, matched);
    assert_eq!(cluster.node(leader).progress[&follower].state, crate::ReplicationState::Replicate);
}

#[test]
fn old_term_entries_are_not_committed_by_counting() {
    // Figure 8: leader of term 4 holds an entry of term 2 at index 2 that a majority stores; it
    // must not commit it until an entry of term 4 is stored by a majority too.
    let mut leader = node_with(1, 3, durable(3, &[1, 2]), |c| c.pre_vote = false);
    tick_until_role(&mut leader, Role::Candidate);
    drive(&mut leader);
    let term = leader.term();
    leader.step(msg(2, 1, Message::RequestVoteResponse { term, granted: true, pre_vote: false }));
    assert_eq!(leader.role(), Role::Leader);
    drive(&mut leader);
    // Follower 2 reports it holds index 2 (the old entry) but not the no-op at 3.
    let ack = |i| Message::AppendEntriesResponse {
        term,
        result: AppendResult::Success { match_index: Index(i) },
    };
    leader.step(msg(2, 1, ack(2)));
    assert_eq!(leader.log().committed(), Index(0), "index 2 is from an older term");
    leader.step(msg(2, 1, ack(3)));
    assert_eq!(leader.log().committed(), Index(3), "the no-op commits everything before it");
}

#[test]
fn restart_rejects_contradictory_durable_state() {
    let bad = DurableState {
        hard_state: HardState { term: Term(1), vote: None, commit: Index(5) },
        snapshot: None,
        entries: log_of(&[1]),
    };
    let err =
        Raft::new(Config::new(NodeId(1), ids(1)), bad, Box::new(SeededRng::new(1))).err().unwrap();
    assert!(err.to_string().contains("commit 5"), "{err}");
}

#[test]
fn misaddressed_messages_are_ignored_and_strangers_deposing_a_live_leader_too() {
    let heartbeat = |term| Message::Heartbeat { term: Term(term), commit: Index(0), read_round: 0 };
    let mut n = node(1, 3);
    n.step(msg(2, 3, heartbeat(9)));
    assert_eq!(n.term(), Term(0));
    assert!(!n.has_ready());
    // Leaderless, a member may hear from a node it does not know yet: a newer voter (a member
    // that missed the configuration entries adding it would otherwise never follow it).
    n.step(msg(7, 1, heartbeat(9)));
    assert_eq!((n.term(), n.status().leader), (Term(9), Some(NodeId(7))));
    // Following a live leader, a member ignores a newer term from outside its membership: anyone
    // who reached it could otherwise depose its leader.
    let mut n = node(1, 3);
    n.step(msg(2, 1, heartbeat(1)));
    drive(&mut n);
    n.step(msg(7, 1, heartbeat(9)));
    assert_eq!((n.term(), n.status().leader), (Term(1), Some(NodeId(2))));
    assert!(!n.has_ready());
    // A node outside its own membership (waiting to be added) may be added by a leader it does
    // not know yet (one outside its bootstrap voters), so it hears strangers' leader messages.
    let mut spare = node_with(4, 3, DurableState::default(), |_| {});
    spare.step(msg(2, 4, heartbeat(1)));
    drive(&mut spare);
    spare.step(msg(7, 4, heartbeat(9)));
    assert_eq!((spare.term(), spare.status().leader), (Term(9), Some(NodeId(7))));
}

/// A cluster that snapshots every `every` commands, keeping `trailing` entries behind.
fn snapshotting_cluster(seed: u64, every: u64, trailing: u64, chunk: usize) -> MemoryCluster {
    MemoryCluster::new(3, seed, true, move |c| {
        c.snapshot_entries = every;
        c.snapshot_trailing_entries = trailing;
        c.snapshot_chunk_bytes = chunk;
    })
}

#[test]
fn the_state_machine_is_snapshotted_every_n_entries_and_the_log_compacted() {
    let mut cluster = snapshotting_cluster(21, 50, 10, 1 << 20);
    let leader = cluster.elect(200).unwrap();
    for i in 0..120 {
        cluster.propose(leader, Bytes::from(format!("c{i}"))).unwrap();
        cluster.settle();
    }
    cluster.tick();
    for node in &cluster.nodes {
        let snapshot = node.status().snapshot_index;
        assert!(snapshot >= Index(100), "node {}: snapshot at {snapshot}", node.id());
        // Compacted behind the snapshot, keeping the trailing entries.
        assert_eq!(node.log().first_index(), Index(snapshot.0 - 10 + 1), "node {}", node.id());
    }
}

#[test]
fn a_follower_behind_the_compacted_log_is_caught_up_by_a_chunked_snapshot() {
    let mut cluster = snapshotting_cluster(22, 40, 5, 64);
    let leader = cluster.elect(200).unwrap();
    let lagging = NodeId(leader.0 % 3 + 1);
    cluster.isolated.insert(lagging);
    let data: Vec<Bytes> = (0..200).map(|i| Bytes::from(format!("value-{i:04}"))).collect();
    for d in &data {
        cluster.propose(leader, d.clone()).unwrap();
        cluster.settle();
    }
    assert!(cluster.node(leader).log().first_index() > Index(10), "the leader compacted");
    // Count the chunks; lose the second one once: the transfer must resume and finish.
    let chunks = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = chunks.clone();
    cluster.lose = Some(Box::new(move |m| {
        if matches!(m.msg, Message::InstallSnapshot { .. }) {
            seen.set(seen.get() + 1);
            return seen.get() == 2;
        }
        false
    }));
    cluster.isolated.clear();
    for _ in 0..20 {
        cluster.tick();
    }
    assert_eq!(cluster.snapshots_installed[lagging.0 as usize - 1], 1);
    assert!(
        chunks.get() > 3,
        "a snapshot of 200 entries in 64-byte chunks: {} chunks",
        chunks.get()
    );
    assert_eq!(cluster.commands(lagging), data, "the follower's state machine after the snapshot");
    assert_eq!(cluster.node(lagging).log().committed(), cluster.node(leader).log().committed());
    // It keeps replicating normally afterwards.
    cluster.propose(leader, Bytes::from_static(b"after")).unwrap();
    cluster.settle();
    cluster.tick();
    assert_eq!(cluster.commands(lagging).last().unwrap(), &Bytes::from_static(b"after"));
}

#[test]
fn a_node_restarts_from_its_snapshot_and_the_log_after_it() {
    let snapshot = conclave_core::Snapshot {
        index: Index(5),
        term: Term(2),
        membership: conclave_core::Membership::new(ids(3)),
        data: Bytes::from_static(b"image"),
    };
    let durable = DurableState {
        hard_state: HardState { term: Term(3), vote: None, commit: Index(6) },
        snapshot: Some(snapshot),
        entries: log_of(&[1, 1, 2, 2, 2, 3, 3]),
    };
    let node = node_with(1, 3, durable, |_| {});
    assert_eq!(node.status().snapshot_index, Index(5));
    assert_eq!((node.log().first_index(), node.log().last_index()), (Index(6), Index(7)));
    assert_eq!((node.log().committed(), node.log().applied()), (Index(6), Index(5)));
    // A log that does not continue the snapshot is refused.
    let gap = DurableState {
        hard_state: HardState { term: Term(3), vote: None, commit: Index(0) },
        snapshot: Some(conclave_core::Snapshot {
            index: Index(2),
            term: Term(1),
            membership: conclave_core::Membership::new(ids(3)),
            data: Bytes::new(),
        }),
        entries: vec![Entry::noop(Index(5), Term(2))],
    };
    let err =
        Raft::new(Config::new(NodeId(1), ids(3)), gap, Box::new(SeededRng::new(1))).err().unwrap();
    assert!(err.to_string().contains("resumes at 5"), "{err}");
}

#[test]
fn leadership_moves_to_an_up_to_date_follower_at_once() {
    let mut cluster = MemoryCluster::new(3, 31, true, |_| {});
    let old = cluster.elect(200).unwrap();
    cluster.tick();
    let target = NodeId(old.0 % 3 + 1);
    let term = cluster.node(old).term();
    cluster.node(old).transfer_leadership(target).unwrap();
    cluster.settle();
    // No election timeout passed: the target won right away, in the next term, despite the
    // lease every follower was in.
    assert_eq!(cluster.leader(), Some(target));
    assert_eq!(cluster.node(target).term(), Term(term.0 + 1));
    assert_eq!(cluster.node(old).role(), Role::Follower);
    cluster.propose(target, Bytes::from_static(b"under the new leader")).unwrap();
}

#[test]
fn a_lagging_target_is_caught_up_before_it_takes_over() {
    let mut cluster = MemoryCluster::new(3, 32, true, |_| {});
    let old = cluster.elect(200).unwrap();
    let target = NodeId(old.0 % 3 + 1);
    cluster.isolated.insert(target);
    for i in 0..20 {
        cluster.propose(old, Bytes::from(format!("w{i}"))).unwrap();
    }
    cluster.settle();
    cluster.isolated.clear();
    cluster.node(old).transfer_leadership(target).unwrap();
    // While the transfer runs the leader accepts nothing new.
    assert_eq!(
        cluster.propose(old, Bytes::from_static(b"x")),
        Err(conclave_core::ProposeError::LeadershipTransfer)
    );
    cluster.settle();
    assert_eq!(cluster.leader(), Some(target));
    // It won with the whole log: every write the old leader committed is there.
    assert_eq!(cluster.node(target).log().committed(), cluster.node(target).log().last_index());
    cluster.tick();
    let commands = cluster.commands(target);
    assert_eq!(commands.len(), 20, "{commands:?}");
}

#[test]
fn a_transfer_to_an_unreachable_node_is_abandoned_after_an_election_timeout() {
    let mut cluster = MemoryCluster::new(3, 33, false, |_| {});
    let leader = cluster.elect(200).unwrap();
    let target = NodeId(leader.0 % 3 + 1);
    cluster.isolated.insert(target);
    cluster.node(leader).transfer_leadership(target).unwrap();
    cluster.settle();
    assert_eq!(cluster.node(leader).leader_transfer_target(), Some(target));
    let ticks = cluster.node(leader).config().election_ticks;
    for _ in 0..ticks {
        cluster.tick();
    }
    assert_eq!(cluster.leader(), Some(leader), "the leader carries on");
    assert_eq!(cluster.node(leader).leader_transfer_target(), None);
    cluster.propose(leader, Bytes::from_static(b"accepted again")).unwrap();
}

#[test]
fn only_the_leader_transfers_and_only_to_a_voter() {
    let mut cluster = MemoryCluster::new(3, 34, false, |_| {});
    let leader = cluster.elect(200).unwrap();
    cluster.tick();
    let follower = NodeId(leader.0 % 3 + 1);
    assert_eq!(
        cluster.node(follower).transfer_leadership(leader),
        Err(crate::TransferError::NotLeader { leader_hint: Some(leader) })
    );
    assert_eq!(
        cluster.node(leader).transfer_leadership(NodeId(9)),
        Err(crate::TransferError::NotAVoter(NodeId(9)))
    );
    // A TimeoutNow from someone who is not the leader is ignored.
    let term = cluster.node(follower).term();
    let other = NodeId(6 - leader.0 - follower.0);
    cluster.node(follower).step(msg(other.0, follower.0, Message::TimeoutNow { term }));
    assert_eq!(cluster.node(follower).role(), Role::Follower);
}
