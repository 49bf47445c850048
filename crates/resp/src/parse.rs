//! Incremental, bounded parsing: a client command (a RESP array of bulk strings, or an inline
//! command typed by hand) or any RESP2/RESP3 value (a server's reply).
//!
//! Both parsers look at the bytes received so far and answer `Ok(None)` while a value is
//! incomplete, `Ok(Some((value, consumed)))` once it is whole, or an error that names what is
//! wrong. Every length is checked against [`Limits`] *before* anything is allocated or waited
//! for, so a hostile length cannot make the server reserve memory or wait for gigabytes.

use bytes::Bytes;
use thiserror::Error;

use crate::frame::Frame;

/// Bounds on what a peer may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (Redis's `proto-max-bulk-len` defaults to 512 MiB).
    pub bulk_bytes_max: usize,
    /// Most elements in one array, map, set or push.
    pub elements_max: usize,
    /// Longest inline command line (Redis allows 64 KiB).
    pub inline_bytes_max: usize,
    /// Deepest nesting of aggregates in a reply.
    pub depth_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            bulk_bytes_max: 512 << 20,
            elements_max: 1 << 20,
            inline_bytes_max: 64 << 10,
            depth_max: 64,
        }
    }
}

/// Bytes that are not valid RESP. The connection cannot be resynchronised after one: a server
/// answers with the error (its `Display` is Redis's wording) and closes the connection.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// An array header with a bad or too large count.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// A bulk header with a bad or too large length.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// A command element that is not a bulk string.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// An inline command line longer than the limit.
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// An inline command with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A bulk string not followed by CRLF.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
    /// A reply value of a type this parser does not know, or a malformed one.
    #[error("Protocol error: invalid {0}")]
    Invalid(&'static str),
    /// Aggregates nested deeper than the limit.
    #[error("Protocol error: nesting too deep")]
    TooDeep,
}

/// Parses one client command from the start of `buf`: its arguments (the command name first) and
/// the bytes it took. An empty inline line yields an empty argument list, which a server skips.
///
/// Each call starts over; a server that receives a command in pieces uses [`CommandParser`],
/// which resumes where the previous call stopped.
pub fn parse_command(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    CommandParser::new(*limits).parse(buf)
}

/// A client command parser that remembers how far it got, so that a command arriving in many
/// small pieces costs time linear in its size. Parsing from the start on every piece would cost
/// O(pieces × size): a client sending a large array a byte at a time could make a server burn
/// CPU quadratic in what it sent.
///
/// Contract: between two calls that return `Ok(None)`, `buf` only grows at its end (the bytes
/// already passed stay at the same offsets). After `Ok(Some((args, used)))` the caller drops the
/// first `used` bytes and the next call starts a new command. After an error the parser starts
/// over, but a connection cannot be resynchronised anyway.
#[derive(Clone, Debug)]
pub struct CommandParser {
    limits: Limits,
    progress: Progress,
    examined: u64,
}

/// How much of the current command has been parsed.
#[derive(Clone, Debug, Default)]
enum Progress {
    /// Nothing yet: the first byte decides the shape.
    #[default]
    Start,
    /// An array whose header said `count` elements; `args` are parsed and the next element
    /// starts at `at`.
    Multibulk { count: usize, args: Vec<Bytes>, at: usize },
    /// An inline line of which the first `scanned` bytes hold no newline.
    Inline { scanned: usize },
}

impl CommandParser {
    /// A parser for a new connection.
    pub fn new(limits: Limits) -> CommandParser {
        CommandParser { limits, progress: Progress::Start, examined: 0 }
    }

    /// How many bytes the parser has looked at since it was created, counting a byte again each
    /// time it is looked at again. Linear parsing means this stays within a small constant
    /// factor of the bytes received, whatever the pieces they came in; tests check that.
    pub fn bytes_examined(&self) -> u64 {
        self.examined
    }

    /// Whether part of a command has been parsed and more bytes are awaited.
    pub fn is_partial(&self) -> bool {
        !matches!(self.progress, Progress::Start)
    }

