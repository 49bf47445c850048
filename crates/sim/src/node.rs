//! One simulated node: the protocol object while it is up, and what outlives it (its disk, its
//! random stream).

use conclave_core::{
    Entry, Envelope, Index, Membership, NodeId, Protocol, ReadId, ReadState, SeededRng, Status,
    Term,
};

use crate::disk::SimDisk;

/// What the driver still has to do for a `Ready` once its writes are durable, carried with the
/// write through the disk.
pub(crate) struct Job<M> {
    /// Messages that may leave only now.
    pub(crate) persisted_messages: Vec<Envelope<M>>,
    /// Entries to apply, in order.
    pub(crate) committed_entries: Vec<Entry>,
    /// An image of the state machine the protocol asked for, at this applied index.
    pub(crate) snapshot_due: Option<Index>,
    /// The term and vote the node reported when it produced the `Ready`, which its promises (the
    /// `persisted_messages`) rest on; `None` without promises.
    pub(crate) promised: Option<(Term, Option<NodeId>)>,
    /// Whether the protocol offers a log view (log-based checks apply).
    pub(crate) has_log: bool,
    /// Read outcomes, handled after `committed_entries` are applied.
    pub(crate) reads: Vec<ReadState>,
}

/// A node's slot in the simulation. The slot outlives crashes; the protocol object does not.
pub(crate) struct NodeSlot<P: Protocol> {
    pub(crate) id: NodeId,
    /// The protocol while the node is up; `None` while it is crashed.
    pub(crate) protocol: Option<P>,
    /// What survives a crash, and the writes on their way to it.
    pub(crate) disk: SimDisk<Job<P::Message>>,
    /// The node's state machine: the entries it applied, in order from index 1. A restarted node
    /// restores it from its disk's snapshot (if any) and applies again from there.
    pub(crate) applied: Vec<Entry>,
    /// Bumped at every crash. Ticks and disk completions carry the incarnation that scheduled
    /// them, so a restarted node is not also ticked by its previous life's timer.
    pub(crate) incarnation: u64,
    /// The node's own stream: each incarnation's tick phase and protocol randomness come from it,
    /// so restarting one node never shifts another's randomness.
    pub(crate) rng: SeededRng,
    /// The status seen after the last call into the node in this incarnation, to detect changes
    /// (role, term, commit) for the trace and the checker.
    pub(crate) status_last: Option<Status>,
    /// The membership seen after the last call, to detect changes.
    pub(crate) membership_last: Option<Membership>,
    /// Reads the protocol confirmed at an index this node has not applied yet.
    pub(crate) reads_waiting: Vec<(ReadId, Index)>,
    /// The length of this node's tick: its clock may run fast or slow (clock drift).
    pub(crate) tick_us: u64,
}

impl<P: Protocol> NodeSlot<P> {
    /// A slot for a node that has never run, with an empty disk.
    pub(crate) fn new(
        id: NodeId,
        rng: SeededRng,
        disk: SimDisk<Job<P::Message>>,
        tick_us: u64,
    ) -> NodeSlot<P> {
        NodeSlot {
            id,
            protocol: None,
            disk,
            applied: Vec::new(),
            incarnation: 0,
            rng,
            status_last: None,
            membership_last: None,
            reads_waiting: Vec::new(),
            tick_us,
        }
    }

    /// True while the node is running.
    pub(crate) fn is_up(&self) -> bool {
        self.protocol.is_some()
    }
}
