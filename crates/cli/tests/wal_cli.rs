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
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment file");
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

#[test]
fn inspect_of_a_missing_directory_is_a_clear_error() {
    let out = conclave(&["wal", "inspect", "/nonexistent/conclave-wal"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/conclave-wal"));
}
