//! The write-ahead log: the record codec alone, and the recovery of a whole data directory
//! (segments, hard state, log start, snapshot) from arbitrary files.

use std::path::Path;

use bytes::Bytes;
use conclave_core::{Entry, HardState, Index, Membership, NodeId, Snapshot, Term};
use conclave_log_format::{decode_checked, encode, record_len};
use conclave_storage::{inspect, verify, FileStore, LogStore, Options};

use crate::input::{records, sealed, split, unrecord};

/// Decodes the records of a segment from `data[1..]`, expecting indexes 1, 2, 3, ... Each record
/// that decodes must encode to exactly its bytes. When `data[0]` is odd the rest is taken as
/// `len:u8 payload` pieces and framed with valid lengths and checksums first.
pub fn wal_record(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let segment = Bytes::from(if mode & 1 == 1 { records(rest) } else { rest.to_vec() });
    let mut at = 0;
    let mut expected = Index(1);
    while let Ok((entry, len)) = decode_checked(&segment.slice(at..), expected) {
        assert_eq!(len, record_len(&entry));
        let mut again = Vec::new();
        encode(&entry, &mut again).expect("a decoded entry fits in a record");
        assert_eq!(again, segment[at..at + len], "{entry:?} encodes to other bytes");
        at += len;
        expected = Index(expected.0 + 1);
    }
}

/// The files of a data directory in one input: a header, then the parts separated by `#CUT#`.
///
/// ```text
/// flags:u8  first_segment:u8  second_segment:u8  snapshot_index:u8  snapshot_term:u8
/// segment_1 #CUT# segment_2 #CUT# hard_state #CUT# log_start #CUT# snapshot
/// ```
///
/// The first segment starts at index `1 + first_segment`, the second `second_segment` later. Flag bits: 1, the
/// segments are `len:u8 payload` pieces to frame as valid records; 2, the checksums of the other
/// files are filled in; 4, 8, 16, 32, the second segment, hard state, log start and snapshot
/// files exist.
const FRAME_RECORDS: u8 = 1;
const SEAL_FILES: u8 = 2;
const PRESENT_SECOND_SEGMENT: u8 = 4;
const PRESENT_HARD_STATE: u8 = 8;
const PRESENT_LOG_START: u8 = 16;
const PRESENT_SNAPSHOT: u8 = 32;

/// Writes the files `data` describes into an empty directory and opens it as a node does on
/// restart. Recovery must never panic. When it succeeds, the directory must open again to the
/// same state, and an entry appended and synced after recovery must be there after the next
/// restart: recovery never leaves a log that loses acknowledged writes.
pub fn wal_recovery(data: &[u8]) {
    let Some(files) = files(data) else { return };
    let dir = scratch_dir();
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).expect("the scratch directory is writable");
    }
    // The read-only reports must not panic either; what they say is checked by the storage tests.
    let _ = inspect(dir.path());
    let _ = verify(dir.path());
    check_recovery(dir.path());
}

/// The names and contents of the files `data` describes.
fn files(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let [flags, first, second, snapshot_index, snapshot_term, rest @ ..] = data else {
        return None;
    };
    let parts = split(rest, 5);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let segment = |b: &[u8]| if flags & FRAME_RECORDS != 0 { records(b) } else { b.to_vec() };
    let file = |b: &[u8]| if flags & SEAL_FILES != 0 { sealed(b) } else { b.to_vec() };
    let first = 1 + u64::from(*first);
    let mut files = vec![(segment_name(first), segment(part(0)))];
    if flags & PRESENT_SECOND_SEGMENT != 0 {
        files.push((segment_name(first + u64::from(*second)), segment(part(1))));
    }
    if flags & PRESENT_HARD_STATE != 0 {
        files.push(("hard-state".to_owned(), file(part(2))));
    }
    if flags & PRESENT_LOG_START != 0 {
        files.push(("log-start".to_owned(), file(part(3))));
    }
    if flags & PRESENT_SNAPSHOT != 0 {
        let name = format!("snapshot-{snapshot_index:020}-{snapshot_term:020}.snap");
        files.push((name, file(part(4))));
    }
    Some(files)
}

fn check_recovery(dir: &Path) {
    let Ok(store) = FileStore::open(dir, &options()) else { return };
    let Ok(recovered) = store.load() else { return };
    drop(store);
    let mut store = FileStore::open(dir, &options()).expect("a recovered directory opens again");
    let again = store.load().expect("a recovered directory loads again");
    assert_eq!(again.state, recovered.state, "a second recovery sees another state");
    let next = Index(store.last_index().0 + 1);
    let state = &recovered.state;
    let term = state.entries.last().map(|e| e.term).or(state.snapshot.as_ref().map(|s| s.term));
    let term = term.unwrap_or(Term(1));
    let acknowledged = Entry::command(next, term, Bytes::from_static(b"acknowledged"));
    store.append(std::slice::from_ref(&acknowledged)).expect("append after recovery");
    store.sync().expect("sync after recovery");
    drop(store);
    let store = FileStore::open(dir, &options()).expect("the directory opens after an append");
    let entries = store.entries(next, Index(next.0 + 1)).expect("the acknowledged entry reads");
    assert_eq!(entries, [acknowledged], "an acknowledged write is lost at the next restart");
}

