//! Recovery on open: torn tails are cut to a clean prefix, corruption anywhere else fails the
//! open naming the file and byte offset, and the small files survive reopening.

mod common;

use bytes::Bytes;
use common::{entry, record_len, segment_files, small_segments};
use conclave_core::{Entry, HardState, Index, Membership, NodeId, Term};
use conclave_storage::{
    inspect, verify, Corruption, FileStore, LogStore, Options, RecordError, SegmentedLog, Snapshot,
    StorageError,
};

/// Writes `entries` to a fresh log in `dir` with the given segment size and syncs it.
fn write_log(dir: &std::path::Path, options: &Options, entries: &[Entry]) {
    let mut log = SegmentedLog::open(dir, options).unwrap();
    log.append(entries).unwrap();
    log.sync().unwrap();
}

fn all_entries(log: &SegmentedLog) -> Vec<Entry> {
    log.entries(log.first_index(), log.last_index().next()).unwrap()
}

#[test]
fn a_last_segment_cut_at_every_byte_offset_recovers_a_clean_prefix() {
    let options = small_segments(300);
    let entries: Vec<Entry> =
        (1..=14).map(|i| entry(i, 1 + i / 5, (i as usize * 7) % 23)).collect();
    let original = tempfile::tempdir().unwrap();
    write_log(original.path(), &options, &entries);
    let files = segment_files(original.path());
    assert!(files.len() >= 2, "the test needs a sealed segment before the last one");
    let last_file = files.last().unwrap().file_name().unwrap().to_owned();
    let last_bytes = std::fs::read(files.last().unwrap()).unwrap();
    let sealed: Vec<_> = files[..files.len() - 1].to_vec();
    let report = inspect(original.path()).unwrap();
    let before_last = &report.segments[..report.segments.len() - 1];
    let entries_before_last: usize = before_last.iter().map(|s| s.records as usize).sum();

    let mut boundaries = vec![0];
    for e in &entries[entries_before_last..] {
        boundaries.push(boundaries.last().unwrap() + record_len(e));
    }
    for cut in 0..=last_bytes.len() {
        for zero_fill in [0usize, 100] {
            // Zeros follow a cut only where a record ends: a disk writes a sector whole or not at
            // all, so zeros completing a record inside its first sector are not a torn write.
            if zero_fill > 0 && !boundaries.contains(&cut) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            for file in &sealed {
                std::fs::copy(file, dir.path().join(file.file_name().unwrap())).unwrap();
            }
            let mut damaged = last_bytes[..cut].to_vec();
            damaged.resize(cut + zero_fill, 0);
            std::fs::write(dir.path().join(&last_file), &damaged).unwrap();

            let log = SegmentedLog::open(dir.path(), &options).unwrap();
            // The surviving entries are exactly those whose whole record lies within the cut.
            let mut end = 0;
            let mut whole = entries_before_last;
            for e in &entries[entries_before_last..] {
                end += record_len(e);
                if end > cut {
                    break;
                }
                whole += 1;
            }
            assert_eq!(all_entries(&log), entries[..whole], "cut at {cut}, zero fill {zero_fill}");
            let kept = std::fs::metadata(dir.path().join(&last_file)).unwrap().len();
            let clean: usize = entries[entries_before_last..whole].iter().map(record_len).sum();
            assert_eq!(kept as usize, clean, "the torn bytes are gone from the file");
        }
    }
}

#[test]
fn a_flipped_bit_before_the_tail_is_corruption_naming_file_and_offset() {
    let options = small_segments(400);
    let entries: Vec<Entry> = (1..=12).map(|i| entry(i, 1, 9)).collect();
    let original = tempfile::tempdir().unwrap();
    write_log(original.path(), &options, &entries);
    let files = segment_files(original.path());
    assert!(files.len() >= 2);

    for (file_position, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        let is_last = file_position + 1 == files.len();
        let record = record_len(&entries[0]);
        let records = bytes.len() / record;
        // The last segment's final record has its own test below: a grown length field there
        // runs past the end of the file and reads as a torn write.
        let corruptible = if is_last { records - 1 } else { records };
        for byte in 0..corruptible * record {
            let dir = tempfile::tempdir().unwrap();
            for other in &files {
                std::fs::copy(other, dir.path().join(other.file_name().unwrap())).unwrap();
            }
            let mut damaged = bytes.clone();
            damaged[byte] ^= 0x04;
            let target = dir.path().join(file.file_name().unwrap());
            std::fs::write(&target, &damaged).unwrap();

            match SegmentedLog::open(dir.path(), &options) {
                Err(StorageError::Corrupt(error)) => {
                    assert_eq!(error.file, target, "byte {byte}");
                    assert_eq!(error.offset as usize, byte / record * record, "byte {byte}");
                    assert!(error.to_string().contains(&format!("byte offset {}", error.offset)));
                }
                other => panic!("flipping byte {byte} of {file:?} gave {other:?}"),
            }
            let found = verify(dir.path()).unwrap_err();
            assert_eq!(found.file, target);
        }
    }
}

