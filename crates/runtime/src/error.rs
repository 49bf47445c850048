//! Why a client request or a group failed.

use std::time::Duration;

use conclave_core::NodeId;
use thiserror::Error;

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
    #[error("read not confirmed: {0}")]
    ReadFailed(String),
    /// A membership change or a transfer was refused; nothing changed.
    #[error("refused: {0}")]
    Refused(String),
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
    /// The data directory could not be opened or recovered.
    #[error("storage: {0}")]
    Storage(#[from] conclave_storage::StorageError),
    /// The consensus core refused its configuration or the recovered state.
    #[error("consensus core: {0}")]
    Core(String),
    /// The state machine could not be restored from the snapshot on disk.
    #[error("state machine snapshot: {0}")]
    Snapshot(String),
    /// A group with this id already runs on this node.
    #[error("group {0} already runs on this node")]
    DuplicateGroup(conclave_transport::GroupId),
}
