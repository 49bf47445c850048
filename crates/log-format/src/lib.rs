//! The write-ahead log's record format, and nothing else: how one log entry becomes bytes on disk
//! and how bytes read back are checked (crates/storage/FORMAT.md describes the layout).
//!
//! A record is `[length u32 LE][crc32c u32 LE of payload][payload]`, payload =
//! `[index u64 LE][term u64 LE][kind u8][data]`.
//!
//! Pure on purpose: no files, no clock, no logging. The storage crate (`conclave-storage`) frames
//! its segments with it, and the deterministic simulator (`conclave-sim`), which may not do IO,
//! builds its disk's torn records with it, so both agree on the bytes by construction rather
//! than by a copied constant.
//!
//! ```
//! use bytes::Bytes;
//! use conclave_core::{Entry, Index, Term};
//! use conclave_log_format::{check_record, decode_checked, encode, record_len};
//!
//! let entry = Entry::command(Index(7), Term(2), Bytes::from_static(b"x=1"));
//! let mut bytes = Vec::new();
//! encode(&entry, &mut bytes).unwrap();
//! assert_eq!(bytes.len(), record_len(&entry));
//! let (decoded, len) = decode_checked(&Bytes::from(bytes.clone()), Index(7)).unwrap();
//! assert_eq!((decoded, len), (entry, bytes.len()));
//! // A record cut short anywhere (a torn write) never checks.
//! assert!(check_record(&bytes[..bytes.len() - 1], Index(7)).is_err());
//! ```
#![deny(missing_docs)]

use bytes::Bytes;
use conclave_core::{Entry, EntryKind, Index, Term};
use thiserror::Error;

/// Bytes before the payload: length and checksum.
pub const FRAME_HEADER_BYTES: usize = 8;
/// The payload's fixed part: index, term, kind.
pub const PAYLOAD_HEADER_BYTES: usize = 17;
/// The smallest possible record (an entry with no data).
pub const RECORD_BYTES_MIN: usize = FRAME_HEADER_BYTES + PAYLOAD_HEADER_BYTES;
/// The largest payload the `u32` length field can describe.
pub const PAYLOAD_BYTES_MAX: u64 = u32::MAX as u64;

const KIND_NOOP: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_CONFIG: u8 = 2;

/// What is wrong with the bytes where a record should be. A scan decides from the variant and
/// the position whether they are a torn tail or corruption (the storage crate's recovery).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Fewer bytes remain than a record header needs.
    #[error("{remaining} bytes left, too few for a record header")]
    ShortHeader {
        /// The bytes that remain.
        remaining: u64,
    },
    /// The length field is smaller than a payload header or larger than what follows.
    #[error("record length {length} is impossible here ({remaining} bytes follow the header)")]
    Length {
        /// The length field's value.
        length: u32,
        /// The bytes after the header.
        remaining: u64,
    },
    /// The payload does not match its checksum.
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload as read.
        computed: u32,
    },
    /// A valid record holds another index than the one that belongs here.
    #[error("record holds index {found} where index {expected} belongs")]
    UnexpectedIndex {
        /// The index that belongs here.
        expected: Index,
        /// The index the record holds.
        found: Index,
    },
    /// A valid record's kind byte names no entry kind.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
}

/// An entry whose payload the record's `u32` length field cannot describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("entry of {size} bytes exceeds the record limit of {limit}")]
pub struct EntryTooLarge {
    /// The payload's size.
    pub size: u64,
    /// The largest payload a record holds.
    pub limit: u64,
}

/// The size of `entry`'s record on disk.
pub fn record_len(entry: &Entry) -> usize {
    RECORD_BYTES_MIN + entry.data.len()
}

