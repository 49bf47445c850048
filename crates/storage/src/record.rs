//! The log record and the scan that recovery and inspection share, which decides whether bad
//! bytes are a torn tail or corruption (see FORMAT.md). The record's bytes themselves are
//! defined once, in `conclave-log-format`, which the simulator's disk shares.

use std::path::Path;

use bytes::Bytes;
use conclave_core::{Entry, Index};
use conclave_log_format::{check_frame, check_record, is_kind_byte, u32_at, u64_at, RecordError};

pub(crate) use conclave_log_format::{
    record_len, FRAME_HEADER_BYTES, PAYLOAD_BYTES_MAX, PAYLOAD_HEADER_BYTES, RECORD_BYTES_MIN,
};

use crate::error::{Corruption, CorruptionError, Result, StorageError};

/// Appends `entry`'s record to `out`, or refuses an entry whose payload the length field cannot
/// describe.
pub(crate) fn encode(entry: &Entry, out: &mut Vec<u8>) -> Result<()> {
    conclave_log_format::encode(entry, out).map_err(|too_large| StorageError::EntryTooLarge {
        size: too_large.size,
        limit: too_large.limit,
    })
}

/// Decodes the record at the start of `buf`, which must hold `expected`, verifying everything
/// again (bytes read back later may have rotted since recovery checked them). `data` shares
/// `buf`'s allocation.
pub(crate) fn decode_checked(buf: &Bytes, expected: Index) -> Result<(Entry, usize), Corruption> {
    conclave_log_format::decode_checked(buf, expected).map_err(Corruption::from)
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
/// last segment, no valid record follows it anywhere in the file, and it is short (its header or
/// payload runs past the end of the file, which covers zero-filled tails) or holds a zero sector.
/// A full-length record whose checksum fails is corruption even as the last record: that is a
/// flipped bit in an acknowledged write, not a crash. A bad record anywhere else is corruption,
/// reported with the file and offset. A record with a valid checksum but the wrong index or an
/// unknown kind is always corruption.
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
        let reason = match check_record(&bytes[position..], expected).map_err(Corruption::from) {
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
        let always_corrupt = match reason {
            Corruption::Record(
                RecordError::UnexpectedIndex { .. } | RecordError::UnknownKind(_),
            ) => true,
            // The whole record is in the file: a torn write only if part of it never reached
            // the disk, which leaves a zero sector where its bytes should be.
            Corruption::Record(RecordError::Checksum { .. }) => !has_zero_sector(bytes, position),
            _ => false,
        };
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

/// The unit a disk writes atomically, at the least: a write torn by a crash leaves whole sectors
/// written or not, and a sector never written in a preallocated file reads back as zeros.
pub(crate) const SECTOR_BYTES: usize = 512;

/// True when the full-length record at `start` has a sector-aligned piece (by file offset) that
/// is all zeros: the mark of a write the crash tore after the header reached the disk (etcd's
/// rule). Without one, a record whose whole length is present but whose checksum fails is
/// corruption, not a torn write.
fn has_zero_sector(bytes: &[u8], start: usize) -> bool {
    if bytes.len() - start < FRAME_HEADER_BYTES {
        return false;
    }
    let end = (start + FRAME_HEADER_BYTES + u32_at(bytes, start) as usize).min(bytes.len());
    let mut at = start;
    while at < end {
        let next = ((at / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
        if bytes[at..next].iter().all(|b| *b == 0) {
            return true;
        }
        at = next;
    }
    false
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
            && is_kind_byte(kind)
            && check_frame(&bytes[at..]).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::Term;

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
        assert!(matches!(error.reason, Corruption::Record(RecordError::Checksum { .. })));
    }

    #[test]
    fn a_flipped_bit_in_the_final_record_is_corruption() {
        let mut bytes = encoded(&[entry(1, "a"), entry(2, "bcdef")]);
        let last = record_len(&entry(1, "a"));
        let end = bytes.len();
        bytes[end - 2] ^= 0x10;
        let error = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap_err();
        assert_eq!(error.offset, last as u64);
        assert!(matches!(error.reason, Corruption::Record(RecordError::Checksum { .. })));
    }

    #[test]
    fn a_final_record_with_a_zero_sector_is_torn() {
        let big = "x".repeat(2000);
        let mut bytes = encoded(&[entry(1, "a"), entry(2, &big)]);
        let last = record_len(&entry(1, "a"));
        let end = bytes.len();
        // The header and first sectors reached the disk; the last sector did not.
        bytes[1536..end].fill(0);
        let scan = scan_segment(&bytes, Index(1), true, Path::new("s")).unwrap();
        assert_eq!(scan.valid_len, last as u64);
        assert!(!scan.torn.unwrap().zeroed);
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
            Corruption::Record(RecordError::UnexpectedIndex {
                expected: Index(2),
                found: Index(3)
            })
        );
    }
}
