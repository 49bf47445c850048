//! Why a client request, a group's start or a running group failed.

use std::time::Duration;

use conclave_core::{DecodeError, Index, MembershipError, NodeId, ReadError, TransferError};
use conclave_storage::StorageError;
use conclave_transport::GroupId;
use thiserror::Error;

/// An error from an application's code that the runtime carries without knowing its type (a
/// consensus core refusing its recovered state, a state machine refusing a snapshot image).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request through a [`GroupHandle`](crate::GroupHandle) did not succeed. Each variant says
/// whether the command may have taken effect, because a client that retries must know.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClientError {
    /// This node does not lead; the request had no effect. `leader` names the leader if known.
    #[error("not the leader{}", leader.map(|l| format!("; the leader is node {l}")).unwrap_or_default())]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// No leader emerged within the wait bound (an election, or this node is cut off). The
    /// request had no effect.
    #[error("no leader elected within {} ms; retry later", .0.as_millis())]
    NoLeader(Duration),
    /// The command was appended but a new leader replaced it: it was not applied.
    #[error("the command was overwritten by a new leader and not applied; retry")]
    Overwritten,
    /// Whether the command was applied is unknown (its entry was compacted into a snapshot from
    /// the new leader, or the request timed out after it was proposed).
    #[error("the outcome is unknown: the command may or may not have been applied")]
    Unknown,
    /// The request did not complete within the request timeout; a write may still apply.
    #[error("timed out after {} ms; a write may or may not have been applied", .0.as_millis())]
    Timeout(Duration),
    /// A read could not be confirmed (leadership lost, a quorum unreachable, or too many reads).
    /// A lost leadership is [`ClientError::NotLeader`] instead, so a session can retry it.
    #[error("read not confirmed: {0}")]
    ReadFailed(#[source] ReadError),
    /// A membership change was refused; nothing changed.
    #[error("refused: {0}")]
    MembershipRefused(#[source] MembershipError),
    /// A leadership transfer was refused; nothing changed.
    #[error("refused: {0}")]
    TransferRefused(#[source] TransferError),
    /// The command is larger than the group accepts.
    #[error("command of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The group has stopped (shutdown, or a storage failure).
    #[error("the node has stopped")]
    Stopped,
}

/// Why a group could not start.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The data directory could not be opened or recovered, or its log writer not started.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The consensus core refused its configuration or the recovered state.
    #[error("consensus core: {0}")]
    Core(#[source] BoxError),
    /// The snapshot on disk could not be restored.
    #[error("state machine snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A group with this id already runs on this node.
    #[error("group {0} already runs on this node")]
    DuplicateGroup(GroupId),
    /// The transport cannot hand the group its messages (it was shut down).
    #[error("transport: {0}")]
    Transport(#[source] conclave_transport::TransportError),
}

/// Why a snapshot image could not be restored.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// The runtime's framing around the state machine's image (version, address book) is
    /// damaged.
    #[error("{0}")]
    Image(#[from] EnvelopeError),
    /// The state machine refused its image.
    #[error("{0}")]
    Restore(#[source] BoxError),
}

/// Why a runtime command entry or a snapshot image could not be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Too short, or a field's length runs past the end.
    #[error("{0}")]
    Truncated(#[from] DecodeError),
    /// An empty command entry (every command starts with a tag byte).
    #[error("empty command")]
    Empty,
    /// A command tag this version does not know.
    #[error("unknown command tag {0}")]
    UnknownTag(u8),
    /// A snapshot image layout this version does not know.
    #[error("unknown snapshot image version {0}")]
    UnknownImageVersion(u8),
    /// A peer address that is not `host:port` text.
    #[error("bad address {0:?}")]
    BadAddress(String),
}

/// Why a running group stopped on its own. The node must stop with it: it never goes on after
/// a storage failure.
#[derive(Debug, Error)]
#[error("group {group}: {reason}")]
pub struct GroupFailure {
    /// The group that stopped.
    pub group: GroupId,
    /// What stopped it.
    #[source]
    pub reason: FailureReason,
}

/// What stopped a group.
#[derive(Debug, Error)]
pub enum FailureReason {
    /// A write or an fsync failed (or the log writer refused a job after such a failure).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The log writer's thread ended without reporting a failure (it panicked).
    #[error("the log writer stopped without reporting why")]
    WriterGone,
    /// A snapshot from the leader could not be installed in the state machine.
    #[error("snapshot at index {index}: {source}")]
    Snapshot {
        /// The snapshot's index.
        index: Index,
        /// Why it could not be installed.
        source: SnapshotError,
    },
}
