//! The log record: `[length u32 LE][crc32c u32 LE of payload][payload]`, payload =
//! `[index u64 LE][term u64 LE][kind u8][data]`. Also the scan that recovery and inspection share,
//! which decides whether bad bytes are a torn tail or corruption (see FORMAT.md).

use std::path::Path;

use bytes::Bytes;
use conclave_core::{Entry, EntryKind, Index, Term};

use crate::error::{Corruption, CorruptionError, Result, StorageError};

/// Bytes before the payload: length and checksum.
pub(crate) const FRAME_HEADER_BYTES: usize = 8;
/// The payload's fixed part: index, term, kind.
pub(crate) const PAYLOAD_HEADER_BYTES: usize = 17;
/// The smallest possible record (an entry with no data).
pub(crate) const RECORD_BYTES_MIN: usize = FRAME_HEADER_BYTES + PAYLOAD_HEADER_BYTES;
/// The largest payload the `u32` length field can describe.
pub(crate) const PAYLOAD_BYTES_MAX: u64 = u32::MAX as u64;

const KIND_NOOP: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_CONFIG: u8 = 2;

/// The size of `entry`'s record on disk.
pub(crate) fn record_len(entry: &Entry) -> usize {
    RECORD_BYTES_MIN + entry.data.len()
}

/// Appends `entry`'s record to `out`, or refuses an entry whose payload the length field cannot
/// describe.
pub(crate) fn encode(entry: &Entry, out: &mut Vec<u8>) -> Result<()> {
    let payload_len = (PAYLOAD_HEADER_BYTES + entry.data.len()) as u64;
    if payload_len > PAYLOAD_BYTES_MAX {
        return Err(StorageError::EntryTooLarge { size: payload_len, limit: PAYLOAD_BYTES_MAX });
    }
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the checksum, filled in below
    out.extend_from_slice(&entry.index.0.to_le_bytes());
    out.extend_from_slice(&entry.term.0.to_le_bytes());
    out.push(match entry.kind {
        EntryKind::Noop => KIND_NOOP,
        EntryKind::Command => KIND_COMMAND,
        EntryKind::Config => KIND_CONFIG,
    });
    out.extend_from_slice(&entry.data);
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(word)
}

/// A frame whose length and checksum are valid, not yet interpreted.
struct Frame<'a> {
    payload: &'a [u8],
}

impl Frame<'_> {
    fn index(&self) -> Index {
        Index(u64_at(self.payload, 0))
    }

    fn len(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload.len()
    }
}

/// Checks the frame at the start of `buf`: enough bytes, a possible length, a matching checksum.
/// The payload's meaning is checked by [`decode_checked`].
fn check_frame(buf: &[u8]) -> Result<Frame<'_>, Corruption> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Err(Corruption::ShortHeader { remaining: buf.len() as u64 });
    }
    let length = u32_at(buf, 0);
    let remaining = (buf.len() - FRAME_HEADER_BYTES) as u64;
    if (length as usize) < PAYLOAD_HEADER_BYTES || u64::from(length) > remaining {
        return Err(Corruption::Length { length, remaining });
    }
    let payload = &buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + length as usize];
    let stored = u32_at(buf, 4);
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(Corruption::Checksum { stored, computed });
    }
    Ok(Frame { payload })
}

fn kind_of(byte: u8) -> Result<EntryKind, Corruption> {
    match byte {
        KIND_NOOP => Ok(EntryKind::Noop),
        KIND_COMMAND => Ok(EntryKind::Command),
        KIND_CONFIG => Ok(EntryKind::Config),
        other => Err(Corruption::UnknownKind(other)),
    }
}

/// Checks the frame at the start of `buf` and that it holds `expected`; returns its length.
fn check_record(buf: &[u8], expected: Index) -> Result<usize, Corruption> {
    let frame = check_frame(buf)?;
    if frame.index() != expected {
        return Err(Corruption::UnexpectedIndex { expected, found: frame.index() });
    }
    kind_of(frame.payload[16])?;
    Ok(frame.len())
}

