//! The in-memory twin of [`FileStore`](crate::FileStore), for deterministic tests of drivers (the
//! simulator's disk shares only the record format with it, `conclave-log-format`, since this
//! crate does file IO).
//!
//! It keeps the log as the same record bytes the file store writes, plus how many of them are
//! durable. [`MemStore::crash`] then behaves like a power cut: the unsynced bytes survive only up
//! to a point chosen by the caller's [`RandomSource`] (usually mid-record), sometimes followed by
//! zeros, and the real recovery scan cuts the torn tail. The same seed gives the same crash.

use std::sync::Arc;

use conclave_core::{Entry, HardState, Index, RandomSource};

use crate::error::{Result, StorageError};
use crate::fs::{FaultInjector, Io};
use crate::health::Health;
use crate::log::check_batch;
use crate::record::{self, SECTOR_BYTES};
use crate::store::{durable_state, LogStore, Recovered};
use conclave_core::Snapshot;

/// What a simulated crash destroyed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Appended entries that did not survive (they were never synced).
    pub entries_lost: u64,
    /// Bytes of a partly written record (or zero fill) that recovery cut off.
    pub bytes_torn: u64,
}

/// A [`LogStore`] in memory whose crashes lose exactly what a real disk may lose.
#[derive(Debug)]
pub struct MemStore {
    /// The log's records as the file store would write them, starting at `image_first`.
    image: Vec<u8>,
    /// Invariant: `offsets[i]` is where the record of `entries[i]` starts in `image`.
    offsets: Vec<usize>,
    /// Invariant: `entries[i].index == image_first + i`.
    entries: Vec<Entry>,
    image_first: Index,
    /// The first index not hidden by compaction. Invariant: `image_first <= first_index`.
    first_index: Index,
    /// Bytes of `image` that are durable. Invariant: `synced_len <= image.len()`.
    synced_len: usize,
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    health: Health,
    io: Io,
}

impl Default for MemStore {
    fn default() -> MemStore {
        MemStore::new()
    }
}

impl MemStore {
    /// An empty store, as a fresh node has.
    pub fn new() -> MemStore {
        MemStore {
            image: Vec::new(),
            offsets: Vec::new(),
            entries: Vec::new(),
            image_first: Index(1),
            first_index: Index(1),
            synced_len: 0,
            hard_state: HardState::default(),
            snapshot: None,
            health: Health::default(),
            io: Io::default(),
        }
    }

    /// The same store, failing writes or syncs when `faults` says so (to exercise a driver's
    /// handling of a failed disk).
    pub fn with_fault_injector(mut self, faults: Arc<FaultInjector>) -> MemStore {
        self.io = Io::new(Some(faults));
        self
    }

    /// True once an injected write or sync failure has failed the store (until [`MemStore::crash`]).
    pub fn is_failed(&self) -> bool {
        self.health.is_failed()
    }

    /// Bytes appended but not yet synced: what a crash may lose.
    pub fn unsynced_bytes(&self) -> usize {
        self.image.len() - self.synced_len
    }

    /// Simulates a crash and restart. Unsynced bytes survive up to a random point (so the last
    /// surviving record is usually torn); with probability 1/4 a zero-filled stretch follows, as a
    /// file system may leave, from a sector boundary on. Recovery then cuts the torn tail exactly as on disk. Durable state
    /// (synced entries, hard state, snapshots, compaction) always survives. A failed store is
    /// healthy again afterwards, as a reopened one is.
    pub fn crash(&mut self, rng: &mut dyn RandomSource) -> Result<CrashReport> {
        let unsynced = self.unsynced_bytes() as u64;
        let survivors = if unsynced == 0 { 0 } else { rng.between(0, unsynced + 1) } as usize;
        self.image.truncate(self.synced_len + survivors);
        if rng.chance(0.25) {
            // A disk writes a sector whole or not at all: zeros begin at a sector boundary (or
            // where the synced records end), never inside a sector that was written.
            let sector_start = self.image.len() / SECTOR_BYTES * SECTOR_BYTES;
            self.image.truncate(sector_start.max(self.synced_len));
            let zeros = rng.between(1, 64) as usize;
            self.image.resize(self.image.len() + zeros, 0);
        }
        let before = self.entries.len() as u64;
        let scan = record::scan_segment(&self.image, self.image_first, true, "memory".as_ref())?;
        let bytes_torn = scan.torn.as_ref().map_or(0, |t| t.bytes);
        self.image.truncate(scan.valid_len as usize);
        self.entries.truncate(scan.offsets.len());
        self.offsets.truncate(scan.offsets.len());
        self.synced_len = self.image.len();
        if self.next_index() < self.first_index {
            self.reset_at(self.first_index);
        }
        self.health = Health::default();
        Ok(CrashReport { entries_lost: before - self.entries.len() as u64, bytes_torn })
    }

