//! Durable storage for Conclave: what a node writes so that a crash cannot make it contradict
//! itself.
//!
//! - [`SegmentedLog`]: the write-ahead log of [`Entry`](conclave_core::Entry)s in checksummed
//!   records, split into size-bounded segment files, with suffix truncation (a new leader's
//!   entries replace a conflicting suffix) and prefix compaction (after a snapshot).
//! - [`FileStore`]: the log plus the atomically replaced hard state and snapshot files, behind the
//!   [`LogStore`] trait that drivers program against; [`LogStore::load`] returns exactly the
//!   [`DurableState`](conclave_core::DurableState) a protocol is rebuilt from, snapshot included,
//!   and [`LogStore::install_snapshot`] carries out a `Ready::snapshot` (the log reconciled by
//!   Raft's rule).
//! - [`LogWriter`]: the one durable write path of a node, a thread that carries out each
//!   `Ready`'s writes ([`WriteJob`]: hard state, snapshot, entries, compaction) in order and makes
//!   every job queued while it was busy durable with one `fdatasync` (group commit).
//! - [`MemStore`]: the in-memory twin for tests of drivers, which loses unsynced data on
//!   [`MemStore::crash`] exactly as a disk may, driven by a seeded
//!   [`RandomSource`](conclave_core::RandomSource).
//! - [`inspect`] / [`verify`]: read-only reports on a directory, for operators; [`set_aside`]:
//!   moves a damaged store's files into a `damaged-STAMP` folder so its node can be rebuilt from
//!   its peers (nothing is deleted; term and vote are kept).
//!
//! Two rules shape everything here. **Recovery never drops data silently**: only a torn tail of
//! the last segment (bad bytes with nothing valid after them) is cut, with a warning; any other
//! bad byte fails the open with the file and offset ([`CorruptionError`]). **IO errors are
//! fatal**: after any failed write or fsync every call fails ([`StorageError::Failed`]) until the
//! store is reopened. `FORMAT.md` beside this crate describes the bytes on disk.
//!
//! ```
//! use bytes::Bytes;
//! use conclave_core::{Entry, HardState, Index, NodeId, Term};
//! use conclave_storage::{FileStore, LogStore, Options};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = FileStore::open(dir.path(), &Options::default()).unwrap();
//! store.append(&[Entry::command(Index(1), Term(1), Bytes::from_static(b"set x 1"))]).unwrap();
//! store.sync().unwrap(); // durable from here on
//! store.save_hard_state(&HardState { term: Term(1), vote: Some(NodeId(1)), commit: Index(1) }).unwrap();
//! drop(store);
//!
//! let recovered = FileStore::open(dir.path(), &Options::default()).unwrap().load().unwrap();
//! assert_eq!(recovered.state.entries.len(), 1);
//! assert_eq!(recovered.state.hard_state.vote, Some(NodeId(1)));
//! ```
#![deny(missing_docs)]

mod error;
mod fs;
mod hard_state;
mod health;
mod inspect;
mod log;
mod log_start;
mod memory;
mod node_id;
mod record;
mod repair;
mod sealed;
mod segment;
mod snapshot;
mod store;
mod writer;

/// The snapshot type the store persists is the protocol interface's own.
pub use conclave_core::Snapshot;
/// A record's own faults, named by the record format and carried in [`Corruption::Record`].
pub use conclave_log_format::RecordError;
pub use error::{Corruption, CorruptionError, Result, StorageError};
pub use fs::FaultInjector;
pub use inspect::{inspect, verify, Report, SegmentReport, SnapshotReport};
pub use log::{Options, SegmentedLog};
pub use memory::{CrashReport, MemStore};
pub use node_id::{claim, owner, NODE_ID_FILE};
pub use record::TornTail;
pub use repair::{
    hold, is_hard_state_file, rebuilt_for, set_aside, HeldStore, SetAside, DAMAGED_PREFIX,
    REBUILT_FOR_FILE,
};
pub use store::{FileStore, LogStore, Recovered};
pub use writer::{Durable, JobId, LogWriter, WriteJob};
