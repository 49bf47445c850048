//! The simulated disk of one node: the only state that survives a crash, and the writes on their
//! way to it.
//!
//! A `Ready`'s writes (hard state, entries, snapshot, compaction) are *issued* as one write and
//! become durable when it *completes*, after a latency drawn from the disk's own random stream
//! (0 by default: the write completes within the call that produced it). Completions are FIFO:
//! a write never completes before one issued earlier, as with one fsync'd log. Each write carries
//! a payload the driver needs on completion (the messages that wait for it, the entries to apply).
//!
//! What can go wrong mirrors `conclave_storage`, and a torn record is built from the same record
//! format (`conclave-log-format`, the storage crate's pure part: no IO, so the simulator may use
//! it, see docs/ARCHITECTURE.md):
//! - a crash loses every write that has not completed (the unsynced tail);
//! - a crash while a write with entries is in flight may leave the first of its records half
//!   written (a *torn* record); recovery cuts it on restart, exactly as the storage crate's scan
//!   cuts a torn tail, so a torn write is a lost write that leaves a trace;
//! - a sync may fail ([`SimDisk::fail_next_sync`]): the write is not durable and the node must
//!   stop, as after fsyncgate;
//! - a slow disk ([`SimDisk::set_slow`]) takes 10–100 ms for some writes.
//!
//! A write is applied atomically on completion (hard state, snapshot, entries and compaction
//! together), so a restart finds either all of a `Ready`'s writes or none.

use std::collections::VecDeque;

use conclave_core::{
    DurableState, Entry, EntryKind, HardState, Index, Membership, RandomSource, SeededRng,
    Snapshot, Term,
};
use thiserror::Error;

/// While a disk is slow, the share of its writes that land in the long tail.
const SLOW_TAIL_PROBABILITY: f64 = 0.1;
/// The long tail of a slow disk: an fsync stuck behind other IO, or a device garbage-collecting.
const SLOW_TAIL_MIN_US: u64 = 10_000;
const SLOW_TAIL_MAX_US: u64 = 100_000;

/// A write the disk refuses because it breaks the shape of a log or the snapshot rules. Each is a
/// protocol bug: the [`Ready`](conclave_core::Ready) contract promises contiguous entries that
/// extend or overwrite the durable log, and compaction only of what a snapshot covers.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DiskError {
    /// The batch starts past the end of the durable log, leaving a hole.
    #[error("entries start at index {first} but the durable log ends at {last_durable}")]
    Gap {
        /// The batch's first index.
        first: Index,
        /// The durable log's last index.
        last_durable: Index,
    },
    /// The batch starts at index 0, which is "before the first entry" and cannot hold one.
    #[error("entries start at index 0")]
    IndexZero,
    /// Two neighbouring entries in the batch are not consecutive.
    #[error("entry index {found} follows {previous} in one batch")]
    NotContiguous {
        /// The index before.
        previous: Index,
        /// The index that should have been `previous + 1`.
        found: Index,
    },
    /// The batch starts inside the compacted prefix of the log.
    #[error("entries start at index {first} but the durable log was compacted up to {compacted}")]
    Compacted {
        /// The batch's first index.
        first: Index,
        /// The last index compaction discarded.
        compacted: Index,
    },
    /// `compact_log_to` reaches past every durable snapshot.
    #[error("compaction up to index {upto} but the durable snapshot covers only up to {snapshot}")]
    NotSnapshotted {
        /// The index compaction was asked to reach.
        upto: Index,
        /// The durable snapshot's index (0 without one).
        snapshot: Index,
    },
    /// A snapshot older than the durable one.
    #[error("a snapshot at index {index} would replace the durable one at {durable}")]
    SnapshotBehind {
        /// The new snapshot's index.
        index: Index,
        /// The durable snapshot's index.
        durable: Index,
    },
}

/// Everything one `Ready` asks the disk to make durable.
#[derive(Clone, Debug, Default)]
pub(crate) struct DiskWrite {
    pub(crate) hard_state: Option<HardState>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) compact_to: Option<Index>,
}

impl DiskWrite {
    /// True when there is nothing to write (the `Ready` only waits for earlier writes).
    pub(crate) fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.compact_to.is_none()
    }
}

