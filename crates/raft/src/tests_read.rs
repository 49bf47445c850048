//! Unit tests of linearizable reads: ReadIndex on the leader (its heartbeat round, the wait for
//! the term's first commit), follower reads forwarded to the leader, timeouts and lost
//! leadership, the leader lease and what ends it, and the vote refusal that makes the lease hold.

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, Envelope, HardState, Index, MembershipChange, NodeId, Protocol, ReadError,
    ReadMode, ReadState, Ready, Role, SeededRng, Term,
};

use crate::memory_cluster::MemoryCluster;
use crate::{AppendResult, Config, Message, Raft};

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().map(|i| NodeId(*i)).collect()
}

fn env(from: NodeId, to: NodeId, msg: Message) -> Envelope<Message> {
    Envelope { from, to, msg }
}

fn ok(id: u64, index: Index) -> ReadState {
    ReadState { id, outcome: Ok(index) }
}

/// Elects a leader among `n` voters, writes `writes` commands and ticks once, so that the
/// followers know the commit index and the leader holds a lease.
fn cluster_with_leader(
    n: u64,
    seed: u64,
    writes: usize,
    configure: impl Fn(&mut Config),
) -> (MemoryCluster, NodeId) {
    let mut c = MemoryCluster::new(n, seed, true, configure);
    let leader = c.elect(300).expect("a leader");
    for i in 0..writes {
        c.propose(leader, Bytes::from(format!("w{i}"))).unwrap();
    }
    c.settle();
    c.tick();
    assert_eq!(c.leader(), Some(leader));
    (c, leader)
}

fn others(c: &MemoryCluster, leader: NodeId) -> Vec<NodeId> {
    c.nodes.iter().map(|n| n.id()).filter(|id| *id != leader).collect()
}

