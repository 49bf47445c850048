//! Snapshots as the protocol interface hands them over (`Ready::snapshot`): saved with their
//! voters, loaded into `DurableState::snapshot`, and installed with Raft's log rule, including a
//! snapshot beyond the log's end (the log then restarts after it) and a crash between saving the
//! snapshot and reconciling the log. Each behaviour is checked on the file store and on its
//! in-memory twin.

mod common;

use std::path::PathBuf;

use common::{entry, small_segments, snapshot};
use conclave_core::{Entry, HardState, Index, Membership, NodeId, SeededRng, Term};
use conclave_storage::{inspect, FileStore, LogStore, MemStore, Options, StorageError};

/// A store that can be restarted: the file store by reopening its directory, the in-memory twin
/// by a crash (after a sync, so a crash loses nothing a reopen would keep).
trait Harness {
    fn store(&mut self) -> &mut dyn LogStore;
    fn reopen(&mut self);
}

struct FileHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
    options: Options,
    store: Option<FileStore>,
}

impl FileHarness {
    fn new() -> FileHarness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        // Small segments, so compaction and truncation cross segment files.
        let options = small_segments(200);
        let store = Some(FileStore::open(&path, &options).unwrap());
        FileHarness { _dir: dir, path, options, store }
    }
}

impl Harness for FileHarness {
    fn store(&mut self) -> &mut dyn LogStore {
        self.store.as_mut().unwrap()
    }
    fn reopen(&mut self) {
        drop(self.store.take());
        self.store = Some(FileStore::open(&self.path, &self.options).unwrap());
    }
}

struct MemHarness(MemStore);

impl Harness for MemHarness {
    fn store(&mut self) -> &mut dyn LogStore {
        &mut self.0
    }
    fn reopen(&mut self) {
        self.0.sync().unwrap();
        let report = self.0.crash(&mut SeededRng::new(1)).unwrap();
        assert_eq!(report.entries_lost, 0);
    }
}

fn on_both(check: impl Fn(&mut dyn Harness)) {
    check(&mut FileHarness::new());
    check(&mut MemHarness(MemStore::new()));
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term, 6)).collect()
}

fn bounds(store: &dyn LogStore) -> (Index, Index) {
    (store.first_index(), store.last_index())
}

#[test]
fn a_snapshot_beyond_the_end_empties_the_log_which_restarts_after_it() {
    on_both(|h| {
        h.store().append(&entries(1..=5, 1)).unwrap();
        h.store().sync().unwrap();
        let installed = snapshot(50, 4);
        h.store().install_snapshot(&installed).unwrap();
        assert_eq!(bounds(h.store()), (Index(51), Index(50)));
        let state = h.store().load().unwrap().state;
        assert_eq!(state.snapshot.as_ref(), Some(&installed));
        assert!(state.entries.is_empty());

        // Reopened before anything else is written: the empty log starting at 51 is accepted.
        h.reopen();
        assert_eq!(bounds(h.store()), (Index(51), Index(50)));
        assert_eq!(h.store().load().unwrap().state.snapshot, Some(installed.clone()));
        assert!(matches!(
            h.store().append(&[entry(50, 4, 1)]),
            Err(StorageError::Compacted { .. })
        ));
        h.store().append(&[entry(51, 4, 1)]).unwrap();
        h.store().sync().unwrap();
        h.reopen();
        let state = h.store().load().unwrap().state;
        assert_eq!(state.entries, vec![entry(51, 4, 1)]);
        assert_eq!(state.snapshot, Some(installed));
    });
}

#[test]
fn entries_after_a_snapshot_the_log_holds_survive_the_install() {
    on_both(|h| {
        h.store().append(&entries(1..=20, 2)).unwrap();
        h.store().sync().unwrap();
        h.store().install_snapshot(&snapshot(12, 2)).unwrap();
        // The log is untouched: compaction is the protocol's separate decision.
        assert_eq!(bounds(h.store()), (Index(1), Index(20)));
        h.store().compact_prefix(Index(12)).unwrap();
        h.reopen();
        let state = h.store().load().unwrap().state;
        assert_eq!(state.snapshot, Some(snapshot(12, 2)));
        assert_eq!(state.entries, entries(13..=20, 2));
    });
}