/// What applying a write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The term of the durable entry just before the written entries (after any snapshot in the
    /// same write); `None` when it is not known (compacted away) or nothing was written.
    pub(crate) term_prev: Option<Term>,
}

/// A write that was issued, and when it will complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Issued {
    pub(crate) seq: u64,
    pub(crate) done_at_us: u64,
}

/// The end of the oldest in-flight write. Made once per write and taken apart at once, so the
/// size gap between the variants costs nothing worth an allocation per write.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Completion<T> {
    /// The write is durable (or was refused as malformed, leaving the disk as it was).
    Done { result: Result<Applied, DiskError>, write: DiskWrite, payload: T },
    /// The sync failed: nothing of the write is durable, and the node must stop.
    SyncFailed,
}

/// What a crash destroyed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CrashLoss {
    /// Writes with something to write that had not completed.
    pub(crate) writes: u64,
    /// Entries in those writes.
    pub(crate) entries: u64,
    /// Bytes of a half-written record left on disk, cut by the next recovery.
    pub(crate) torn_bytes: Option<u64>,
}

struct Pending<T> {
    seq: u64,
    done_at_us: u64,
    write: DiskWrite,
    payload: T,
}

/// One node's disk: the durable state, exactly as a restart will find it, and the writes in
/// flight towards it.
pub(crate) struct SimDisk<T> {
    /// Durable: only completed writes. Invariant: `state.entries[i].index == log_first + i`.
    state: DurableState,
    /// The first index of the durable log (1, or after the compacted prefix).
    log_first: Index,
    /// Issued, not yet completed, oldest first; `done_at_us` never decreases along it.
    pending: VecDeque<Pending<T>>,
    seq_next: u64,
    rng: SeededRng,
    latency_min_us: u64,
    latency_max_us: u64,
    slow: bool,
    fail_next_sync: bool,
    /// The bytes of a half-written record the last crash left, which recovery cuts.
    torn_tail: Option<(Index, Vec<u8>)>,
    /// The indexes of the durable configuration entries, ascending.
    configs: Vec<Index>,
}

impl<T> SimDisk<T> {
    /// An empty disk whose writes take `latency_min_us..=latency_max_us` (both 0: at once).
    pub(crate) fn new(rng: SeededRng, latency_min_us: u64, latency_max_us: u64) -> SimDisk<T> {
        SimDisk {
            state: DurableState::default(),
            log_first: Index(1),
            pending: VecDeque::new(),
            seq_next: 0,
            rng,
            latency_min_us,
            latency_max_us,
            slow: false,
            fail_next_sync: false,
            torn_tail: None,
            configs: Vec::new(),
        }
    }

    /// Everything a restart recovers.
    pub(crate) fn state(&self) -> &DurableState {
        &self.state
    }

    /// The last durable log index (the snapshot's index when compaction or a snapshot emptied
    /// the log; 0 for an empty disk).
    pub(crate) fn last_index(&self) -> Index {
        self.log_first.prev().max(self.state.entries.last().map_or(Index(0), |e| e.index))
    }

    /// The end of the durable log as an election compares it: the last entry, or the snapshot's
    /// `(index, term)` when the log after it is empty.
    pub(crate) fn log_end(&self) -> (Index, Term) {
        match (self.state.entries.last(), &self.state.snapshot) {
            (Some(last), Some(snapshot)) if snapshot.index > last.index => {
                (snapshot.index, snapshot.term)
            }
            (Some(last), _) => (last.index, last.term),
            (None, Some(snapshot)) => (snapshot.index, snapshot.term),
            (None, None) => (Index(0), Term(0)),
        }
    }

