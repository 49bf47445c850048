//! Numbers in text, parsed as strictly as Redis parses them, so that the same argument is
//! accepted or refused here as it is there.

/// Parses a signed 64-bit integer the way Redis's `string2ll` does: an optional `-`, then digits
/// without a leading zero (only `0` itself may start with one), nothing else. So `+1`, ` 1`,
/// `01`, `-0` and `1.0` are refused, as Redis refuses them for INCR, EXPIRE and the rest.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let magnitude = parse_digits(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a SCAN cursor as Redis's `string2ull` does for the inputs a client sends: decimal
/// digits, optionally after ASCII whitespace and a `+` (Redis falls back to `strtoull`, which
/// allows both), within 64 bits.
pub(crate) fn parse_cursor(text: &[u8]) -> Option<u64> {
    let start = text.iter().position(|byte| !is_c_space(*byte))?;
    let text = &text[start..];
    parse_digits(text.strip_prefix(b"+").unwrap_or(text))
}

/// One or more decimal digits, nothing else, within 64 bits.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_parsed_as_strictly_as_redis_parses_them() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for refused in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
            b"abc",
        ] {
            assert_eq!(parse_i64(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
    }

    #[test]
    fn cursors_accept_what_strtoull_accepts_for_non_negative_numbers() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b" +17"), Some(17));
        assert_eq!(parse_cursor(b"007"), Some(7));
        for refused in [&b""[..], b" ", b"+", b"-1", b"1x", b"18446744073709551616"] {
            assert_eq!(parse_cursor(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
    }
}
