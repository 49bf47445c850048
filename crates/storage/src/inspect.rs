//! Read-only inspection of a store directory: what is in it and whether every checksum holds.
//! Meant for operators (`conclave wal inspect DIR`, `conclave wal verify DIR`); it never changes a
//! byte, takes no lock, and keeps going past the first problem to show them all.

use std::fmt;
use std::path::{Path, PathBuf};

use conclave_core::{HardState, Index, Membership, Term};

use crate::error::{Corruption, CorruptionError, StorageError};
use crate::fs::{self, TEMP_SUFFIX};
use crate::hard_state::{self, HARD_STATE_FILE};
use crate::log_start::{self, LOG_START_FILE};
use crate::record::{self, TornTail};
use crate::segment::parse_segment_name;
use crate::snapshot::{self, parse_snapshot_name};

/// One segment file as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The file name.
    pub file: String,
    /// The index of its first record (from the name).
    pub first_index: Index,
    /// The index of its last valid record; `first_index - 1` when it holds none.
    pub last_index: Index,
    /// Valid records.
    pub records: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// A torn tail that the next open will cut off (only in the last segment).
    pub torn_tail: Option<TornTail>,
    /// True when every entry in it is below the log start: the next open deletes it.
    pub compacted: bool,
}

/// One snapshot file as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The file name.
    pub file: String,
    /// The last log index it includes.
    pub index: Index,
    /// The term of that entry.
    pub term: Term,
    /// The membership as of `index`.
    pub membership: Membership,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// What [`inspect`] found in a store directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The directory inspected.
    pub dir: PathBuf,
    /// The first index not hidden by compaction (1 without a `log-start` file).
    pub log_start: Index,
    /// The segments, in index order.
    pub segments: Vec<SegmentReport>,
    /// The saved hard state, if any.
    pub hard_state: Option<HardState>,
    /// The valid snapshots, newest first.
    pub snapshots: Vec<SnapshotReport>,
    /// Harmless findings: torn tails, leftover temp files, compacted segments awaiting removal.
    pub notes: Vec<String>,
    /// Corruption: each would make an open fail (or, for an older snapshot, is unusable).
    pub problems: Vec<CorruptionError>,
}

impl Report {
    /// The first and last index the log would hold after an open, when it has any entries.
    pub fn log_range(&self) -> Option<(Index, Index)> {
        let last = self.segments.iter().rev().find(|s| !s.compacted)?.last_index;
        (last >= self.log_start).then_some((self.log_start, last))
    }
}

/// Inspects the store in `dir`, verifying every record and file checksum. Fails only when the
/// directory itself cannot be listed; problems inside files are listed in the report.
pub fn inspect(dir: impl AsRef<Path>) -> Result<Report, StorageError> {
    let dir = dir.as_ref();
    let names = fs::list_files(dir)?;
    let mut report = Report {
        dir: dir.to_path_buf(),
        log_start: Index(1),
        segments: Vec::new(),
        hard_state: None,
        snapshots: Vec::new(),
        notes: Vec::new(),
        problems: Vec::new(),
    };
    inspect_small_files(dir, &names, &mut report);
    inspect_segments(dir, &names, &mut report);
    inspect_snapshots(dir, &names, &mut report);
    Ok(report)
}

/// Like [`inspect`], but any corruption is an error (the first one found): the check to run
/// before trusting a directory, or in a backup job.
pub fn verify(dir: impl AsRef<Path>) -> Result<Report, CorruptionError> {
    let dir = dir.as_ref();
    let report = inspect(dir)
        .map_err(|e| CorruptionError::new(dir, 0, Corruption::Unreadable(e.to_string())))?;
    match report.problems.first() {
        Some(problem) => Err(problem.clone()),
        None => Ok(report),
    }
}

fn read_or_note(path: &Path, report: &mut Report) -> Option<Vec<u8>> {
    match fs::read_file(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            let reason = Corruption::Unreadable(e.to_string());
            report.problems.push(CorruptionError::new(path, 0, reason));
            None
        }
    }
}

fn inspect_small_files(dir: &Path, names: &[String], report: &mut Report) {
    for name in names {
        let path = dir.join(name);
        if name.ends_with(TEMP_SUFFIX) {
            report
                .notes
                .push(format!("{name}: leftover of an interrupted write; removed on next open"));
        } else if name == HARD_STATE_FILE {
            if let Some(bytes) = read_or_note(&path, report) {
                match hard_state::decode(&bytes, &path) {
                    Ok(hard_state) => report.hard_state = Some(hard_state),
                    Err(problem) => report.problems.push(problem),
                }
            }
        } else if name == LOG_START_FILE {
            if let Some(bytes) = read_or_note(&path, report) {
                match log_start::decode(&bytes, &path) {
                    Ok(first) => report.log_start = first,
                    Err(problem) => report.problems.push(problem),
                }
            }
        }
    }
}

