//! What a protocol asks the driver to persist: log entries and the hard state.

use bytes::Bytes;

use crate::ids::{Index, NodeId, Term};
use crate::membership::Membership;

/// Why an entry is in the log. The kind decides how a state machine treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Appended by a new leader at the start of its term. It carries no command; committing it
    /// commits every earlier entry (Raft §5.4.2, the Figure-8 rule) and is skipped by the state
    /// machine.
    Noop,
    /// A client command, opaque to the protocol; the state machine interprets `data`.
    Command,
    /// A membership change: `data` is a [`Membership`] encoded with [`Membership::encode`]. It
    /// takes effect on each node as soon as it is in that node's log; the state machine skips it.
    Config,
}

/// One record of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log.
    pub index: Index,
    /// The term (or ballot) of the leader that created the entry.
    pub term: Term,
    /// What the entry is for.
    pub kind: EntryKind,
    /// The command bytes; empty for a no-op. `Bytes` so that sending one entry to many followers
    /// shares one buffer instead of copying it.
    pub data: Bytes,
}

impl Entry {
    /// A client command entry.
    pub fn command(index: Index, term: Term, data: Bytes) -> Entry {
        Entry { index, term, kind: EntryKind::Command, data }
    }

    /// A leader's no-op entry.
    pub fn noop(index: Index, term: Term) -> Entry {
        Entry { index, term, kind: EntryKind::Noop, data: Bytes::new() }
    }

    /// A membership change entry.
    pub fn config(index: Index, term: Term, membership: &Membership) -> Entry {
        Entry { index, term, kind: EntryKind::Config, data: membership.encode() }
    }

    /// The size this entry counts for when batching messages by bytes: its payload plus a fixed
    /// header estimate, so that many empty entries still add up.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + 24
    }
}

/// The small state that must survive a crash for a protocol to stay safe: Raft's current term,
/// the vote cast in it and the commit index. It is written atomically, separately from the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any. Forgetting it would allow two votes in
    /// one term, and so two leaders.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed. Persisting it is an optimisation (faster
    /// re-apply after restart), never needed for safety.
    pub commit: Index,
}

/// A state machine image that stands in for the log prefix up to `index`. Taken locally to
/// compact the log, or received from a leader (InstallSnapshot) by a follower that lags behind
/// the leader's compacted log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last log index the image covers.
    pub index: Index,
    /// The term of the entry at `index`, so the log after it can still be matched.
    pub term: Term,
    /// The membership as of `index`: the log that follows (or a restart) starts from it.
    pub membership: Membership,
    /// The state machine's serialised state; opaque to the protocol.
    pub data: Bytes,
}

/// Everything a node recovers from its disk on restart; a protocol is rebuilt from this alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The last hard state made durable.
    pub hard_state: HardState,
    /// The newest durable snapshot, if any. The driver restores its state machine from it before
    /// applying anything; the protocol starts with everything up to `snapshot.index` applied.
    pub snapshot: Option<Snapshot>,
    /// The durable log, contiguous, in index order: from index 1 without a snapshot, otherwise
    /// from at most `snapshot.index + 1` (entries at or below the snapshot index may remain and
    /// are ignored).
    pub entries: Vec<Entry>,
}
