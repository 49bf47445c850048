//! The one trait every consensus core implements, and the small types around it.

use std::fmt;

use bytes::Bytes;

use crate::entry::Entry;
use crate::ids::{Index, NodeId, Term};
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::read::{ReadError, ReadId, ReadMode};
use crate::ready::{Envelope, Ready};

/// What a driver needs to know about a message without understanding the protocol: a name for
/// traces and metrics, and the term it carries.
pub trait MessageMeta {
    /// A short, stable name of the message type, such as `"AppendEntries"`.
    fn kind(&self) -> &'static str;
    /// The term (or ballot) the sender was in.
    fn term(&self) -> Term;
}

/// The role a node plays right now. Protocols without elections map their roles onto these
/// (a 2PC coordinator is a `Leader`, a participant a `Follower`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Raft pre-vote: asks whether it could win before disturbing the cluster with a new term.
    PreCandidate,
    /// Campaigning for leadership in a new term.
    Candidate,
    /// Leads the current term: orders proposals and decides commitment.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// A snapshot of a node's externally visible state, for drivers, traces and status pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it believes in for `term`, if any.
    pub leader: Option<NodeId>,
    /// The candidate it voted for in `term`, if any (protocols without votes: `None`). Exposed
    /// so a driver can check that a vote is durable before it is relied on.
    pub vote: Option<NodeId>,
    /// Its commit index.
    pub commit: Index,
    /// The highest index it has released for application.
    pub applied: Index,
    /// The last index in its log (durable or not).
    pub last_index: Index,
    /// The index its newest snapshot covers (0 without one).
    pub snapshot_index: Index,
}

/// Where an accepted proposal will appear in the log. The proposal succeeded only if the entry at
/// `index` is later applied with this same `term`; a different term there means a new leader
/// overwrote it and the client must retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The log index the command was appended at.
    pub index: Index,
    /// The term it was appended in.
    pub term: Term,
}

/// Why a proposal was refused. Refusals are normal operating conditions, not bugs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader orders commands; `leader_hint` names the one this node knows of, if any,
    /// so the client can go there directly.
    NotLeader {
        /// The leader this node believes in, if it knows one.
        leader_hint: Option<NodeId>,
    },
    /// The leader is handing leadership over and accepts nothing until that ends.
    LeadershipTransfer,
    /// The command is larger than the configured limit.
    TooLarge {
        /// The command's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader_hint: Some(l) } => {
                write!(f, "not the leader; try node {l}")
            }
            ProposeError::NotLeader { leader_hint: None } => {
                write!(f, "not the leader; no leader known")
            }
            ProposeError::LeadershipTransfer => write!(f, "leadership transfer in progress"),
            ProposeError::TooLarge { size, limit } => {
                write!(f, "command of {size} bytes exceeds the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for ProposeError {}

/// A read-only view of a node's log, for safety checkers (Log Matching, Leader Completeness).
/// Protocols without a log return `None` from [`Protocol::log_view`].
pub trait LogView {
    /// The first index still held (1 unless a prefix was compacted).
    fn first_index(&self) -> Index;
    /// The last index held.
    fn last_index(&self) -> Index;
    /// The entry at `index`, if held.
    fn entry(&self, index: Index) -> Option<&Entry>;
    /// The term of the entry just before `first_index` (the snapshot's term after compaction; 0
    /// for an uncompacted log), so a checker knows the term a compacted-empty log ends with.
    fn term_before_first(&self) -> Term;
}

/// Why a leadership transfer could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader can hand leadership over.
    NotLeader {
        /// The leader this node knows of.
        leader_hint: Option<NodeId>,
    },
    /// The target is not a voter of the current membership.
    NotAVoter(NodeId),
    /// The protocol has no leadership transfer.
    Unsupported,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::NotLeader { leader_hint: Some(l) } => {
                write!(f, "not the leader; try node {l}")
            }
            TransferError::NotLeader { leader_hint: None } => {
                write!(f, "not the leader; no leader known")
            }
            TransferError::NotAVoter(id) => write!(f, "node {id} is not a voter"),
            TransferError::Unsupported => write!(f, "this protocol has no leadership transfer"),
        }
    }
}

impl std::error::Error for TransferError {}

/// A consensus protocol as a pure, deterministic state machine.
///
/// Invariants every implementation keeps:
/// - it performs no IO, reads no clock and uses no randomness but the source it was built with;
/// - the same sequence of calls produces the same sequence of `Ready`s;
/// - nothing in [`Ready::messages`] or [`Ready::committed_entries`] depends on state that is not
///   yet durable (see the crate documentation for the driver's order of work).
pub trait Protocol {
    /// The protocol's message enum.
    type Message: Clone + fmt::Debug + MessageMeta;

    /// This node's id.
    fn id(&self) -> NodeId;

    /// Advances logical time by one tick. Timeouts (elections, heartbeats) are counted in ticks;
    /// the driver decides how long a tick is.
    fn tick(&mut self);

    /// Handles one message from a peer. Malformed or stale messages are ignored, never a panic.
    fn step(&mut self, envelope: Envelope<Self::Message>);

    /// Asks to replicate a command. On success the returned [`Proposal`] says where it will land.
    fn propose(&mut self, data: Bytes) -> Result<Proposal, ProposeError>;

    /// True when [`Protocol::ready`] would return something to do.
    fn has_ready(&self) -> bool;

    /// Takes the accumulated work for the driver (see [`Ready`] for the order it must follow).
    fn ready(&mut self) -> Ready<Self::Message>;

    /// Tells the core that its log is durable up to `index`, whose entry has `term`. A report for
    /// an entry that has since been overwritten (the term no longer matches) is ignored.
    fn on_persisted(&mut self, index: Index, term: Term);

    /// Hands over the state machine image that [`Ready::snapshot_due`] asked for, taken at
    /// `index` (which the state machine had applied). Protocols without snapshots ignore it.
    fn on_snapshot_taken(&mut self, index: Index, data: Bytes) {
        let _ = (index, data);
    }

    /// The node's visible state.
    fn status(&self) -> Status;

    /// The node's log, for checkers; `None` for protocols without one.
    fn log_view(&self) -> Option<&dyn LogView> {
        None
    }

    /// The membership this node currently acts on (the latest in its log, committed or not);
    /// `None` for protocols with a fixed membership.
    fn membership(&self) -> Option<&Membership> {
        None
    }

    /// Asks the leader to change the membership. On success the change is in the leader's log at
    /// the returned position and takes effect as it replicates; it is done once committed.
    fn change_membership(&mut self, change: MembershipChange) -> Result<Proposal, MembershipError> {
        let _ = change;
        Err(MembershipError::Unsupported)
    }

    /// The leader's view of replication: for each other member, the highest index known to match
    /// its log. Empty on followers and for protocols without a leader-driven log. Status pages
    /// show it so an operator can see which follower lags.
    fn replication_progress(&self) -> Vec<(NodeId, Index)> {
        Vec::new()
    }

    /// Asks the leader to hand leadership to `target`.
    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        let _ = target;
        Err(TransferError::Unsupported)
    }

    /// Asks for a linearizable read named `id`; its outcome arrives in [`Ready::reads`]. An
    /// immediate `Err` means the read was refused outright (and will not appear in a `Ready`).
    fn read(&mut self, id: ReadId, mode: ReadMode) -> Result<(), ReadError> {
        let _ = (id, mode);
        Err(ReadError::Unsupported)
    }
}
