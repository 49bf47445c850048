//! The safety checker: an omniscient observer that remembers what every node claimed and flags
//! the first claim that contradicts another.
//!
//! It is fed incrementally by the driver (after every call into a node) so that each check costs
//! little per event, and it can also re-check everything on demand for scenario tests. It never
//! looks at protocol internals: only at `Status`, at the `Ready` batches, and at `LogView` when the
//! protocol offers one. Log-based checks (Log Matching, Leader Completeness, committed entries
//! never changing) are skipped for protocols whose `log_view()` is `None`.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::Term;
use conclave_core::{Entry, EntryKind, Index, LogView, NodeId, Protocol, Role, Snapshot, Status};

use crate::observer::{DurableWrite, Observer};
use crate::simulation::Simulation;
use crate::violation::{Breach, Invariant};

/// The log-replication safety properties of the Raft paper (§5: Election Safety, Log Matching,
/// Leader Completeness, State Machine Safety) and monotonic commit, as an [`Observer`] over
/// `Status`, `LogView` and the durable writes: core types only, so any protocol that replicates
/// a log may register it. Log checks are skipped for protocols without a `log_view()`.
#[derive(Default)]
pub struct LogSafety {
    /// Made on first use, when the cluster's size is known.
    checker: Option<Checker>,
}

impl LogSafety {
    /// A checker that has seen nothing yet.
    pub fn new() -> LogSafety {
        LogSafety::default()
    }

    fn checker<P: Protocol>(&mut self, sim: &Simulation<P>) -> &mut Checker {
        self.checker.get_or_insert_with(|| Checker::new(sim.node_ids().len()))
    }
}

impl<P: Protocol> Observer<P> for LogSafety {
    fn name(&self) -> &'static str {
        "log-safety"
    }

    fn on_start(&mut self, sim: &Simulation<P>, node: NodeId) {
        self.checker(sim).on_restart(node);
    }

    fn on_status(
        &mut self,
        sim: &Simulation<P>,
        node: NodeId,
        previous: Option<Status>,
        status: Status,
    ) -> Result<(), Breach> {
        let log = sim.node(node).and_then(|protocol| protocol.log_view());
        let checker = self.checker(sim);
        if status.role == Role::Leader {
            checker.observe_leader(node, status.term)?;
            let role_changed =
                previous.is_none_or(|b| b.role != status.role || b.term != status.term);
            if let Some(log) = log.filter(|_| role_changed) {
                checker.check_leader_completeness(node, status.term, log)?;
            }
        }
        if previous.is_none_or(|b| b.commit != status.commit) {
            checker.observe_commit(node, status.commit, status.term, log)?;
        }
        Ok(())
    }

    fn on_durable(
        &mut self,
        sim: &Simulation<P>,
        node: NodeId,
        write: &DurableWrite<'_>,
    ) -> Result<(), Breach> {
        let checker = self.checker(sim);
        if let Some(snapshot) = write.snapshot {
            checker.observe_snapshot(node, snapshot.index, snapshot.term)?;
        }
        if write.has_log && !write.entries.is_empty() {
            checker.observe_written(node, write.term_prev, write.entries)?;
        }
        Ok(())
    }

    fn on_apply(&mut self, sim: &Simulation<P>, node: NodeId, entry: &Entry) -> Result<(), Breach> {
        self.checker(sim).observe_applied(node, sim.applied(node), entry)
    }

    fn on_restore(
        &mut self,
        sim: &Simulation<P>,
        node: NodeId,
        snapshot: &Snapshot,
        restored: &[Entry],
    ) -> Result<(), Breach> {
        self.checker(sim).observe_restored(node, snapshot.index, snapshot.term, restored)
    }

    fn recheck(&mut self, sim: &Simulation<P>, node: NodeId) -> Result<(), Breach> {
        let checker = self.checker(sim);
        if let Some(log) = sim.node(node).and_then(|protocol| protocol.log_view()) {
            checker.check_log(node, log)?;
        }
        checker.check_applied(node, sim.applied(node))
    }
}