/// Small segments, so that appends roll over to new ones; little preallocation, so each run is
/// cheap.
fn options() -> Options {
    Options { segment_bytes_max: 4096, segment_preallocate_bytes: 512, ..Options::default() }
}

fn segment_name(first: u64) -> String {
    format!("log-{first:020}.seg")
}

/// A fresh directory, in memory when the machine has a tmpfs at `/dev/shm`.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    dir.expect("a scratch directory can be created")
}

pub(crate) fn record_seeds() -> Vec<Vec<u8>> {
    let members = Membership::new([NodeId(1), NodeId(2)]);
    let entries = [
        Entry::command(Index(1), Term(1), Bytes::from_static(b"set x 1")),
        Entry::noop(Index(2), Term(2)),
        Entry::config(Index(3), Term(2), &members),
    ];
    let mut wal = Vec::new();
    for entry in &entries {
        encode(entry, &mut wal).expect("small entries fit");
    }
    let mut raw = vec![0];
    raw.extend_from_slice(&wal);
    let mut shaped = vec![1];
    shaped.extend_from_slice(&unrecord(&wal));
    vec![raw, shaped]
}

/// A directory a store really wrote (entries in two segments, a hard state, a snapshot and a
/// compacted log start), in the target's input shape.
pub(crate) fn recovery_seeds() -> Vec<Vec<u8>> {
    let dir = scratch_dir();
    let options = Options { segment_bytes_max: 96, ..options() };
    let mut store = FileStore::open(dir.path(), &options).expect("a fresh store opens");
    let entries: Vec<Entry> = (1..=6)
        .map(|i| Entry::command(Index(i), Term(1 + i / 3), Bytes::from(format!("set k{i} v"))))
        .collect();
    store.append(&entries).expect("append");
    store.sync().expect("sync");
    let hard_state = HardState { term: Term(3), vote: Some(NodeId(1)), commit: Index(5) };
    store.save_hard_state(&hard_state).expect("hard state");
    let members = Membership::new([NodeId(1)]);
    let snapshot =
        Snapshot { index: Index(2), term: Term(1), membership: members, data: "image".into() };
    store.save_snapshot(&snapshot).expect("snapshot");
    store.compact_prefix(Index(2)).expect("compaction");
    drop(store);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("the directory lists")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap_or_default();
    let segments: Vec<&String> = names.iter().filter(|n| n.starts_with("log-0")).collect();
    assert!(segments.len() == 2, "the seed should have two segments: {segments:?}");
    let first_of = |name: &str| name[4..24].parse::<u64>().expect("a segment name");
    let (first, second) = (first_of(segments[0]), first_of(segments[1]));
    let snapshot_name = names.iter().find(|n| n.starts_with("snapshot-")).expect("a snapshot");
    let flags = PRESENT_SECOND_SEGMENT | PRESENT_HARD_STATE | PRESENT_LOG_START | PRESENT_SNAPSHOT;
    let header = [flags, (first - 1) as u8, (second - first) as u8, 2, 1];
    let parts = [segments[0], segments[1], "hard-state", "log-start", snapshot_name].map(read);
    let seed = [&header[..], &parts.join(crate::input::SEPARATOR)].concat();
    let mut plain = vec![FRAME_RECORDS, 0, 0, 0, 0];
    for entry in &entries[..3] {
        let mut record = Vec::new();
        encode(entry, &mut record).expect("small entries fit");
        plain.extend_from_slice(&unrecord(&record));
    }
    vec![seed, plain]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the files of a `wal_recovery` input and recovers them.
    fn recover(input: &[u8]) -> conclave_storage::Recovered {
        let dir = scratch_dir();
        for (name, bytes) in files(input).expect("a whole header") {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        FileStore::open(dir.path(), &options()).unwrap().load().unwrap()
    }

    #[test]
    fn the_seeds_are_directories_that_recover() {
        let seeds = recovery_seeds();
        let state = recover(&seeds[0]).state;
        assert_eq!(state.snapshot.map(|s| s.index), Some(Index(2)));
        assert_eq!(state.hard_state.commit, Index(5));
        assert_eq!(state.entries.last().map(|e| e.index), Some(Index(6)));
        assert_eq!(recover(&seeds[1]).state, recover(&seeds[1]).state);
        let shaped = recover(&seeds[1]).state.entries;
        assert_eq!(shaped.iter().map(|e| e.index.0).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