/// Decodes the record at the start of `buf`, which must hold `expected`, verifying everything
/// again (bytes read back later may have rotted since recovery checked them). `data` shares
/// `buf`'s allocation.
pub(crate) fn decode_checked(buf: &Bytes, expected: Index) -> Result<(Entry, usize), Corruption> {
    let len = check_record(buf, expected)?;
    let payload = &buf[FRAME_HEADER_BYTES..len];
    let entry = Entry {
        index: expected,
        term: Term(u64_at(payload, 8)),
        kind: kind_of(payload[16])?,
        data: buf.slice(FRAME_HEADER_BYTES + PAYLOAD_HEADER_BYTES..len),
    };
    Ok((entry, len))
}

/// What is wrong with the end of a segment that recovery will cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the first bad record starts; the segment is cut back to this length.
    pub offset: u64,
    /// How many bytes from `offset` to the end of the file are dropped.
    pub bytes: u64,
    /// What was wrong with the first bad record.
    pub reason: Corruption,
    /// True when every dropped byte is zero: preallocated space, or zeros a file system left
    /// after a crash, rather than a partly written record.
    pub zeroed: bool,
}

/// The valid records of one segment.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    /// The byte offset of each valid record, in index order starting at the segment's first
    /// index. A `u32` is enough because segments are rotated before 2 GiB (see `Options`).
    pub(crate) offsets: Vec<u32>,
    /// The length of the valid prefix: everything after it is a torn tail.
    pub(crate) valid_len: u64,
    /// The torn tail to cut, if any. Only ever set for the last segment.
    pub(crate) torn: Option<TornTail>,
}

/// Scans a segment's bytes, whose first record must hold `first_index`.
///
/// The rule (FORMAT.md, "Recovery"): a bad record is a torn tail, and is cut, only if it is in the
/// last segment and no valid record follows it anywhere in the file; zero-filled tails therefore
/// count as torn. A bad record anywhere else is corruption, reported with the file and offset. A
/// record with a valid checksum but the wrong index or an unknown kind is always corruption.
pub(crate) fn scan_segment(
    bytes: &[u8],
    first_index: Index,
    is_last: bool,
    file: &Path,
) -> Result<SegmentScan, CorruptionError> {
    match scan_segment_partly(bytes, first_index, is_last, file) {
        (scan, None) => Ok(scan),
        (_, Some(corruption)) => Err(corruption),
    }
}

/// [`scan_segment`], but also returning the valid records before any corruption, for reports.
pub(crate) fn scan_segment_partly(
    bytes: &[u8],
    first_index: Index,
    is_last: bool,
    file: &Path,
) -> (SegmentScan, Option<CorruptionError>) {
    let mut scan = SegmentScan { offsets: Vec::new(), valid_len: 0, torn: None };
    let mut position = 0usize;
    let mut expected = first_index;
    while position < bytes.len() {
        let reason = match check_record(&bytes[position..], expected) {
            Ok(len) => match u32::try_from(position) {
                Ok(offset) => {
                    scan.offsets.push(offset);
                    position += len;
                    scan.valid_len = position as u64;
                    expected = expected.next();
                    continue;
                }
                // Segments are rotated long before 4 GiB, so a record starting beyond that was
                // not written by this store.
                Err(_) => {
                    let found = bytes.len() as u64;
                    let corruption = Corruption::FileSize { expected: u32::MAX.into(), found };
                    return (scan, Some(CorruptionError::new(file, position as u64, corruption)));
                }
            },
            Err(reason) => reason,
        };
        let always_corrupt =
            matches!(reason, Corruption::UnexpectedIndex { .. } | Corruption::UnknownKind(_));
        if always_corrupt || !is_last || valid_record_after(bytes, position + 1, expected).is_some()
        {
            return (scan, Some(CorruptionError::new(file, position as u64, reason)));
        }
        let dropped = (bytes.len() - position) as u64;
        let zeroed = bytes[position..].iter().all(|b| *b == 0);
        scan.torn = Some(TornTail { offset: position as u64, bytes: dropped, reason, zeroed });
        break;
    }
    (scan, None)
}

