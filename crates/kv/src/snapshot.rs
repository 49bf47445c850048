//! The snapshot image: the whole state in one versioned, checksummed, canonical byte string.
//!
//! ```text
//! image    = magic "CKVS"  version:u8 (= 1)  image_len:u64le  clock:varint  count:varint
//!            entry{count}  checksum:u64le
//! entry    = key_len:varint key  value_len:varint value  deadline:varint
//! ```
//!
//! - `image_len` is the length of the whole image, checksum included: a truncated image is
//!   reported as truncated, not as a checksum failure.
//! - `deadline` is 0 for a key without one. Real deadlines are never 0: every deadline is later
//!   than the clock, which is at least 0.
//! - Entries are in the store's order, by `(hash, key)`; restore insists on it, which also refuses
//!   duplicates. So an image is canonical: two stores with the same state write the same bytes,
//!   and `snapshot(restore(image)) == image`.
//! - `checksum` is 64-bit FNV-1a of every byte before it.

use imbl::{OrdMap, OrdSet};

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::hash::{fnv1a, Slot};
use crate::store::{entry_bytes, Entry, KvStore};
use crate::wire::{put_bytes, put_varint, Reader, WireError};

const MAGIC: &[u8; 4] = b"CKVS";
/// The image version this release writes and reads.
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1 + 8;
const CHECKSUM_LEN: usize = 8;

/// Why an image could not be restored. Each says what is wrong with the image; none is a panic.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// Shorter than any image's header and checksum.
    #[error("the image is {0} bytes, too short to be a key-value snapshot")]
    TooShort(usize),
    /// Not a key-value store image (or its first bytes are damaged).
    #[error("the image does not start with the key-value store's magic bytes")]
    BadMagic,
    /// Written by a release with another image format.
    #[error("the image has version {0}, and this release reads only version {VERSION}")]
    UnsupportedVersion(u8),
    /// Fewer bytes than the header declares: the image was cut short.
    #[error("the image is truncated: its header declares {declared} bytes but it has {actual}")]
    Truncated {
        /// The length the header declares.
        declared: u64,
        /// The length received.
        actual: usize,
    },
    /// More bytes than the header declares: something was appended.
    #[error("the image has {actual} bytes, more than the {declared} its header declares")]
    Oversized {
        /// The length the header declares.
        declared: u64,
        /// The length received.
        actual: usize,
    },
    /// The bytes are not the ones that were written.
    #[error("the image is damaged: its checksum does not match its contents")]
    ChecksumMismatch,
    /// The body does not parse, though the checksum matched: written by a faulty encoder.
    #[error("the image is malformed: {0}")]
    Malformed(#[from] WireError),
    /// Entries out of the store's order, or a key twice.
    #[error("the image's entries are not in strictly increasing (hash, key) order")]
    OutOfOrder,
    /// A key that should already have been deleted by the image's own clock.
    #[error("the image holds a key due at {deadline}, not after its clock {clock}")]
    ExpiredEntry {
        /// The key's deadline.
        deadline: u64,
        /// The image's replicated clock.
        clock: u64,
    },
}

impl KvStore {
    /// A versioned binary image of the whole state (keys, values, deadlines and the replicated
    /// clock), for Raft to compact its log and to send to lagging followers. Canonical: equal
    /// states give equal bytes, so images can be compared across nodes.
    pub fn snapshot(&self) -> Bytes {
        let data_len: usize =
            self.entries.iter().map(|(slot, entry)| slot.key.len() + entry.value.len() + 12).sum();
        let mut out = BytesMut::with_capacity(HEADER_LEN + 20 + data_len + CHECKSUM_LEN);
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        out.put_u64_le(0); // The length, patched below once known.
        put_varint(&mut out, self.clock);
        put_varint(&mut out, self.entries.len() as u64);
        for (slot, entry) in &self.entries {
            put_bytes(&mut out, &slot.key);
            put_bytes(&mut out, &entry.value);
            put_varint(&mut out, entry.deadline.unwrap_or(0));
        }
        let image_len = (out.len() + CHECKSUM_LEN) as u64;
        out[MAGIC.len() + 1..HEADER_LEN].copy_from_slice(&image_len.to_le_bytes());
        let checksum = fnv1a(&out);
        out.put_u64_le(checksum);
        out.freeze()
    }

    /// Rebuilds a store from an image that [`KvStore::snapshot`] wrote, checking everything:
    /// magic, version, length, checksum, structure, order and deadlines. A damaged image is a
    /// [`SnapshotError`] saying what is wrong, never a panic.
    pub fn restore(image: &[u8]) -> Result<KvStore, SnapshotError> {
        let body = check_frame(image)?;
        let mut reader = Reader::new(body);
        let clock = reader.varint("the clock")?;
        // An entry takes at least three bytes: two empty strings' lengths and a deadline.
        let count = reader.count("the entry count", 3)?;
        let mut entries = Vec::with_capacity(count);
        let mut deadlines = Vec::new();
        for _ in 0..count {
            let slot = Slot::new(Bytes::copy_from_slice(reader.bytes("a key")?));
            let value = Bytes::copy_from_slice(reader.bytes("a value")?);
            let deadline = match reader.varint("a deadline")? {
                0 => None,
                deadline if deadline <= clock => {
                    return Err(SnapshotError::ExpiredEntry { deadline, clock })
                }
                deadline => Some(deadline),
            };
            if entries.last().is_some_and(|(previous, _)| *previous >= slot) {
                return Err(SnapshotError::OutOfOrder);
            }
            if let Some(deadline) = deadline {
                deadlines.push((deadline, slot.clone()));
            }
            entries.push((slot, Entry { value, deadline }));
        }
        reader.finish()?;
        // Both collections are built in bulk from sorted (or, for deadlines, sortable) input.
        let data_bytes =
            entries.iter().map(|(slot, entry)| entry_bytes(&slot.key, &entry.value)).sum();
        Ok(KvStore {
            data_bytes,
            entries: OrdMap::from_iter(entries),
            deadlines: OrdSet::from_iter(deadlines),
            clock,
        })
    }
}

/// Checks the header, the length and the checksum; returns the body between header and checksum.
fn check_frame(image: &[u8]) -> Result<&[u8], SnapshotError> {
    if image.len() < HEADER_LEN {
        if !MAGIC.starts_with(&image[..image.len().min(MAGIC.len())]) {
            return Err(SnapshotError::BadMagic);
        }
        return Err(SnapshotError::TooShort(image.len()));
    }
    if &image[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = image[MAGIC.len()];
    if version != VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let mut declared = [0u8; 8];
    declared.copy_from_slice(&image[MAGIC.len() + 1..HEADER_LEN]);
    let declared = u64::from_le_bytes(declared);
    let actual = image.len();
    if (actual as u64) < declared {
        return Err(SnapshotError::Truncated { declared, actual });
    }
    if (actual as u64) > declared {
        return Err(SnapshotError::Oversized { declared, actual });
    }
    if actual < HEADER_LEN + CHECKSUM_LEN {
        return Err(SnapshotError::TooShort(actual));
    }
    let (covered, checksum) = image.split_at(actual - CHECKSUM_LEN);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(checksum);
    if fnv1a(covered) != u64::from_le_bytes(stored) {
        return Err(SnapshotError::ChecksumMismatch);
    }
    Ok(&covered[HEADER_LEN..])
}
