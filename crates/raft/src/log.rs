//! The in-memory view of the replicated log and the indexes that walk along it.
//!
//! Invariant: `applied <= committed <= last_index`, `applied <= persisted < unstable_from <=
//! last_index + 1`, and `first_index - 1 <= applied` (a snapshot covers only applied, committed
//! entries); the entries are contiguous from `first_index`. Entries from `unstable_from` on have
//! not yet been handed to the driver for persistence. (`applied <= committed` and `applied <=
//! persisted` are the node's to keep: it decides what to release; `Raft` checks them.)

use conclave_core::{Entry, Index, LogView, Term};

/// The log plus the commit, persistence and application cursors over it.
#[derive(Debug)]
pub struct RaftLog {
    /// Entries `first_index..=last_index`, contiguous.
    entries: Vec<Entry>,
    /// The index of `entries[0]` (1 until a prefix is compacted).
    first_index: Index,
    /// The term of the entry at `first_index - 1`, kept after compaction so that an
    /// AppendEntries right after the compacted prefix can still be checked.
    compacted_term: Term,
    /// Highest index known committed.
    committed: Index,
    /// Highest index released to the driver for application.
    applied: Index,
    /// Highest index the driver reported durable.
    persisted: Index,
    /// First index not yet handed to the driver in a `Ready`.
    unstable_from: Index,
}

/// What a follower found when it compared a leader's `prev_index`/`prev_term` with its own log.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The log matched at `prev_index`; entries were merged and the log now matches the leader's
    /// up to `last_new_index`.
    Matched {
        /// Last index verified against this message.
        last_new_index: Index,
    },
    /// The log did not match; the hint lets the leader skip a whole term per round trip instead of
    /// one entry (the "fast backtracking" optimisation of the Raft paper, §5.3).
    Conflict {
        /// The first index the leader should try next.
        hint_index: Index,
        /// The term of the conflicting entry at `prev_index`, if the log reaches that far.
        hint_term: Option<Term>,
    },
}

impl RaftLog {
    /// A log rebuilt from durable entries; everything given is already persisted.
    pub fn from_durable(entries: Vec<Entry>, committed: Index) -> RaftLog {
        RaftLog::from_snapshot_and_entries(Index(0), Term(0), entries, committed)
    }