fn committed(c: &mut MemoryCluster, id: NodeId) -> Index {
    c.node(id).log().committed()
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

/// The heartbeat rounds a Ready sends, by recipient.
fn heartbeat_rounds(ready: &Ready<Message>) -> Vec<(NodeId, u64)> {
    ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .filter_map(|m| match m.msg {
            Message::Heartbeat { read_round, .. } => Some((m.to, read_round)),
            _ => None,
        })
        .collect()
}

#[test]
fn read_index_on_a_single_node_is_answered_at_its_commit_index() {
    let (mut c, leader) = cluster_with_leader(1, 201, 3, |_| {});
    let commit = committed(&mut c, leader);
    assert_eq!(commit, Index(4), "the no-op and three writes");
    c.read(leader, 7, ReadMode::ReadIndex).unwrap();
    c.read(leader, 8, ReadMode::Lease).unwrap();
    c.settle();
    assert_eq!(c.take_reads(leader), vec![ok(7, commit), ok(8, commit)]);
}

#[test]
fn read_index_on_a_leader_waits_for_a_quorum_to_answer_its_heartbeat_round() {
    let (mut c, leader) = cluster_with_leader(3, 202, 2, |_| {});
    let commit = committed(&mut c, leader);
    let f = others(&c, leader);
    // Every answer to a heartbeat is lost: the round confirms nothing.
    c.lose = Some(Box::new(|m| matches!(m.msg, Message::HeartbeatResponse { .. })));
    c.read(leader, 1, ReadMode::ReadIndex).unwrap();
    c.settle();
    assert!(c.take_reads(leader).is_empty(), "no outcome before a quorum answered");
    // Answers from one follower (with the leader, two of three) are enough.
    let lost_from = f[0];
    c.lose = Some(Box::new(move |m| {
        m.from == lost_from && matches!(m.msg, Message::HeartbeatResponse { .. })
    }));
    c.tick();
    assert_eq!(c.take_reads(leader), vec![ok(1, commit)]);
}

#[test]
fn a_read_is_confirmed_only_by_answers_to_a_round_sent_after_it() {
    let (mut c, leader) = cluster_with_leader(3, 203, 1, |_| {});
    let commit = committed(&mut c, leader);
    let f = others(&c, leader);
    let node = c.node(leader);
    let before = node.reads.seq;
    node.read(5, ReadMode::ReadIndex).unwrap();
    let ready = drive(node);
    assert!(ready.reads.is_empty());
    // The read asks for a round at once, without waiting for the heartbeat tick.
    let rounds = heartbeat_rounds(&ready);
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    let round = rounds[0].1;
    assert!(round > before);
    assert!(rounds.iter().all(|(_, r)| *r == round));
    // An answer to an older round (sent before the read arrived) does not confirm it.
    let term = node.term();
    let answer = |read_round| Message::HeartbeatResponse { term, read_round };
    node.step(env(f[0], leader, answer(before)));
    node.step(env(f[1], leader, answer(before)));
    assert!(drive(node).reads.is_empty());
    node.step(env(f[1], leader, answer(round)));
    assert_eq!(drive(node).reads, vec![ok(5, commit)]);
}

#[test]
fn a_new_leader_answers_reads_only_after_committing_an_entry_of_its_term() {
    // Node 1 restarts holding two uncommitted entries of term 1 and wins term 2.
    let durable = DurableState {
        hard_state: HardState { term: Term(1), vote: None, commit: Index(0) },
        snapshot: None,
        entries: vec![Entry::noop(Index(1), Term(1)), Entry::noop(Index(2), Term(1))],
    };
    let mut leader =
        Raft::new(Config::new(NodeId(1), ids(&[1, 2, 3])), durable, Box::new(SeededRng::new(1)))
            .unwrap();
    let (one, two) = (NodeId(1), NodeId(2));
    leader.campaign();
    let grant = |pre_vote| Message::RequestVoteResponse { term: Term(2), granted: true, pre_vote };
    leader.step(env(two, one, grant(true)));
    drive(&mut leader);
    leader.step(env(two, one, grant(false)));
    assert_eq!(leader.role(), Role::Leader);
    drive(&mut leader);
    leader.read(1, ReadMode::ReadIndex).unwrap();
    leader.read(2, ReadMode::Lease).unwrap();
    let ready = drive(&mut leader);
    assert!(ready.reads.is_empty(), "its commit index (0) is not the cluster's yet");
    assert!(heartbeat_rounds(&ready).is_empty(), "no round before the commit");
    // Even a quorum answering a heartbeat round does not make it serve before that commit.
    leader.tick();
    let round = heartbeat_rounds(&drive(&mut leader))[0].1;
    leader.step(env(two, one, Message::HeartbeatResponse { term: Term(2), read_round: round }));
    assert!(drive(&mut leader).reads.is_empty());
    // Nor is that answered round a lease before the commit.
    assert!(!leader.lease_valid());
    leader.read(3, ReadMode::Lease).unwrap();
    assert!(drive(&mut leader).reads.is_empty());
    // Its no-op (index 3) commits, with everything before it.
    let ack = AppendResult::Success { match_index: Index(3) };
    leader.step(env(two, one, Message::AppendEntriesResponse { term: Term(2), result: ack }));
    assert_eq!(leader.log().committed(), Index(3));
    let ready = drive(&mut leader);
    assert!(ready.reads.is_empty(), "now a round confirms them");
    let round = heartbeat_rounds(&ready)[0].1;
    leader.step(env(two, one, Message::HeartbeatResponse { term: Term(2), read_round: round }));
    assert_eq!(drive(&mut leader).reads, vec![ok(1, Index(3)), ok(2, Index(3)), ok(3, Index(3))]);
    assert!(leader.lease_valid());
}

#[test]
fn a_follower_read_is_forwarded_and_answered_with_the_leaders_commit_index() {
    let (mut c, leader) = cluster_with_leader(3, 204, 0, |_| {});
    let follower = others(&c, leader)[0];
    // Writes the follower holds but does not know committed yet (no heartbeat since).
    for i in 0..4 {
        c.propose(leader, Bytes::from(format!("x{i}"))).unwrap();
    }
    c.settle();
    let commit = committed(&mut c, leader);
    assert!(committed(&mut c, follower) < commit);
    c.read(follower, 11, ReadMode::ReadIndex).unwrap();
    c.settle();
    assert_eq!(c.take_reads(follower), vec![ok(11, commit)]);
    assert!(c.take_reads(leader).is_empty(), "the leader answers by message, not locally");
    // With the leader's lease, one round trip to the leader and no heartbeat round.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    c.lose = Some(Box::new(move |m| {
        log.borrow_mut().push(conclave_core::MessageMeta::kind(&m.msg));
        false
    }));
    c.read(follower, 12, ReadMode::Lease).unwrap();
    c.settle();
    assert_eq!(c.take_reads(follower), vec![ok(12, commit)]);
    assert_eq!(*seen.borrow(), vec!["ReadIndexRequest", "ReadIndexResponse"]);
}

