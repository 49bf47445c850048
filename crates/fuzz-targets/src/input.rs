//! Shaping fuzzer input: checksums the fuzzer cannot forge are filled in, so that mutations reach
//! the decoders behind them.

/// Splits `data` at each `SEPARATOR` into at most `parts` pieces (the last one keeps the rest).
pub(crate) fn split(data: &[u8], parts: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(parts);
    let mut rest = data;
    while pieces.len() + 1 < parts {
        let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) else { break };
        pieces.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    pieces.push(rest);
    pieces
}

/// What separates the parts of an input that stands for several files.
pub(crate) const SEPARATOR: &[u8] = b"#CUT#";

/// Turns `len:u8 payload[len]` pieces into WAL records (`length:u32 crc32c:u32 payload`) with
/// correct lengths and checksums.
pub(crate) fn records(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        let payload = &rest[..len];
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        out.extend_from_slice(payload);
        data = &rest[len..];
    }
    out
}

/// The inverse of [`records`] for records of at most 255 payload bytes, to write seeds in the
/// shape the fuzzer mutates.
pub(crate) fn unrecord(mut wal: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while wal.len() >= 8 {
        let len = u32::from_le_bytes([wal[0], wal[1], wal[2], wal[3]]) as usize;
        let Ok(short) = u8::try_from(len) else { break };
        let Some(payload) = wal.get(8..8 + len) else { break };
        out.push(short);
        out.extend_from_slice(payload);
        wal = &wal[8 + len..];
    }
    out
}

/// Replaces the last four bytes of a sealed file (`magic version body crc32c`) with the checksum
/// of the rest.
pub(crate) fn sealed(file: &[u8]) -> Vec<u8> {
    let mut out = file.to_vec();
    if let Some(covered) = out.len().checked_sub(4) {
        let crc = crc32c::crc32c(&out[..covered]);
        out[covered..].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_the_rest_in_the_last_part() {
        assert_eq!(split(b"a#CUT#b#CUT#c", 2), [&b"a"[..], &b"b#CUT#c"[..]]);
        assert_eq!(split(b"abc", 3), [&b"abc"[..]]);
    }

    #[test]
    fn records_and_unrecord_are_inverse() {
        let shaped = [3, b'x', b'y', b'z', 0, 1, b'q'];
        let wal = records(&shaped);
        assert_eq!(wal.len(), 3 * 8 + 4);
        assert_eq!(crc32c::crc32c(b"xyz").to_le_bytes(), wal[4..8]);
        assert_eq!(unrecord(&wal), shaped);
    }
}