    /// Parses one command from the start of `buf`, resuming where the previous call stopped;
    /// answers like [`parse_command`].
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
        let outcome = self.resume(buf);
        if !matches!(outcome, Ok(None)) {
            self.progress = Progress::Start;
        }
        outcome
    }

    fn resume(&mut self, buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
        let limits = self.limits;
        if let Progress::Start = self.progress {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {
                    let Some((count, at)) = header_number(
                        buf,
                        1,
                        limits.inline_bytes_max,
                        ParseError::MultibulkLength,
                        &mut self.examined,
                    )?
                    else {
                        return Ok(None);
                    };
                    if count > limits.elements_max as i64 {
                        return Err(ParseError::MultibulkLength);
                    }
                    if count <= 0 {
                        return Ok(Some((Vec::new(), at)));
                    }
                    let count = count as usize;
                    let args = Vec::with_capacity(count.min(1024));
                    self.progress = Progress::Multibulk { count, args, at };
                }
                Some(_) => self.progress = Progress::Inline { scanned: 0 },
            }
        }
        match &mut self.progress {
            Progress::Start => Ok(None),
            Progress::Multibulk { count, args, at } => {
                while args.len() < *count {
                    let Some(&tag) = buf.get(*at) else { return Ok(None) };
                    if tag != b'$' {
                        return Err(ParseError::ExpectedBulk(tag));
                    }
                    let Some((data, next)) = bulk_body(buf, *at, &limits, &mut self.examined)?
                    else {
                        return Ok(None);
                    };
                    let Some(data) = data else { return Err(ParseError::BulkLength) };
                    args.push(data);
                    *at = next;
                }
                Ok(Some((std::mem::take(args), *at)))
            }
            Progress::Inline { scanned } => {
                let window = &buf[*scanned..buf.len().min(limits.inline_bytes_max + 1)];
                self.examined += window.len() as u64;
                let Some(newline) = window.iter().position(|b| *b == b'\n') else {
                    if buf.len() > limits.inline_bytes_max {
                        return Err(ParseError::InlineTooBig);
                    }
                    *scanned += window.len();
                    return Ok(None);
                };
                let newline = *scanned + newline;
                self.examined += newline as u64;
                let line = &buf[..newline];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                Ok(Some((split_inline(line)?, newline + 1)))
            }
        }
    }
}

/// Reads the number after the tag at `start` up to CRLF; `None` if the line is incomplete.
fn header_number(
    buf: &[u8],
    start: usize,
    line_max: usize,
    error: ParseError,
    examined: &mut u64,
) -> Result<Option<(i64, usize)>, ParseError> {
    // A header line is refused when it is longer than `cap`, whether its CRLF has arrived or
    // not: a server that receives it in pieces must decide as one that receives it whole.
    let cap = line_max.min(32);
    let Some(end) = find_crlf(buf, start, cap + 1, examined) else {
        let pending = &buf[start..];
        // A `\r` at the end may be the start of the CRLF, not part of the line.
        let line_len = pending.len() - usize::from(pending.ends_with(b"\r"));
        if line_len > cap {
            return Err(error);
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[start..end]).map_err(|_| error.clone())?;
    let n: i64 = text.parse().map_err(|_| error)?;
    Ok(Some((n, end + 2)))
}

/// The bulk string whose `$`-like tag is at `at`: its data (`None` for a null bulk) and the index
/// after it; `Ok(None)` while incomplete.
#[allow(clippy::type_complexity)]
fn bulk_body(
    buf: &[u8],
    at: usize,
    limits: &Limits,
    examined: &mut u64,
) -> Result<Option<(Option<Bytes>, usize)>, ParseError> {
    let Some((len, start)) = header_number(buf, at + 1, 32, ParseError::BulkLength, examined)?
    else {
        return Ok(None);
    };
    if len == -1 {
        return Ok(Some((None, start)));
    }
    if len < 0 || len as u64 > limits.bulk_bytes_max as u64 {
        return Err(ParseError::BulkLength);
    }
    let end = start + len as usize;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ParseError::MissingCrlf);
    }
    *examined += len as u64 + 2;
    Ok(Some((Some(Bytes::copy_from_slice(&buf[start..end])), end + 2)))
}

/// The index of the CR of the first CRLF at or after `from`, looking at most `max` bytes ahead;
/// adds the bytes it looked at to `examined`.
fn find_crlf(buf: &[u8], from: usize, max: usize, examined: &mut u64) -> Option<usize> {
    let window = &buf[from..buf.len().min(from.saturating_add(max).saturating_add(1))];
    let found = window.windows(2).position(|w| w == b"\r\n");
    *examined += found.map_or(window.len(), |p| p + 2) as u64;
    found.map(|p| from + p)
}