#[test]
fn a_learner_reads_through_the_leader() {
    let mut c = MemoryCluster::with_spares(3, 1, 205, true, |_| {});
    let leader = c.elect(300).unwrap();
    let learner = NodeId(4);
    c.node(leader).change_membership(MembershipChange::AddLearner(learner)).unwrap();
    c.settle();
    c.tick();
    let commit = committed(&mut c, leader);
    c.read(learner, 3, ReadMode::ReadIndex).unwrap();
    c.settle();
    assert_eq!(c.take_reads(learner), vec![ok(3, commit)]);
}

#[test]
fn a_read_on_a_node_without_a_leader_fails_at_once() {
    let mut c = MemoryCluster::with_spares(3, 1, 206, true, |_| {});
    let no_leader = Err(ReadError::NotLeader { leader_hint: None });
    for id in 1..=4 {
        assert_eq!(c.read(NodeId(id), 1, ReadMode::ReadIndex), no_leader, "node {id}");
        assert_eq!(c.read(NodeId(id), 2, ReadMode::Lease), no_leader, "node {id}");
    }
    // A (pre-)candidate knows no leader either.
    c.node(NodeId(1)).campaign();
    assert_eq!(c.node(NodeId(1)).role(), Role::PreCandidate);
    assert_eq!(c.read(NodeId(1), 3, ReadMode::ReadIndex), no_leader);
    c.settle();
    for id in 1..=4 {
        assert!(c.take_reads(NodeId(id)).is_empty(), "a refused read has no outcome later");
    }
}

#[test]
fn reads_beyond_the_in_flight_limit_are_refused_as_busy() {
    let (mut c, leader) = cluster_with_leader(3, 207, 0, |c| c.reads_in_flight_max = 2);
    c.isolated.extend(others(&c, leader));
    c.read(leader, 1, ReadMode::ReadIndex).unwrap();
    c.read(leader, 2, ReadMode::ReadIndex).unwrap();
    assert_eq!(c.read(leader, 3, ReadMode::ReadIndex), Err(ReadError::Busy));
}

/// Ticks until `id` reports an outcome for a read (at most `max` ticks); returns the outcomes and
/// the ticks it took.
fn tick_until_outcome(c: &mut MemoryCluster, id: NodeId, max: u32) -> (Vec<ReadState>, u32) {
    for ticks in 1..=max {
        c.tick();
        let outcomes = c.take_reads(id);
        if !outcomes.is_empty() {
            return (outcomes, ticks);
        }
    }
    panic!("no outcome within {max} ticks");
}