#[test]
fn a_flipped_bit_in_the_final_record_is_corruption_and_the_file_is_kept() {
    let options = Options::default();
    let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1, 5)).collect();
    let original = tempfile::tempdir().unwrap();
    write_log(original.path(), &options, &entries);
    let name = segment_files(original.path()).pop().unwrap().file_name().unwrap().to_owned();
    let bytes = std::fs::read(original.path().join(&name)).unwrap();
    let last = record_len(&entries[0]) * 2;
    // Every byte past the length field: the checksum and the payload.
    for byte in last + 4..last + record_len(&entries[2]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(&name);
        let mut damaged = bytes.clone();
        damaged[byte] ^= 0x04;
        std::fs::write(&file, &damaged).unwrap();
        match SegmentedLog::open(dir.path(), &options) {
            Err(StorageError::Corrupt(error)) => {
                assert_eq!(error.file, file, "byte {byte}");
                assert_eq!(error.offset as usize, last, "byte {byte}");
                assert!(
                    matches!(error.reason, Corruption::Record(RecordError::Checksum { .. })),
                    "byte {byte}"
                );
                assert!(error.to_string().contains(&format!("byte offset {last}")));
            }
            other => panic!("flipping byte {byte} of the final record gave {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), damaged, "the refused open left the file alone");
        let found = verify(dir.path()).unwrap_err();
        assert_eq!((found.file, found.offset as usize), (file, last));
    }
}

#[test]
fn a_truncated_final_record_is_cut_as_a_torn_tail() {
    let options = Options::default();
    let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1, 5)).collect();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &options, &entries);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 2);
    std::fs::write(&file, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    let torn = report.segments[0].torn_tail.clone().unwrap();
    let kept = record_len(&entries[0]) * 2;
    assert_eq!((torn.offset as usize, torn.bytes as usize), (kept, bytes.len() - kept));
    let log = SegmentedLog::open(dir.path(), &options).unwrap();
    assert_eq!(all_entries(&log), entries[..2]);
    assert_eq!(std::fs::metadata(&file).unwrap().len() as usize, kept);
}

#[test]
fn trailing_zeros_after_the_final_record_are_a_torn_tail() {
    let options = Options::default();
    let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1, 5)).collect();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &options, &entries);
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let records = bytes.len();
    bytes.resize(records + 4096, 0);
    std::fs::write(&file, &bytes).unwrap();
    let torn = verify(dir.path()).unwrap().segments[0].torn_tail.clone().unwrap();
    assert!(torn.zeroed);
    assert_eq!(torn.bytes, 4096);
    let log = SegmentedLog::open(dir.path(), &options).unwrap();
    assert_eq!(all_entries(&log), entries);
    assert_eq!(std::fs::metadata(&file).unwrap().len() as usize, records);
}

#[test]
fn a_gap_between_segments_is_corruption() {
    let options = small_segments(200);
    let entries: Vec<Entry> = (1..=20).map(|i| entry(i, 1, 10)).collect();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &options, &entries);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    std::fs::remove_file(&files[1]).unwrap();
    match SegmentedLog::open(dir.path(), &options) {
        Err(StorageError::Corrupt(error)) => {
            assert_eq!(error.file, files[2]);
            assert!(matches!(error.reason, Corruption::SegmentGap { .. }));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[test]
fn hard_state_snapshot_and_compaction_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments(256);
    let entries: Vec<Entry> = (1..=40).map(|i| entry(i, 2, 12)).collect();
    let hard_state = HardState { term: Term(2), vote: Some(NodeId(3)), commit: Index(30) };
    let snapshot = Snapshot {
        index: Index(25),
        term: Term(2),
        membership: Membership::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
        data: Bytes::from(vec![7u8; 1000]),
    };
    {
        let mut store = FileStore::open(dir.path(), &options).unwrap();
        store.append(&entries).unwrap();
        store.sync().unwrap();
        store.save_hard_state(&hard_state).unwrap();
        assert!(matches!(
            store.compact_prefix(Index(10)),
            Err(StorageError::NotSnapshotted { .. })
        ));
        store.save_snapshot(&Snapshot { index: Index(12), ..snapshot.clone() }).unwrap();
        store.save_snapshot(&snapshot).unwrap();
        store.compact_prefix(Index(25)).unwrap();
    }
    let snapshots = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".snap"))
        .count();
    assert_eq!(snapshots, 1, "the older snapshot is removed once the newer one is durable");

    let store = FileStore::open(dir.path(), &options).unwrap();
    let recovered = store.load().unwrap();
    assert_eq!(recovered.state.hard_state, hard_state);
    assert_eq!(recovered.state.snapshot, Some(snapshot));
    assert_eq!(store.first_index(), Index(26));
    assert_eq!(recovered.state.entries, entries[25..]);
    assert!(matches!(store.entries(Index(25), Index(27)), Err(StorageError::Compacted { .. })));
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.log_range(), Some((Index(26), Index(40))));
    assert!(report.to_string().contains("hard state: term 2, vote node 3, commit 30"));
}

