//! One simulated node: the protocol object while it is up, and what outlives it (its disk, its
//! random stream).

use conclave_core::{Entry, NodeId, SeededRng, Status};

use crate::disk::SimDisk;

/// A node's slot in the simulation. The slot outlives crashes; the protocol object does not.
pub(crate) struct NodeSlot<P> {
    pub(crate) id: NodeId,
    /// The protocol while the node is up; `None` while it is crashed.
    pub(crate) protocol: Option<P>,
    /// What survives a crash.
    pub(crate) disk: SimDisk,
    /// Entries the node's state machine applied in this incarnation, in order from index 1: a
    /// restarted node rebuilds its state machine by applying again from the start.
    pub(crate) applied: Vec<Entry>,
    /// Bumped at every crash. Ticks carry the incarnation that scheduled them, so a restarted node
    /// is not also ticked by its previous life's timer.
    pub(crate) incarnation: u64,
    /// The node's own stream: each incarnation's tick phase and protocol randomness come from it,
    /// so restarting one node never shifts another's randomness.
    pub(crate) rng: SeededRng,
    /// The status seen after the last call into the node in this incarnation, to detect changes
    /// (role, term, commit) for the trace and the checker.
    pub(crate) status_last: Option<Status>,
}

impl<P> NodeSlot<P> {
    /// A slot for a node that has never run, with an empty disk.
    pub(crate) fn new(id: NodeId, rng: SeededRng) -> NodeSlot<P> {
        NodeSlot {
            id,
            protocol: None,
            disk: SimDisk::new(),
            applied: Vec::new(),
            incarnation: 0,
            rng,
            status_last: None,
        }
    }

    /// True while the node is running.
    pub(crate) fn is_up(&self) -> bool {
        self.protocol.is_some()
    }
}