#[test]
fn a_leader_cut_off_from_its_followers_never_answers_a_read() {
    let (mut c, leader) = cluster_with_leader(3, 208, 2, |_| {});
    let election_ticks = c.node(leader).config().election_ticks;
    c.isolated.extend(others(&c, leader));
    c.read(leader, 1, ReadMode::ReadIndex).unwrap();
    c.settle();
    let (outcomes, ticks) = tick_until_outcome(&mut c, leader, 3 * election_ticks);
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(outcomes[0].outcome, Err(ReadError::Timeout | ReadError::NotLeader { .. })),
        "{outcomes:?}"
    );
    assert!(ticks <= election_ticks, "failed after {ticks} ticks");
    for _ in 0..3 * election_ticks {
        c.tick();
        assert!(c.take_reads(leader).is_empty(), "one outcome per read");
    }
}

#[test]
fn without_check_quorum_a_cut_off_leader_times_its_reads_out() {
    let (mut c, leader) = cluster_with_leader(3, 209, 2, |c| c.check_quorum = false);
    let election_ticks = c.node(leader).config().election_ticks;
    // Without check-quorum voters do not honour a lease, so there is none to use.
    assert!(!c.node(leader).lease_valid());
    c.isolated.extend(others(&c, leader));
    c.read(leader, 1, ReadMode::ReadIndex).unwrap();
    c.read(leader, 2, ReadMode::Lease).unwrap();
    c.settle();
    assert!(c.take_reads(leader).is_empty());
    let (outcomes, ticks) = tick_until_outcome(&mut c, leader, 3 * election_ticks);
    assert_eq!(ticks, election_ticks, "a read fails after exactly an election timeout");
    let timeout = |id| ReadState { id, outcome: Err(ReadError::Timeout) };
    assert_eq!(outcomes, vec![timeout(1), timeout(2)]);
    assert_eq!(c.node(leader).role(), Role::Leader, "it still believes it leads");
}

#[test]
fn a_leader_that_loses_leadership_fails_its_pending_reads() {
    let (mut c, old) = cluster_with_leader(3, 210, 1, |_| {});
    let target = others(&c, old)[0];
    c.lose = Some(Box::new(|m| matches!(m.msg, Message::HeartbeatResponse { .. })));
    c.read(old, 1, ReadMode::ReadIndex).unwrap();
    c.settle();
    assert!(c.take_reads(old).is_empty());
    c.node(old).transfer_leadership(target).unwrap();
    c.settle();
    assert_eq!(c.leader(), Some(target));
    let outcomes = c.take_reads(old);
    assert_eq!(outcomes.len(), 1);
    assert!(matches!(outcomes[0].outcome, Err(ReadError::NotLeader { .. })), "{outcomes:?}");
}

#[test]
fn a_forwarded_read_that_gets_no_answer_times_out() {
    let (mut c, leader) = cluster_with_leader(3, 211, 1, |_| {});
    let follower = others(&c, leader)[0];
    let election_ticks = c.node(leader).config().election_ticks;
    c.lose = Some(Box::new(|m| matches!(m.msg, Message::ReadIndexRequest { .. })));
    c.read(follower, 4, ReadMode::ReadIndex).unwrap();
    c.settle();
    let (outcomes, ticks) = tick_until_outcome(&mut c, follower, 3 * election_ticks);
    assert_eq!(outcomes, vec![ReadState { id: 4, outcome: Err(ReadError::Timeout) }]);
    assert_eq!(ticks, election_ticks);
    assert_eq!(c.leader(), Some(leader), "the leader was there all along");
}

#[test]
fn a_forwarded_read_fails_when_its_leader_is_replaced() {
    let (mut c, old) = cluster_with_leader(3, 212, 1, |_| {});
    let f = others(&c, old);
    let (reader, target) = (f[0], f[1]);
    // The leader never gets the request; leadership then moves to the other follower.
    c.lose = Some(Box::new(|m| matches!(m.msg, Message::ReadIndexRequest { .. })));
    c.read(reader, 9, ReadMode::ReadIndex).unwrap();
    c.settle();
    c.node(old).transfer_leadership(target).unwrap();
    c.settle();
    assert_eq!(c.leader(), Some(target));
    let outcomes = c.take_reads(reader);
    assert_eq!(outcomes.len(), 1);
    assert!(matches!(outcomes[0].outcome, Err(ReadError::NotLeader { .. })), "{outcomes:?}");
}