/// Appends `entry`'s record to `out`, or refuses an entry whose payload the length field cannot
/// describe (leaving `out` as it was).
pub fn encode(entry: &Entry, out: &mut Vec<u8>) -> Result<(), EntryTooLarge> {
    let payload_len = (PAYLOAD_HEADER_BYTES + entry.data.len()) as u64;
    if payload_len > PAYLOAD_BYTES_MAX {
        return Err(EntryTooLarge { size: payload_len, limit: PAYLOAD_BYTES_MAX });
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

/// The little-endian `u32` at byte `at` of `buf`. Panics if `buf` is too short: callers check
/// lengths first.
pub fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The little-endian `u64` at byte `at` of `buf`; panics like [`u32_at`].
pub fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(word)
}

/// True when `byte` is a kind byte some entry kind is written as: a cheap filter for scans that
/// look for a record start before paying for its checksum.
pub fn is_kind_byte(byte: u8) -> bool {
    matches!(byte, KIND_NOOP | KIND_COMMAND | KIND_CONFIG)
}

/// Checks the frame at the start of `buf` (enough bytes, a possible length, a matching checksum)
/// and returns its payload. The payload's meaning is checked by [`check_record`].
pub fn check_frame(buf: &[u8]) -> Result<&[u8], RecordError> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Err(RecordError::ShortHeader { remaining: buf.len() as u64 });
    }
    let length = u32_at(buf, 0);
    let remaining = (buf.len() - FRAME_HEADER_BYTES) as u64;
    if (length as usize) < PAYLOAD_HEADER_BYTES || u64::from(length) > remaining {
        return Err(RecordError::Length { length, remaining });
    }
    let payload = &buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + length as usize];
    let stored = u32_at(buf, 4);
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok(payload)
}

fn kind_of(byte: u8) -> Result<EntryKind, RecordError> {
    match byte {
        KIND_NOOP => Ok(EntryKind::Noop),
        KIND_COMMAND => Ok(EntryKind::Command),
        KIND_CONFIG => Ok(EntryKind::Config),
        other => Err(RecordError::UnknownKind(other)),
    }
}

/// Checks the record at the start of `buf` and that it holds `expected`; returns its length.
pub fn check_record(buf: &[u8], expected: Index) -> Result<usize, RecordError> {
    let payload = check_frame(buf)?;
    let found = Index(u64_at(payload, 0));
    if found != expected {
        return Err(RecordError::UnexpectedIndex { expected, found });
    }
    kind_of(payload[16])?;
    Ok(FRAME_HEADER_BYTES + payload.len())
}

/// Decodes the record at the start of `buf`, which must hold `expected`, verifying everything
/// again (bytes read back later may have rotted since recovery checked them). `data` shares
/// `buf`'s allocation.
pub fn decode_checked(buf: &Bytes, expected: Index) -> Result<(Entry, usize), RecordError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, data: &str) -> Entry {
        Entry::command(Index(index), Term(index / 3 + 1), Bytes::from(data.to_owned()))
    }

    #[test]
    fn every_kind_round_trips_and_sizes_match() {
        let members = conclave_core::Membership::new([conclave_core::NodeId(1)]);
        let entries = [
            entry(7, "abc"),
            Entry::noop(Index(8), Term(2)),
            Entry::config(Index(9), Term(2), &members),
        ];
        let mut out = Vec::new();
        for e in &entries {
            encode(e, &mut out).unwrap();
        }
        let mut bytes = Bytes::from(out);
        for e in &entries {
            let (decoded, len) = decode_checked(&bytes, e.index).unwrap();
            assert_eq!((&decoded, len), (e, record_len(e)));
            bytes = bytes.slice(len..);
        }
        assert!(bytes.is_empty());
    }

    #[test]
    fn a_record_cut_at_any_byte_never_checks() {
        let mut out = Vec::new();
        encode(&entry(1, "hello"), &mut out).unwrap();
        for cut in 0..out.len() {
            assert!(check_record(&out[..cut], Index(1)).is_err(), "cut at {cut}");
        }
        assert_eq!(check_record(&out, Index(1)), Ok(out.len()));
    }

    #[test]
    fn a_flipped_bit_the_wrong_index_and_an_unknown_kind_are_named() {
        let mut out = Vec::new();
        encode(&entry(4, "x"), &mut out).unwrap();
        assert_eq!(
            check_record(&out, Index(5)),
            Err(RecordError::UnexpectedIndex { expected: Index(5), found: Index(4) })
        );
        let mut flipped = out.clone();
        flipped[FRAME_HEADER_BYTES + 2] ^= 1;
        assert!(matches!(check_record(&flipped, Index(4)), Err(RecordError::Checksum { .. })));
        let mut unknown = out.clone();
        unknown[FRAME_HEADER_BYTES + 16] = 9;
        let crc = crc32c::crc32c(&unknown[FRAME_HEADER_BYTES..]);
        unknown[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_record(&unknown, Index(4)), Err(RecordError::UnknownKind(9)));
        assert!(is_kind_byte(1) && !is_kind_byte(9));
    }
}
