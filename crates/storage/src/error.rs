//! The two classes of failure a store reports: operating errors (IO, misuse, a failed store) and
//! corruption found on disk. Both are values; nothing a disk can contain makes this crate panic.

use std::io;
use std::path::{Path, PathBuf};

use conclave_core::Index;
use conclave_log_format::RecordError;
use thiserror::Error;

/// Why a stored byte sequence cannot be trusted. Always carried inside a [`CorruptionError`],
/// which adds the file and byte offset.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Corruption {
    /// A record's own fault, as the record format names it: too few bytes for a header, an
    /// impossible length, a checksum that fails, a valid record at the wrong index, or an
    /// unknown entry kind. Whether it is corruption or a torn tail depends on where it stands
    /// (see the segment scan), not on the fault alone.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A segment's first record, or a gap between two segments, breaks the contiguous log.
    #[error("segment starts at index {found} but the log continues at index {expected}")]
    SegmentGap {
        /// The index the log needs next.
        expected: Index,
        /// The index the segment starts at.
        found: Index,
    },
    /// A file whose name says it belongs to the store but whose name cannot be parsed.
    #[error("unparseable file name")]
    BadFileName,
    /// A hard state, snapshot or log-start file without the expected magic bytes or version.
    #[error("bad header: {0}")]
    BadHeader(&'static str),
    /// A fixed-size file of the wrong size, or a variable one whose declared sizes overrun it.
    #[error("file is {found} bytes where {expected} were expected")]
    FileSize {
        /// The size the contents declare.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// A whole-file checksum (hard state, snapshot, log start) does not match.
    #[error("file checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    FileChecksum {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum computed over its contents.
        computed: u32,
    },
    /// A snapshot's name disagrees with the index and term inside it.
    #[error("file name says index {named} but the contents say index {found}")]
    NameMismatch {
        /// The index in the file name.
        named: Index,
        /// The index in the file.
        found: Index,
    },
    /// The log does not reach back to the snapshot: entries between them are missing.
    #[error(
        "the log starts at index {log_first} but the newest valid snapshot ends at {snapshot}"
    )]
    MissingEntries {
        /// The first index the log holds.
        log_first: Index,
        /// The snapshot's last included index (0 when there is none).
        snapshot: Index,
    },
    /// The file could not be read at all, so nothing in it can be vouched for.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Corruption found on disk, naming the file and the byte offset where it starts, so an operator
/// can look at it (`conclave wal inspect DIR`) before deciding what to do. Recovery never drops
/// data silently: only a torn tail (see FORMAT.md) is cut, everything else ends here.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("corruption in {} at byte offset {offset}: {reason}", file.display())]
pub struct CorruptionError {
    /// The file holding the bad bytes.
    pub file: PathBuf,
    /// Where the bad bytes start (the start of the bad record for log segments).
    pub offset: u64,
    /// What is wrong.
    pub reason: Corruption,
}

impl CorruptionError {
    pub(crate) fn new(file: &Path, offset: u64, reason: Corruption) -> CorruptionError {
        CorruptionError { file: file.to_path_buf(), offset, reason }
    }
}

/// Everything a store operation can fail with.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A system call failed. If it was a write or a sync, the store is now failed (see
    /// [`StorageError::Failed`]): the kernel may have dropped the dirty pages, so retrying the
    /// fsync could report success for data that is gone.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("fdatasync", "write", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the OS.
        source: io::Error,
    },
    /// Bad bytes on disk.
    #[error(transparent)]
    Corrupt(#[from] CorruptionError),
    /// An earlier write or fsync failed, so nothing this handle says about durability can be
    /// trusted any more. Every call fails until the store is reopened, which rebuilds the state
    /// from what is actually on disk (the PostgreSQL "fsyncgate" lesson).
    #[error("storage failed earlier and refuses further use until reopened: {cause}")]
    Failed {
        /// The first error, as text.
        cause: String,
    },
    /// Another handle (in this or another process) holds the directory's lock; two writers
    /// would interleave records and corrupt the log.
    #[error("{} is locked by another open store", dir.display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// The store belongs to another node (its `node-id` file says so): opening it under this
    /// id would make this node claim that node's votes and log.
    #[error(
        "{} belongs to node {owner} (its node-id file says so), not node {node}: check the id \
         and the data directory",
        dir.display()
    )]
    OtherNode {
        /// The store directory.
        dir: PathBuf,
        /// The node recorded in the directory.
        owner: conclave_core::NodeId,
        /// The node that tried to use it.
        node: conclave_core::NodeId,
    },
    /// An append would leave a hole after the log's end.
    #[error("entries start at index {first} but the log ends at {last}")]
    Gap {
        /// The batch's first index.
        first: Index,
        /// The log's last index.
        last: Index,
    },
    /// Two neighbouring entries of one batch are not consecutive.
    #[error("entry index {found} follows {previous} in one batch")]
    NotContiguous {
        /// The index before.
        previous: Index,
        /// The index that should have been `previous + 1`.
        found: Index,
    },
    /// The request reaches below the compacted prefix; those entries are gone (and committed,
    /// so they must not be rewritten).
    #[error("index {index} is compacted; the log starts at {first}")]
    Compacted {
        /// The index asked for.
        index: Index,
        /// The first index still held.
        first: Index,
    },
    /// The request reaches past the log's end.
    #[error("index {index} is past the end of the log at {last}")]
    Unavailable {
        /// The index asked for.
        index: Index,
        /// The last index held.
        last: Index,
    },
    /// Compaction would discard entries that no saved snapshot covers, losing committed state.
    #[error("cannot compact up to index {upto}: the newest snapshot covers only up to {snapshot}")]
    NotSnapshotted {
        /// The compaction point asked for.
        upto: Index,
        /// The newest snapshot's index (0 when there is none).
        snapshot: Index,
    },
    /// One entry does not fit in a record (its length field is a `u32`).
    #[error("entry of {size} bytes exceeds the record limit of {limit}")]
    EntryTooLarge {
        /// The encoded payload size.
        size: u64,
        /// The largest payload a record can hold.
        limit: u64,
    },
    /// Options that cannot work, such as a segment too small for any record.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
    /// A [`LogWriter`](crate::LogWriter) was handed a job after its thread stopped, which it
    /// does only after reporting a failed write or sync: the job was not written.
    #[error("the log writer has stopped after a storage failure; the job was not written")]
    WriterStopped,
    /// Setting a damaged store aside failed part way, and moving the files already moved back
    /// failed too: the store is split between its directory and the folder, and the node must
    /// not start until they are put back.
    #[error(
        "setting the store aside failed ({cause}), and moving {} back from {} failed too \
         ({undo}); move them back into the store directory by hand before starting the node",
        files.join(", "),
        folder.display()
    )]
    SetAsideSplit {
        /// The folder still holding some of the store's files.
        folder: PathBuf,
        /// The files still in it.
        files: Vec<String>,
        /// Why setting aside failed.
        cause: String,
        /// Why moving them back failed.
        undo: String,
    },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> StorageError {
        StorageError::Io { op, path: path.to_path_buf(), source }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