#[test]
fn a_lease_read_is_served_without_a_round_trip_while_the_lease_holds() {
    let (mut c, leader) = cluster_with_leader(3, 213, 3, |_| {});
    let commit = committed(&mut c, leader);
    assert!(c.node(leader).lease_valid());
    // Nothing can travel: whatever is answered now is answered from the lease alone.
    c.isolated.extend(others(&c, leader));
    let delivered = c.messages_delivered;
    c.read(leader, 1, ReadMode::Lease).unwrap();
    c.read(leader, 2, ReadMode::ReadIndex).unwrap();
    c.settle();
    assert_eq!(c.take_reads(leader), vec![ok(1, commit)], "ReadIndex still waits for a round");
    assert_eq!(c.messages_delivered, delivered);
}

#[test]
fn a_lease_read_after_the_lease_expired_takes_a_heartbeat_round() {
    let (mut c, leader) = cluster_with_leader(3, 214, 1, |_| {});
    let commit = committed(&mut c, leader);
    let config = c.node(leader).config().clone();
    let span = config.election_ticks - config.lease_margin_ticks;
    // The last round a quorum answered went out on the last tick; cut the followers off.
    c.isolated.extend(others(&c, leader));
    for _ in 1..span {
        c.tick();
    }
    assert!(c.node(leader).lease_valid(), "still within the lease");
    c.read(leader, 1, ReadMode::Lease).unwrap();
    c.settle();
    assert_eq!(c.take_reads(leader), vec![ok(1, commit)]);
    c.tick();
    assert!(!c.node(leader).lease_valid(), "the lease ran out");
    assert_eq!(c.node(leader).role(), Role::Leader, "though it still leads");
    c.read(leader, 2, ReadMode::Lease).unwrap();
    c.settle();
    assert!(c.take_reads(leader).is_empty(), "a lease read without a lease waits for a round");
    // Back in touch, the next round answers it and renews the lease.
    c.isolated.clear();
    c.tick();
    assert_eq!(c.take_reads(leader), vec![ok(2, commit)]);
    assert!(c.node(leader).lease_valid());
}

#[test]
fn the_lease_is_never_used_after_a_timeout_now_went_out() {
    let (mut c, leader) = cluster_with_leader(3, 215, 1, |_| {});
    let commit = committed(&mut c, leader);
    let f = others(&c, leader);
    let target = f[0];
    let election_ticks = c.node(leader).config().election_ticks;
    assert!(c.node(leader).lease_valid());
    // The target is up to date: the TimeoutNow goes out at once (and is lost). Had it arrived,
    // the target's election would pass the voters' lease.
    c.isolated.insert(target);
    c.node(leader).transfer_leadership(target).unwrap();
    c.settle();
    assert!(!c.node(leader).lease_valid());
    // The transfer is abandoned; the leader carries on with the other follower answering every
    // round, but for the rest of its term its lease means nothing.
    for _ in 0..election_ticks {
        c.tick();
    }
    assert_eq!(c.node(leader).leader_transfer_target(), None);
    assert_eq!(c.leader(), Some(leader));
    assert!(!c.node(leader).lease_valid());
    c.isolated.insert(f[1]);
    c.read(leader, 1, ReadMode::Lease).unwrap();
    c.settle();
    assert!(c.take_reads(leader).is_empty(), "not served from the lease");
    c.isolated.clear();
    c.tick();
    assert_eq!(c.take_reads(leader), vec![ok(1, commit)]);
}

