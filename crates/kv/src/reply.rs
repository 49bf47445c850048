//! Replies shared by several commands, worded exactly as Redis 7 words them: clients and their
//! tests match on these strings.

use bytes::Bytes;
use conclave_resp::Frame;

use crate::codec::DecodeError;

/// The longest string a value may grow to by APPEND, Redis's default `proto-max-bulk-len`.
pub(crate) const STRING_LENGTH_MAX: usize = 512 * 1024 * 1024;

/// `OK`.
pub(crate) fn ok() -> Frame {
    Frame::ok()
}

/// A bulk string, or a null for an absent value.
pub(crate) fn bulk_or_null(value: Option<Bytes>) -> Frame {
    value.map_or(Frame::Null, Frame::Bulk)
}

/// An integer reply from a count.
pub(crate) fn count(n: usize) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The reply to a command with too few or too many arguments; `name` is lowercase, as Redis
/// prints it.
pub(crate) fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// The reply to an option that is unknown, misplaced or in conflict with another.
pub(crate) fn syntax_error() -> Frame {
    Frame::Error(Bytes::from_static(b"ERR syntax error"))
}

/// The reply to an argument or stored value that should be a 64-bit integer and is not.
pub(crate) fn not_integer() -> Frame {
    Frame::Error(Bytes::from_static(b"ERR value is not an integer or out of range"))
}

/// The reply to INCR-family arithmetic that would leave the 64-bit range.
pub(crate) fn increment_overflow() -> Frame {
    Frame::Error(Bytes::from_static(b"ERR increment or decrement would overflow"))
}

/// DECRBY's reply to a decrement of `i64::MIN`, whose negation does not fit.
pub(crate) fn decrement_overflow() -> Frame {
    Frame::Error(Bytes::from_static(b"ERR decrement would overflow"))
}

/// The reply to an expiry that is not positive or overflows once made absolute.
pub(crate) fn invalid_expire(name: &str) -> Frame {
    Frame::error(format!("ERR invalid expire time in '{name}' command"))
}

/// APPEND's reply when the string would grow past [`STRING_LENGTH_MAX`].
pub(crate) fn string_too_long() -> Frame {
    Frame::Error(Bytes::from_static(
        b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
    ))
}

/// An error that quotes a client's argument byte for byte, as Redis's `%s` does (with line
/// breaks turned into spaces, so the reply stays one line).
pub(crate) fn error_quoting(prefix: &str, argument: &[u8], suffix: &str) -> Frame {
    let mut line = Vec::with_capacity(prefix.len() + argument.len() + suffix.len());
    line.extend_from_slice(prefix.as_bytes());
    line.extend(
        argument.iter().map(|&byte| if byte == b'\r' || byte == b'\n' { b' ' } else { byte }),
    );
    line.extend_from_slice(suffix.as_bytes());
    Frame::Error(Bytes::from(line))
}

/// `apply`'s reply to a log entry it cannot decode. It depends only on the entry's bytes, so
/// every node gives the same one.
pub(crate) fn undecodable(error: &DecodeError) -> Frame {
    Frame::error(format!("ERR undecodable command in the log: {error}"))
}
