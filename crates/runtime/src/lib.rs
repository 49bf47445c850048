//! The real driver of Conclave's consensus cores.
//!
//! A protocol core is pure: it needs someone to give it time, messages and a disk. In the
//! simulator that is the simulation; on a real node it is this crate:
//!
//! - [`Runtime`]: one per node. It shares one [`Transport`](conclave_transport::Transport)
//!   among several consensus groups (multi-raft): every peer message carries its
//!   [`GroupId`](conclave_transport::GroupId), and the transport's links hand it straight to
//!   that group's loop; a loop that falls behind makes the links stop reading (TCP
//!   back-pressure), and no message is dropped on the way.
//! - A group's loop (one tokio task) owns its core and carries out each `Ready` in the order the
//!   persistence contract demands: messages that need no durability go out at once, writes go to
//!   the group's [`LogWriter`](conclave_storage::LogWriter) thread, which batches every `Ready`
//!   queued meanwhile into one fdatasync, and the messages and acknowledgements that depend on
//!   those writes wait for it.
//! - [`GroupHandle`]: what client sessions call: [`propose`](GroupHandle::propose) (answered
//!   with the [`StateMachine`]'s output once the command is committed and applied),
//!   [`read_barrier`](GroupHandle::read_barrier) (ReadIndex, lease or stale), membership
//!   changes, leadership transfer and status.
//! - The group's log carries a replicated address book next to the application's commands, so a
//!   node added at run time is reachable from every member and every later leader.
//!
//! A storage failure stops the group, fails its waiting clients, and is reported by
//! [`Runtime::failed`] so the process can exit: a node never goes on after an fsync error.
#![deny(missing_docs)]

mod envelope;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod handle;
mod metrics;
mod node;
mod state_machine;

/// The read guarantees sessions choose from, by the names clients use (one list, in the core).
pub use conclave_core::ReadConsistency;
pub use envelope::AddressBook;
pub use error::{
    BoxError, ClientError, EnvelopeError, FailureReason, GroupFailure, RuntimeError, SnapshotError,
};
pub use handle::{GroupHandle, GroupStatus, MemberProgress, PendingRead, PendingWrite};
pub use metrics::{Histogram, Metrics};
pub use node::{GroupOptions, Runtime};
pub use state_machine::{SnapshotJob, StateMachine};

#[cfg(test)]
mod tests;
