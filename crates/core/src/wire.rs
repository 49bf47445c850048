//! Turning protocol messages into bytes and back, so a real transport can carry them.
//!
//! The simulator passes messages as values; a cluster of processes needs them as bytes. Each
//! protocol owns its encoding (it knows its messages), behind this one trait, so the runtime can
//! drive any protocol over any transport. Decoding faces bytes from the network: it is bounds
//! checked everywhere and answers garbage with a [`DecodeError`], never a panic.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::entry::{Entry, EntryKind};
use crate::ids::{Index, Term};

/// A message that can cross a process boundary.
pub trait WireMessage: Sized {
    /// Appends the message's encoding to `out`.
    fn encode(&self, out: &mut BytesMut);
    /// Decodes one message that fills `bytes` exactly. `bytes` is shared so that payloads (entry
    /// data, snapshot chunks) are sliced out of it rather than copied.
    fn decode(bytes: Bytes) -> Result<Self, DecodeError>;
}

/// Bytes that are not a valid message; the reason names what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A bounds-checked reader over a message's bytes: every getter fails with a [`DecodeError`]
/// instead of panicking when the bytes run out. Protocol codecs build on it.
#[derive(Debug)]
pub struct WireReader {
    bytes: Bytes,
}

impl WireReader {
    /// Reads from `bytes`.
    pub fn new(bytes: Bytes) -> WireReader {
        WireReader { bytes }
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.bytes.remaining() < n {
            return Err(DecodeError("truncated"));
        }
        Ok(())
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.bytes.get_u8())
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.bytes.get_u32_le())
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.bytes.get_u64_le())
    }

    /// A boolean stored as one byte, 0 or 1.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("boolean out of range")),
        }
    }

    /// A u32 length followed by that many bytes, shared with the input.
    pub fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        self.need(len)?;
        Ok(self.bytes.split_to(len))
    }

    /// A u32 count of items that each take at least `min_item_bytes`, checked against what is
    /// left so a forged count cannot make the decoder allocate more than the message holds.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_bytes.max(1)) > self.bytes.remaining() {
            return Err(DecodeError("count exceeds the message"));
        }
        Ok(count)
    }

    /// One log entry, as written by [`put_entry`].
    pub fn entry(&mut self) -> Result<Entry, DecodeError> {
        let index = Index(self.u64()?);
        let term = Term(self.u64()?);
        let kind = match self.u8()? {
            0 => EntryKind::Noop,
            1 => EntryKind::Command,
            2 => EntryKind::Config,
            _ => return Err(DecodeError("unknown entry kind")),
        };
        let data = self.bytes()?;
        Ok(Entry { index, term, kind, data })
    }

    /// Fails unless every byte was consumed: trailing bytes mean the sender and receiver disagree
    /// about the format.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.has_remaining() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(())
    }
}

/// The smallest encoding of an entry (an empty payload), for [`WireReader::count`].
pub const ENTRY_BYTES_MIN: usize = 8 + 8 + 1 + 4;

/// Appends a u32-length-prefixed byte string.
pub fn put_bytes(out: &mut BytesMut, data: &[u8]) {
    out.put_u32_le(data.len() as u32);
    out.put_slice(data);
}

/// Appends one log entry: index, term, kind (0 no-op, 1 command, 2 configuration), data.
pub fn put_entry(out: &mut BytesMut, entry: &Entry) {
    out.put_u64_le(entry.index.0);
    out.put_u64_le(entry.term.0);
    out.put_u8(match entry.kind {
        EntryKind::Noop => 0,
        EntryKind::Command => 1,
        EntryKind::Config => 2,
    });
    put_bytes(out, &entry.data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_an_error() {
        let entry = Entry::command(Index(7), Term(3), Bytes::from_static(b"set x 1"));
        let mut out = BytesMut::new();
        put_entry(&mut out, &entry);
        let bytes = out.freeze();
        let mut reader = WireReader::new(bytes.clone());
        assert_eq!(reader.entry().unwrap(), entry);
        reader.finish().unwrap();
        for cut in 0..bytes.len() {
            assert!(WireReader::new(bytes.slice(..cut)).entry().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn forged_counts_are_refused_before_allocating() {
        let mut out = BytesMut::new();
        out.put_u32_le(u32::MAX);
        assert_eq!(
            WireReader::new(out.freeze()).count(ENTRY_BYTES_MIN),
            Err(DecodeError("count exceeds the message"))
        );
    }
}