    /// A log rebuilt from a durable snapshot ending at (`snapshot_index`, `snapshot_term`) and the
    /// durable entries after it (entries at or below the snapshot are dropped). Everything up to
    /// the snapshot counts as committed and applied: the state machine starts from the snapshot.
    pub fn from_snapshot_and_entries(
        snapshot_index: Index,
        snapshot_term: Term,
        mut entries: Vec<Entry>,
        committed: Index,
    ) -> RaftLog {
        entries.retain(|e| e.index > snapshot_index);
        let first_index = snapshot_index.next();
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                first_index.0 + offset as u64,
                "durable log is not contiguous"
            );
        }
        let last = entries.last().map_or(snapshot_index, |e| e.index);
        RaftLog {
            entries,
            first_index,
            compacted_term: snapshot_term,
            committed: committed.min(last).max(snapshot_index),
            applied: snapshot_index,
            persisted: last,
            unstable_from: last.next(),
        }
    }

    /// Replaces the log's prefix with a snapshot received from the leader, ending at (`index`,
    /// `term`). If the log holds that very entry, the entries after it stay (they match the
    /// leader's by Log Matching); otherwise the whole log is discarded. The snapshot counts as
    /// committed, applied and (once the Ready carrying it is persisted) durable.
    pub fn install_snapshot(&mut self, index: Index, term: Term) {
        if index >= self.first_index.prev() && self.term(index) == Some(term) {
            let count = (index.0 + 1 - self.first_index.0) as usize;
            self.entries.drain(..count.min(self.entries.len()));
        } else {
            self.entries.clear();
            // Nothing after the snapshot is held any more: whatever comes next must be handed out
            // and persisted anew, however far the discarded log reached.
            self.persisted = self.persisted.min(index);
            self.unstable_from = self.unstable_from.min(index.next());
        }
        self.first_index = index.next();
        self.compacted_term = term;
        self.committed = self.committed.max(index);
        self.applied = self.applied.max(index);
        self.persisted = self.persisted.max(index);
        self.unstable_from = self.unstable_from.max(index.next());
    }

    /// The index just before the first entry held: the snapshot's index, or 0.
    pub fn snapshot_index(&self) -> Index {
        self.first_index.prev()
    }

    /// The first index held.
    pub fn first_index(&self) -> Index {
        self.first_index
    }

    /// The last index held, 0 when empty.
    pub fn last_index(&self) -> Index {
        Index(self.first_index.0 + self.entries.len() as u64 - 1)
    }

    /// The term of the last entry (the snapshot's term when no entry follows it; 0 when empty).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.compacted_term, |e| e.term)
    }

    /// The term of the entry at `index`; `Term(0)` for index 0 (the empty prefix matches
    /// everything); `None` when not held.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        if index == self.first_index.prev() {
            return Some(self.compacted_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// Drops the entries up to and including `upto`, which must already be applied: they live on
    /// in the state machine. Returns how many entries were dropped.
    ///
    /// A follower that still needs a dropped entry can then only be caught up by a snapshot of
    /// the state machine, so a leader compacts no further than its slowest follower's match.
    pub fn compact_to(&mut self, upto: Index) -> usize {
        assert!(upto <= self.applied, "compacting {upto} beyond applied {}", self.applied);
        if upto < self.first_index {
            return 0;
        }
        let count = (upto.0 - self.first_index.0 + 1) as usize;
        self.compacted_term = self.entries[count - 1].term;
        self.entries.drain(..count);
        self.first_index = upto.next();
        count
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index < self.first_index {
            return None;
        }
        self.entries.get((index.0 - self.first_index.0) as usize)
    }

    /// The committed index.
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// The index released for application.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The durable index.
    pub fn persisted(&self) -> Index {
        self.persisted
    }

    /// True if a log ending at (`last_index`, `last_term`) is at least as up to date as this one
    /// (Raft §5.4.1): a later last term wins, and for equal terms the longer log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends one entry the leader created. The caller gives it the next index.
    pub fn append_new(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index().next(), "leader append must extend the log");
        self.entries.push(entry);
    }

    /// A follower's merge of a leader's entries after `prev_index`/`prev_term` (Raft §5.3): if the
    /// log matches at `prev_index`, entries already present with the same term are kept, the first
    /// conflicting entry and everything after it are dropped, and the rest appended.
    pub fn try_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry],
    ) -> AppendOutcome {
        self.try_append_with(prev_index, prev_term, entries, true)
    }

    /// [`RaftLog::try_append`], with the truncation of a conflicting suffix switchable so that a
    /// deliberately broken variant can be built for testing the simulator.
    pub(crate) fn try_append_with(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry],
        truncate_conflicts: bool,
    ) -> AppendOutcome {
        match self.term(prev_index) {
            None => {
                return AppendOutcome::Conflict {
                    hint_index: self.last_index().next(),
                    hint_term: None,
                };
            }
            Some(term) if term != prev_term => {
                // Point the leader at the first index of the conflicting term: all of it is suspect.
                let mut first = prev_index;
                while first > self.first_index && self.term(first.prev()) == Some(term) {
                    first = first.prev();
                }
                return AppendOutcome::Conflict { hint_index: first, hint_term: Some(term) };
            }
            Some(_) => {}
        }
        let last_new_index = Index(prev_index.0 + entries.len() as u64);
        for (offset, entry) in entries.iter().enumerate() {
            debug_assert_eq!(entry.index.0, prev_index.0 + 1 + offset as u64);
            match self.term(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) if !truncate_conflicts => continue,
                Some(_) => {
                    assert!(
                        entry.index > self.committed,
                        "a leader tried to overwrite a committed entry"
                    );
                    self.truncate_from(entry.index);
                    self.entries.extend_from_slice(&entries[offset..]);
                }
                None => self.entries.extend_from_slice(&entries[offset..]),
            }
            break;
        }
        AppendOutcome::Matched { last_new_index }
    }

    /// Drops `index` and everything after it, and pulls the persistence cursors back so the
    /// replacement entries are handed to the driver and not counted durable before they are.
    fn truncate_from(&mut self, index: Index) {
        self.entries.truncate((index.0 - self.first_index.0) as usize);
        self.persisted = self.persisted.min(index.prev());
        self.unstable_from = self.unstable_from.min(index);
    }

    /// The entries from `from` on, at most `max_count` and about `max_bytes` (always at least one
    /// entry if any exists, so a single large entry can still be sent).
    pub fn slice(&self, from: Index, max_count: usize, max_bytes: usize) -> Vec<Entry> {
        if from > self.last_index() || from < self.first_index {
            return Vec::new();
        }
        let start = (from.0 - self.first_index.0) as usize;
        let mut bytes = 0;
        let mut end = start;
        for entry in self.entries[start..].iter().take(max_count.max(1)) {
            bytes += entry.size_bytes();
            if end > start && bytes > max_bytes {
                break;
            }
            end += 1;
        }
        self.entries[start..end].to_vec()
    }

    /// The last index in this log whose term is `term`, used by a leader to jump over a
    /// follower's conflicting term in one step.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        self.entries.iter().rev().find(|e| e.term == term).map(|e| e.index)
    }

    /// Raises the commit index; never lowers it. Returns true if it moved.
    pub fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// The entries not yet handed to the driver for persistence; marks them handed.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        if self.unstable_from > self.last_index() {
            return Vec::new();
        }
        let start = (self.unstable_from.0 - self.first_index.0) as usize;
        let taken = self.entries[start..].to_vec();
        self.unstable_from = self.last_index().next();
        taken
    }

    /// True if entries wait to be handed out for persistence.
    pub fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Records that the log is durable up to `index` with `term`. Stale reports (the entry was
    /// overwritten since) are ignored. Returns true if the durable index advanced.
    pub fn persisted_to(&mut self, index: Index, term: Term) -> bool {
        if index <= self.persisted || index >= self.unstable_from || self.term(index) != Some(term)
        {
            return false;
        }
        self.persisted = index;
        true
    }

    /// The highest index that may be released for application: committed and durable here.
    pub fn applicable_to(&self) -> Index {
        self.committed.min(self.persisted)
    }

    /// Releases entries up to `upto` for application and returns them.
    pub fn take_applicable(&mut self, upto: Index) -> Vec<Entry> {
        if upto <= self.applied {
            return Vec::new();
        }
        let start = (self.applied.next().0 - self.first_index.0) as usize;
        let end = (upto.0 - self.first_index.0 + 1) as usize;
        self.applied = upto;
        self.entries[start..end].to_vec()
    }
}

