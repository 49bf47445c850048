//! The protocol interface shared by every Conclave consensus core.
//!
//! A protocol core (Raft, Multi-Paxos, Two-Phase Commit) is a pure state machine. It never reads a
//! clock, spawns a thread, opens a socket or touches a file: time arrives as [`Protocol::tick`],
//! randomness from an injected [`RandomSource`], messages through [`Protocol::step`] and commands
//! through [`Protocol::propose`]. Everything the outside world must do comes back as one batch, a
//! [`Ready`], which a *driver* (the deterministic simulator, or the real runtime) carries out.
//!
//! The persistence contract lives in the types, so a driver cannot get it wrong by accident:
//!
//! 1. [`Ready::messages`] depend on no unpersisted state and may be sent at once.
//! 2. [`Ready::hard_state`] and [`Ready::entries`] must be made durable (fsync) next.
//! 3. Only then may [`Ready::persisted_messages`] be sent, and the driver reports the durable log
//!    prefix with [`Protocol::on_persisted`].
//! 4. [`Ready::committed_entries`] are applied in order. The core only releases entries that are
//!    both committed and durable on this node, so applying never runs ahead of the disk.
//!
//! Snapshots travel the same way: [`Ready::snapshot`] is persisted with the other writes (and
//! restores the state machine when it is ahead of it), [`Ready::compact_log_to`] lets the driver
//! drop the durable log prefix a durable snapshot covers, and [`Ready::snapshot_due`] asks the
//! driver for an image of its state machine, handed back with [`Protocol::on_snapshot_taken`].
//!
//! [`contract::Checked`] wraps any protocol and checks both sides of this contract as a driver
//! runs it, so that every driver can be tested against the same rules.
//!
//! ```
//! use conclave_core::{Entry, EntryKind, Index, Term};
//! let e = Entry::command(Index(1), Term(1), bytes::Bytes::from_static(b"set x 1"));
//! assert_eq!(e.kind, EntryKind::Command);
//! ```
#![deny(missing_docs)]

pub mod contract;
mod entry;
mod ids;
mod membership;
mod protocol;
mod read;
mod ready;
mod rng;
mod wire;

pub use entry::{DurableState, Entry, EntryKind, HardState, Snapshot};
pub use ids::{Index, NodeId, Term};
pub use membership::{Membership, MembershipChange, MembershipDecodeError, MembershipError};
pub use protocol::{
    LogView, MessageMeta, Proposal, ProposeError, Protocol, Role, Status, TransferError,
};
pub use read::{ReadConsistency, ReadError, ReadId, ReadMode, ReadState, UnknownName};
pub use ready::{Envelope, Ready};
pub use rng::{RandomSource, SeededRng};
pub use wire::{put_bytes, put_entry, DecodeError, WireMessage, WireReader, ENTRY_BYTES_MIN};
