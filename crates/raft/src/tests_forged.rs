//! Forged terms: a message that names a huge term must neither depose a leader when it comes from
//! outside the membership nor wedge the cluster when it carries the maximal term.
//!
//! The reported attack: a process that reached a peer port sent a heartbeat with term 2^64-1;
//! every node adopted and persisted it, and none could ever campaign again (there is no next
//! term), even after a restart. A term +1000 from the same stranger deposed the leader.

use bytes::Bytes;
use conclave_core::{
    DurableState, HardState, Index, MessageMeta, NodeId, Protocol, Role, SeededRng, Term,
};

use crate::memory_cluster::MemoryCluster;
use crate::{Config, ConfigError, Message, Raft};

/// Not a member of the three-node clusters below.
const STRANGER: NodeId = NodeId(99);

fn heartbeat(term: u64) -> Message {
    Message::Heartbeat { term: Term(term), commit: Index(0), read_round: 0 }
}

fn elected(seed: u64) -> (MemoryCluster, NodeId) {
    let mut cluster = MemoryCluster::new(3, seed, true, |_| {});
    let leader = cluster.elect(300).expect("a leader");
    cluster.tick();
    (cluster, leader)
}

/// Sends `message` from `from` to every node of the cluster but `from`, and settles.
fn forge_to_all(cluster: &mut MemoryCluster, from: NodeId, message: Message) {
    for to in 1..=3 {
        if NodeId(to) != from {
            cluster.deliver(conclave_core::Envelope { from, to: NodeId(to), msg: message.clone() });
        }
    }
    cluster.settle();
}

/// The leader still leads in its term, and a write through it commits on every node.
fn assert_leader_kept(cluster: &mut MemoryCluster, leader: NodeId, term: Term, tag: &str) {
    assert_eq!(cluster.leader(), Some(leader), "{tag}: the leader is deposed");
    for id in 1..=3 {
        assert_eq!(cluster.node(NodeId(id)).term(), term, "{tag}: node {id} changed term");
    }
    let command = Bytes::from(tag.to_string());
    cluster.propose(leader, command.clone()).unwrap();
    // Followers learn the commit index with the next heartbeat.
    let applied_everywhere = |cluster: &MemoryCluster| {
        (1..=3).all(|id| cluster.commands(NodeId(id)).last() == Some(&command))
    };
    for _ in 0..20 {
        if applied_everywhere(cluster) {
            break;
        }
        cluster.tick();
    }
    assert!(applied_everywhere(cluster), "{tag}: the write did not commit everywhere");
    assert_eq!(cluster.leader(), Some(leader), "{tag}: the leader lost its place");
}

#[test]
fn a_max_term_heartbeat_from_a_stranger_changes_nothing() {
    let (mut cluster, leader) = elected(71);
    let term = cluster.node(leader).term();
    forge_to_all(&mut cluster, STRANGER, heartbeat(u64::MAX));
    assert_leader_kept(&mut cluster, leader, term, "after max-term heartbeat from a stranger");
}

#[test]
fn a_max_term_heartbeat_from_a_member_is_refused_as_invalid() {
    let (mut cluster, leader) = elected(72);
    let term = cluster.node(leader).term();
    let follower = NodeId(leader.0 % 3 + 1);
    forge_to_all(&mut cluster, follower, heartbeat(u64::MAX));
    assert_leader_kept(&mut cluster, leader, term, "after max-term heartbeat from a member");
    // And after every node restarts, they still elect.
    for id in 1..=3 {
        cluster.restart(NodeId(id));
    }
    assert!(cluster.elect(300).is_some(), "no election after a restart");
}

#[test]
fn a_term_1000_above_from_a_stranger_does_not_depose_the_leader() {
    let (mut cluster, leader) = elected(73);
    let term = cluster.node(leader).term();
    let forged = term.0 + 1000;
    let messages = [
        heartbeat(forged),
        Message::AppendEntries {
            term: Term(forged),
            prev_index: Index(0),
            prev_term: Term(0),
            entries: Vec::new(),
            commit: Index(0),
        },
        Message::RequestVote {
            term: Term(forged),
            last_log_index: Index(u64::MAX - 1),
            last_log_term: Term(forged),
            pre_vote: false,
            leader_transfer: true,
        },
        Message::HeartbeatResponse { term: Term(forged), read_round: 0 },
    ];
    for message in messages {
        let tag = format!("after {} of term +1000 from a stranger", message.kind());
        forge_to_all(&mut cluster, STRANGER, message);
        assert_leader_kept(&mut cluster, leader, term, &tag);
    }
}

#[test]
fn a_newer_term_from_a_member_is_still_adopted() {
    // The membership check must not stop the ordinary case: a member with a newer term.
    let (mut cluster, leader) = elected(74);
    let term = cluster.node(leader).term();
    let follower = NodeId(leader.0 % 3 + 1);
    let response = Message::HeartbeatResponse { term: Term(term.0 + 5), read_round: 0 };
    cluster.node(leader).step(conclave_core::Envelope {
        from: follower,
        to: leader,
        msg: response,
    });
    assert_eq!(cluster.node(leader).role(), Role::Follower);
    assert_eq!(cluster.node(leader).term(), Term(term.0 + 5));
}

#[test]
fn a_node_one_below_the_maximal_term_never_campaigns() {
    // Its next term would be the invalid one: it waits for a leader instead of overflowing.
    let durable = DurableState {
        hard_state: HardState { term: Term(u64::MAX - 1), vote: None, commit: Index(0) },
        ..DurableState::default()
    };
    let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let mut node = Raft::new(config, durable, Box::new(SeededRng::new(1))).unwrap();
    for _ in 0..200 {
        node.tick();
        assert_eq!(node.role(), Role::Follower);
    }
    node.campaign();
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn a_durable_maximal_term_is_refused_at_start() {
    let durable = DurableState {
        hard_state: HardState { term: Term(u64::MAX), vote: None, commit: Index(0) },
        ..DurableState::default()
    };
    let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let err = Raft::new(config, durable, Box::new(SeededRng::new(1))).err().unwrap();
    assert!(matches!(err, ConfigError::CorruptState(ref why) if why.contains("maximal term")));
}