impl RaftLog {
    /// Checks the invariants in the module documentation (in debug builds). A broken one means
    /// a cursor ran past the log: entries would be applied, acknowledged or handed out for
    /// persistence that the log does not hold, or the same entries handed out twice.
    pub(crate) fn assert_invariants(&self) {
        let last = self.last_index();
        let snapshot = self.first_index.prev();
        debug_assert!(
            self.committed <= last,
            "log: commit {} beyond last index {last}",
            self.committed
        );
        debug_assert!(
            snapshot <= self.applied,
            "log: applied {} below the snapshot {snapshot}: a snapshot holds applied state only",
            self.applied
        );
        debug_assert!(
            snapshot <= self.committed,
            "log: commit {} below the snapshot {snapshot}: a snapshot holds only committed state",
            self.committed
        );
        debug_assert!(
            self.persisted < self.unstable_from && self.unstable_from <= last.next(),
            "log: persisted {}, unstable from {}, last {last}: only entries handed out can be \
             durable, and nothing beyond the log can be handed out",
            self.persisted,
            self.unstable_from
        );
        debug_assert!(
            self.entries.first().is_none_or(|e| e.index == self.first_index)
                && self.entries.last().is_none_or(|e| e.index == last),
            "log: entries do not span {}..={last}",
            self.first_index
        );
    }
}

impl LogView for RaftLog {
    fn first_index(&self) -> Index {
        self.first_index
    }