/// Splits an inline line like Redis's `sdssplitargs`: blanks separate arguments; `"..."` allows
/// `\n`, `\r`, `\t`, `\b`, `\a`, `\\`, `\"` and `\xHH`; `'...'` allows `\'`; a closing quote must
/// be followed by a blank or the end.
fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ParseError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let Some(&c) = line.get(i) else { return Err(ParseError::UnbalancedQuotes) };
                    match c {
                        b'\\'
                            if line.get(i + 1) == Some(&b'x')
                                && line.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                                && line.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
                        {
                            let hex = std::str::from_utf8(&line[i + 2..i + 4]).expect("ascii");
                            arg.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                            i += 4;
                        }
                        b'\\' if i + 1 < line.len() => {
                            arg.push(match line[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return Err(ParseError::UnbalancedQuotes);
                            }
                            break;
                        }
                        other => {
                            arg.push(other);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let Some(&c) = line.get(i) else { return Err(ParseError::UnbalancedQuotes) };
                    match c {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            arg.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return Err(ParseError::UnbalancedQuotes);
                            }
                            break;
                        }
                        other => {
                            arg.push(other);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
}

/// Parses one RESP2 or RESP3 value from the start of `buf` (a server's reply): the value and the
/// bytes it took. RESP3 attributes (`|`) are skipped, as clients may ignore them.
pub fn parse_frame(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, ParseError> {
    frame_at(buf, 0, limits, 0)
}

fn frame_at(
    buf: &[u8],
    at: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Frame, usize)>, ParseError> {
    if depth > limits.depth_max {
        return Err(ParseError::TooDeep);
    }
    let Some(&tag) = buf.get(at) else { return Ok(None) };
    let line = |what: &'static str| -> Result<Option<(&[u8], usize)>, ParseError> {
        match find_crlf(buf, at + 1, limits.inline_bytes_max, &mut 0) {
            // A line holds no CR or LF (RESP's simple strings, errors and numbers cannot), so
            // whatever parses also encodes back to the same line.
            Some(end) if buf[at + 1..end].iter().any(|b| matches!(b, b'\r' | b'\n')) => {
                Err(ParseError::Invalid(what))
            }
            Some(end) => Ok(Some((&buf[at + 1..end], end + 2))),
            None if buf.len() - at > limits.inline_bytes_max => Err(ParseError::Invalid(what)),
            None => Ok(None),
        }
    };
    let number = |what: &'static str| -> Result<Option<(i64, usize)>, ParseError> {
        let Some((text, next)) = line(what)? else { return Ok(None) };
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(ParseError::Invalid(what))?;
        Ok(Some((n, next)))
    };
    let frame = match tag {
        b'+' | b'-' | b'(' => {
            let Some((text, next)) = line("line")? else { return Ok(None) };
            let text = Bytes::copy_from_slice(text);
            let frame = match tag {
                b'+' => Frame::Simple(text),
                b'-' => Frame::Error(text),
                _ => Frame::BigNumber(text),
            };
            (frame, next)
        }
        b':' => {
            let Some((n, next)) = number("integer")? else { return Ok(None) };
            (Frame::Integer(n), next)
        }
        b',' => {
            let Some((text, next)) = line("double")? else { return Ok(None) };
            let d = match text {
                b"inf" => f64::INFINITY,
                b"-inf" => f64::NEG_INFINITY,
                b"nan" => f64::NAN,
                _ => std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or(ParseError::Invalid("double"))?,
            };
            (Frame::Double(d), next)
        }
        b'#' => {
            let Some((text, next)) = line("boolean")? else { return Ok(None) };
            let b = match text {
                b"t" => true,
                b"f" => false,
                _ => return Err(ParseError::Invalid("boolean")),
            };
            (Frame::Boolean(b), next)
        }
        b'_' => {
            let Some((text, next)) = line("null")? else { return Ok(None) };
            if !text.is_empty() {
                return Err(ParseError::Invalid("null"));
            }
            (Frame::Null, next)
        }
        b'$' | b'!' | b'=' => {
            let Some((data, next)) = bulk_body(buf, at, limits, &mut 0)? else {
                return Ok(None);
            };
            let frame = match (tag, data) {
                (b'$', None) => Frame::Null,
                (b'$', Some(data)) => Frame::Bulk(data),
                (b'!', Some(data)) => Frame::BulkError(data),
                (b'=', Some(data)) if data.len() >= 4 && data[3] == b':' => {
                    Frame::Verbatim { format: [data[0], data[1], data[2]], text: data.slice(4..) }
                }
                _ => return Err(ParseError::Invalid("bulk")),
            };
            (frame, next)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some((count, mut next)) = number("aggregate length")? else { return Ok(None) };
            if tag == b'*' && count == -1 {
                return Ok(Some((Frame::Null, next)));
            }
            if count < 0 || count > limits.elements_max as i64 {
                return Err(ParseError::MultibulkLength);
            }
            let elements = if matches!(tag, b'%' | b'|') { count * 2 } else { count };
            let mut items = Vec::with_capacity((elements as usize).min(1024));
            for _ in 0..elements {
                let Some((item, after)) = frame_at(buf, next, limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                next = after;
            }
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                b'%' => Frame::Map(pairs(items)),
                _ => {
                    // An attribute describes the value after it; skip to that value.
                    return frame_at(buf, next, limits, depth);
                }
            };
            (frame, next)
        }
        _ => return Err(ParseError::Invalid("type byte")),
    };
    Ok(Some(frame))
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        pairs.push((key, value));
    }
    pairs
}
