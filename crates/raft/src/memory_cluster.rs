//! A lossless, instantaneous in-memory driver for a few Raft nodes on one thread.
//!
//! It is what the core-only benchmark and the unit tests use: every message is delivered, every
//! write is durable the moment it is handed out. It exists to measure and exercise the core
//! alone; fault injection belongs to the simulator (`conclave-sim`).

use std::collections::{BTreeSet, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use conclave_core::{
    DurableState, Entry, EntryKind, Envelope, Index, NodeId, Protocol, Role, SeededRng, Term,
};

use crate::config::Config;
use crate::message::Message;
use crate::raft::Raft;

/// Decides whether a message about to be delivered is lost.
pub type LoseFilter = Box<dyn FnMut(&Envelope<Message>) -> bool>;

/// Nodes `1..=n` with a shared message queue.
pub struct MemoryCluster {
    /// The nodes; `nodes[i]` has id `i + 1`.
    pub nodes: Vec<Raft>,
    queue: VecDeque<Envelope<Message>>,
    /// Every entry each node applied, in order, when recording is on; otherwise empty.
    pub applied: Vec<Vec<Entry>>,
    /// Count of command entries each node applied.
    pub applied_commands: Vec<u64>,
    /// Messages delivered so far.
    pub messages_delivered: u64,
    /// Nodes cut off from everyone: messages to and from them are lost.
    pub isolated: BTreeSet<NodeId>,
    /// Decides, for each message about to be delivered, whether it is lost (tests use it to
    /// lose particular messages).
    pub lose: Option<LoseFilter>,
    /// Snapshots each node installed from its leader (restoring its state machine).
    pub snapshots_installed: Vec<u64>,
    record_applied: bool,
}

impl MemoryCluster {
    /// `n` fresh nodes; `configure` may adjust each node's config. `record_applied` keeps every
    /// applied entry for inspection (off for benchmarks).
    pub fn new(
        n: u64,
        seed: u64,
        record_applied: bool,
        configure: impl Fn(&mut Config),
    ) -> MemoryCluster {
        let voters: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut rng = SeededRng::new(seed);
        let nodes = voters
            .iter()
            .map(|id| {
                let mut config = Config::new(*id, voters.clone());
                configure(&mut config);
                Raft::new(config, DurableState::default(), Box::new(rng.fork()))
                    .expect("valid config")
            })
            .collect();
        MemoryCluster {
            nodes,
            queue: VecDeque::new(),
            applied: vec![Vec::new(); n as usize],
            applied_commands: vec![0; n as usize],
            messages_delivered: 0,
            isolated: BTreeSet::new(),
            lose: None,
            snapshots_installed: vec![0; n as usize],
            record_applied,
        }
    }

    /// The node with `id`.
    pub fn node(&mut self, id: NodeId) -> &mut Raft {
        &mut self.nodes[id.0 as usize - 1]
    }

    /// The current leader, if exactly one node leads the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        let top = self.nodes.iter().map(|n| n.term()).max()?;
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.term() == top && n.role() == Role::Leader)
            .map(|n| n.id())
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Ticks every node once, then settles.
    pub fn tick(&mut self) {
        for node in &mut self.nodes {
            node.tick();
        }
        self.settle();
    }

    /// Ticks until a leader exists (at most `max_ticks`).
    pub fn elect(&mut self, max_ticks: u32) -> Option<NodeId> {
        for _ in 0..max_ticks {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            self.tick();
        }
        self.leader()
    }

    /// Proposes `data` on `id`.
    pub fn propose(
        &mut self,
        id: NodeId,
        data: Bytes,
    ) -> Result<conclave_core::Proposal, conclave_core::ProposeError> {
        self.node(id).propose(data)
    }

    /// Processes every node's `Ready` and delivers every message until nothing is left to do.
    pub fn settle(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                while self.nodes[i].has_ready() {
                    busy = true;
                    self.handle_ready(i);
                }
            }
            while let Some(envelope) = self.queue.pop_front() {
                busy = true;
                if self.isolated.contains(&envelope.from) || self.isolated.contains(&envelope.to) {
                    continue;
                }
                if self.lose.as_mut().is_some_and(|lose| lose(&envelope)) {
                    continue;
                }
                self.messages_delivered += 1;
                let to = envelope.to.0 as usize - 1;
                self.nodes[to].step(envelope);
            }
            if !busy {
                return;
            }
        }
    }

    fn handle_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let ready = node.ready();
        self.queue.extend(ready.messages);
        if let Some(snapshot) = &ready.snapshot {
            let applied_to = self.applied[i].last().map_or(Index(0), |e| e.index);
            if self.record_applied && snapshot.index > applied_to {
                self.applied[i] = decode_state(&snapshot.data);
                self.snapshots_installed[i] += 1;
            }
        }
        if let Some(last) = ready.entries.last() {
            node.on_persisted(last.index, last.term);
        }
        self.queue.extend(ready.persisted_messages);
        self.applied_commands[i] +=
            ready.committed_entries.iter().filter(|e| e.kind == EntryKind::Command).count() as u64;
        if self.record_applied {
            self.applied[i].extend(ready.committed_entries);
            if let Some(index) = ready.snapshot_due {
                let image = encode_state(self.applied[i].iter().filter(|e| e.index <= index));
                node.on_snapshot_taken(index, image);
            }
        }
    }

    /// The commands node `id` has applied, in order (with recording on).
    pub fn commands(&self, id: NodeId) -> Vec<Bytes> {
        let applied = &self.applied[id.0 as usize - 1];
        applied.iter().filter(|e| e.kind == EntryKind::Command).map(|e| e.data.clone()).collect()
    }
}