    fn last_index(&self) -> Index {
        RaftLog::last_index(self)
    }

    fn entry(&self, index: Index) -> Option<&Entry> {
        RaftLog::entry(self, index)
    }

    fn term_before_first(&self) -> Term {
        self.compacted_term
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn entries(terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Entry::command(Index(i as u64 + 1), Term(*t), Bytes::from(format!("{i}/{t}")))
            })
            .collect()
    }

    fn terms(log: &RaftLog) -> Vec<u64> {
        (1..=log.last_index().0).map(|i| log.term(Index(i)).unwrap().0).collect()
    }

    #[test]
    fn conflict_hint_points_at_first_index_of_conflicting_term() {
        let mut log = RaftLog::from_durable(entries(&[1, 1, 2, 2, 2]), Index(0));
        let outcome = log.try_append(Index(5), Term(3), &[]);
        assert_eq!(
            outcome,
            AppendOutcome::Conflict { hint_index: Index(3), hint_term: Some(Term(2)) }
        );
        let outcome = log.try_append(Index(9), Term(3), &[]);
        assert_eq!(outcome, AppendOutcome::Conflict { hint_index: Index(6), hint_term: None });
    }

    #[test]
    fn conflicting_suffix_is_truncated_and_persistence_pulled_back() {
        let mut log = RaftLog::from_durable(entries(&[1, 1, 2, 2]), Index(0));
        let new = vec![Entry::noop(Index(3), Term(3))];
        assert_eq!(
            log.try_append(Index(2), Term(1), &new),
            AppendOutcome::Matched { last_new_index: Index(3) }
        );
        assert_eq!(terms(&log), vec![1, 1, 3]);
        assert_eq!(log.persisted(), Index(2));
        assert_eq!(log.take_unstable(), new);
    }

    #[test]
    fn stale_append_does_not_truncate_matching_longer_log() {
        let mut log = RaftLog::from_durable(entries(&[1, 1, 1, 1]), Index(0));
        let old = entries(&[1, 1]);
        assert_eq!(
            log.try_append(Index(0), Term(0), &old),
            AppendOutcome::Matched { last_new_index: Index(2) }
        );
        assert_eq!(terms(&log), vec![1, 1, 1, 1]);
        assert!(!log.has_unstable());
    }

    #[test]
    fn applying_never_outruns_persistence() {
        let mut log = RaftLog::from_durable(vec![], Index(0));
        log.append_new(Entry::noop(Index(1), Term(1)));
        log.commit_to(Index(1));
        assert_eq!(log.applicable_to(), Index(0));
        let unstable = log.take_unstable();
        assert!(log.persisted_to(unstable[0].index, unstable[0].term));
        assert_eq!(log.take_applicable(log.applicable_to()).len(), 1);
    }

    #[test]
    fn installing_a_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let mut log = RaftLog::from_durable(entries(&[1, 1, 2, 2, 3]), Index(0));
        log.install_snapshot(Index(3), Term(2));
        assert_eq!((log.first_index(), log.last_index()), (Index(4), Index(5)));
        assert_eq!((log.committed(), log.applied()), (Index(3), Index(3)));
        assert_eq!(log.term(Index(3)), Some(Term(2)));
        let mut log = RaftLog::from_durable(entries(&[1, 1, 2, 2, 3]), Index(0));
        log.install_snapshot(Index(4), Term(7));
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (Index(5), Index(4), Term(7))
        );
        assert!(!log.has_unstable());
        let mut log = RaftLog::from_durable(entries(&[1]), Index(0));
        log.install_snapshot(Index(9), Term(4));
        assert_eq!(
            (log.last_index(), log.last_term(), log.persisted()),
            (Index(9), Term(4), Index(9))
        );
        assert!(log.is_up_to_date(Index(9), Term(4)));
    }

    #[test]
    fn restart_from_a_snapshot_starts_after_it() {
        let durable: Vec<Entry> = entries(&[1, 1, 2, 2, 3]);
        let log = RaftLog::from_snapshot_and_entries(Index(3), Term(2), durable, Index(4));
        assert_eq!((log.first_index(), log.last_index()), (Index(4), Index(5)));
        assert_eq!(
            (log.committed(), log.applied(), log.persisted()),
            (Index(4), Index(3), Index(5))
        );
        let empty = RaftLog::from_snapshot_and_entries(Index(8), Term(3), vec![], Index(0));
        assert_eq!(
            (empty.last_index(), empty.last_term(), empty.committed()),
            (Index(8), Term(3), Index(8))
        );
    }

    #[test]
    fn compaction_keeps_the_boundary_term_and_later_entries() {
        let mut log = RaftLog::from_durable(entries(&[1, 1, 2, 2, 3]), Index(5));
        log.take_applicable(Index(4));
        assert_eq!(log.compact_to(Index(3)), 3);
        assert_eq!(log.first_index(), Index(4));
        assert_eq!(log.term(Index(3)), Some(Term(2)));
        assert_eq!(log.term(Index(2)), None);
        assert_eq!(log.entry(Index(5)).unwrap().term, Term(3));
        // An append right after the compacted prefix is still checked against its term.
        let next = vec![Entry::noop(Index(6), Term(3))];
        assert_eq!(
            log.try_append(Index(5), Term(3), &next),
            AppendOutcome::Matched { last_new_index: Index(6) }
        );
        assert_eq!(log.compact_to(Index(2)), 0);
    }

    #[test]
    fn slice_respects_count_and_bytes_but_sends_at_least_one() {
        let log = RaftLog::from_durable(entries(&[1; 10]), Index(0));
        assert_eq!(log.slice(Index(1), 3, usize::MAX).len(), 3);
        assert_eq!(log.slice(Index(1), 100, 0).len(), 1);
        assert_eq!(log.slice(Index(11), 100, 100).len(), 0);
    }

    proptest! {
        /// Log Matching as a property: after a follower accepts a leader's suffix, the follower's
        /// log equals the leader's up to the last new index, whatever it held before.
        #[test]
        fn accepted_append_makes_prefix_equal_to_leader(
            common in proptest::collection::vec(1u64..4, 0..8),
            leader_suffix in proptest::collection::vec(2u64..6, 0..8),
            follower_suffix in proptest::collection::vec(2u64..6, 0..8),
            prev in 0usize..16,
        ) {
            // Two logs that obey Log Matching: a shared prefix, then suffixes whose terms never
            // coincide (even terms for the leader, odd for the follower, all above the prefix).
            let mut common = common;
            common.sort_unstable();
            let base = common.last().copied().unwrap_or(0);
            let mut leader_suffix: Vec<u64> = leader_suffix.iter().map(|t| base + 2 * t).collect();
            leader_suffix.sort_unstable();
            let mut follower_suffix: Vec<u64> = follower_suffix.iter().map(|t| base + 2 * t + 1).collect();
            follower_suffix.sort_unstable();
            let leader_terms: Vec<u64> = common.iter().chain(&leader_suffix).copied().collect();
            let follower_terms: Vec<u64> = common.iter().chain(&follower_suffix).copied().collect();
            let leader = RaftLog::from_durable(entries(&leader_terms), Index(0));
            let mut follower = RaftLog::from_durable(entries(&follower_terms), Index(0));
            let prev = Index(prev.min(leader_terms.len()) as u64);
            let prev_term = leader.term(prev).unwrap();
            let suffix = leader.slice(prev.next(), usize::MAX, usize::MAX);
            match follower.try_append(prev, prev_term, &suffix) {
                AppendOutcome::Matched { last_new_index } => {
                    prop_assert_eq!(last_new_index, leader.last_index());
                    for i in 1..=last_new_index.0 {
                        prop_assert_eq!(follower.entry(Index(i)), leader.entry(Index(i)));
                    }
                }
                AppendOutcome::Conflict { hint_index, hint_term } => {
                    // A conflict is only reported when the follower really lacks the match.
                    prop_assert_ne!(follower.term(prev), Some(prev_term));
                    prop_assert!(hint_index <= prev.next());
                    if let Some(t) = hint_term {
                        prop_assert_eq!(follower.term(hint_index), Some(t));
                    }
                }
            }
        }
    }
}
