//! `conclave wal inspect|verify` on real store directories, healthy and corrupted.

use std::process::{Command, Output};

use bytes::Bytes;
use conclave_core::{Entry, HardState, Index, NodeId, Term};
use conclave_storage::{FileStore, LogStore, Options};

fn conclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave")).args(args).output().expect("the binary runs")
}

fn store_with_entries(dir: &std::path::Path, count: u64) {
    let mut store = FileStore::open(dir, &Options::default()).unwrap();
    let entries: Vec<Entry> = (1..=count)
        .map(|i| Entry::command(Index(i), Term(1), Bytes::from(format!("value-{i}"))))
        .collect();
    store.append(&entries).unwrap();
    store.sync().unwrap();
    store
        .save_hard_state(&HardState { term: Term(1), vote: Some(NodeId(1)), commit: Index(count) })
        .unwrap();
}

#[test]
fn inspect_and_verify_a_healthy_store() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 50);
    let out = conclave(&["wal", "inspect", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("50"), "the report should show the 50 entries:\n{text}");
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("verify: ok"));
}

#[test]
fn verify_fails_on_a_flipped_bit_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 50);
    let segment = segment_of(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    // A byte inside the first record's payload: corruption before the tail, not a torn write.
    bytes[12] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("CORRUPT") && err.contains(name), "{err}");
}

fn segment_of(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment file")
}

/// A flipped bit in the newest record is bit rot in an acknowledged write, not a torn one.
#[test]
fn verify_fails_on_a_flipped_bit_in_the_last_record_and_names_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 3);
    let segment = segment_of(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    // Records 1..=3 hold "value-N": 25 header bytes plus 7 data bytes each.
    let last = 2 * 32;
    assert_eq!(bytes.len(), last + 32);
    let end = bytes.len();
    bytes[end - 1] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("CORRUPT") && err.contains(name), "{err}");
    assert!(err.contains(&format!("byte offset {last}")), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("no corruption"), "{stdout}");
}

#[test]
fn verify_reports_a_torn_tail_and_the_bytes_to_cut() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 3);
    let segment = segment_of(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&segment, bytes).unwrap();
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The last record (32 bytes, at offset 64) lost 5 bytes: 27 remain to cut.
    assert!(stdout.contains("torn tail of 27 bytes at offset 64"), "{stdout}");
    assert!(stdout.contains("27 bytes at offset 64 will be cut on next open"), "{stdout}");
    assert!(!stdout.contains("every checksum holds"), "{stdout}");
}

#[test]
fn inspect_of_a_missing_directory_is_a_clear_error() {
    let out = conclave(&["wal", "inspect", "/nonexistent/conclave-wal"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/conclave-wal"));
}

/// The directory `conclave up` prints holds `node-N` directories, not a log: verify checks every
/// node's log beneath it and reports each.
#[test]
fn verify_of_a_cluster_directory_checks_every_node() {
    let dir = tempfile::tempdir().unwrap();
    for node in ["node-1", "node-2"] {
        std::fs::create_dir(dir.path().join(node)).unwrap();
    }
    store_with_entries(&dir.path().join("node-1"), 20);
    store_with_entries(&dir.path().join("node-2"), 30);
    std::fs::write(dir.path().join("ports"), "127.0.0.1:1 127.0.0.1:2 127.0.0.1:3\n").unwrap();
    std::fs::write(dir.path().join("node-1.log"), "INFO started\n").unwrap();
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("node-1") && stdout.contains("node-2"), "{stdout}");
    assert!(stdout.contains("20 entries") && stdout.contains("30 entries"), "{stdout}");
    assert!(stdout.contains("verified 2 logs: 2 ok, 0 corrupt"), "{stdout}");

    // One node's corruption fails the whole verification and names that node's file.
    let node2 = dir.path().join("node-2");
    let segment = segment_of(&node2);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[12] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let out = conclave(&["wal", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CORRUPT") && err.contains("node-2"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 ok, 1 corrupt"));
}

/// A directory with no log anywhere is an error, never "ok".
#[test]
fn verify_refuses_a_directory_without_a_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("node-1")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a log\n").unwrap();
    for command in ["verify", "inspect"] {
        let out = conclave(&["wal", command, dir.path().to_str().unwrap()]);
        assert!(!out.status.success(), "{command} succeeded on an empty directory");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("verify: ok"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("holds no write-ahead log"), "{command}: {err}");
    }
}
