//! The snapshot image of a simulated state machine.
//!
//! A simulated node's state machine is its applied sequence: the entries it applied, in order
//! from index 1. Its image (the `data` of a `Snapshot` taken on `Ready::snapshot_due`) is that
//! sequence up to the snapshot index, encoded compactly and deterministically:
//!
//! ```text
//! image = "CSI1"  count:varint  entry{count}
//! entry = (term << 2 | kind):varint  data_len:varint  data[data_len]     kind: 0 noop, 1 command, 2 config
//! ```
//!
//! Entry `k` (from 0) holds index `k + 1`, so indexes are implied rather than stored; varints are
//! LEB128 (7 bits a byte, low bits first). A client command of the workload (`c2-417`) takes 8
//! bytes. Restoring decodes the whole sequence, so a restored node's applied sequence is
//! again complete from index 1, and the checker can compare every restored entry with the global
//! applied sequence (State Machine Safety for restored state).

use bytes::{Bytes, BytesMut};
use conclave_core::{Entry, EntryKind, Index, Term};

const MAGIC: &[u8; 4] = b"CSI1";

/// Encodes `applied` (which must run from index 1 without gaps) as an image.
pub(crate) fn encode(applied: &[Entry]) -> Bytes {
    let data_bytes: usize = applied.iter().map(|entry| entry.data.len()).sum();
    let mut out = BytesMut::with_capacity(MAGIC.len() + 10 + applied.len() * 4 + data_bytes);
    out.extend_from_slice(MAGIC);
    put_varint(&mut out, applied.len() as u64);
    for (position, entry) in applied.iter().enumerate() {
        debug_assert_eq!(entry.index.0, position as u64 + 1, "applied sequence with a gap");
        let kind = match entry.kind {
            EntryKind::Noop => 0,
            EntryKind::Command => 1,
            EntryKind::Config => 2,
        };
        put_varint(&mut out, entry.term.0 << 2 | kind);
        put_varint(&mut out, entry.data.len() as u64);
        out.extend_from_slice(&entry.data);
    }
    out.freeze()
}

/// Decodes an image back into the applied sequence it describes. Entry data shares the image's
/// buffer. Fails (with a sentence saying why) on anything [`encode`] would not produce.
pub(crate) fn decode(image: &Bytes) -> Result<Vec<Entry>, String> {
    if !image.starts_with(MAGIC) {
        return Err("the image does not start with the simulator's magic bytes".to_string());
    }
    let mut at = MAGIC.len();
    let count = take_varint(image, &mut at)?;
    // Every entry takes at least two bytes, which bounds the allocation by the image's size.
    if count > (image.len() - at) as u64 / 2 {
        return Err(format!("the image claims {count} entries in {} bytes", image.len()));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for position in 0..count {
        let word = take_varint(image, &mut at)?;
        let kind = match word & 3 {
            0 => EntryKind::Noop,
            1 => EntryKind::Command,
            2 => EntryKind::Config,
            _ => return Err(format!("entry {} has an unknown kind", position + 1)),
        };
        let len = take_varint(image, &mut at)?;
        if len > (image.len() - at) as u64 {
            return Err(format!("entry {} runs past the end of the image", position + 1));
        }
        let data = image.slice(at..at + len as usize);
        at += len as usize;
        entries.push(Entry { index: Index(position + 1), term: Term(word >> 2), kind, data });
    }
    if at != image.len() {
        return Err(format!("{} bytes follow the last entry of the image", image.len() - at));
    }
    Ok(entries)
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.extend_from_slice(&[(value as u8) | 0x80]);
        value >>= 7;
    }
    out.extend_from_slice(&[value as u8]);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = bytes.get(*at) else {
            return Err("the image ends inside a number".to_string());
        };
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a number in the image is longer than 64 bits".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence() -> Vec<Entry> {
        vec![
            Entry::noop(Index(1), Term(1)),
            Entry::command(Index(2), Term(1), Bytes::from_static(b"c0-0")),
            Entry::command(Index(3), Term(300), Bytes::from(vec![7u8; 200])),
            Entry::command(Index(4), Term(u64::MAX >> 2), Bytes::new()),
        ]
    }

    #[test]
    fn round_trips_and_is_compact() {
        let applied = sequence();
        let image = encode(&applied);
        assert_eq!(decode(&image).unwrap(), applied);
        assert_eq!(encode(&applied), image, "deterministic");
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::new());
        // A workload command: one byte of term and kind, one of length, the data.
        let one = [Entry::command(Index(1), Term(3), Bytes::from_static(b"c2-417"))];
        assert_eq!(encode(&one).len(), 4 + 1 + 1 + 1 + 6);
    }

    #[test]
    fn damaged_images_are_refused_not_misread() {
        let image = encode(&sequence());
        for cut in 0..image.len() {
            assert!(decode(&image.slice(..cut)).is_err(), "a prefix of {cut} bytes decoded");
        }
        let mut longer = image.to_vec();
        longer.push(0);
        assert!(decode(&Bytes::from(longer)).is_err());
        assert!(decode(&Bytes::from_static(b"XXXX\x00")).is_err());
        // A count far beyond what the bytes could hold does not allocate for it.
        assert!(decode(&Bytes::from_static(b"CSI1\xff\xff\xff\xff\x0f")).is_err());
    }
}
