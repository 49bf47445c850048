//! The admin port's bearer token: kept out of `Debug` output and compared in constant time, so
//! neither a log line nor the time a refusal takes tells an attacker anything about it.

use std::fmt;

/// The secret that `Authorization: Bearer <token>` must carry on the admin port.
///
/// Invariant: never empty (the configuration refuses an empty token, which would let an empty
/// `Bearer ` header through).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps `token`; `None` when it is empty (after trimming the newline a token file ends
    /// with), because an empty secret protects nothing.
    pub fn new(token: &str) -> Option<AdminToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| AdminToken(token.to_string()))
    }

    /// The token itself, for clients that must send it (the command line).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the token. The time taken depends only on the lengths, never on
    /// where the first differing byte is, so the token cannot be guessed byte by byte from
    /// response times. The length of the token is not secret: generated tokens have a fixed
    /// length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        equal_in_constant_time(self.0.as_bytes(), presented)
    }
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths, never on where
/// the first differing byte is: for secrets, and for password hashes (as Redis compares them).
pub(crate) fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches_and_debug_hides_it() {
        let token = AdminToken::new("s3cret-token\n").unwrap();
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-tokeN"));
        assert!(!token.matches(b"s3cret"));
        assert!(!token.matches(b""));
        assert_eq!(AdminToken::new(" \n"), None);
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