/// What the first writer of an `(index, term)` entry wrote, for Log Matching.
struct WrittenEntry {
    kind: EntryKind,
    data: Bytes,
    /// The term of the entry before it in the writer's log (0 for index 1).
    term_prev: Term,
    /// Who wrote it first, for the report.
    node: NodeId,
}

/// What is known about one committed index.
#[derive(Clone, Copy)]
struct CommittedEntry {
    /// The entry's term; `Term(0)` while no node has claimed this index committed.
    term: Term,
    /// The lowest term in which some node was seen claiming it committed. Leader Completeness
    /// binds leaders of later terms only: a leader of an earlier term elected late (its vote
    /// replies were slow) need not hold an entry that was committed after its votes were cast.
    committed_in: Term,
}

/// The checker's memory of the run.
pub(crate) struct Checker {
    /// The leader seen in each term.
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// The first write of each `(index, term)` entry by any node. A BTreeMap like every map in
    /// this crate (clippy.toml): no iteration happens here today, but one added later must not
    /// depend on a per-process hash seed.
    written: BTreeMap<(Index, Term), WrittenEntry>,
    /// Indexed by `index - 1`.
    committed: Vec<CommittedEntry>,
    /// The global applied sequence: entry `i` at position `i - 1`. Every node's applied sequence
    /// must be a prefix of it.
    applied: Vec<Entry>,
    /// Each node's last seen commit index in its current incarnation (by `id - 1`).
    commit_last: Vec<Option<Index>>,
}

impl Checker {
    /// A checker for a cluster of `nodes` nodes, knowing nothing yet.
    pub(crate) fn new(nodes: usize) -> Checker {
        Checker {
            leaders_by_term: BTreeMap::new(),
            written: BTreeMap::new(),
            committed: Vec::new(),
            applied: Vec::new(),
            commit_last: vec![None; nodes],
        }
    }

    /// The global applied sequence so far.
    #[cfg(test)]
    pub(crate) fn applied(&self) -> &[Entry] {
        &self.applied
    }

    /// The highest index any node has claimed committed.
    #[cfg(test)]
    pub(crate) fn committed_last(&self) -> Index {
        Index(self.committed.len() as u64)
    }

    /// Forgets per-incarnation state of a node that restarts: its commit index may legitimately
    /// start lower than before the crash.
    pub(crate) fn on_restart(&mut self, node: NodeId) {
        self.commit_last[slot(node)] = None;
    }

    /// Election Safety: `node` says it leads `term`. Returns whether this is the first sighting of
    /// a leader in `term`.
    pub(crate) fn observe_leader(&mut self, node: NodeId, term: Term) -> Result<bool, Breach> {
        match self.leaders_by_term.get(&term) {
            Some(leader) if *leader == node => Ok(false),
            Some(leader) => Err(Breach::new(
                Invariant::ElectionSafety,
                format!("nodes {leader} and {node} both lead term {term}"),
            )),
            None => {
                self.leaders_by_term.insert(term, node);
                Ok(true)
            }
        }
    }

    /// Monotonic commit, and committed entries never changing: `node`, currently in `term`, says
    /// its commit index is `commit`. With a log, every newly committed entry is recorded (or
    /// compared with what was recorded for that index).
    pub(crate) fn observe_commit(
        &mut self,
        node: NodeId,
        commit: Index,
        term: Term,
        log: Option<&dyn LogView>,
    ) -> Result<(), Breach> {
        let commit_last = self.commit_last[slot(node)];
        if let Some(before) = commit_last {
            if commit < before {
                return Err(Breach::new(
                    Invariant::MonotonicCommit,
                    format!("node {node}'s commit index went from {before} down to {commit}"),
                ));
            }
        }
        self.commit_last[slot(node)] = Some(commit);
        let Some(log) = log else { return Ok(()) };
        let from = commit_last.unwrap_or(Index(0)).next().max(log.first_index());
        // Bounded by the log, so a wild commit index cannot make the checker allocate wildly.
        let to = commit.min(log.last_index());
        for index in from.0..=to.0 {
            if let Some(entry) = log.entry(Index(index)) {
                self.record_committed(node, Index(index), entry.term, term)?;
            }
        }
        Ok(())
    }

