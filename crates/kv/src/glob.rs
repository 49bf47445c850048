//! Redis's glob patterns, for KEYS and SCAN MATCH.

/// Whether `subject` matches the Redis glob `pattern` (the matcher behind KEYS, SCAN MATCH and
/// PSUBSCRIBE), so that clients' patterns select the keys they select on Redis.
///
/// - `*` matches any run of bytes, including none; `?` matches exactly one byte.
/// - `[abc]` matches one of the listed bytes, `[^abc]` one byte not listed, `[a-z]` a range
///   (reversed bounds such as `[z-a]` are swapped), `[\]]` an escaped byte inside a class. An
///   unclosed class (`[abc`) ends the pattern and matches as if closed; `[]` matches nothing.
/// - `\x` matches `x` literally; a lone trailing `\` matches a backslash.
///
/// Matching is case-sensitive and byte-wise. Two deliberate differences from Redis's
/// `stringmatchlen`, neither visible through KEYS or SCAN: a pattern made only of `*` matches the
/// empty key (Redis reaches the same answer for `*` through a shortcut in KEYS and SCAN, its
/// matcher alone says no), and class ranges compare bytes as unsigned (Redis compares C `char`s,
/// which are signed on most platforms, so its ranges that span byte 0x80 behave oddly).
///
/// It runs in O(pattern × subject) time with no recursion, using the classic backtracking to the
/// last `*`: a hostile pattern such as `*a*a*a*a*b` cannot blow the stack or take exponential time.
///
/// ```
/// use conclave_kv::glob_match;
///
/// assert!(glob_match(b"user:*", b"user:42"));
/// assert!(glob_match(b"h[ae]llo", b"hallo"));
/// assert!(!glob_match(b"h[^e]llo", b"hello"));
/// ```
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let mut at_pattern = 0;
    let mut at_subject = 0;
    // The last `*` seen: where the pattern resumes after it, and the subject position its
    // match currently ends at. On a mismatch the star swallows one more byte and we retry.
    let mut backtrack: Option<(usize, usize)> = None;
    while at_subject < subject.len() {
        if pattern.get(at_pattern) == Some(&b'*') {
            at_pattern += 1;
            backtrack = Some((at_pattern, at_subject));
            continue;
        }
        if let Some(next) = match_one(pattern, at_pattern, subject[at_subject]) {
            at_pattern = next;
            at_subject += 1;
            continue;
        }
        match backtrack {
            Some((resume, star_end)) => {
                at_pattern = resume;
                at_subject = star_end + 1;
                backtrack = Some((resume, star_end + 1));
            }
            None => return false,
        }
    }
    pattern[at_pattern..].iter().all(|&byte| byte == b'*')
}

/// Matches the single-byte token at `pattern[at]` (anything but `*`) against `byte`: the index
/// after the token if it matches, `None` if it does not or the pattern has ended.
fn match_one(pattern: &[u8], at: usize, byte: u8) -> Option<usize> {
    let token = *pattern.get(at)?;
    let (matched, next) = match token {
        b'?' => (true, at + 1),
        b'[' => match_class(pattern, at + 1, byte),
        b'\\' if at + 1 < pattern.len() => (pattern[at + 1] == byte, at + 2),
        literal => (literal == byte, at + 1),
    };
    matched.then_some(next)
}

/// Matches the class that starts at `pattern[at]` (just after its `[`) against `byte`, parsed as
/// Redis parses it: whether it matched, and the index after the class.
fn match_class(pattern: &[u8], mut at: usize, byte: u8) -> (bool, usize) {
    let negated = pattern.get(at) == Some(&b'^');
    if negated {
        at += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(at) {
            // An unclosed class ends the pattern.
            None => return (matched != negated, at),
            Some(b']') => return (matched != negated, at + 1),
            Some(b'\\') if at + 1 < pattern.len() => {
                matched |= pattern[at + 1] == byte;
                at += 2;
            }
            Some(&low) if at + 2 < pattern.len() && pattern[at + 1] == b'-' => {
                let high = pattern[at + 2];
                let (low, high) = if low <= high { (low, high) } else { (high, low) };
                matched |= (low..=high).contains(&byte);
                at += 3;
            }
            Some(&literal) => {
                matched |= literal == byte;
                at += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn matches(pattern: &str, subject: &str) -> bool {
        glob_match(pattern.as_bytes(), subject.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", "anything"));
        assert!(matches("*", ""));
        assert!(matches("**", ""));
        assert!(matches("a*", "a"));
        assert!(matches("a*b", "ab"));
        assert!(matches("a*b", "axxxb"));
        assert!(!matches("a*b", "axxxc"));
        assert!(matches("*b*", "abc"));
        assert!(matches("h?llo", "hello"));
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("user:*:name", "user:42:name"));
        assert!(!matches("user:*:name", "user:42:email"));
        assert!(matches("*a*a*a*a*b", "aaaaaaaaaaaaaaab"));
        assert!(!matches("*a*a*a*a*b", &"a".repeat(2000)));
        assert!(!matches("", "a"));
        assert!(matches("", ""));
        assert!(!matches("?", ""));
    }

    #[test]
    fn classes_as_redis_documents_them() {
        // The examples of the KEYS documentation.
        assert!(matches("h[ae]llo", "hello"));
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("h[a-b]llo", "hallo"));
        assert!(matches("h[a-b]llo", "hbllo"));
        assert!(!matches("h[a-b]llo", "hcllo"));
        // Reversed ranges are swapped; a class may mix ranges and bytes.
        assert!(matches("[z-a]", "m"));
        assert!(matches("[0-9a-fx]", "x"));
        assert!(!matches("[0-9a-f]", "g"));
        // An empty class matches nothing, its negation anything.
        assert!(!matches("[]", "a"));
        assert!(matches("[^]", "a"));
        // Escapes inside a class, and a `]` escaped into it.
        assert!(matches("[\\]]", "]"));
        assert!(matches("[\\-]", "-"));
        // An unclosed class ends the pattern and acts as if closed.
        assert!(matches("a[bc", "ab"));
        assert!(!matches("a[bc", "abz"));
        assert!(!matches("a[", "a"));
        // `a-]` is a range from `a` to `]` (Redis reads three bytes with a dash as a range).
        assert!(matches("[a-]", "a"));
        assert!(matches("[a-]", "^"));
        // A `]` right after `[` closes an empty class, so the rest is literal.
        assert!(!matches("[]-a]", "^"));
    }

    #[test]
    fn escapes() {
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("\\?x", "?x"));
        assert!(matches("a\\[b", "a[b"));
        assert!(matches("a\\", "a\\"));
        assert!(matches("\\a", "a"));
    }

    #[test]
    fn bytes_are_matched_exactly_and_case_sensitively() {
        assert!(!matches("Hello", "hello"));
        assert!(glob_match(b"\xff*", b"\xff\x00\x01"));
        assert!(glob_match(b"[\x80-\xff]", b"\x90"));
    }
}
