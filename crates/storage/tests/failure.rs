//! After any failed write or fsync the store refuses everything until reopened (fsyncgate), and
//! the log writer reports the failure and refuses every later job.

mod common;

use std::sync::Arc;

use common::entry;
use conclave_core::{HardState, Index, Term};
use conclave_storage::{
    FaultInjector, FileStore, JobId, LogStore, LogWriter, Options, SegmentedLog, StorageError,
    WriteJob,
};

fn with_faults(faults: &Arc<FaultInjector>) -> Options {
    Options { fault_injector: Some(Arc::clone(faults)), ..Options::default() }
}

fn assert_failed<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    match result {
        Err(StorageError::Failed { cause }) => {
            assert!(cause.contains("injected"), "{what}: {cause}")
        }
        other => panic!("{what}: expected the failed state, got {other:?}"),
    }
}

#[test]
fn a_failed_fsync_fails_every_later_call_even_after_the_disk_heals() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let mut store = FileStore::open(dir.path(), &with_faults(&faults)).unwrap();
    store.append(&[entry(1, 1, 4)]).unwrap();
    store.sync().unwrap();
    store.append(&[entry(2, 1, 4)]).unwrap();

    faults.fail_syncs_after(0);
    match store.sync() {
        Err(StorageError::Io { op, .. }) => assert_eq!(op, "fdatasync"),
        other => panic!("expected the fsync error, got {other:?}"),
    }
    faults.heal();
    assert!(store.is_failed());
    assert_failed(store.sync(), "sync");
    assert_failed(store.append(&[entry(3, 1, 4)]), "append");
    assert_failed(store.entries(Index(1), Index(2)), "entries");
    assert_failed(store.truncate_suffix(Index(2)), "truncate");
    assert_failed(store.save_hard_state(&HardState::default()), "hard state");
    assert_failed(store.save_snapshot(&common::snapshot(1, 1)), "snapshot");
    assert_failed(store.load(), "load");
    drop(store);

    // Reopening re-reads what is really on disk and is healthy again.
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert!(store.last_index() >= Index(1));
}

#[test]
fn a_failed_write_is_sticky_too() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let mut log = SegmentedLog::open(dir.path(), &with_faults(&faults)).unwrap();
    log.append(&[entry(1, 1, 4)]).unwrap();
    faults.fail_writes_after(0);
    match log.sync() {
        Err(StorageError::Io { op, .. }) => assert_eq!(op, "write"),
        other => panic!("expected the write error, got {other:?}"),
    }
    faults.heal();
    assert_failed(log.append(&[entry(2, 1, 4)]), "append");
    assert_failed(log.sync(), "sync");
}

#[test]
fn a_failed_hard_state_save_fails_the_whole_store() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let mut store = FileStore::open(dir.path(), &with_faults(&faults)).unwrap();
    faults.fail_syncs_after(0);
    let hard_state = HardState { term: Term(3), vote: None, commit: Index(0) };
    assert!(matches!(store.save_hard_state(&hard_state), Err(StorageError::Io { .. })));
    faults.heal();
    assert_failed(store.append(&[entry(1, 1, 4)]), "append after a failed hard state save");
    drop(store);
    // The save never completed, so the old (default) hard state is what a restart finds.
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(store.hard_state(), HardState::default());
}

#[test]
fn the_log_writer_reports_a_failed_write_or_sync_and_then_refuses_every_job() {
    for fail_syncs in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultInjector::new();
        let store = FileStore::open(dir.path(), &with_faults(&faults)).unwrap();
        let (reports, received) = std::sync::mpsc::channel();
        let mut writer = LogWriter::start("test-writer".into(), store, move |report| {
            let _ = reports.send(report);
        })
        .unwrap();
        let job = |index| WriteJob { entries: vec![entry(index, 1, 4)], ..WriteJob::default() };
        writer.submit(job(1)).unwrap();
        assert_eq!(received.recv().unwrap().unwrap().upto, JobId(1));
        if fail_syncs {
            faults.fail_syncs_after(0);
        } else {
            faults.fail_writes_after(0);
        }
        writer.submit(job(2)).unwrap();
        let report = received.recv().unwrap();
        assert!(matches!(report, Err(StorageError::Io { .. })), "{report:?}");
        // Reported once, then the writer is gone: nothing later can be acknowledged.
        faults.heal();
        assert!(matches!(writer.submit(job(3)), Err(StorageError::WriterStopped)));
        assert!(received.recv().is_err(), "no report after the failure");
        drop(writer);
        let store = FileStore::open(dir.path(), &Options::default()).unwrap();
        assert!(store.last_index() <= Index(2));
    }
}

#[test]
fn a_failed_background_snapshot_save_stops_the_writer_and_compacts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let (reports, received) = std::sync::mpsc::channel();
    let store = FileStore::open(dir.path(), &with_faults(&faults)).unwrap();
    let mut writer = LogWriter::start("test-writer".into(), store, move |report| {
        let _ = reports.send(report);
    })
    .unwrap();
    let entries = (1..=8).map(|i| entry(i, 1, 3)).collect();
    writer.submit(WriteJob { entries, ..WriteJob::default() }).unwrap();
    received.recv().unwrap().unwrap();

    // The log holds the snapshot's entry, so the file is saved in the background; its fsync
    // fails, and the compaction waiting for it must never run.
    faults.fail_syncs_after(0);
    writer
        .submit(WriteJob {
            snapshot: Some(common::snapshot(5, 1)),
            compact_log_to: Some(Index(5)),
            ..WriteJob::default()
        })
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let failure = loop {
        if let Ok(Err(error)) = received.recv_timeout(std::time::Duration::from_millis(10)) {
            break error;
        }
        assert!(std::time::Instant::now() < deadline, "the failed save was never reported");
        // Each later job checks on the save; a stopped writer refuses them.
        if writer.submit(WriteJob::default()).is_err() {
            break received.recv().unwrap().expect_err("the writer stopped on a failure");
        }
    };
    assert!(failure.to_string().contains("injected"), "{failure}");
    assert!(writer.submit(WriteJob::default()).is_err(), "a failed writer refuses jobs");
    drop(writer);
    faults.heal();

    let recovered = FileStore::open(dir.path(), &Options::default()).unwrap().load().unwrap();
    assert_eq!(recovered.state.snapshot, None);
    let indexes: Vec<u64> = recovered.state.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, (1..=8).collect::<Vec<_>>());
}
