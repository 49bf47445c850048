//! The simulated disk of one node: the only state that survives a crash.
//!
//! In this version a write is instant and durable: by the time [`SimDisk::write`] returns, the data
//! would survive any crash. That is the seam for slow and torn disks: a later version will have
//! `write` return when (in virtual time) the write completes and which prefix of it survives a
//! crash before then, and the driver will hold back `persisted_messages` and `on_persisted` until
//! that moment. Keeping all disk semantics behind this one type means the driver changes in one
//! place when that lands.

use conclave_core::{DurableState, Entry, HardState, Index, Term};
use thiserror::Error;

/// A write the disk refuses because it breaks the shape of a log. Each is a protocol bug: the
/// [`Ready`](conclave_core::Ready) contract promises contiguous entries that extend or overwrite
/// the durable log.
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
}

/// One node's durable state: the hard state and the log, exactly as a restart will find them.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimDisk {
    state: DurableState,
}

impl SimDisk {
    /// An empty disk, as a fresh node has.
    pub(crate) fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Everything a restart recovers.
    pub(crate) fn state(&self) -> &DurableState {
        &self.state
    }

    /// The last durable index (0 when the log is empty).
    pub(crate) fn last_index(&self) -> Index {
        self.state.entries.last().map_or(Index(0), |entry| entry.index)
    }

    /// The term of the durable entry at `index`; `Term(0)` for index 0 (the empty prefix) and
    /// `None` past the end.
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        let position = usize::try_from(index.0 - 1).ok()?;
        self.state.entries.get(position).map(|entry| entry.term)
    }

    /// Makes `hard_state` (if any) and `entries` durable, atomically. Entries replace everything
    /// from `entries[0].index` on: a follower overwriting a conflicting suffix drops the rest of
    /// that suffix too, even past the batch's end, because those entries followed the conflicting
    /// one and cannot be trusted.
    ///
    /// The batch is checked before anything is written, so a refused write leaves the disk as it
    /// was.
    pub(crate) fn write(
        &mut self,
        hard_state: Option<HardState>,
        entries: &[Entry],
    ) -> Result<(), DiskError> {
        if let Some(first) = entries.first() {
            if first.index.0 == 0 {
                return Err(DiskError::IndexZero);
            }
            let last_durable = self.last_index();
            if first.index > last_durable.next() {
                return Err(DiskError::Gap { first: first.index, last_durable });
            }
            if let Some(pair) =
                entries.windows(2).find(|pair| pair[1].index != pair[0].index.next())
            {
                return Err(DiskError::NotContiguous {
                    previous: pair[0].index,
                    found: pair[1].index,
                });
            }
            // Invariant: entries[i] holds index i + 1, so truncating to `first - 1` keeps exactly
            // the prefix before the batch.
            self.state.entries.truncate((first.index.0 - 1) as usize);
            self.state.entries.extend_from_slice(entries);
        }
        if let Some(hard_state) = hard_state {
            self.state.hard_state = hard_state;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry::command(Index(index), Term(term), Bytes::from(format!("{index}@{term}")))
    }

    fn terms(disk: &SimDisk) -> Vec<(u64, u64)> {
        disk.state().entries.iter().map(|e| (e.index.0, e.term.0)).collect()
    }

    #[test]
    fn appends_extend_the_log() {
        let mut disk = SimDisk::new();
        disk.write(None, &[entry(1, 1), entry(2, 1)]).unwrap();
        disk.write(None, &[entry(3, 1)]).unwrap();
        assert_eq!(terms(&disk), vec![(1, 1), (2, 1), (3, 1)]);
        assert_eq!(disk.last_index(), Index(3));
        assert_eq!(disk.term_at(Index(0)), Some(Term(0)));
        assert_eq!(disk.term_at(Index(2)), Some(Term(1)));
        assert_eq!(disk.term_at(Index(4)), None);
    }

    #[test]
    fn overwrite_truncates_everything_from_the_first_index_on() {
        let mut disk = SimDisk::new();
        disk.write(None, &[entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)]).unwrap();
        // A new leader's entry at index 2 replaces 2, 3 and 4, though the batch holds only 2.
        disk.write(None, &[entry(2, 2)]).unwrap();
        assert_eq!(terms(&disk), vec![(1, 1), (2, 2)]);
        // Rewriting from index 1 replaces the whole log.
        disk.write(None, &[entry(1, 3), entry(2, 3), entry(3, 3)]).unwrap();
        assert_eq!(terms(&disk), vec![(1, 3), (2, 3), (3, 3)]);
    }

    #[test]
    fn hard_state_is_replaced_only_when_given() {
        let mut disk = SimDisk::new();
        let hard_state = HardState { term: Term(4), vote: None, commit: Index(0) };
        disk.write(Some(hard_state), &[]).unwrap();
        disk.write(None, &[entry(1, 4)]).unwrap();
        assert_eq!(disk.state().hard_state, hard_state);
    }

    #[test]
    fn malformed_batches_are_refused_without_writing() {
        let mut disk = SimDisk::new();
        disk.write(None, &[entry(1, 1)]).unwrap();
        let hard_state = HardState { term: Term(9), vote: None, commit: Index(0) };
        assert_eq!(
            disk.write(Some(hard_state), &[entry(3, 1)]),
            Err(DiskError::Gap { first: Index(3), last_durable: Index(1) })
        );
        assert_eq!(
            disk.write(None, &[entry(2, 1), entry(4, 1)]),
            Err(DiskError::NotContiguous { previous: Index(2), found: Index(4) })
        );
        assert_eq!(disk.write(None, &[entry(0, 1)]), Err(DiskError::IndexZero));
        assert_eq!(terms(&disk), vec![(1, 1)]);
        assert_eq!(disk.state().hard_state, HardState::default());
    }
}
