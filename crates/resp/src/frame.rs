//! RESP values and their encoding, in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a connection speaks: RESP2 until the client sends `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// RESP2: nulls are `$-1`, maps are flat arrays, booleans are integers.
    #[default]
    Resp2,
    /// RESP3: the typed replies (null, boolean, double, map, set, ...).
    Resp3,
}

/// One RESP value. RESP3-only types are sent to a RESP2 client in their RESP2 shape (see
/// [`Frame::encode`]), so a server builds one reply for both versions.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status line (no CR or LF inside).
    Simple(Bytes),
    /// `-ERR ...`: an error line (no CR or LF inside).
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$3 foo`: binary-safe bytes.
    Bulk(Bytes),
    /// The absent value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// `*N ...`.
    Array(Vec<Frame>),
    /// RESP3 `#t` / `#f` (RESP2: `:1` / `:0`).
    Boolean(bool),
    /// RESP3 `,3.14` (RESP2: a bulk string).
    Double(f64),
    /// RESP3 `(123...` (RESP2: a bulk string).
    BigNumber(Bytes),
    /// RESP3 `!N` binary-safe error (RESP2: an error line, CR and LF replaced by spaces).
    BulkError(Bytes),
    /// RESP3 `=N txt:...` text with a three-letter format (RESP2: a bulk string of the text).
    Verbatim {
        /// The format, such as `txt` or `mkd`.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// RESP3 `%N` key/value pairs (RESP2: a flat array `k1 v1 k2 v2 ...`).
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N` (RESP2: an array).
    Set(Vec<Frame>),
    /// RESP3 `>N` out-of-band data (RESP2: an array).
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// An error reply; line breaks in `message` become spaces, so the reply stays one line.
    pub fn error(message: impl AsRef<str>) -> Frame {
        let line: String = message
            .as_ref()
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        Frame::Error(Bytes::from(line))
    }

    /// A bulk string.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// Appends this value to `out` as `version` has it.
    pub fn encode(&self, version: Version, out: &mut BytesMut) {
        let resp3 = version == Version::Resp3;
        match self {
            Frame::Simple(line) => line_frame(out, b'+', line),
            Frame::Error(line) => line_frame(out, b'-', line),
            Frame::Integer(n) => {
                out.put_u8(b':');
                put_decimal(out, *n);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(data) => bulk_frame(out, b'$', data),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items, version),
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line_frame(out, b',', text.as_bytes());
                } else {
                    bulk_frame(out, b'$', text.as_bytes());
                }
            }
            Frame::BigNumber(digits) if resp3 => line_frame(out, b'(', digits),
            Frame::BigNumber(digits) => bulk_frame(out, b'$', digits),
            Frame::BulkError(data) if resp3 => bulk_frame(out, b'!', data),
            Frame::BulkError(data) => {
                let line: Vec<u8> = data
                    .iter()
                    .map(|b| if *b == b'\r' || *b == b'\n' { b' ' } else { *b })
                    .collect();
                line_frame(out, b'-', &line);
            }
            Frame::Verbatim { format, text } if resp3 => {
                let mut body = Vec::with_capacity(4 + text.len());
                body.extend_from_slice(format);
                body.push(b':');
                body.extend_from_slice(text);
                bulk_frame(out, b'=', &body);
            }
            Frame::Verbatim { text, .. } => bulk_frame(out, b'$', text),
            Frame::Map(pairs) if resp3 => {
                header(out, b'%', pairs.len());
                for (key, value) in pairs {
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Frame::Map(pairs) => {
                header(out, b'*', pairs.len() * 2);
                for (key, value) in pairs {
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Frame::Set(items) if resp3 => aggregate(out, b'~', items, version),
            Frame::Push(items) if resp3 => aggregate(out, b'>', items, version),
            Frame::Set(items) | Frame::Push(items) => aggregate(out, b'*', items, version),
        }
    }

    /// This value encoded as `version` has it, in a buffer of its own.
    pub fn to_bytes(&self, version: Version) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(version, &mut out);
        out.freeze()
    }
}

fn line_frame(out: &mut BytesMut, tag: u8, line: &[u8]) {
    debug_assert!(!line.contains(&b'\r') && !line.contains(&b'\n'), "a line frame with a break");
    out.put_u8(tag);
    out.put_slice(line);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    put_decimal(out, len as i64);
    out.put_slice(b"\r\n");
}

fn bulk_frame(out: &mut BytesMut, tag: u8, data: &[u8]) {
    header(out, tag, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Frame], version: Version) {
    header(out, tag, items.len());
    for item in items {
        item.encode(version, out);
    }
}

fn put_decimal(out: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[at..]);
}

/// RESP3's spelling of a double: `inf`, `-inf`, `nan`, or the shortest decimal that reads back
/// as the same value.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{d}")
    }
}