#[test]
fn read_index_in_a_joint_membership_needs_both_majorities() {
    let mut c = MemoryCluster::with_spares(3, 2, 216, true, |_| {});
    let leader = c.elect(300).unwrap();
    for learner in [NodeId(4), NodeId(5)] {
        c.node(leader).change_membership(MembershipChange::AddLearner(learner)).unwrap();
        c.settle();
    }
    c.tick();
    // Hold the membership joint by cutting off the incoming voters; the old ones all answer.
    c.isolated.extend([NodeId(4), NodeId(5)]);
    let mut voters = vec![leader, NodeId(4), NodeId(5)];
    voters.sort_unstable();
    let replace = MembershipChange::Replace { voters, learners: vec![] };
    c.node(leader).change_membership(replace).unwrap();
    c.settle();
    assert!(c.membership(leader).is_joint());
    let commit = committed(&mut c, leader);
    c.read(leader, 1, ReadMode::ReadIndex).unwrap();
    c.settle();
    c.tick();
    assert!(c.take_reads(leader).is_empty(), "a majority of the old voters is not enough");
    c.isolated.clear();
    c.tick();
    let outcomes = c.take_reads(leader);
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].outcome.as_ref().is_ok_and(|index| *index >= commit), "{outcomes:?}");
}

#[test]
fn a_restarted_node_refuses_votes_for_an_election_timeout() {
    let durable = DurableState {
        hard_state: HardState { term: Term(3), vote: None, commit: Index(0) },
        snapshot: None,
        entries: vec![Entry::noop(Index(1), Term(3))],
    };
    let restarted = || {
        Raft::new(
            Config::new(NodeId(2), ids(&[1, 2, 3])),
            durable.clone(),
            Box::new(SeededRng::new(2)),
        )
        .unwrap()
    };
    let (one, two) = (NodeId(1), NodeId(2));
    let ask = |pre_vote, leader_transfer| Message::RequestVote {
        term: Term(4),
        last_log_index: Index(1),
        last_log_term: Term(3),
        pre_vote,
        leader_transfer,
    };
    let answers = |node: &mut Raft| {
        let ready = drive(node);
        ready
            .messages
            .into_iter()
            .chain(ready.persisted_messages)
            .filter_map(|m| match m.msg {
                Message::RequestVoteResponse { granted, .. } => Some(granted),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut node = restarted();
    let election_ticks = node.config().election_ticks;
    // A request in its own term (it has not voted in it) is answered, with a refusal.
    let same_term = Message::RequestVote {
        term: Term(3),
        last_log_index: Index(1),
        last_log_term: Term(3),
        pre_vote: false,
        leader_transfer: false,
    };
    node.step(env(one, two, same_term));
    assert_eq!(answers(&mut node), vec![false]);
    // It may have acknowledged a leader just before it crashed: that leader's lease may still
    // run, so for an election timeout it neither votes nor pre-votes.
    for _ in 1..election_ticks {
        node.step(env(one, two, ask(true, false)));
        node.step(env(one, two, ask(false, false)));
        assert_eq!(answers(&mut node), Vec::<bool>::new());
        assert_eq!((node.term(), node.status().vote), (Term(3), None));
        node.tick();
    }
    node.step(env(one, two, ask(false, false)));
    assert!(answers(&mut node).is_empty(), "still one tick short");
    node.tick();
    node.step(env(one, two, ask(false, false)));
    assert_eq!(answers(&mut node), vec![true]);
    assert_eq!((node.term(), node.status().vote), (Term(4), Some(one)));
    // A leadership transfer's vote passes at once.
    let mut node = restarted();
    node.step(env(one, two, ask(false, true)));
    assert_eq!(answers(&mut node), vec![true]);
    // A node that never voted (term 0) has no lease to honour.
    let mut fresh = Raft::new(
        Config::new(two, ids(&[1, 2, 3])),
        DurableState::default(),
        Box::new(SeededRng::new(2)),
    )
    .unwrap();
    fresh.step(env(one, two, ask(false, false)));
    assert_eq!(answers(&mut fresh), vec![true]);
}
