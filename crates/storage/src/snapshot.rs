//! Snapshot files (`snapshot-<index>-<term>.snap`): a [`Snapshot`] (the state machine image and
//! the membership as of a log index), so the log before it can be compacted.

use std::path::Path;

use bytes::Bytes;
use conclave_core::{Index, Membership, NodeId, Snapshot, Term};

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::fs::{self, Io};
use crate::sealed::{self, Reader};

const MAGIC: &[u8; 4] = b"CVSN";
const NAME_PREFIX: &str = "snapshot-";
const NAME_SUFFIX: &str = ".snap";

/// The file name of a snapshot at `index` and `term`, zero-padded so names sort by index.
pub(crate) fn snapshot_name(index: Index, term: Term) -> String {
    format!("{NAME_PREFIX}{:020}-{:020}{NAME_SUFFIX}", index.0, term.0)
}

/// `Some(Ok(index))` for a snapshot file name, `Some(Err)` for one that looks like a snapshot but
/// does not parse, `None` for other files.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<Result<Index, Corruption>> {
    let middle = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    let parsed = middle.split_once('-').and_then(|(index, term)| {
        let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
        (digits(index) && digits(term)).then(|| index.parse::<u64>().ok()).flatten()
    });
    Some(parsed.map(Index).ok_or(Corruption::BadFileName))
}

pub(crate) fn encode(snapshot: &Snapshot) -> Result<Vec<u8>> {
    let m = &snapshot.membership;
    let lists = [&m.voters, &m.outgoing, &m.learners];
    let members: usize = lists.iter().map(|l| l.len()).sum();
    let mut body = Vec::with_capacity(36 + 8 * members + snapshot.data.len());
    body.extend_from_slice(&snapshot.index.0.to_le_bytes());
    body.extend_from_slice(&snapshot.term.0.to_le_bytes());
    for list in lists {
        let count = u32::try_from(list.len()).map_err(|_| StorageError::EntryTooLarge {
            size: list.len() as u64,
            limit: u32::MAX.into(),
        })?;
        body.extend_from_slice(&count.to_le_bytes());
        for id in list {
            body.extend_from_slice(&id.0.to_le_bytes());
        }
    }
    body.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    body.extend_from_slice(&snapshot.data);
    Ok(sealed::seal(MAGIC, &body))
}

/// Decodes a snapshot file's bytes, checking that they agree with the index in its name.
pub(crate) fn decode(bytes: &[u8], path: &Path, named: Index) -> Result<Snapshot, CorruptionError> {
    let corrupt = |reason| CorruptionError::new(path, 0, reason);
    let mut reader = Reader::new(sealed::unseal(MAGIC, bytes).map_err(corrupt)?);
    let index = Index(reader.u64().map_err(corrupt)?);
    let term = Term(reader.u64().map_err(corrupt)?);
    let mut lists: [Vec<NodeId>; 3] = Default::default();
    for list in &mut lists {
        let count = reader.u32().map_err(corrupt)?;
        // Read one at a time rather than trusting the count for an allocation: a corrupt count
        // then fails as a short file instead of asking for gigabytes.
        for _ in 0..count {
            list.push(NodeId(reader.u64().map_err(corrupt)?));
        }
    }
    let [voters, outgoing, learners] = lists;
    let membership = Membership { voters, outgoing, learners };
    let data_len = reader.u64().map_err(corrupt)?;
    let data = Bytes::copy_from_slice(reader.take(data_len).map_err(corrupt)?);
    reader.finish().map_err(corrupt)?;
    if index != named {
        return Err(corrupt(Corruption::NameMismatch { named, found: index }));
    }
    Ok(Snapshot { index, term, membership, data })
}

/// The snapshot files in `dir`, newest (highest index) first, each with its parsed index.
pub(crate) fn list(dir: &Path) -> Result<Vec<(String, Result<Index, Corruption>)>> {
    let mut found: Vec<_> = fs::list_files(dir)?
        .into_iter()
        .filter_map(|name| parse_snapshot_name(&name).map(|parsed| (name, parsed)))
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found)
}

/// Makes `snapshot` durable (temp file, fsync, rename, directory fsync), then removes every older
/// snapshot. The order matters: until the new one is durable the old one is the only copy of the
/// compacted prefix.
pub(crate) fn save(io: &Io, dir: &Path, snapshot: &Snapshot) -> Result<()> {
    let name = snapshot_name(snapshot.index, snapshot.term);
    io.write_atomically(dir, &name, &encode(snapshot)?)?;
    let mut removed = false;
    for (other, parsed) in list(dir)? {
        if other != name && matches!(parsed, Ok(index) if index <= snapshot.index) {
            io.remove_file(&dir.join(&other))?;
            removed = true;
        }
    }
    if removed {
        io.sync_dir(dir)?;
    }
    Ok(())
}

/// The newest valid snapshot, if any, and the corruption found in newer files that were skipped.
/// A skipped file is only harmless if the log still reaches back to the snapshot chosen; the
/// caller checks that.
pub(crate) fn load_newest(dir: &Path) -> Result<(Option<Snapshot>, Vec<CorruptionError>)> {
    let mut skipped = Vec::new();
    for (name, parsed) in list(dir)? {
        let path = dir.join(&name);
        let loaded =
            parsed.map_err(|reason| CorruptionError::new(&path, 0, reason)).and_then(|index| {
                match fs::read_file(&path) {
                    Ok(bytes) => decode(&bytes, &path, index),
                    Err(e) => {
                        Err(CorruptionError::new(&path, 0, Corruption::Unreadable(e.to_string())))
                    }
                }
            });
        match loaded {
            Ok(snapshot) => return Ok((Some(snapshot), skipped)),
            Err(error) => {
                tracing::warn!(%error, "skipping an unusable snapshot; trying an older one");
                skipped.push(error);
            }
        }
    }
    Ok((None, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_parse() {
        let snapshot = Snapshot {
            index: Index(120),
            term: Term(4),
            membership: Membership {
                voters: vec![NodeId(1), NodeId(2), NodeId(4)],
                outgoing: vec![NodeId(1), NodeId(2), NodeId(3)],
                learners: vec![NodeId(9)],
            },
            data: Bytes::from_static(b"state"),
        };
        let bytes = encode(&snapshot).unwrap();
        assert_eq!(decode(&bytes, Path::new("s"), Index(120)).unwrap(), snapshot);
        let empty =
            Snapshot { membership: Membership::default(), data: Bytes::new(), ..snapshot.clone() };
        assert_eq!(decode(&encode(&empty).unwrap(), Path::new("s"), Index(120)).unwrap(), empty);
        let name = snapshot_name(snapshot.index, snapshot.term);
        assert_eq!(parse_snapshot_name(&name), Some(Ok(Index(120))));
        assert_eq!(parse_snapshot_name("snapshot-1-2.snap"), Some(Err(Corruption::BadFileName)));
        assert_eq!(parse_snapshot_name("hard-state"), None);
        assert!(decode(&bytes, Path::new("s"), Index(121)).is_err());
    }
}
