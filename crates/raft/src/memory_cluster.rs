//! A lossless, instantaneous in-memory driver for a few Raft nodes on one thread.
//!
//! It is what the core-only benchmark and the unit tests use: every message is delivered, every
//! write is durable the moment it is handed out. It exists to measure and exercise the core
//! alone; fault injection belongs to the simulator (`conclave-sim`). Tests can still cut nodes
//! off ([`MemoryCluster::isolated`]), lose chosen messages ([`MemoryCluster::lose`]) and restart a
//! node from what it made durable ([`MemoryCluster::restart`]), and move one step at a time
//! instead of settling everything at once ([`MemoryCluster::process_ready`],
//! [`MemoryCluster::take_queued`], [`MemoryCluster::deliver`]), as the golden tests do.

use std::collections::{BTreeSet, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use conclave_core::contract::Checked;
use conclave_core::{
    DurableState, Entry, EntryKind, Envelope, Index, Membership, NodeId, Protocol, ReadError,
    ReadId, ReadMode, ReadState, Ready, Role, SeededRng, Term,
};

use crate::config::Config;
use crate::message::Message;
use crate::raft::Raft;

/// Decides whether a message about to be delivered is lost.
pub type LoseFilter = Box<dyn FnMut(&Envelope<Message>) -> bool>;

/// Nodes `1..=n` with a shared message queue.
pub struct MemoryCluster {
    /// The nodes; `nodes[i]` has id `i + 1`. With [`MemoryCluster::with_spares`], the nodes after
    /// the voters are spares: started outside the membership, to be added by a change. Each is
    /// wrapped in the `Ready` contract check, so every test on the cluster also checks that this
    /// driver and the core keep the persistence contract (in debug builds; free in release).
    pub nodes: Vec<Checked<Raft>>,
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
    /// The outcome of every read each node reported in a `Ready`, in order (`reads[i]` for node
    /// `i + 1`); [`MemoryCluster::take_reads`] drains one node's.
    pub reads: Vec<Vec<ReadState>>,
    /// What each node made durable (hard state, log, snapshot), as a restart would recover it;
    /// kept only with recording on (the benchmark has no use for a second copy of every log).
    durable: Vec<DurableState>,
    /// Seeds the nodes that [`MemoryCluster::restart`] rebuilds.
    rng: SeededRng,
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
        MemoryCluster::with_spares(n, 0, seed, record_applied, configure)
    }

    /// `voters` nodes that form the cluster (ids `1..=voters`), plus `spares` nodes (the ids
    /// after them) started with the same bootstrap voter list, which leaves them out: they stay
    /// outside the membership, never campaign, and hear nothing until a membership change adds
    /// them. `configure` may adjust each node's config; `record_applied` as for
    /// [`MemoryCluster::new`].
    pub fn with_spares(
        voters: u64,
        spares: u64,
        seed: u64,
        record_applied: bool,
        configure: impl Fn(&mut Config),
    ) -> MemoryCluster {
        let voter_ids: Vec<NodeId> = (1..=voters).map(NodeId).collect();
        let total = voters + spares;
        let mut rng = SeededRng::new(seed);
        let nodes = (1..=total)
            .map(|id| {
                let mut config = Config::new(NodeId(id), voter_ids.clone());
                configure(&mut config);
                Checked::new(
                    Raft::new(config, DurableState::default(), Box::new(rng.fork()))
                        .expect("valid config"),
                )
            })
            .collect();
        let total = total as usize;
        MemoryCluster {
            nodes,
            queue: VecDeque::new(),
            applied: vec![Vec::new(); total],
            applied_commands: vec![0; total],
            messages_delivered: 0,
            isolated: BTreeSet::new(),
            lose: None,
            snapshots_installed: vec![0; total],
            reads: vec![Vec::new(); total],
            durable: vec![DurableState::default(); total],
            rng,
            record_applied,
        }
    }

    /// The node with `id`.
    pub fn node(&mut self, id: NodeId) -> &mut Checked<Raft> {
        &mut self.nodes[id.0 as usize - 1]
    }

    /// The membership node `id` acts on.
    pub fn membership(&self, id: NodeId) -> &Membership {
        Raft::membership(&self.nodes[id.0 as usize - 1])
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

    /// Asks node `id` for a linearizable read named `read_id`; its outcome is collected in
    /// [`MemoryCluster::reads`] when the node's next `Ready` is handled.
    pub fn read(&mut self, id: NodeId, read_id: ReadId, mode: ReadMode) -> Result<(), ReadError> {
        self.node(id).read(read_id, mode)
    }

    /// Drains the read outcomes collected from node `id` so far.
    pub fn take_reads(&mut self, id: NodeId) -> Vec<ReadState> {
        std::mem::take(&mut self.reads[id.0 as usize - 1])
    }

    /// What node `id` has made durable: what [`MemoryCluster::restart`] rebuilds it from. Kept
    /// only with recording on (empty otherwise).
    pub fn durable(&self, id: NodeId) -> &DurableState {
        &self.durable[id.0 as usize - 1]
    }

    /// Crashes node `id` and starts it again from its durable state, with the same config.
    /// Messages in flight to or from it stay queued (the network does not know). Its state
    /// machine restarts from its durable snapshot, and the commands it re-applies are counted
    /// again from there. Needs recording on (the durable state is kept only then).
    pub fn restart(&mut self, id: NodeId) {
        assert!(self.record_applied, "restart needs a cluster built with record_applied");
        let i = id.0 as usize - 1;
        let config = self.nodes[i].config().clone();
        let durable = self.durable[i].clone();
        let image = durable.snapshot.as_ref().map(|s| decode_state(&s.data)).unwrap_or_default();
        self.applied_commands[i] =
            image.iter().filter(|e| e.kind == EntryKind::Command).count() as u64;
        self.applied[i] = image;
        self.nodes[i] = Checked::new(
            Raft::new(config, durable, Box::new(self.rng.fork())).expect("durable state is sound"),
        );
    }

    /// Processes every node's `Ready` and delivers every message until nothing is left to do.
    pub fn settle(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                busy |= self.process_ready(NodeId(i as u64 + 1));
            }
            while let Some(envelope) = self.queue.pop_front() {
                busy = true;
                self.deliver(envelope);
            }
            if !busy {
                return;
            }
        }
    }

    /// Handles node `id`'s `Ready`s until it has none: persists, queues its messages, applies.
    /// Returns true if there was anything to do. With [`MemoryCluster::queued`] and
    /// [`MemoryCluster::deliver`] it lets a test move one step at a time (the golden tests
    /// print every message this way) instead of settling everything at once.
    pub fn process_ready(&mut self, id: NodeId) -> bool {
        let i = id.0 as usize - 1;
        let mut busy = false;
        while self.nodes[i].has_ready() {
            busy = true;
            self.handle_ready(i);
        }
        busy
    }

    /// The messages sent and not yet delivered or lost, oldest first.
    pub fn queued(&self) -> &VecDeque<Envelope<Message>> {
        &self.queue
    }

    /// Takes the queued messages `chosen` selects out of the queue (in order), leaving the rest.
    pub fn take_queued(
        &mut self,
        mut chosen: impl FnMut(&Envelope<Message>) -> bool,
    ) -> Vec<Envelope<Message>> {
        let (taken, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.queue).into_iter().partition(|e| chosen(e));
        self.queue = kept.into();
        taken
    }

    /// Delivers one message unless the network loses it (an isolated end, the
    /// [`MemoryCluster::lose`] filter, or a recipient the cluster does not have). Returns true if
    /// it was delivered. The recipient's `Ready` is left for the caller to process.
    pub fn deliver(&mut self, envelope: Envelope<Message>) -> bool {
        if self.isolated.contains(&envelope.from) || self.isolated.contains(&envelope.to) {
            return false;
        }
        if self.lose.as_mut().is_some_and(|lose| lose(&envelope)) {
            return false;
        }
        // A node the cluster does not have (a member that was never started): lost.
        let Some(to) = (envelope.to.0 as usize).checked_sub(1) else { return false };
        if to >= self.nodes.len() {
            return false;
        }
        self.messages_delivered += 1;
        self.nodes[to].step(envelope);
        true
    }

    fn handle_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let ready = node.ready();
        if self.record_applied {
            persist(&mut self.durable[i], &ready);
        }
        self.reads[i].extend(ready.reads);
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
        if !ready.persisted_messages.is_empty() {
            node.assert_persisted_messages_may_go();
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

/// Makes a `Ready`'s writes durable in `durable`, as a store would: the hard state; a snapshot,
/// reconciling the log by Raft's rule (entries after it survive only if the log holds its own
/// entry); the entries, replacing a conflicting suffix; then the compaction.
fn persist(durable: &mut DurableState, ready: &Ready<Message>) {
    if let Some(hard_state) = ready.hard_state {
        durable.hard_state = hard_state;
    }
    if let Some(snapshot) = &ready.snapshot {
        let first = durable.entries.first().map_or_else(
            || durable.snapshot.as_ref().map_or(Index(1), |s| s.index.next()),
            |e| e.index,
        );
        let holds = snapshot.index < first
            || durable.entries.iter().any(|e| e.index == snapshot.index && e.term == snapshot.term);
        if !holds {
            durable.entries.clear();
        }
        durable.snapshot = Some(snapshot.clone());
    }
    if let Some(first) = ready.entries.first() {
        durable.entries.retain(|e| e.index < first.index);
        durable.entries.extend(ready.entries.iter().cloned());
    }
    if let Some(upto) = ready.compact_log_to {
        durable.entries.retain(|e| e.index > upto);
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