    /// The term of the durable entry at `index`: `Term(0)` for index 0 (the empty prefix), the
    /// snapshot's term at its index, `None` past the end or inside the compacted prefix.
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        if index >= self.log_first {
            let position = usize::try_from(index.0 - self.log_first.0).ok()?;
            if let Some(entry) = self.state.entries.get(position) {
                return Some(entry.term);
            }
        }
        self.state.snapshot.as_ref().filter(|s| s.index == index).map(|s| s.term)
    }

    /// True if the durable state holds the entry (`index`, `term`): in the log, as the
    /// snapshot's own entry, or inside the compacted prefix (only committed entries are
    /// compacted, and they never change).
    pub(crate) fn holds(&self, index: Index, term: Term) -> bool {
        if index < self.log_first {
            return true;
        }
        self.term_at(index) == Some(term)
    }

    /// Writes issued and not yet completed.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// True while a write with something to write is in flight.
    pub(crate) fn is_writing(&self) -> bool {
        self.pending.iter().any(|pending| !pending.write.is_empty())
    }

    /// The sequence number of the oldest in-flight write.
    pub(crate) fn next_seq(&self) -> Option<u64> {
        self.pending.front().map(|pending| pending.seq)
    }

    /// Makes the long latency tail apply (or not) to later writes.
    pub(crate) fn set_slow(&mut self, slow: bool) {
        self.slow = slow;
    }

    /// True while the disk is slow.
    pub(crate) fn is_slow(&self) -> bool {
        self.slow
    }

    /// Makes the next completing write that has something to write fail its sync (or, with
    /// `false`, takes that back).
    pub(crate) fn fail_next_sync(&mut self, fail: bool) {
        self.fail_next_sync = fail;
    }

    /// Issues `write` at `now_us`. It completes after the disk's latency, and never before the
    /// writes issued earlier; a write with nothing to write takes no time of its own.
    pub(crate) fn issue(&mut self, now_us: u64, write: DiskWrite, payload: T) -> Issued {
        let latency_us = if write.is_empty() { 0 } else { self.latency_us() };
        let after_us = self.pending.back().map_or(0, |pending| pending.done_at_us);
        let done_at_us = now_us.saturating_add(latency_us).max(after_us);
        let seq = self.seq_next;
        self.seq_next += 1;
        self.pending.push_back(Pending { seq, done_at_us, write, payload });
        Issued { seq, done_at_us }
    }

    fn latency_us(&mut self) -> u64 {
        if self.slow && self.rng.chance(SLOW_TAIL_PROBABILITY) {
            return self.rng.between(SLOW_TAIL_MIN_US, SLOW_TAIL_MAX_US + 1);
        }
        if self.latency_max_us == 0 {
            return 0;
        }
        self.rng.between(self.latency_min_us, self.latency_max_us + 1)
    }

    /// Completes the oldest in-flight write: applies it to the durable state (a malformed one
    /// is refused and leaves the disk as it was), or fails its sync if one was armed to fail.
    pub(crate) fn complete_next(&mut self) -> Option<Completion<T>> {
        let front = self.pending.front()?;
        if self.fail_next_sync && !front.write.is_empty() {
            self.fail_next_sync = false;
            self.pending.pop_front();
            return Some(Completion::SyncFailed);
        }
        let Pending { write, payload, .. } = self.pending.pop_front().expect("peeked");
        let result = self.apply(&write);
        Some(Completion::Done { result, write, payload })
    }

    /// A crash: every write not yet completed is lost. If one with entries was being written,
    /// with probability `tear_probability` its first record is left half written (a torn tail,
    /// cut by [`recover`](SimDisk::recover)). An armed sync failure goes with the process.
    pub(crate) fn crash(&mut self, tear_probability: f64) -> CrashLoss {
        let mut loss = CrashLoss::default();
        self.torn_tail = None;
        let writing = self.pending.iter().find(|pending| !pending.write.is_empty());
        if let Some(first) = writing.and_then(|pending| pending.write.entries.first()) {
            if self.rng.chance(tear_probability) {
                let mut record = Vec::with_capacity(conclave_log_format::record_len(first));
                // Invariant: a simulated entry fits a record (its data is far below 4 GiB).
                conclave_log_format::encode(first, &mut record).expect("an entry too large");
                let torn = self.rng.between(1, record.len() as u64);
                record.truncate(torn as usize);
                loss.torn_bytes = Some(torn);
                self.torn_tail = Some((first.index, record));
            }
        }
        for pending in self.pending.drain(..) {
            if !pending.write.is_empty() {
                loss.writes += 1;
                loss.entries += pending.write.entries.len() as u64;
            }
        }
        self.fail_next_sync = false;
        loss
    }

    /// Recovery at restart: cuts a torn record the last crash left, returning its size. The
    /// durable state is untouched: the torn record was never part of it.
    pub(crate) fn recover(&mut self) -> Option<u64> {
        let (index, bytes) = self.torn_tail.take()?;
        // Invariant: what a crash left is a record cut short, which the record check refuses
        // (so the storage crate's scan would cut it as a torn tail, as done here).
        assert!(
            conclave_log_format::check_record(&bytes, index).is_err(),
            "a torn record of {} bytes checks as whole",
            bytes.len()
        );
        Some(bytes.len() as u64)
    }

    /// The membership a restart would find: the newest durable configuration entry's, else the
    /// snapshot's, else `bootstrap` (the membership the cluster started with).
    pub(crate) fn membership(&self, bootstrap: &Membership) -> Membership {
        if let Some(index) = self.configs.last() {
            let entry = &self.state.entries[(index.0 - self.log_first.0) as usize];
            if let Ok(membership) = Membership::decode(&entry.data) {
                return membership;
            }
        }
        match &self.state.snapshot {
            Some(snapshot) => snapshot.membership.clone(),
            None => bootstrap.clone(),
        }
    }

    /// Applies one write atomically: snapshot (reconciling the log by Raft's rule), entries
    /// (replacing everything from their first index on), hard state, compaction. Everything is
    /// checked before anything changes.
    fn apply(&mut self, write: &DiskWrite) -> Result<Applied, DiskError> {
        // The log as the snapshot leaves it: whole, or emptied to restart after the snapshot.
        let mut keeps_log = true;
        let mut log_first = self.log_first;
        let mut last = self.last_index();
        if let Some(snapshot) = &write.snapshot {
            if let Some(durable) = &self.state.snapshot {
                if snapshot.index < durable.index {
                    return Err(DiskError::SnapshotBehind {
                        index: snapshot.index,
                        durable: durable.index,
                    });
                }
            }
            keeps_log = self.holds(snapshot.index, snapshot.term);
            if !keeps_log {
                log_first = snapshot.index.next();
                last = snapshot.index;
            }
        }
        if let Some(first) = write.entries.first() {
            if first.index.0 == 0 {
                return Err(DiskError::IndexZero);
            }
            if first.index < log_first {
                return Err(DiskError::Compacted {
                    first: first.index,
                    compacted: log_first.prev(),
                });
            }
            if first.index > last.next() {
                return Err(DiskError::Gap { first: first.index, last_durable: last });
            }
            if let Some(pair) =
                write.entries.windows(2).find(|pair| pair[1].index != pair[0].index.next())
            {
                return Err(DiskError::NotContiguous {
                    previous: pair[0].index,
                    found: pair[1].index,
                });
            }
        }
        if let Some(upto) = write.compact_to {
            let covered = write
                .snapshot
                .as_ref()
                .or(self.state.snapshot.as_ref())
                .map_or(Index(0), |snapshot| snapshot.index);
            if upto > covered {
                return Err(DiskError::NotSnapshotted { upto, snapshot: covered });
            }
        }

        if let Some(snapshot) = &write.snapshot {
            if !keeps_log {
                self.state.entries.clear();
                self.configs.clear();
                self.log_first = log_first;
            }
            self.state.snapshot = Some(snapshot.clone());
        }
        let mut term_prev = None;
        if let Some(first) = write.entries.first() {
            term_prev = self.term_at(first.index.prev());
            // Invariant: entries[i] holds log_first + i, so this keeps exactly what precedes the
            // batch; a conflicting suffix goes even past the batch's end, because the entries
            // after a replaced one followed it and cannot be trusted.
            self.state.entries.truncate((first.index.0 - self.log_first.0) as usize);
            self.state.entries.extend_from_slice(&write.entries);
            self.configs.retain(|index| *index < first.index);
            let written = write.entries.iter().filter(|e| e.kind == EntryKind::Config);
            self.configs.extend(written.map(|e| e.index));
        }
        if let Some(hard_state) = write.hard_state {
            self.state.hard_state = hard_state;
        }
        if let Some(upto) = write.compact_to {
            if upto >= self.log_first {
                let count =
                    ((upto.0 - self.log_first.0 + 1) as usize).min(self.state.entries.len());
                self.state.entries.drain(..count);
                self.log_first = upto.next();
                self.configs.retain(|index| *index > upto);
            }
        }
        Ok(Applied { term_prev })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use conclave_core::NodeId;

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry::command(Index(index), Term(term), Bytes::from(format!("{index}@{term}")))
    }

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|index| entry(index, term)).collect()
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            index: Index(index),
            term: Term(term),
            membership: Membership::new([NodeId(1)]),
            data: Bytes::from_static(b"image"),
        }
    }

    fn terms(disk: &SimDisk<u32>) -> Vec<(u64, u64)> {
        disk.state().entries.iter().map(|e| (e.index.0, e.term.0)).collect()
    }

    fn instant() -> SimDisk<u32> {
        SimDisk::new(SeededRng::new(1), 0, 0)
    }

    fn slow_disk() -> SimDisk<u32> {
        SimDisk::new(SeededRng::new(1), 50, 150)
    }

    fn log(entries: Vec<Entry>) -> DiskWrite {
        DiskWrite { entries, ..DiskWrite::default() }
    }

    /// Issues and completes `write` on an instant disk, returning what applying it said.
    fn write(disk: &mut SimDisk<u32>, write: DiskWrite) -> Result<Applied, DiskError> {
        disk.issue(0, write, 0);
        match disk.complete_next() {
            Some(Completion::Done { result, .. }) => result,
            _ => panic!("the write did not complete"),
        }
    }

    #[test]
    fn appends_extend_the_log() {
        let mut disk = instant();
        write(&mut disk, log(entries(1..=2, 1))).unwrap();
        let applied = write(&mut disk, log(vec![entry(3, 1)])).unwrap();
        assert_eq!(applied.term_prev, Some(Term(1)));
        assert_eq!(terms(&disk), vec![(1, 1), (2, 1), (3, 1)]);
        assert_eq!(disk.last_index(), Index(3));
        assert_eq!(disk.term_at(Index(0)), Some(Term(0)));
        assert_eq!(disk.term_at(Index(2)), Some(Term(1)));
        assert_eq!(disk.term_at(Index(4)), None);
    }

    #[test]
    fn overwrite_truncates_everything_from_the_first_index_on() {
        let mut disk = instant();
        write(&mut disk, log(entries(1..=4, 1))).unwrap();
        // A new leader's entry at index 2 replaces 2, 3 and 4, though the batch holds only 2.
        write(&mut disk, log(vec![entry(2, 2)])).unwrap();
        assert_eq!(terms(&disk), vec![(1, 1), (2, 2)]);
        // Rewriting from index 1 replaces the whole log.
        let applied = write(&mut disk, log(entries(1..=3, 3))).unwrap();
        assert_eq!(applied.term_prev, Some(Term(0)));
        assert_eq!(terms(&disk), vec![(1, 3), (2, 3), (3, 3)]);
    }

    #[test]
    fn hard_state_is_replaced_only_when_given() {
        let mut disk = instant();
        let hard_state = HardState { term: Term(4), vote: None, commit: Index(0) };
        write(&mut disk, DiskWrite { hard_state: Some(hard_state), ..DiskWrite::default() })
            .unwrap();
        write(&mut disk, log(vec![entry(1, 4)])).unwrap();
        assert_eq!(disk.state().hard_state, hard_state);
    }

    #[test]
    fn malformed_writes_are_refused_without_writing() {
        let mut disk = instant();
        write(&mut disk, log(vec![entry(1, 1)])).unwrap();
        let hard_state = HardState { term: Term(9), vote: None, commit: Index(0) };
        let gap = DiskWrite {
            hard_state: Some(hard_state),
            entries: vec![entry(3, 1)],
            ..DiskWrite::default()
        };
        assert_eq!(
            write(&mut disk, gap),
            Err(DiskError::Gap { first: Index(3), last_durable: Index(1) })
        );
        assert_eq!(
            write(&mut disk, log(vec![entry(2, 1), entry(4, 1)])),
            Err(DiskError::NotContiguous { previous: Index(2), found: Index(4) })
        );
        assert_eq!(write(&mut disk, log(vec![entry(0, 1)])), Err(DiskError::IndexZero));
        let compact = DiskWrite { compact_to: Some(Index(1)), ..DiskWrite::default() };
        assert_eq!(
            write(&mut disk, compact),
            Err(DiskError::NotSnapshotted { upto: Index(1), snapshot: Index(0) })
        );
        assert_eq!(terms(&disk), vec![(1, 1)]);
        assert_eq!(disk.state().hard_state, HardState::default());
    }

    #[test]
    fn writes_are_durable_only_when_they_complete_and_complete_in_order() {
        let mut disk = slow_disk();
        let first = disk.issue(1_000, log(entries(1..=2, 1)), 1);
        let second = disk.issue(1_010, log(vec![entry(3, 1)]), 2);
        let empty = disk.issue(1_020, DiskWrite::default(), 3);
        assert!((1_050..=1_150).contains(&first.done_at_us), "{first:?}");
        assert!(second.done_at_us >= first.done_at_us, "FIFO: {first:?} then {second:?}");
        assert_eq!(empty.done_at_us, second.done_at_us, "waits, but takes no time of its own");
        assert!(disk.state().entries.is_empty(), "nothing is durable before it completes");
        assert_eq!(disk.pending_len(), 3);
        assert_eq!(disk.next_seq(), Some(first.seq));
        let mut order = Vec::new();
        while let Some(Completion::Done { result, payload, .. }) = disk.complete_next() {
            result.unwrap();
            order.push((payload, disk.last_index().0));
        }
        assert_eq!(order, vec![(1, 2), (2, 3), (3, 3)]);
    }

    #[test]
    fn a_crash_loses_every_write_not_yet_completed() {
        let mut disk = slow_disk();
        disk.issue(0, log(entries(1..=2, 1)), 1);
        assert!(matches!(disk.complete_next(), Some(Completion::Done { result: Ok(_), .. })));
        disk.issue(10, log(entries(3..=5, 1)), 2);
        let hard_state = HardState { term: Term(2), vote: Some(NodeId(3)), commit: Index(2) };
        disk.issue(20, DiskWrite { hard_state: Some(hard_state), ..DiskWrite::default() }, 3);
        disk.issue(30, DiskWrite::default(), 4);
        assert!(disk.is_writing());
        let loss = disk.crash(0.0);
        assert_eq!(loss, CrashLoss { writes: 2, entries: 3, torn_bytes: None });
        assert_eq!(disk.pending_len(), 0);
        assert_eq!(terms(&disk), vec![(1, 1), (2, 1)]);
        assert_eq!(disk.state().hard_state, HardState::default(), "the vote never reached disk");
        assert_eq!(disk.recover(), None);
    }

    #[test]
    fn a_torn_record_is_cut_by_recovery_and_nothing_of_its_write_survives() {
        let mut tears = 0;
        for seed in 0..20 {
            let mut disk: SimDisk<u32> = SimDisk::new(SeededRng::new(seed), 50, 150);
            disk.issue(0, log(entries(1..=2, 1)), 1);
            disk.complete_next();
            disk.issue(10, log(entries(3..=4, 1)), 2);
            let loss = disk.crash(1.0);
            // A record is 25 bytes plus its data ("3@1"): a torn one holds fewer.
            let torn = loss.torn_bytes.expect("a crash mid-write with tearing on tears");
            assert_eq!(conclave_log_format::RECORD_BYTES_MIN, 25);
            assert!((1..28).contains(&torn), "{torn}");
            assert_eq!(disk.recover(), Some(torn));
            assert_eq!(disk.recover(), None, "cut once");
            assert_eq!(terms(&disk), vec![(1, 1), (2, 1)]);
            tears += 1;
        }
        assert_eq!(tears, 20);
        // A write without entries has no record to tear (small files are replaced atomically).
        let mut disk = slow_disk();
        let hard_state = HardState { term: Term(2), vote: None, commit: Index(0) };
        disk.issue(0, DiskWrite { hard_state: Some(hard_state), ..DiskWrite::default() }, 1);
        assert_eq!(disk.crash(1.0).torn_bytes, None);
    }

    #[test]
    fn a_failed_sync_makes_nothing_of_its_write_durable_and_fires_once() {
        let mut disk = slow_disk();
        disk.fail_next_sync(true);
        disk.issue(0, DiskWrite::default(), 1);
        // An empty write syncs nothing, so it cannot fail.
        assert!(matches!(disk.complete_next(), Some(Completion::Done { .. })));
        disk.issue(0, log(entries(1..=2, 1)), 2);
        assert!(matches!(disk.complete_next(), Some(Completion::SyncFailed)));
        assert!(disk.state().entries.is_empty());
        disk.issue(0, log(entries(1..=2, 1)), 3);
        assert!(matches!(disk.complete_next(), Some(Completion::Done { result: Ok(_), .. })));
    }

    #[test]
    fn a_slow_disk_has_a_long_tail() {
        let mut disk = slow_disk();
        disk.set_slow(true);
        let mut now = 0;
        let mut tail = 0;
        for seq in 0..1_000 {
            let issued = disk.issue(now, log(vec![entry(seq + 1, 1)]), 0);
            let took = issued.done_at_us - now;
            assert!(took <= SLOW_TAIL_MAX_US);
            tail += u64::from(took >= SLOW_TAIL_MIN_US);
            disk.complete_next();
            now = issued.done_at_us;
        }
        assert!((50..200).contains(&tail), "{tail} of 1000 writes in the tail");
    }

    #[test]
    fn a_snapshot_the_log_holds_keeps_the_log_and_compaction_drops_the_prefix() {
        let mut disk = instant();
        write(&mut disk, log(entries(1..=10, 2))).unwrap();
        let install = DiskWrite {
            snapshot: Some(snapshot(6, 2)),
            compact_to: Some(Index(6)),
            ..DiskWrite::default()
        };
        write(&mut disk, install).unwrap();
        assert_eq!(terms(&disk), (7..=10).map(|i| (i, 2)).collect::<Vec<_>>());
        assert_eq!(disk.state().snapshot, Some(snapshot(6, 2)));
        assert_eq!(disk.term_at(Index(6)), Some(Term(2)));
        assert_eq!(disk.term_at(Index(5)), None);
        assert!(disk.holds(Index(3), Term(9)), "compacted entries count as held");
        assert_eq!(disk.log_end(), (Index(10), Term(2)));
        assert_eq!(
            write(&mut disk, log(vec![entry(5, 3)])),
            Err(DiskError::Compacted { first: Index(5), compacted: Index(6) })
        );
        // Overwriting right after the snapshot finds the snapshot's term before it.
        assert_eq!(write(&mut disk, log(vec![entry(7, 3)])).unwrap().term_prev, Some(Term(2)));
    }

    #[test]
    fn a_snapshot_beyond_or_against_the_log_empties_it_and_the_log_restarts_after_it() {
        for conflicting in [entries(1..=5, 1), entries(1..=30, 1)] {
            let mut disk = instant();
            write(&mut disk, log(conflicting)).unwrap();
            // Index 20 in term 4 is beyond a log of 5, and conflicts with a log of 30 in term 1.
            let install = DiskWrite {
                snapshot: Some(snapshot(20, 4)),
                entries: vec![entry(21, 4)],
                hard_state: Some(HardState { term: Term(4), vote: None, commit: Index(20) }),
                compact_to: None,
            };
            let applied = write(&mut disk, install).unwrap();
            assert_eq!(applied.term_prev, Some(Term(4)), "the snapshot's term precedes entry 21");
            assert_eq!(terms(&disk), vec![(21, 4)]);
            assert_eq!(disk.log_end(), (Index(21), Term(4)));
            let state = disk.state();
            assert_eq!(state.snapshot.as_ref().map(|s| s.index), Some(Index(20)));
            assert_eq!(state.hard_state.commit, Index(20));
        }
        let mut disk = instant();
        write(&mut disk, DiskWrite { snapshot: Some(snapshot(20, 4)), ..DiskWrite::default() })
            .unwrap();
        assert_eq!((disk.last_index(), disk.log_end()), (Index(20), (Index(20), Term(4))));
        assert!(disk.state().entries.is_empty());
        assert_eq!(
            write(&mut disk, DiskWrite { snapshot: Some(snapshot(10, 4)), ..DiskWrite::default() }),
            Err(DiskError::SnapshotBehind { index: Index(10), durable: Index(20) })
        );
    }
}