    fn record_committed(
        &mut self,
        node: NodeId,
        index: Index,
        entry_term: Term,
        committed_in: Term,
    ) -> Result<(), Breach> {
        let position = (index.0 - 1) as usize;
        if position >= self.committed.len() {
            let unknown = CommittedEntry { term: Term(0), committed_in: Term(u64::MAX) };
            self.committed.resize(position + 1, unknown);
        }
        let known = &mut self.committed[position];
        if known.term == Term(0) {
            *known = CommittedEntry { term: entry_term, committed_in };
        } else if known.term != entry_term {
            return Err(Breach::new(
                Invariant::MonotonicCommit,
                format!(
                    "index {index} was committed with term {}, but node {node} now has it committed with term {entry_term}",
                    known.term
                ),
            ));
        } else {
            known.committed_in = known.committed_in.min(committed_in);
        }
        Ok(())
    }

    /// Leader Completeness: `node` just became leader of `term`; its log must hold every entry
    /// known to have been committed in an earlier term.
    pub(crate) fn check_leader_completeness(
        &self,
        node: NodeId,
        term: Term,
        log: &dyn LogView,
    ) -> Result<(), Breach> {
        let first = log.first_index();
        for (position, known) in self.committed.iter().enumerate() {
            let index = Index(position as u64 + 1);
            if known.term == Term(0) || known.committed_in >= term || index < first {
                continue;
            }
            let held = log.entry(index).map(|entry| entry.term);
            if held != Some(known.term) {
                let held = held.map_or("nothing".to_string(), |t| format!("term {t}"));
                return Err(Breach::new(
                    Invariant::LeaderCompleteness,
                    format!(
                        "node {node} leads term {term} but holds {held} at index {index}, committed with term {} in term {}",
                        known.term, known.committed_in
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Log Matching: `node` made `entries` durable right after an entry of term `term_prev`
    /// (`None` when that entry is not known, having been compacted away: the first entry is then
    /// compared by its contents, and by the predecessor term recorded by its first writer).
    pub(crate) fn observe_written(
        &mut self,
        node: NodeId,
        term_prev: Option<Term>,
        entries: &[Entry],
    ) -> Result<(), Breach> {
        let mut term_prev = term_prev;
        for entry in entries {
            let known_prev = term_prev.or_else(|| {
                self.written.get(&(entry.index, entry.term)).map(|first| first.term_prev)
            });
            // Neither known here nor written before: there is nothing to compare the entry with,
            // and no predecessor to record; later writers of it are compared with one another.
            if let Some(known_prev) = known_prev {
                self.check_written(node, known_prev, entry)?;
            }
            term_prev = Some(entry.term);
        }
        Ok(())
    }

    fn check_written(
        &mut self,
        node: NodeId,
        term_prev: Term,
        entry: &Entry,
    ) -> Result<(), Breach> {
        let key = (entry.index, entry.term);
        match self.written.get(&key) {
            None => {
                let first =
                    WrittenEntry { kind: entry.kind, data: entry.data.clone(), term_prev, node };
                self.written.insert(key, first);
                Ok(())
            }
            Some(first) if first.kind != entry.kind || first.data != entry.data => {
                Err(Breach::new(
                    Invariant::LogMatching,
                    format!(
                        "entry {}@{} differs: node {} wrote {:?} {:?}, node {node} wrote {:?} {:?}",
                        entry.index,
                        entry.term,
                        first.node,
                        first.kind,
                        first.data,
                        entry.kind,
                        entry.data
                    ),
                ))
            }
            Some(first) if first.term_prev != term_prev => Err(Breach::new(
                Invariant::LogMatching,
                format!(
                    "entry {}@{} follows term {} on node {} but term {term_prev} on node {node}",
                    entry.index, entry.term, first.term_prev, first.node
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Log Matching over a whole current log, for on-demand checks: every held entry must agree
    /// with the first write of its `(index, term)`.
    pub(crate) fn check_log(&mut self, node: NodeId, log: &dyn LogView) -> Result<(), Breach> {
        let first = log.first_index().max(Index(1));
        let mut term_prev = if first == Index(1) {
            Some(Term(0))
        } else {
            log.entry(first.prev()).map(|entry| entry.term)
        };
        for index in first.0..=log.last_index().0 {
            let Some(entry) = log.entry(Index(index)) else {
                term_prev = None;
                continue;
            };
            // An entry whose predecessor is not held cannot be checked for it; compare contents.
            let term_prev_or_recorded = term_prev.or_else(|| {
                self.written.get(&(entry.index, entry.term)).map(|first| first.term_prev)
            });
            if let Some(term_prev) = term_prev_or_recorded {
                self.check_written(node, term_prev, entry)?;
            }
            term_prev = Some(entry.term);
        }
        Ok(())
    }

    /// State Machine Safety: `node`, which has applied `applied_before`, now applies `entry`.
    /// After a restore (see [`observe_restored`](Checker::observe_restored)) `applied_before` is
    /// the restored sequence, so the next index is the one after the snapshot.
    pub(crate) fn observe_applied(
        &mut self,
        node: NodeId,
        applied_before: &[Entry],
        entry: &Entry,
    ) -> Result<(), Breach> {
        let expected = Index(applied_before.len() as u64 + 1);
        if entry.index != expected {
            return Err(Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {node} applied index {} after {} (applied indexes must run 1, 2, 3, ...)",
                    entry.index,
                    expected.prev()
                ),
            ));
        }
        let position = (entry.index.0 - 1) as usize;
        match self.applied.get(position) {
            None => {
                // Invariant: no node has applied more than `self.applied`, so this is the next one.
                assert_eq!(position, self.applied.len(), "global applied sequence skipped");
                self.applied.push(entry.clone());
                Ok(())
            }
            Some(global) if same_entry(global, entry) => Ok(()),
            Some(global) => Err(Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {node} applied {} at index {}, but {} was applied there before",
                    describe(entry),
                    entry.index,
                    describe(global)
                ),
            )),
        }
    }

    /// State Machine Safety over a node's whole applied sequence, for on-demand checks.
    pub(crate) fn check_applied(&mut self, node: NodeId, applied: &[Entry]) -> Result<(), Breach> {
        for (position, entry) in applied.iter().enumerate() {
            self.observe_applied(node, &applied[..position], entry)?;
        }
        Ok(())
    }

    /// State Machine Safety for restored state: `node`'s state machine was restored from a
    /// snapshot at (`index`, `term`) to `restored`, which jumps its applied sequence to `index`.
    /// The image must describe exactly the entries 1..=index, end in `term`, and agree with the
    /// global applied sequence everywhere (extending it if no node applied that far yet).
    pub(crate) fn observe_restored(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        restored: &[Entry],
    ) -> Result<(), Breach> {
        if restored.len() as u64 != index.0 {
            return Err(Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {node} restored a snapshot at index {index} whose image holds {} entries",
                    restored.len()
                ),
            ));
        }
        if let Some(last) = restored.last().filter(|last| last.term != term) {
            return Err(Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {node} restored a snapshot of index {index} in term {term}, but its image ends with an entry of term {}",
                    last.term
                ),
            ));
        }
        for (position, entry) in restored.iter().enumerate() {
            match self.applied.get(position) {
                None => self.applied.push(entry.clone()),
                Some(global) if same_entry(global, entry) => {}
                Some(global) => {
                    return Err(Breach::new(
                        Invariant::StateMachineSafety,
                        format!(
                            "node {node} restored {} at index {} from a snapshot, but {} was applied there before",
                            describe(entry),
                            entry.index,
                            describe(global)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// A snapshot at (`index`, `term`) became durable on `node`: as far as anything was applied,
    /// the entry at `index` must have that term (the log after the snapshot is matched against it).
    pub(crate) fn observe_snapshot(
        &self,
        node: NodeId,
        index: Index,
        term: Term,
    ) -> Result<(), Breach> {
        let applied =
            index.0.checked_sub(1).and_then(|position| self.applied.get(position as usize));
        match applied {
            Some(entry) if entry.term != term => Err(Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {node} persisted a snapshot of index {index} in term {term}, but {} was applied there",
                    describe(entry)
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The client check: a write acknowledged at `(index, term)` with `data` must be in the final
/// `applied` sequence exactly there.
pub(crate) fn check_acknowledged(
    applied: &[Entry],
    index: Index,
    term: Term,
    data: &Bytes,
) -> Result<(), Breach> {
    let found = index.0.checked_sub(1).and_then(|position| applied.get(position as usize));
    match found {
            Some(entry) if entry.term == term && entry.data == *data => Ok(()),
            Some(entry) => Err(Breach::new(
                Invariant::AcknowledgedWrite,
                format!(
                    "write {data:?} was acknowledged at {index}@{term}, but the applied sequence holds {} there",
                    describe(entry)
                ),
            )),
            None => Err(Breach::new(
                Invariant::AcknowledgedWrite,
                format!(
                    "write {data:?} was acknowledged at {index}@{term}, but only {} entries were ever applied",
                    applied.len()
                ),
            )),
        }
}

/// The per-node table position of `node`.
fn slot(node: NodeId) -> usize {
    (node.0 - 1) as usize
}

fn same_entry(a: &Entry, b: &Entry) -> bool {
    a.term == b.term && a.kind == b.kind && a.data == b.data
}

fn describe(entry: &Entry) -> String {
    format!("{:?} {:?} of term {}", entry.kind, entry.data, entry.term)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as a plain vector, for feeding the checker.
    struct VecLog(Vec<Entry>);

    impl LogView for VecLog {
        fn first_index(&self) -> Index {
            Index(1)
        }
        fn last_index(&self) -> Index {
            Index(self.0.len() as u64)
        }
        fn entry(&self, index: Index) -> Option<&Entry> {
            self.0.get((index.0.checked_sub(1)?) as usize)
        }
        fn term_before_first(&self) -> Term {
            Term(0)
        }
    }

    fn cmd(index: u64, term: u64, data: &'static str) -> Entry {
        Entry::command(Index(index), Term(term), Bytes::from_static(data.as_bytes()))
    }

    fn log(entries: &[(u64, &'static str)]) -> VecLog {
        VecLog(entries.iter().enumerate().map(|(i, (t, d))| cmd(i as u64 + 1, *t, d)).collect())
    }

    #[test]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut checker = Checker::new(3);
        assert_eq!(checker.observe_leader(NodeId(1), Term(2)), Ok(true));
        assert_eq!(checker.observe_leader(NodeId(1), Term(2)), Ok(false));
        assert_eq!(checker.observe_leader(NodeId(2), Term(3)), Ok(true));
        let breach = checker.observe_leader(NodeId(3), Term(2)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::ElectionSafety);
        assert!(breach.detail.contains("term 2"), "{}", breach.detail);
    }

    #[test]
    fn decreasing_commit_breaks_monotonic_commit_until_restart() {
        let mut checker = Checker::new(3);
        checker.observe_commit(NodeId(1), Index(5), Term(1), None).unwrap();
        let breach = checker.observe_commit(NodeId(1), Index(4), Term(1), None).unwrap_err();
        assert_eq!(breach.invariant, Invariant::MonotonicCommit);
        // After a restart the node may recover a lower commit index from its disk.
        checker.on_restart(NodeId(1));
        checker.observe_commit(NodeId(1), Index(2), Term(1), None).unwrap();
    }

    #[test]
    fn a_committed_entry_that_changes_term_is_caught() {
        let mut checker = Checker::new(2);
        let a = log(&[(1, "a"), (1, "b")]);
        checker.observe_commit(NodeId(1), Index(2), Term(1), Some(&a)).unwrap();
        assert_eq!(checker.committed_last(), Index(2));
        let b = log(&[(1, "a"), (2, "x")]);
        let breach = checker.observe_commit(NodeId(2), Index(2), Term(2), Some(&b)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::MonotonicCommit);
    }

    #[test]
    fn a_leader_missing_an_earlier_committed_entry_breaks_leader_completeness() {
        let mut checker = Checker::new(3);
        let committed = log(&[(1, "a"), (2, "b")]);
        checker.observe_commit(NodeId(1), Index(2), Term(2), Some(&committed)).unwrap();
        // A leader of term 3 holding index 2 from term 1 instead of term 2.
        let stale = log(&[(1, "a"), (1, "old")]);
        let breach = checker.check_leader_completeness(NodeId(2), Term(3), &stale).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LeaderCompleteness);
        // A leader missing the index altogether.
        let short = log(&[(1, "a")]);
        assert!(checker.check_leader_completeness(NodeId(2), Term(3), &short).is_err());
        // A complete log passes; so does a late leader of the term the entry was committed in.
        checker.check_leader_completeness(NodeId(3), Term(3), &committed).unwrap();
        checker.check_leader_completeness(NodeId(2), Term(2), &short).unwrap();
    }

    #[test]
    fn same_index_and_term_with_different_data_breaks_log_matching() {
        let mut checker = Checker::new(2);
        checker
            .observe_written(NodeId(1), Some(Term(0)), &[cmd(1, 1, "a"), cmd(2, 1, "b")])
            .unwrap();
        // Writing the same entries again (a retransmission) is fine.
        checker.observe_written(NodeId(2), Some(Term(1)), &[cmd(2, 1, "b")]).unwrap();
        let breach =
            checker.observe_written(NodeId(2), Some(Term(1)), &[cmd(2, 1, "z")]).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LogMatching);
    }

    #[test]
    fn same_entry_after_a_different_predecessor_breaks_log_matching() {
        let mut checker = Checker::new(2);
        checker.observe_written(NodeId(1), Some(Term(1)), &[cmd(2, 2, "b")]).unwrap();
        let breach =
            checker.observe_written(NodeId(2), Some(Term(2)), &[cmd(2, 2, "b")]).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LogMatching);
        assert!(breach.detail.contains("follows term 1"), "{}", breach.detail);
    }

    #[test]
    fn check_log_rechecks_a_whole_log() {
        let mut checker = Checker::new(2);
        checker
            .observe_written(NodeId(1), Some(Term(0)), &[cmd(1, 1, "a"), cmd(2, 1, "b")])
            .unwrap();
        checker.check_log(NodeId(1), &log(&[(1, "a"), (1, "b")])).unwrap();
        let breach = checker.check_log(NodeId(2), &log(&[(1, "a"), (1, "c")])).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LogMatching);
    }

    #[test]
    fn divergent_applied_sequences_break_state_machine_safety() {
        let mut checker = Checker::new(2);
        let one = [cmd(1, 1, "a"), cmd(2, 1, "b")];
        checker.check_applied(NodeId(1), &one).unwrap();
        assert_eq!(checker.applied().len(), 2);
        // A prefix is fine; a longer sequence extends the global one.
        checker.check_applied(NodeId(2), &one[..1]).unwrap();
        let breach =
            checker.observe_applied(NodeId(2), &one[..1], &cmd(2, 1, "other")).unwrap_err();
        assert_eq!(breach.invariant, Invariant::StateMachineSafety);
        let breach = checker.observe_applied(NodeId(2), &one[..1], &cmd(2, 2, "b")).unwrap_err();
        assert_eq!(breach.invariant, Invariant::StateMachineSafety);
    }

    #[test]
    fn an_entry_after_a_compacted_predecessor_is_compared_by_contents() {
        let mut checker = Checker::new(2);
        checker.observe_written(NodeId(1), Some(Term(1)), &[cmd(5, 2, "e")]).unwrap();
        checker.observe_written(NodeId(2), None, &[cmd(5, 2, "e"), cmd(6, 2, "f")]).unwrap();
        let breach = checker.observe_written(NodeId(2), None, &[cmd(5, 2, "x")]).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LogMatching);
        // The entries after it are checked with their known predecessor as usual.
        let breach =
            checker.observe_written(NodeId(1), Some(Term(1)), &[cmd(6, 2, "f")]).unwrap_err();
        assert_eq!(breach.invariant, Invariant::LogMatching);
    }

    #[test]
    fn a_restore_jumps_ahead_and_must_match_the_applied_sequence() {
        let mut checker = Checker::new(2);
        let sequence = [cmd(1, 1, "a"), cmd(2, 1, "b"), cmd(3, 2, "c")];
        checker.check_applied(NodeId(1), &sequence[..2]).unwrap();
        // Node 2 had applied nothing; it restores up to 3 (extending the global sequence) and
        // then applies 4: consecutive after the restore.
        checker.observe_restored(NodeId(2), Index(3), Term(2), &sequence).unwrap();
        assert_eq!(checker.applied().len(), 3);
        checker.observe_applied(NodeId(2), &sequence, &cmd(4, 2, "d")).unwrap();
        checker.observe_snapshot(NodeId(1), Index(3), Term(2)).unwrap();
        let breach = checker.observe_snapshot(NodeId(1), Index(3), Term(1)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::StateMachineSafety);

        let other = [cmd(1, 1, "a"), cmd(2, 1, "other")];
        let breach = checker.observe_restored(NodeId(1), Index(2), Term(1), &other).unwrap_err();
        assert_eq!(breach.invariant, Invariant::StateMachineSafety);
        let breach =
            checker.observe_restored(NodeId(1), Index(3), Term(2), &sequence[..2]).unwrap_err();
        assert!(breach.detail.contains("holds 2 entries"), "{}", breach.detail);
        let breach = checker.observe_restored(NodeId(1), Index(3), Term(3), &sequence).unwrap_err();
        assert!(breach.detail.contains("ends with an entry of term 2"), "{}", breach.detail);
    }

    #[test]
    fn gaps_in_applied_indexes_break_state_machine_safety() {
        let mut checker = Checker::new(1);
        let breach = checker.observe_applied(NodeId(1), &[], &cmd(2, 1, "b")).unwrap_err();
        assert_eq!(breach.invariant, Invariant::StateMachineSafety);
        assert!(breach.detail.contains("applied index 2 after 0"), "{}", breach.detail);
    }

    #[test]
    fn acknowledged_writes_must_be_applied_where_acknowledged() {
        let mut checker = Checker::new(1);
        checker.check_applied(NodeId(1), &[cmd(1, 1, "a"), cmd(2, 1, "b")]).unwrap();
        let applied = checker.applied();
        check_acknowledged(applied, Index(2), Term(1), &Bytes::from_static(b"b")).unwrap();
        for (index, term, data) in [(2, 1, "a"), (2, 2, "b"), (3, 1, "c"), (0, 1, "a")] {
            let data = Bytes::from_static(data.as_bytes());
            let breach = check_acknowledged(applied, Index(index), Term(term), &data).unwrap_err();
            assert_eq!(breach.invariant, Invariant::AcknowledgedWrite);
        }
    }
}
