//! The storage interface a driver programs against ([`LogStore`]) and its on-disk implementation
//! ([`FileStore`]): the segmented log plus the hard state and snapshot files.

use std::path::Path;

use conclave_core::{DurableState, Entry, HardState, Index, Snapshot, Term};

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::hard_state;
use crate::log::{Options, SegmentedLog};
use crate::log_start::LOG_START_FILE;
use crate::snapshot;

/// Everything a node recovers from its storage on restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Exactly what a protocol is rebuilt from: the hard state, the newest valid snapshot and the
    /// log. With a snapshot, `entries` start at the log's first index (at most
    /// `snapshot.index + 1`, possibly below it) rather than at 1, and they are empty when the
    /// log does not hold the snapshot's own entry (Raft's rule: the whole log then goes; see
    /// [`LogStore::install_snapshot`]).
    pub state: DurableState,
}

/// Durable storage for one consensus node: a log of entries, a hard state and snapshots.
///
/// The file store and its in-memory twin both implement it, so a driver written
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
    /// Saves a snapshot durably; older snapshots are then discarded. The log is left as it is;
    /// [`LogStore::install_snapshot`] also reconciles it.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()>;
    /// Everything a restart would recover, as of now.
    fn load(&self) -> Result<Recovered>;

    /// Carries out a `Ready::snapshot`: saves `snapshot` durably, then reconciles the log by
    /// Raft's rule. Entries after the snapshot survive only if the log holds the snapshot's own
    /// entry (same index and term); otherwise the whole log goes and the log continues at
    /// `snapshot.index + 1`, also when the snapshot lies beyond the log's end (a follower
    /// installing a leader's snapshot). Durable when it returns.
    ///
    /// The snapshot is saved first: until it is durable the log is the only copy of the prefix it
    /// covers. A crash between the two steps leaves the new snapshot beside the old log;
    /// [`LogStore::load`] applies the rule to what it returns, and [`FileStore::open`] finishes the
    /// reconciliation on disk, so the stale entries never reach a protocol.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.save_snapshot(snapshot)?;
        if !holds_entry(self, snapshot.index, snapshot.term)? {
            let first = self.first_index();
            self.truncate_suffix(first)?;
            self.compact_prefix(snapshot.index)?;
        }
        Ok(())
    }
}

/// Whether `store` holds the entry (`index`, `term`), for the snapshot rule. An index below the
/// log's first index counts as held: compaction only discards a prefix a snapshot covers, and a
/// snapshot holds only committed entries, which never change.
pub(crate) fn holds_entry<S: LogStore + ?Sized>(
    store: &S,
    index: Index,
    term: Term,
) -> Result<bool> {
    if index < store.first_index() {
        return Ok(true);
    }
    if index > store.last_index() {
        return Ok(false);
    }
    Ok(store.entries(index, index.next())?.first().is_some_and(|entry| entry.term == term))
}

/// The durable state to hand a protocol: the log as stored, emptied when it does not hold the
/// snapshot's entry (the snapshot rule, for a crash between the two steps of `install_snapshot`).
pub(crate) fn durable_state<S: LogStore + ?Sized>(
    store: &S,
    hard_state: HardState,
    snapshot: Option<&Snapshot>,
) -> Result<DurableState> {
    let mut entries = store.entries(store.first_index(), store.last_index().next())?;
    if let Some(snapshot) = snapshot {
        if !holds_entry(store, snapshot.index, snapshot.term)? {
            entries.clear();
        }
    }
    Ok(DurableState { hard_state, snapshot: snapshot.cloned(), entries })
}

/// A snapshot being saved on a thread of its own; see [`FileStore::start_snapshot_save`].
#[derive(Debug)]
pub(crate) struct SnapshotSave {
    snapshot: Snapshot,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl SnapshotSave {
    /// Whether the save has ended (so finishing it will not wait).
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
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
    /// reach back to the snapshot (entries would be missing). If a crash interrupted
    /// [`LogStore::install_snapshot`] after the snapshot was saved, the log is reconciled now
    /// (with a warning): it does not hold the snapshot's entry, so it goes.
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
        let mut store = FileStore { log, hard_state, snapshot };
        if let Some(snapshot) = store.snapshot.clone() {
            if !holds_entry(&store, snapshot.index, snapshot.term)? {
                tracing::warn!(
                    index = snapshot.index.0,
                    term = snapshot.term.0,
                    log_first = store.first_index().0,
                    log_last = store.last_index().0,
                    "the log does not hold the snapshot's entry (an interrupted snapshot install); discarding it"
                );
                let first = store.first_index();
                store.truncate_suffix(first)?;
                store.compact_prefix(snapshot.index)?;
            }
        }
        Ok(store)
    }

    /// The log, for reads and inspection.
    pub fn log(&self) -> &SegmentedLog {
        &self.log
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
    /// Starts saving `snapshot` durably on a thread of its own (the same steps as
    /// [`LogStore::save_snapshot`]), so a large image does not hold up the log's appends and
    /// fsyncs meanwhile. Until [`FileStore::finish_snapshot_save`] has returned `Ok`, the store
    /// still counts the older snapshot as its newest: compaction stays limited to what that one
    /// covers.
    pub(crate) fn start_snapshot_save(&self, snapshot: Snapshot) -> Result<SnapshotSave> {
        self.log.check()?;
        let io = self.log.io().clone();
        let dir = self.log.dir().to_path_buf();
        let thread = std::thread::Builder::new()
            .name("snapshot-save".into())
            .spawn({
                let snapshot = snapshot.clone();
                move || snapshot::save(&io, &dir, &snapshot)
            })
            .map_err(|source| {
                StorageError::io("start a snapshot save thread for", self.log.dir(), source)
            })?;
        Ok(SnapshotSave { snapshot, thread })
    }

    /// Waits for a save started by [`FileStore::start_snapshot_save`]; once it is durable the
    /// store counts it as its newest snapshot. A failed save fails the store like any write.
    pub(crate) fn finish_snapshot_save(&mut self, save: SnapshotSave) -> Result<()> {
        let SnapshotSave { snapshot, thread } = save;
        let result = thread.join().unwrap_or_else(|_| {
            Err(StorageError::io(
                "save a snapshot in",
                self.log.dir(),
                std::io::Error::other("the snapshot save thread panicked"),
            ))
        });
        if let Err(error) = &result {
            self.log.fail(error);
        }
        result?;
        if self.snapshot.as_ref().is_none_or(|s| s.index <= snapshot.index) {
            self.snapshot = Some(snapshot);
        }
        Ok(())
    }

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
        Ok(Recovered { state: durable_state(self, self.hard_state, self.snapshot.as_ref())? })
    }
}