    fn next_index(&self) -> Index {
        Index(self.image_first.0 + self.entries.len() as u64)
    }

    /// Empties the log so that it continues at `first`.
    fn reset_at(&mut self, first: Index) {
        self.image.clear();
        self.offsets.clear();
        self.entries.clear();
        self.synced_len = 0;
        self.image_first = first;
    }

    fn mutate<T>(&mut self, change: impl FnOnce(&mut MemStore) -> Result<T>) -> Result<T> {
        self.health.check()?;
        let result = change(self);
        if let Err(error) = &result {
            self.health.observe(error);
        }
        result
    }

    /// One durable metadata write: a write then a sync, either of which may be injected to fail.
    fn durable_write(&self, what: &'static str) -> Result<()> {
        let path = std::path::Path::new(what);
        self.io.check_write().map_err(|e| StorageError::io("write", path, e))?;
        self.io.check_sync().map_err(|e| StorageError::io("fsync", path, e))
    }

    fn truncate_checked(&mut self, from: Index) -> Result<()> {
        if from < self.first_index {
            return Err(StorageError::Compacted { index: from, first: self.first_index });
        }
        if from >= self.next_index() {
            return Ok(());
        }
        self.durable_write("truncate")?;
        let keep = (from.0 - self.image_first.0) as usize;
        let cut = self.offsets[keep];
        self.image.truncate(cut);
        self.offsets.truncate(keep);
        self.entries.truncate(keep);
        self.synced_len = self.synced_len.min(cut);
        Ok(())
    }
}

impl LogStore for MemStore {
    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.mutate(|store| {
            let Some(first) = entries.first() else { return Ok(()) };
            check_batch(entries, store.first_index, store.last_index())?;
            store.truncate_checked(first.index)?;
            for entry in entries {
                store.offsets.push(store.image.len());
                record::encode(entry, &mut store.image)?;
                store.entries.push(entry.clone());
            }
            Ok(())
        })
    }

    fn truncate_suffix(&mut self, from: Index) -> Result<()> {
        self.mutate(|store| store.truncate_checked(from))
    }

    fn compact_prefix(&mut self, upto: Index) -> Result<()> {
        self.mutate(|store| {
            let covered = store.snapshot.as_ref().map_or(Index(0), |s| s.index);
            if upto > covered {
                return Err(StorageError::NotSnapshotted { upto, snapshot: covered });
            }
            let new_first = upto.next();
            if new_first <= store.first_index {
                return Ok(());
            }
            store.durable_write("log-start")?;
            store.first_index = new_first;
            if store.next_index() < new_first {
                store.reset_at(new_first);
                return Ok(());
            }
            // Drop the hidden records so a long simulation does not keep the whole history.
            let drop = (new_first.0 - store.image_first.0) as usize;
            let cut = store.offsets.get(drop).copied().unwrap_or(store.image.len());
            store.image.drain(..cut);
            store.entries.drain(..drop);
            store.offsets.drain(..drop);
            store.offsets.iter_mut().for_each(|offset| *offset -= cut);
            store.synced_len = store.synced_len.saturating_sub(cut);
            store.image_first = new_first;
            Ok(())
        })
    }

    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>> {
        self.health.check()?;
        if lo >= hi {
            return Ok(Vec::new());
        }
        if lo < self.first_index {
            return Err(StorageError::Compacted { index: lo, first: self.first_index });
        }
        if hi > self.next_index() {
            return Err(StorageError::Unavailable { index: hi.prev(), last: self.last_index() });
        }
        let from = (lo.0 - self.image_first.0) as usize;
        let to = (hi.0 - self.image_first.0) as usize;
        Ok(self.entries[from..to].to_vec())
    }

    fn first_index(&self) -> Index {
        self.first_index
    }

    fn last_index(&self) -> Index {
        self.next_index().prev()
    }

    fn sync(&mut self) -> Result<()> {
        self.mutate(|store| {
            store.durable_write("log")?;
            store.synced_len = store.image.len();
            Ok(())
        })
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<()> {
        self.mutate(|store| {
            store.durable_write("hard-state")?;
            store.hard_state = *hard_state;
            Ok(())
        })
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.mutate(|store| {
            store.durable_write("snapshot")?;
            if store.snapshot.as_ref().is_none_or(|s| s.index <= snapshot.index) {
                store.snapshot = Some(snapshot.clone());
            }
            Ok(())
        })
    }

    fn load(&self) -> Result<Recovered> {
        Ok(Recovered { state: durable_state(self, self.hard_state, self.snapshot.as_ref())? })
    }
}
