//! The pieces the command encoding and the snapshot image are both made of: LEB128 varints,
//! zigzag-encoded signed varints and length-prefixed byte strings, with every read bounds-checked
//! so that no input, however damaged, can make a read panic or allocate more than it holds.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// Why a run of encoded bytes could not be read. Each variant names the field being read, so the
/// error says where the damage is.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// The input ended inside a field.
    #[error("the input ends in the middle of {0}")]
    Truncated(&'static str),
    /// A varint ran past 64 bits: not something any encoder writes.
    #[error("{0} is a varint of more than 64 bits")]
    VarintTooLong(&'static str),
    /// A varint with needless zero bytes at its end. Every encoding is minimal, which keeps the
    /// snapshot image canonical (one state, one image).
    #[error("{0} is a varint longer than its value needs")]
    VarintNotMinimal(&'static str),
    /// A count claims more items than the remaining bytes could hold; refused before allocating.
    #[error("{what} claims {count} items but only {remaining} bytes follow")]
    CountTooLarge {
        /// The field holding the count.
        what: &'static str,
        /// The count read.
        count: u64,
        /// The bytes left after it.
        remaining: usize,
    },
    /// Bytes remain after the last field.
    #[error("{0} bytes follow the last field")]
    TrailingBytes(usize),
}

/// Appends `value` as an LEB128 varint: 7 bits a byte, low bits first.
pub(crate) fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Appends `value` zigzag-encoded, so that small negative numbers stay short.
pub(crate) fn put_signed(out: &mut BytesMut, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends `data` with its length in front.
pub(crate) fn put_bytes(out: &mut BytesMut, data: &[u8]) {
    put_varint(out, data.len() as u64);
    out.put_slice(data);
}

/// A cursor over encoded bytes. Every read checks the bounds and names the field it reads.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input, at: 0 }
    }

    /// The bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        let byte = *self.input.get(self.at).ok_or(WireError::Truncated(what))?;
        self.at += 1;
        Ok(byte)
    }

    /// An LEB128 varint of at most 64 bits.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds bit 63 only.
            if shift == 63 && bits > 1 {
                return Err(WireError::VarintTooLong(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(WireError::VarintNotMinimal(what));
                }
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong(what))
    }

    /// A zigzag-encoded signed varint.
    pub(crate) fn signed(&mut self, what: &'static str) -> Result<i64, WireError> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A length-prefixed byte string, borrowed from the input.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.varint(what)?;
        if len > self.remaining() as u64 {
            return Err(WireError::Truncated(what));
        }
        let start = self.at;
        self.at += len as usize;
        Ok(&self.input[start..self.at])
    }

    /// A count of items that take at least `item_bytes_min` bytes each, refused if the rest of
    /// the input could not hold that many: the caller may then allocate for `count` safely.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        item_bytes_min: usize,
    ) -> Result<usize, WireError> {
        let count = self.varint(what)?;
        let remaining = self.remaining();
        if count > (remaining / item_bytes_min.max(1)) as u64 {
            return Err(WireError::CountTooLarge { what, count, remaining });
        }
        Ok(count as usize)
    }

    /// Succeeds only if every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes(extra)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        let mut values = vec![0, 1, 127, 128, 16_383, 16_384, u64::MAX];
        values.extend((0..64).map(|bit| 1u64 << bit));
        for value in values {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.varint("v"), Ok(value));
            assert_eq!(reader.finish(), Ok(()));
        }
        for value in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            let mut out = BytesMut::new();
            put_signed(&mut out, value);
            assert_eq!(Reader::new(&out).signed("v"), Ok(value));
        }
    }

    #[test]
    fn damaged_input_is_refused_with_the_field_named() {
        assert_eq!(Reader::new(&[0x80]).varint("v"), Err(WireError::Truncated("v")));
        assert_eq!(Reader::new(&[0xff; 11]).varint("v"), Err(WireError::VarintTooLong("v")));
        let mut tenth_byte_too_big = [0xff; 10];
        tenth_byte_too_big[9] = 0x02;
        assert_eq!(
            Reader::new(&tenth_byte_too_big).varint("v"),
            Err(WireError::VarintTooLong("v"))
        );
        assert_eq!(Reader::new(&[5, b'a']).bytes("key"), Err(WireError::Truncated("key")));
        assert_eq!(
            Reader::new(&[200, 1, 0, 0]).count("keys", 1),
            Err(WireError::CountTooLarge { what: "keys", count: 200, remaining: 2 })
        );
        assert_eq!(Reader::new(&[1]).finish(), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn an_overlong_varint_is_refused() {
        // Found by fuzzing: `0xff 0x00` read as 127, so a snapshot image holding it restored to a
        // store whose image is other bytes.
        assert_eq!(Reader::new(&[0x7f]).varint("v"), Ok(127));
        assert_eq!(Reader::new(&[0xff, 0x00]).varint("v"), Err(WireError::VarintNotMinimal("v")));
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x00]).varint("v"),
            Err(WireError::VarintNotMinimal("v"))
        );
        assert_eq!(Reader::new(&[0x00]).varint("v"), Ok(0));
    }
}
