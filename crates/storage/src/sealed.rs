//! The framing shared by the store's small whole-file records (hard state, log start, snapshots):
//! `[magic 4 bytes][version u32 LE][body][crc32c u32 LE of everything before it]`. Such files are
//! only ever replaced atomically (see `Io::write_atomically`), so a bad checksum is corruption,
//! never a torn write.

use crate::error::Corruption;

/// The only format version written so far. A reader refuses any other rather than guess.
pub(crate) const VERSION: u32 = 1;

const HEADER_BYTES: usize = 8;
const TRAILER_BYTES: usize = 4;

/// Frames `body` under `magic`.
pub(crate) fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len() + TRAILER_BYTES);
    out.extend_from_slice(magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the framing and returns the body.
pub(crate) fn unseal<'a>(magic: &[u8; 4], bytes: &'a [u8]) -> Result<&'a [u8], Corruption> {
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
        let expected = (HEADER_BYTES + TRAILER_BYTES) as u64;
        return Err(Corruption::FileSize { expected, found: bytes.len() as u64 });
    }
    if &bytes[..4] != magic {
        return Err(Corruption::BadHeader("wrong magic bytes"));
    }
    let (covered, trailer) = bytes.split_at(bytes.len() - TRAILER_BYTES);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32c::crc32c(covered);
    if stored != computed {
        return Err(Corruption::FileChecksum { stored, computed });
    }
    if u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) != VERSION {
        return Err(Corruption::BadHeader("unsupported format version"));
    }
    Ok(&covered[HEADER_BYTES..])
}

/// A cursor over a body that reports a short body as corruption instead of panicking.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    total: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, total: bytes.len() as u64 }
    }

    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8], Corruption> {
        if len > self.bytes.len() as u64 {
            // `len` comes from the file and may be anything: the sum saturates.
            let expected = (self.total - self.bytes.len() as u64).saturating_add(len);
            return Err(Corruption::FileSize { expected, found: self.total });
        }
        let (head, rest) = self.bytes.split_at(len as usize);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Corruption> {
        let mut word = [0; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Corruption> {
        let mut word = [0; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.take(1)?[0])
    }

    /// Fails if bytes are left over: a body longer than its fields is not one we wrote.
    pub(crate) fn finish(self) -> Result<(), Corruption> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            let expected = self.total - self.bytes.len() as u64;
            Err(Corruption::FileSize { expected, found: self.total })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_every_flipped_bit_is_caught() {
        let sealed = seal(b"TEST", b"body bytes");
        assert_eq!(unseal(b"TEST", &sealed).unwrap(), b"body bytes");
        for byte in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[byte] ^= 0x10;
            assert!(unseal(b"TEST", &bad).is_err(), "flip in byte {byte} went unnoticed");
        }
        assert!(unseal(b"TEST", &sealed[..5]).is_err());
    }

    #[test]
    fn a_forged_length_is_reported_without_overflowing() {
        // Found by fuzzing: a snapshot file whose data length field held nearly 2^64 overflowed
        // the sum that reports how long the file should have been.
        let mut reader = Reader::new(&[1, 2, 3]);
        reader.u8().unwrap();
        assert_eq!(
            reader.take(u64::MAX),
            Err(Corruption::FileSize { expected: u64::MAX, found: 3 })
        );
    }
}
