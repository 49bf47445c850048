//! The storage interface a driver programs against ([`LogStore`]) and its on-disk implementation
//! ([`FileStore`]): the segmented log plus the hard state and snapshot files.

use std::path::Path;

use conclave_core::{DurableState, Entry, HardState, Index};

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::hard_state;
use crate::log::{Options, SegmentedLog};
use crate::log_start::LOG_START_FILE;
use crate::snapshot::{self, Snapshot};

/// Everything a node recovers from its storage on restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The hard state and the log. With a snapshot, `entries` start at the log's first index
    /// (at most `snapshot.index + 1`, possibly below it) rather than at 1.
    pub state: DurableState,
    /// The newest valid snapshot, if one was saved.
    pub snapshot: Option<Snapshot>,
}

/// Durable storage for one consensus node: a log of entries, a hard state and snapshots.
///
/// The file store and the simulator's in-memory twin both implement it, so a driver written
/// against it runs unchanged in both. The durability contract: [`LogStore::append`] is not
/// durable until [`LogStore::sync`] returns; truncation, compaction, hard state and snapshot
/// saves are durable when they return. After any write or sync error every call fails.
pub trait LogStore {
    /// Appends contiguous entries; if the first index is at or below the last index, everything
    /// from it on is replaced first (the `conclave_core::Ready::entries` rule).
    fn append(&mut self, entries: &[Entry]) -> Result<()>;
    /// Removes every entry from `from` on.
    fn truncate_suffix(&mut self, from: Index) -> Result<()>;
    /// Discards every entry up to and including `upto`, which a saved snapshot must cover:
    /// compacting what no snapshot holds would lose committed state.
    fn compact_prefix(&mut self, upto: Index) -> Result<()>;
    /// The entries with `lo <= index < hi`.
    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>>;
    /// The first index held (1 unless compacted).
    fn first_index(&self) -> Index;
    /// The last index held (`first_index - 1` when empty).
    fn last_index(&self) -> Index;
    /// Makes every append so far durable.
    fn sync(&mut self) -> Result<()>;
    /// Replaces the hard state durably and atomically.
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<()>;
    /// Saves a snapshot durably; older snapshots are then discarded.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()>;
    /// Everything a restart would recover, as of now.
    fn load(&self) -> Result<Recovered>;
}

/// The on-disk store: a [`SegmentedLog`] plus the `hard-state` and `snapshot-*.snap` files in the
/// same directory (FORMAT.md describes them all).
#[derive(Debug)]
pub struct FileStore {
    log: SegmentedLog,
    hard_state: HardState,
    snapshot: Option<Snapshot>,
}

impl FileStore {
    /// Opens (or creates) the store in `dir` and recovers it: the log (cutting a torn tail), the
    /// hard state and the newest valid snapshot. Fails on corruption, and when the log does not
    /// reach back to the snapshot (entries would be missing).
    pub fn open(dir: impl AsRef<Path>, options: &Options) -> Result<FileStore> {
        let log = SegmentedLog::open(dir, options)?;
        let hard_state = hard_state::load(log.dir())?;
        let (snapshot, skipped) = snapshot::load_newest(log.dir())?;
        let covered = snapshot.as_ref().map_or(Index(0), |s| s.index);
        if log.first_index() > covered.next() {
            // A newer snapshot that was skipped is the real culprit if there is one.
            if let Some(first_skipped) = skipped.into_iter().next() {
                return Err(first_skipped.into());
            }
            let reason =
                Corruption::MissingEntries { log_first: log.first_index(), snapshot: covered };
            return Err(CorruptionError::new(&log.dir().join(LOG_START_FILE), 0, reason).into());
        }
        Ok(FileStore { log, hard_state, snapshot })
    }

    /// The log, for reads and inspection.
    pub fn log(&self) -> &SegmentedLog {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut SegmentedLog {
        &mut self.log
    }

    /// The last saved hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The newest saved snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// True once a write or sync error has failed the store.
    pub fn is_failed(&self) -> bool {
        self.log.is_failed()
    }

    /// Runs a write outside the log through the log's health, so a failure there fails the whole
    /// store too.
    fn write_file(&mut self, write: impl FnOnce(&SegmentedLog) -> Result<()>) -> Result<()> {
        self.log.check()?;
        let result = write(&self.log);
        if let Err(error) = &result {
            self.log.fail(error);
        }
        result
    }
}

impl LogStore for FileStore {
    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.log.append(entries)
    }

    fn truncate_suffix(&mut self, from: Index) -> Result<()> {
        self.log.truncate_suffix(from)
    }

    fn compact_prefix(&mut self, upto: Index) -> Result<()> {
        self.log.check()?;
        let covered = self.snapshot.as_ref().map_or(Index(0), |s| s.index);
        if upto > covered {
            return Err(StorageError::NotSnapshotted { upto, snapshot: covered });
        }
        self.log.compact_prefix(upto)
    }

    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>> {
        self.log.entries(lo, hi)
    }

    fn first_index(&self) -> Index {
        self.log.first_index()
    }

    fn last_index(&self) -> Index {
        self.log.last_index()
    }

    fn sync(&mut self) -> Result<()> {
        self.log.sync()
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<()> {
        self.write_file(|log| hard_state::save(log.io(), log.dir(), hard_state))?;
        self.hard_state = *hard_state;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.write_file(|log| snapshot::save(log.io(), log.dir(), snapshot))?;
        if self.snapshot.as_ref().is_none_or(|s| s.index <= snapshot.index) {
            self.snapshot = Some(snapshot.clone());
        }
        Ok(())
    }

    fn load(&self) -> Result<Recovered> {
        let entries = self.log.entries(self.log.first_index(), self.log.last_index().next())?;
        Ok(Recovered {
            state: DurableState { hard_state: self.hard_state, snapshot: None, entries },
            snapshot: self.snapshot.clone(),
        })
    }
}
