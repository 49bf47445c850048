//! Linearizable reads that do not go through the log.
//!
//! A driver asks a node for a read with [`Protocol::read`](crate::Protocol::read), naming it with
//! its own [`ReadId`]. The answer comes back later in [`Ready::reads`](crate::Ready::reads): either
//! a *read index* — the driver serves the read from its state machine once it has applied up to
//! that index, and the result is linearizable — or an error, after which the driver must not
//! serve the read from local state (it may retry elsewhere). A read never silently returns stale
//! data.

use std::fmt;

use crate::ids::{Index, NodeId};

/// The driver's name for one read, echoed in its [`ReadState`]. Unique among the reads in flight
/// on one node.
pub type ReadId = u64;

/// How a read is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// ReadIndex: the leader notes its commit index and confirms that it still leads with one
    /// round of heartbeats to a quorum. Costs a round trip, relies on no clock. On a follower the
    /// read is forwarded to the leader, and served locally once the follower has applied the
    /// leader's index.
    ReadIndex,
    /// Lease: the leader serves at its commit index without a round trip while its lease holds
    /// (a quorum acknowledged a heartbeat within the election timeout, minus a clock-drift
    /// margin). Safe only if clocks drift by less than that margin; without a valid lease the
    /// read falls back to a ReadIndex round.
    Lease,
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
        })
    }
}

/// Why a read cannot be served linearizably. The driver must answer the client with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// This node does not lead and knows no leader to ask, or lost leadership before the read was
    /// confirmed.
    NotLeader {
        /// The leader this node knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The read was not confirmed within an election timeout (the leader could not reach a
    /// quorum, or a forwarded request or its answer was lost).
    Timeout,
    /// Too many reads are waiting already.
    Busy,
    /// The protocol does not offer reads outside the log.
    Unsupported,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotLeader { leader_hint: Some(l) } => {
                write!(f, "not the leader; try node {l}")
            }
            ReadError::NotLeader { leader_hint: None } => write!(f, "no leader known"),
            ReadError::Timeout => write!(f, "read not confirmed by a quorum in time"),
            ReadError::Busy => write!(f, "too many reads in flight"),
            ReadError::Unsupported => write!(f, "this protocol offers no linearizable reads"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The outcome of one read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The driver's id for the read.
    pub id: ReadId,
    /// `Ok(index)`: serve the read once the state machine has applied `index`. `Err`: do not
    /// serve it.
    pub outcome: Result<Index, ReadError>,
}
