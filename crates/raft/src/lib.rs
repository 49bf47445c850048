//! An IO-free, tick-driven Raft core.
//!
//! [`Raft`] implements [`conclave_core::Protocol`]: leader election with randomised timeouts,
//! pre-vote and check-quorum; log replication with batching (entry and byte limits per message),
//! pipelining (an optimistic next index, a bounded in-flight window per follower) and fast
//! backtracking (conflict term/index hints); the paper's commit rule (only current-term entries
//! are committed by counting, with a no-op at the start of each term); snapshots (taken when the
//! driver's state machine is asked for one, the log compacted behind them, and streamed in chunks
//! to a follower that needs compacted entries); membership changes (learners, one-voter changes,
//! and joint consensus for larger ones); linearizable reads without log entries (ReadIndex,
//! leases, and follower reads through the leader); leadership transfer; and the persistence
//! contract of [`conclave_core::Ready`].
//!
//! ```
//! use bytes::Bytes;
//! use conclave_core::{DurableState, NodeId, Protocol, Role, SeededRng};
//! use conclave_raft::{Config, Raft};
//!
//! // A single-node cluster elects itself after one election timeout.
//! let config = Config::new(NodeId(1), vec![NodeId(1)]);
//! let mut node = Raft::new(config, DurableState::default(), Box::new(SeededRng::new(7))).unwrap();
//! while node.status().role != Role::Leader {
//!     node.tick();
//! }
//! let proposal = node.propose(Bytes::from_static(b"x=1")).unwrap();
//! // The driver persists what `ready` hands it, reports it durable, and applies.
//! let mut applied = Vec::new();
//! while node.has_ready() {
//!     let ready = node.ready();
//!     if let Some(last) = ready.entries.last() {
//!         node.on_persisted(last.index, last.term);
//!     }
//!     applied.extend(ready.committed_entries);
//! }
//! assert_eq!(applied.last().unwrap().index, proposal.index);
//! ```
#![deny(missing_docs)]

mod codec;
mod config;
mod election;
mod log;
mod membership;
pub mod memory_cluster;
mod message;
mod progress;
mod quorum;
mod raft;
mod read;
mod replication;
mod snapshot;
mod transfer;

pub use conclave_core::TransferError;
#[cfg(feature = "bug-injection")]
pub use config::{BugVariant, Bugs, UnknownBug};
pub use config::{Config, ConfigError};
pub use log::{AppendOutcome, RaftLog};
pub use message::{AppendResult, Message};
pub use progress::{Progress, ReplicationState, SnapshotTransfer, StallDetector};
pub use raft::Raft;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forged;
#[cfg(test)]
mod tests_golden;
#[cfg(test)]
mod tests_membership;
#[cfg(test)]
mod tests_read;
