//! The log writer: jobs queued while it is busy share one fsync and land exactly once, in order;
//! the hard state is written before the entries and never claims a commit beyond the durable
//! log; snapshots and compaction go through the same queue.

mod common;

use std::sync::mpsc;

use common::{entry, small_segments, snapshot};
use conclave_core::{HardState, Index, NodeId, Term};
use conclave_storage::{Durable, FileStore, JobId, LogStore, LogWriter, Options, WriteJob};

type Reports = mpsc::Receiver<conclave_storage::Result<Durable>>;

fn start(dir: &std::path::Path, options: &Options) -> (LogWriter, Reports) {
    let (reports, received) = mpsc::channel();
    let store = FileStore::open(dir, options).unwrap();
    let writer = LogWriter::start("test-writer".into(), store, move |report| {
        let _ = reports.send(report);
    })
    .unwrap();
    (writer, received)
}

fn entries_job(first: u64, last: u64, term: u64) -> WriteJob {
    WriteJob { entries: (first..=last).map(|i| entry(i, term, 3)).collect(), ..WriteJob::default() }
}

#[test]
fn jobs_queued_while_the_writer_is_busy_share_one_fsync_and_all_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), &small_segments(4096)).unwrap();
    // The first report blocks the writer thread until the test has queued the rest, so the
    // second batch holds every one of them.
    let (go, wait_for_go) = mpsc::channel::<()>();
    let (reports, received) = mpsc::channel();
    let mut writer = LogWriter::start("test-writer".into(), store, move |report| {
        let first = report.as_ref().is_ok_and(|d| d.upto == JobId(1));
        let _ = reports.send(report);
        if first {
            let _ = wait_for_go.recv();
        }
    })
    .unwrap();
    assert_eq!(writer.submit(entries_job(1, 1, 1)).unwrap(), JobId(1));
    let first = received.recv().unwrap().unwrap();
    assert_eq!((first.upto, first.jobs, first.entries), (JobId(1), 1, 1));
    for index in 2..=201 {
        assert_eq!(writer.submit(entries_job(index, index, 1)).unwrap(), JobId(index));
    }
    go.send(()).unwrap();
    let second = received.recv().unwrap().unwrap();
    assert_eq!((second.upto, second.jobs, second.entries), (JobId(201), 200, 200));
    assert!(second.sync.is_some(), "a batch of entries is made durable with an fdatasync");
    drop(writer);

    let store = FileStore::open(dir.path(), &small_segments(4096)).unwrap();
    let entries = store.load().unwrap().state.entries;
    let expected: Vec<_> = (1..=201).map(|i| entry(i, 1, 3)).collect();
    assert_eq!(entries, expected);
}

#[test]
fn the_hard_state_goes_first_and_never_commits_beyond_the_durable_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reports) = start(dir.path(), &Options::default());
    let voted = HardState { term: Term(1), vote: Some(NodeId(1)), commit: Index(3) };
    // Entries 1..=3 and a commit of 3 in one job: the hard state is written before the entries
    // are durable, so its commit is capped at the durable log (empty).
    writer.submit(WriteJob { hard_state: Some(voted), ..entries_job(1, 3, 1) }).unwrap();
    reports.recv().unwrap().unwrap();
    // A commit alone is not worth a write of its own.
    writer.submit(WriteJob { hard_state: Some(voted), ..WriteJob::default() }).unwrap();
    let commit_only = reports.recv().unwrap().unwrap();
    assert_eq!((commit_only.entries, commit_only.sync), (0, None));
    drop(writer);
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(store.hard_state(), HardState { commit: Index(0), ..voted });
    drop(store);

    // A new term is written, with the commit the durable log now supports.
    let (mut writer, reports) = start(dir.path(), &Options::default());
    let next_term = HardState { term: Term(2), vote: None, commit: Index(3) };
    writer.submit(WriteJob { hard_state: Some(next_term), ..WriteJob::default() }).unwrap();
    reports.recv().unwrap().unwrap();
    drop(writer);
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(store.hard_state(), next_term);
}

#[test]
fn snapshots_and_compaction_are_carried_out_in_job_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reports) = start(dir.path(), &Options::default());
    writer.submit(entries_job(1, 8, 1)).unwrap();
    // The snapshot holds entry 5 (same term), so entries 6..=8 survive; compaction then drops
    // 1..=5, which the snapshot now covers.
    writer
        .submit(WriteJob {
            snapshot: Some(snapshot(5, 1)),
            compact_log_to: Some(Index(5)),
            ..WriteJob::default()
        })
        .unwrap();
    writer.submit(entries_job(9, 9, 1)).unwrap();
    let mut durable = JobId(0);
    while durable < JobId(3) {
        durable = reports.recv().unwrap().unwrap().upto;
    }
    drop(writer);
    let recovered = FileStore::open(dir.path(), &Options::default()).unwrap().load().unwrap();
    assert_eq!(recovered.state.snapshot, Some(snapshot(5, 1)));
    let indexes: Vec<u64> = recovered.state.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, vec![6, 7, 8, 9]);
}

#[test]
fn dropping_the_writer_finishes_every_job_already_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _reports) = start(dir.path(), &Options::default());
    for index in 1..=50 {
        writer.submit(entries_job(index, index, 1)).unwrap();
    }
    drop(writer);
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(store.last_index(), Index(50));
}

#[test]
fn snapshots_saved_in_the_background_land_in_order_and_compaction_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reports) = start(dir.path(), &Options::default());
    writer.submit(entries_job(1, 20, 1)).unwrap();
    // The log holds each snapshot's entry: the files are written off the writer thread, one
    // after another (the middle one may be superseded before it starts), and each compaction
    // waits for a snapshot that covers it.
    for (index, compact) in [(5, 5), (10, 10), (15, 12)] {
        writer
            .submit(WriteJob {
                snapshot: Some(snapshot(index, 1)),
                compact_log_to: Some(Index(compact)),
                ..WriteJob::default()
            })
            .unwrap();
    }
    writer.submit(entries_job(21, 21, 1)).unwrap();
    let mut durable = JobId(0);
    while durable < JobId(5) {
        durable = reports.recv().unwrap().unwrap().upto;
    }
    drop(writer);
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    let recovered = store.load().unwrap();
    assert_eq!(recovered.state.snapshot, Some(snapshot(15, 1)));
    let indexes: Vec<u64> = recovered.state.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, (13..=21).collect::<Vec<_>>());
    let files = std::fs::read_dir(dir.path()).unwrap();
    let snapshots = files
        .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".snap"))
        .count();
    assert_eq!(snapshots, 1, "older snapshots are removed once a newer one is durable");
}