#[test]
fn a_snapshot_whose_entry_conflicts_takes_the_whole_log_with_it() {
    on_both(|h| {
        // Index 10 has term 1 here, but the leader's snapshot ends at 10 in term 3: everything
        // after it is a conflicting history, and the entries before it are covered.
        h.store().append(&entries(1..=15, 1)).unwrap();
        h.store().sync().unwrap();
        h.store().install_snapshot(&snapshot(10, 3)).unwrap();
        assert_eq!(bounds(h.store()), (Index(11), Index(10)));
        h.store().append(&entries(11..=12, 3)).unwrap();
        h.store().sync().unwrap();
        h.reopen();
        let state = h.store().load().unwrap().state;
        assert_eq!(state.snapshot, Some(snapshot(10, 3)));
        assert_eq!(state.entries, entries(11..=12, 3));
    });
}

#[test]
fn a_crash_between_saving_the_snapshot_and_reconciling_the_log_hides_the_stale_log() {
    on_both(|h| {
        h.store().append(&entries(1..=15, 1)).unwrap();
        h.store().sync().unwrap();
        // Only the first step of install_snapshot happened.
        h.store().save_snapshot(&snapshot(10, 3)).unwrap();
        let state = h.store().load().unwrap().state;
        assert_eq!(state.snapshot, Some(snapshot(10, 3)));
        assert!(
            state.entries.is_empty(),
            "entries after a conflicting snapshot reached a protocol"
        );
        h.reopen();
        let state = h.store().load().unwrap().state;
        assert!(state.entries.is_empty());
        assert_eq!(state.snapshot, Some(snapshot(10, 3)));
    });
    // The file store also repairs the directory on open: the log now starts after the snapshot.
    let mut h = FileHarness::new();
    h.store().append(&entries(1..=15, 1)).unwrap();
    h.store().sync().unwrap();
    h.store().save_snapshot(&snapshot(10, 3)).unwrap();
    h.reopen();
    assert_eq!(bounds(h.store()), (Index(11), Index(10)));
    h.reopen();
    assert_eq!(bounds(h.store()), (Index(11), Index(10)));
}

#[test]
fn an_older_snapshot_never_replaces_a_newer_one() {
    on_both(|h| {
        h.store().install_snapshot(&snapshot(30, 2)).unwrap();
        h.store().install_snapshot(&snapshot(20, 2)).unwrap();
        assert_eq!(bounds(h.store()), (Index(31), Index(30)));
        h.reopen();
        assert_eq!(h.store().load().unwrap().state.snapshot, Some(snapshot(30, 2)));
    });
}

#[test]
fn voters_and_hard_state_survive_with_the_snapshot_and_inspect_shows_them() {
    let mut h = FileHarness::new();
    let hard_state = HardState { term: Term(5), vote: Some(NodeId(2)), commit: Index(40) };
    let mut taken = snapshot(40, 5);
    taken.membership = Membership::new(vec![NodeId(1), NodeId(4), NodeId(9)]);
    h.store().append(&entries(1..=45, 5)).unwrap();
    h.store().sync().unwrap();
    h.store().save_hard_state(&hard_state).unwrap();
    h.store().install_snapshot(&taken).unwrap();
    h.store().compact_prefix(Index(40)).unwrap();
    h.reopen();
    let state = h.store().load().unwrap().state;
    assert_eq!(state.hard_state, hard_state);
    assert_eq!(state.snapshot, Some(taken));
    assert_eq!(state.entries, entries(41..=45, 5));
    let report = inspect(&h.path).unwrap();
    assert_eq!(report.snapshots[0].membership.voters, vec![NodeId(1), NodeId(4), NodeId(9)]);
    assert!(report.to_string().contains("voters [1, 4, 9]"), "{report}");
    assert!(report.problems.is_empty(), "{report}");
}
