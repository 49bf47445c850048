//! The cross-protocol scripting guard of the client port, as Redis has it: a web page can make a
//! browser POST to any host and port, and a Redis-protocol server reading that request line by
//! line would run whatever commands the body holds. No Redis client sends `POST` or `Host:` as a
//! command name, so a connection that does is an HTTP request and is closed before any of it
//! runs.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::shared::now_ms;

/// At most one warning per this many milliseconds (Redis's rate): a flood of such requests must
/// not flood the log.
const WARNING_INTERVAL_MS: u64 = 60_000;

/// When the last warning was logged, in milliseconds since the epoch (0: never).
static LAST_WARNING_MS: AtomicU64 = AtomicU64::new(0);

/// Whether a command is the start of an HTTP request: named `POST` or `Host:` (case-insensitive,
/// the two names Redis checks; a `GET` line could also be a Redis command).
pub(crate) fn is_http(args: &[Bytes]) -> bool {
    args.first().is_some_and(|name| {
        name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
    })
}

/// The reply to a TLS handshake sent to the plain client port, before the connection closes.
pub(crate) const TLS_ON_PLAIN_PORT: &str =
    "ERR Protocol error: a TLS handshake reached the plain-text client port; connect to the TLS \
     client port (tls_client_addr) instead";

/// Whether `input`, at the start of a command, is a TLS record carrying a handshake (content type
/// 22, version major 3): a client configured for TLS pointed at the plain port. No RESP command
/// starts with byte 22, so closing at once with a clear error beats waiting for a line that
/// never comes.
pub(crate) fn is_tls_handshake(input: &[u8]) -> bool {
    input.len() >= 2 && input[0] == 0x16 && input[1] == 0x03
}

/// Logs the attack, at most once a minute per process.
pub(crate) fn warn(client: u64) {
    let now = now_ms();
    let last = LAST_WARNING_MS.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= WARNING_INTERVAL_MS)
        && LAST_WARNING_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(
            client,
            "possible SECURITY ATTACK detected: a client sent POST or Host: as a command, which is \
             what an attacker using cross-protocol scripting does; connection aborted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_client_hello_is_told_apart_from_resp() {
        assert!(is_tls_handshake(b"\x16\x03\x01\x00\xc8\x01"));
        assert!(!is_tls_handshake(b"\x16"));
        assert!(!is_tls_handshake(b"*1\r\n$4\r\nPING\r\n"));
        assert!(!is_tls_handshake(b"PING\r\n"));
    }

    #[test]
    fn post_and_host_are_http_in_any_case_and_nothing_else_is() {
        let command = |words: &[&str]| -> Vec<Bytes> {
            words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
        };
        assert!(is_http(&command(&["POST", "/", "HTTP/1.1"])));
        assert!(is_http(&command(&["post"])));
        assert!(is_http(&command(&["hOsT:", "127.0.0.1"])));
        assert!(!is_http(&command(&["HOST", "x"])));
        assert!(!is_http(&command(&["GET", "post"])));
        assert!(!is_http(&[]));
    }
}
