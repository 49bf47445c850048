//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use conclave_core::{Entry, Index, Membership, NodeId, Snapshot, Term};
use conclave_storage::Options;

/// A command entry whose data names its index and term, with `size` bytes of padding so records
/// differ in length.
pub fn entry(index: u64, term: u64, size: usize) -> Entry {
    let mut data = format!("{index}@{term}:").into_bytes();
    data.resize(data.len() + size, b'.');
    Entry::command(Index(index), Term(term), Bytes::from(data))
}

/// Options with tiny segments, so a few entries span several files.
pub fn small_segments(bytes: u64) -> Options {
    Options { segment_bytes_max: bytes, ..Options::default() }
}

/// The segment files in `dir`, in index order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// The record lengths of `entries` as the format lays them out (8-byte frame header, 17-byte
/// payload header, data).
pub fn record_len(entry: &Entry) -> usize {
    25 + entry.data.len()
}

/// A snapshot at `index` and `term` of a three-voter cluster, with a small image naming it.
pub fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index: Index(index),
        term: Term(term),
        membership: Membership::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
        data: Bytes::from(format!("image@{index}")),
    }
}