fn inspect_segments(dir: &Path, names: &[String], report: &mut Report) {
    let mut found = Vec::new();
    for name in names {
        match parse_segment_name(name) {
            Some(Ok(first)) => found.push((first, name.clone())),
            Some(Err(reason)) => {
                report.problems.push(CorruptionError::new(&dir.join(name), 0, reason))
            }
            None => {}
        }
    }
    found.sort();
    let count = found.len();
    let mut next: Option<Index> = None;
    for (position, (first, name)) in found.iter().enumerate() {
        let path = dir.join(name);
        let compacted =
            found.get(position + 1).is_some_and(|(after, _)| *after <= report.log_start);
        if compacted {
            report.notes.push(format!("{name}: wholly compacted; removed on next open"));
        }
        let Some(bytes) = read_or_note(&path, report) else { continue };
        let is_last = position + 1 == count;
        let (scan, corruption) = record::scan_segment_partly(&bytes, *first, is_last, &path);
        let expected = next.unwrap_or_else(|| (*first).min(report.log_start));
        if !compacted && *first != expected {
            let reason = Corruption::SegmentGap { expected, found: *first };
            report.problems.push(CorruptionError::new(&path, 0, reason));
        }
        report.problems.extend(corruption);
        if let Some(torn) = scan.torn.as_ref().filter(|t| t.zeroed) {
            report.notes.push(format!(
                "{name}: zero-filled (preallocated) tail of {} bytes at offset {}; cut on next open",
                torn.bytes, torn.offset
            ));
        } else if let Some(torn) = &scan.torn {
            report.notes.push(format!(
                "{name}: torn tail of {} bytes at offset {} ({}); cut on next open",
                torn.bytes, torn.offset, torn.reason
            ));
        }
        let records = scan.offsets.len() as u64;
        let last_index = Index(first.0 + records).prev();
        if !compacted {
            next = Some(last_index.next());
        }
        report.segments.push(SegmentReport {
            file: name.clone(),
            first_index: *first,
            last_index,
            records,
            bytes: bytes.len() as u64,
            torn_tail: scan.torn,
            compacted,
        });
    }
}

fn inspect_snapshots(dir: &Path, names: &[String], report: &mut Report) {
    for name in names.iter().rev() {
        let path = dir.join(name);
        let named = match parse_snapshot_name(name) {
            None => continue,
            Some(Err(reason)) => {
                report.problems.push(CorruptionError::new(&path, 0, reason));
                continue;
            }
            Some(Ok(index)) => index,
        };
        let Some(bytes) = read_or_note(&path, report) else { continue };
        match snapshot::decode(&bytes, &path, named) {
            Ok(s) => report.snapshots.push(SnapshotReport {
                file: name.clone(),
                index: s.index,
                term: s.term,
                membership: s.membership,
                bytes: bytes.len() as u64,
            }),
            Err(problem) => report.problems.push(problem),
        }
    }
    let covered = report.snapshots.first().map_or(Index(0), |s| s.index);
    if report.log_start > covered.next() {
        let reason = Corruption::MissingEntries { log_first: report.log_start, snapshot: covered };
        report.problems.push(CorruptionError::new(&dir.join(LOG_START_FILE), 0, reason));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store {}", self.dir.display())?;
        match self.log_range() {
            Some((first, last)) => writeln!(
                f,
                "log: indexes {first}..={last} ({} entries) in {} segment file(s)",
                last.0 - first.0 + 1,
                self.segments.len()
            )?,
            None => writeln!(
                f,
                "log: empty, next index {} ({} segment file(s))",
                self.log_start,
                self.segments.len()
            )?,
        }
        if !self.segments.is_empty() {
            writeln!(
                f,
                "  {:<30} {:>12} {:>12} {:>10} {:>12}  status",
                "segment", "first", "last", "records", "bytes"
            )?;
        }
        for s in &self.segments {
            let status = match (&s.torn_tail, s.compacted) {
                (_, true) => "compacted".to_owned(),
                (Some(torn), _) if torn.zeroed => {
                    format!("+{} zero bytes preallocated", torn.bytes)
                }
                (Some(torn), _) => {
                    format!("torn tail: {} bytes at offset {}", torn.bytes, torn.offset)
                }
                (None, false) => "ok".to_owned(),
            };
            writeln!(
                f,
                "  {:<30} {:>12} {:>12} {:>10} {:>12}  {status}",
                // `.0`: the index newtypes' Display ignores width.
                s.file,
                s.first_index.0,
                s.last_index.0,
                s.records,
                s.bytes
            )?;
        }
        match &self.hard_state {
            Some(h) => {
                let vote = h.vote.map_or("none".to_owned(), |v| format!("node {v}"));
                writeln!(f, "hard state: term {}, vote {vote}, commit {}", h.term, h.commit)?;
            }
            None => writeln!(f, "hard state: none saved")?,
        }
        if self.snapshots.is_empty() {
            writeln!(f, "snapshots: none")?;
        }
        for s in &self.snapshots {
            writeln!(
                f,
                "snapshot: index {}, term {}, {}, {} bytes ({})",
                s.index, s.term, s.membership, s.bytes, s.file
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        let torn = self
            .segments
            .iter()
            .find_map(|s| s.torn_tail.as_ref().filter(|t| !t.zeroed).map(|t| (&s.file, t)));
        if let (true, Some((file, torn))) = (self.problems.is_empty(), torn) {
            // A torn tail fails its check too: say so, and what the next open drops.
            writeln!(
                f,
                "verified: no corruption; {file} ends in a torn write: {} bytes at offset {} \
                 will be cut on next open",
                torn.bytes, torn.offset
            )
        } else if self.problems.is_empty() {
            writeln!(f, "verified: every checksum holds, no corruption")
        } else {
            for problem in &self.problems {
                writeln!(f, "CORRUPT: {problem}")?;
            }
            writeln!(f, "{} problem(s): an open of this directory will fail", self.problems.len())
        }
    }
}
