//! Group commit: concurrent durable appends all land, each exactly once, and share fsyncs.

mod common;

use bytes::Bytes;
use common::small_segments;
use conclave_core::{Index, Term};
use conclave_storage::{FileStore, GroupCommit, LogStore};

#[test]
fn concurrent_durable_appends_all_land_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), &small_segments(4096)).unwrap();
    let group = GroupCommit::new(store);
    let (threads, per_thread) = (16u64, 40u64);
    let acknowledged: Vec<(Index, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let group = group.clone();
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let data = format!("t{thread}-{n}");
                            let index = group
                                .append_commands_durable(Term(1), &[Bytes::from(data.clone())])
                                .unwrap();
                            (index, data)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let stats = group.stats().unwrap();
    assert_eq!(stats.appends, threads * per_thread);
    assert!(stats.syncs < stats.appends, "no batching happened: {stats:?}");
    drop(group);

    let store = FileStore::open(dir.path(), &small_segments(4096)).unwrap();
    let entries = store.load().unwrap().state.entries;
    assert_eq!(entries.len() as u64, threads * per_thread);
    for (index, data) in acknowledged {
        assert_eq!(entries[(index.0 - 1) as usize].data, Bytes::from(data));
    }
}

#[test]
fn explicit_index_appends_replace_the_suffix_and_report_the_last_index() {
    let dir = tempfile::tempdir().unwrap();
    let group = GroupCommit::new(FileStore::open(dir.path(), &Default::default()).unwrap());
    let batch: Vec<_> = (1..=5).map(|i| common::entry(i, 1, 3)).collect();
    assert_eq!(group.append_durable(&batch).unwrap(), Index(5));
    assert_eq!(group.append_durable(&[common::entry(3, 2, 3)]).unwrap(), Index(3));
    group.sync().unwrap();
    let last = group.with_store(|store| store.last_index()).unwrap();
    assert_eq!(last, Index(3));
}

#[test]
fn submitted_appends_are_durable_once_their_ticket_is_and_one_sync_covers_many() {
    let dir = tempfile::tempdir().unwrap();
    let group = GroupCommit::new(FileStore::open(dir.path(), &small_segments(4096)).unwrap());
    let mut submitted = Vec::new();
    for n in 0..200u64 {
        let data = Bytes::from(format!("request-{n}"));
        let (ticket, index) = group.submit_commands(Term(1), std::slice::from_ref(&data)).unwrap();
        submitted.push((ticket, index, data));
    }
    for pair in submitted.windows(2) {
        assert!(pair[0].0 < pair[1].0, "tickets follow the order of changes");
    }
    // Waiting on the last ticket makes every earlier one durable with a single fdatasync.
    group.wait(submitted.last().unwrap().0).unwrap();
    assert_eq!(group.stats().unwrap().syncs, 1);
    for (ticket, _, _) in &submitted {
        group.wait(*ticket).unwrap();
    }
    assert_eq!(group.stats().unwrap().syncs, 1, "durable tickets need no further sync");
    drop(group);
    let recovered = FileStore::open(dir.path(), &small_segments(4096)).unwrap().load().unwrap();
    for (_, index, data) in submitted {
        let entry = &recovered.state.entries[(index.0 - 1) as usize];
        assert_eq!((entry.index, &entry.data), (index, &data));
    }
}