#[test]
fn compaction_past_the_end_continues_the_log_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments(256);
    {
        let mut store = FileStore::open(dir.path(), &options).unwrap();
        store.append(&(1..=5).map(|i| entry(i, 1, 3)).collect::<Vec<_>>()).unwrap();
        store.sync().unwrap();
        let snapshot = common::snapshot(50, 4);
        store.save_snapshot(&snapshot).unwrap();
        store.compact_prefix(Index(50)).unwrap();
        assert_eq!((store.first_index(), store.last_index()), (Index(51), Index(50)));
        assert!(matches!(store.append(&[entry(50, 4, 1)]), Err(StorageError::Compacted { .. })));
        store.append(&[entry(51, 4, 1)]).unwrap();
        store.sync().unwrap();
    }
    let store = FileStore::open(dir.path(), &options).unwrap();
    assert_eq!(store.load().unwrap().state.entries, vec![entry(51, 4, 1)]);
}

#[test]
fn a_corrupt_hard_state_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = FileStore::open(dir.path(), &Options::default()).unwrap();
        store.save_hard_state(&HardState { term: Term(5), vote: None, commit: Index(0) }).unwrap();
    }
    let path = dir.path().join("hard-state");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    match FileStore::open(dir.path(), &Options::default()) {
        Err(StorageError::Corrupt(error)) => assert_eq!(error.file, path),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn leftover_temp_files_are_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = FileStore::open(dir.path(), &Options::default()).unwrap();
        store.save_hard_state(&HardState { term: Term(5), vote: None, commit: Index(0) }).unwrap();
    }
    // A crash in the middle of the next save leaves a half-written temp file.
    std::fs::write(dir.path().join("hard-state.tmp"), b"half a hard st").unwrap();
    assert!(inspect(dir.path()).unwrap().notes.iter().any(|n| n.contains("hard-state.tmp")));
    let store = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(store.hard_state().term, Term(5));
    assert!(!dir.path().join("hard-state.tmp").exists());
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileStore::open(dir.path(), &Options::default()).unwrap();
    assert!(matches!(
        FileStore::open(dir.path(), &Options::default()),
        Err(StorageError::Locked { .. })
    ));
}

#[test]
fn appends_replace_a_conflicting_suffix_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments(150);
    let mut log = SegmentedLog::open(dir.path(), &options).unwrap();
    let old: Vec<Entry> = (1..=20).map(|i| entry(i, 1, 8)).collect();
    log.append(&old).unwrap();
    log.sync().unwrap();
    let new: Vec<Entry> = (6..=8).map(|i| entry(i, 2, 30)).collect();
    log.append(&new).unwrap();
    log.sync().unwrap();
    let mut expected = old[..5].to_vec();
    expected.extend(new);
    assert_eq!(all_entries(&log), expected);
    drop(log);
    let log = SegmentedLog::open(dir.path(), &options).unwrap();
    assert_eq!(all_entries(&log), expected);
    assert!(matches!(log.entries(Index(1), Index(10)), Err(StorageError::Unavailable { .. })));
}

#[test]
fn malformed_batches_are_refused_without_changing_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = SegmentedLog::open(dir.path(), &Options::default()).unwrap();
    log.append(&[entry(1, 1, 0)]).unwrap();
    assert!(matches!(log.append(&[entry(3, 1, 0)]), Err(StorageError::Gap { .. })));
    assert!(matches!(
        log.append(&[entry(2, 1, 0), entry(4, 1, 0)]),
        Err(StorageError::NotContiguous { .. })
    ));
    assert!(matches!(log.append(&[entry(0, 1, 0)]), Err(StorageError::Compacted { .. })));
    assert_eq!(all_entries(&log), vec![entry(1, 1, 0)]);
    assert!(!log.is_failed(), "refusals are operating errors, not failures");
}

#[test]
fn the_report_lists_segments_hard_state_snapshots_and_tails() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments(300);
    {
        let mut store = FileStore::open(dir.path(), &options).unwrap();
        store.append(&(1..=20).map(|i| entry(i, 1, 10)).collect::<Vec<_>>()).unwrap();
        store.sync().unwrap();
        store.save_hard_state(&HardState { term: Term(1), vote: None, commit: Index(18) }).unwrap();
        let snapshot = common::snapshot(8, 1);
        store.save_snapshot(&snapshot).unwrap();
        store.compact_prefix(Index(8)).unwrap();
    }
    // A torn record at the end, as a crash mid-write leaves it.
    let last = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[30, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&last, bytes).unwrap();

    let report = verify(dir.path()).unwrap();
    let text = report.to_string();
    println!("{text}");
    assert_eq!(report.log_range(), Some((Index(9), Index(20))));
    assert!(text.contains("log: indexes 9..=20 (12 entries)"), "{text}");
    assert!(text.contains("torn tail: 7 bytes"), "{text}");
    assert!(text.contains("hard state: term 1, vote none, commit 18"), "{text}");
    assert!(text.contains("snapshot: index 8, term 1, voters [1, 2, 3]"), "{text}");
    // A torn record fails its check too: the verdict names the tail, never "every checksum holds".
    assert!(text.contains("verified: no corruption; log-00000000000000000015.seg ends in a torn write: 7 bytes at offset 240 will be cut on next open"), "{text}");
    assert!(!text.contains("every checksum holds"), "{text}");
}