/// Looks for any valid record at or after byte `from` that could belong after `expected - 1`
/// (its index is above `expected` and within what the remaining bytes could hold). Finding one
/// means the bad bytes before it are not the end of what was written, so they are corruption,
/// not a torn write. The cheap index and kind checks run before the checksum, so scanning a torn
/// tail (usually short, or zeros) costs little.
fn valid_record_after(bytes: &[u8], from: usize, expected: Index) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_BYTES_MIN)?;
    (from..=last_start).find(|&at| {
        let length = u32_at(bytes, at) as usize;
        if length < PAYLOAD_HEADER_BYTES || length > bytes.len() - at - FRAME_HEADER_BYTES {
            return false;
        }
        let index = u64_at(bytes, at + FRAME_HEADER_BYTES);
        // At most this many records fit between the bad one and `at`.
        let reachable = ((at + 1 - from) / RECORD_BYTES_MIN) as u64;
        let kind = bytes[at + FRAME_HEADER_BYTES + 16];
        index >= expected.0
            && index - expected.0 <= reachable + 1
            && matches!(kind, KIND_NOOP | KIND_COMMAND | KIND_CONFIG)
            && check_frame(&bytes[at..]).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, data: &str) -> Entry {
        Entry::command(Index(index), Term(index / 3 + 1), Bytes::from(data.to_owned()))
    }

    fn encoded(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            encode(e, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn round_trips_and_sizes_match() {
        let entries = [entry(7, "abc"), Entry::noop(Index(8), Term(2))];
        let bytes = Bytes::from(encoded(&entries));
        let (first, len) = decode_checked(&bytes, Index(7)).unwrap();
        assert_eq!(first, entries[0]);
        assert_eq!(len, record_len(&entries[0]));
        let (second, _) = decode_checked(&bytes.slice(len..), Index(8)).unwrap();
        assert_eq!(second, entries[1]);
        let members = conclave_core::Membership::new([conclave_core::NodeId(1)]);
        let config = Entry::config(Index(9), Term(2), &members);
        let bytes = Bytes::from(encoded(std::slice::from_ref(&config)));
        assert_eq!(decode_checked(&bytes, Index(9)).unwrap().0, config);
    }

    #[test]
    fn a_clean_segment_scans_without_a_tail() {
        let entries: Vec<Entry> = (1..=5).map(|i| entry(i, "xyz")).collect();
        let bytes = encoded(&entries);
        let scan = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap();
        assert_eq!(scan.offsets.len(), 5);
        assert_eq!(scan.valid_len, bytes.len() as u64);
        assert!(scan.torn.is_none());
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail() {
        let mut bytes = encoded(&[entry(1, "a"), entry(2, "b")]);
        let valid = bytes.len();
        bytes.resize(valid + 4096, 0);
        let scan = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap();
        assert_eq!(scan.valid_len, valid as u64);
        assert_eq!(scan.torn.unwrap().bytes, 4096);
    }

    #[test]
    fn a_bad_record_with_a_valid_one_after_it_is_corruption() {
        let mut bytes = encoded(&[entry(1, "a"), entry(2, "b"), entry(3, "c")]);
        let second = record_len(&entry(1, "a"));
        bytes[second + 12] ^= 1;
        let error = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap_err();
        assert_eq!(error.offset, second as u64);
        assert!(matches!(error.reason, Corruption::Checksum { .. }));
    }

    #[test]
    fn a_torn_tail_in_a_sealed_segment_is_corruption() {
        let mut bytes = encoded(&[entry(1, "a"), entry(2, "b")]);
        bytes.truncate(bytes.len() - 1);
        assert!(scan_segment(&bytes, Index(1), false, Path::new("s")).is_err());
        assert!(scan_segment(&bytes, Index(1), true, Path::new("s")).is_ok());
    }

    #[test]
    fn a_valid_record_with_the_wrong_index_is_always_corruption() {
        let bytes = encoded(&[entry(1, "a"), entry(3, "b")]);
        let error = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap_err();
        assert_eq!(
            error.reason,
            Corruption::UnexpectedIndex { expected: Index(2), found: Index(3) }
        );
    }
}