/// The memory cluster's state machine image: its applied entries, each as index, term, kind
/// and length-prefixed data.
fn encode_state<'a>(entries: impl Iterator<Item = &'a Entry>) -> Bytes {
    let mut out = BytesMut::new();
    for entry in entries {
        out.put_u64(entry.index.0);
        out.put_u64(entry.term.0);
        out.put_u8(u8::from(entry.kind == EntryKind::Command));
        out.put_u32(entry.data.len() as u32);
        out.put_slice(&entry.data);
    }
    out.freeze()
}

/// The inverse of `encode_state`.
fn decode_state(mut image: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    while image.has_remaining() {
        let (index, term, kind) = (Index(image.get_u64()), Term(image.get_u64()), image.get_u8());
        let len = image.get_u32() as usize;
        let data = Bytes::copy_from_slice(&image[..len]);
        image.advance(len);
        let kind = if kind == 1 { EntryKind::Command } else { EntryKind::Noop };
        entries.push(Entry { index, term, kind, data });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::ProposeError;

    #[test]
    fn three_nodes_elect_one_leader_and_replicate() {
        let mut cluster = MemoryCluster::new(3, 1, true, |_| {});
        let leader = cluster.elect(100).expect("a leader");
        for i in 0..10 {
            cluster.propose(leader, Bytes::from(format!("cmd{i}"))).unwrap();
        }
        cluster.settle();
        // Followers learn the commit index on the next heartbeat.
        cluster.tick();
        for applied in &cluster.applied {
            let commands: Vec<_> =
                applied.iter().filter(|e| !e.data.is_empty()).map(|e| e.data.clone()).collect();
            assert_eq!(commands.len(), 10);
            assert_eq!(commands[9], Bytes::from("cmd9"));
        }
    }

    #[test]
    fn proposals_on_a_follower_are_refused_with_a_hint() {
        let mut cluster = MemoryCluster::new(3, 2, false, |_| {});
        let leader = cluster.elect(100).unwrap();
        cluster.tick();
        let follower = NodeId(leader.0 % 3 + 1);
        assert_eq!(
            cluster.propose(follower, Bytes::from_static(b"x")),
            Err(ProposeError::NotLeader { leader_hint: Some(leader) })
        );
    }

    #[test]
    fn batching_sends_many_proposals_in_few_messages() {
        let mut cluster = MemoryCluster::new(3, 3, false, |_| {});
        let leader = cluster.elect(100).unwrap();
        cluster.settle();
        let before = cluster.messages_delivered;
        for i in 0..200 {
            cluster.propose(leader, Bytes::from(vec![i as u8; 100])).unwrap();
        }
        cluster.settle();
        // One append and one answer per follower: 200 commands, 4 messages.
        assert_eq!(cluster.messages_delivered - before, 4);
        assert_eq!(cluster.nodes[leader.0 as usize - 1].log().committed(), Index(201));
    }

    #[test]
    fn oversized_command_is_refused() {
        let mut cluster = MemoryCluster::new(1, 4, false, |c| c.command_bytes_max = 10);
        let leader = cluster.elect(100).unwrap();
        assert_eq!(
            cluster.propose(leader, Bytes::from(vec![0; 11])),
            Err(ProposeError::TooLarge { size: 11, limit: 10 })
        );
    }
}
