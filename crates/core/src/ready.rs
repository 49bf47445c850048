//! The batch of work a protocol hands its driver.

use crate::entry::{Entry, HardState, Snapshot};
use crate::ids::Index;
use crate::ids::NodeId;
use crate::read::ReadState;

/// A message with its addressing. Protocols address by [`NodeId`]; the driver maps ids to links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<M> {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The protocol message.
    pub msg: M,
}

/// Everything the driver must do after one or more calls into a protocol, in this order:
/// send [`messages`](Ready::messages) (any time); persist [`hard_state`](Ready::hard_state) and
/// [`entries`](Ready::entries) durably; then send
/// [`persisted_messages`](Ready::persisted_messages) and report the durable log prefix with
/// [`Protocol::on_persisted`](crate::Protocol::on_persisted); apply
/// [`committed_entries`](Ready::committed_entries) in order.
///
/// Keeping the two kinds of message apart is the persistence contract in the type: a vote or an
/// append acknowledgement that went out before the vote or the entries hit the disk could make a
/// crashed node contradict itself after restart.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready<M> {
    /// A new hard state to write atomically, if it changed since the last `Ready`.
    pub hard_state: Option<HardState>,
    /// Entries to append to the durable log. If the first entry's index is at or below the last
    /// durable index, everything from that index on is replaced (a conflicting suffix truncated).
    pub entries: Vec<Entry>,
    /// Messages that depend on nothing unpersisted: safe to send before the writes above.
    pub messages: Vec<Envelope<M>>,
    /// Messages that may go out only once `hard_state` and `entries` (and those of every earlier
    /// `Ready`) are durable.
    pub persisted_messages: Vec<Envelope<M>>,
    /// Entries that are committed and durable here, in index order, for the state machine.
    pub committed_entries: Vec<Entry>,
    /// A snapshot to persist with `hard_state` and `entries` (atomically with respect to a
    /// crash: after restart the node has either the old or the new one), replacing any older one.
    /// If its index is beyond what the state machine has applied, it came from the leader: the
    /// state machine is restored from it before `committed_entries` are applied, and the durable
    /// log is reconciled by the rule Raft uses: entries after the snapshot survive only if the log
    /// holds the snapshot's own entry (same index and term); otherwise the whole log goes.
    pub snapshot: Option<Snapshot>,
    /// Durable log entries up to this index are covered by a durable snapshot and may be
    /// discarded (once `snapshot`, if any, is durable).
    pub compact_log_to: Option<Index>,
    /// The protocol asks for an image of the state machine as of this applied index, to compact
    /// the log; hand it back with [`Protocol::on_snapshot_taken`](crate::Protocol::on_snapshot_taken)
    /// (at once, or later from another thread).
    pub snapshot_due: Option<Index>,
    /// Outcomes of reads asked for with [`Protocol::read`](crate::Protocol::read): serve each
    /// `Ok(index)` once `index` is applied (after this `Ready`'s `committed_entries`); answer each
    /// `Err` with an error.
    pub reads: Vec<ReadState>,
}

impl<M> Default for Ready<M> {
    fn default() -> Self {
        Ready {
            hard_state: None,
            entries: Vec::new(),
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            committed_entries: Vec::new(),
            snapshot: None,
            compact_log_to: None,
            snapshot_due: None,
            reads: Vec::new(),
        }
    }
}

impl<M> Ready<M> {
    /// True when there is nothing for the driver to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.snapshot.is_none()
            && self.compact_log_to.is_none()
            && self.snapshot_due.is_none()
            && self.reads.is_empty()
    }
}
