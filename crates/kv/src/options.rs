//! The commands with options: SET, the EXPIRE family, SCAN and FLUSHDB/FLUSHALL, parsed with
//! Redis's rules for which options combine and which error a bad combination gets.

use bytes::Bytes;
use conclave_resp::Frame;

use crate::command::{Call, Plan};
use crate::number::{parse_cursor, parse_i64};
use crate::query::Query;
use crate::reply;
use crate::write::{ExpireCondition, SetCondition, SetReply, SetTtl, SetWrite, Write};

/// SCAN's COUNT when the client gives none, as in Redis.
const SCAN_COUNT_DEFAULT: u64 = 10;

/// The types SCAN's TYPE option knows (Redis's). Only strings exist here, so the others are
/// accepted and match nothing.
const TYPE_NAMES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// SET's expiry options (and SETEX's and PSETEX's implied ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpiryArg {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// A Unix time in seconds.
    ExAt,
    /// A Unix time in milliseconds.
    PxAt,
}

impl ExpiryArg {
    fn named(option: &[u8]) -> Option<ExpiryArg> {
        [
            ("EX", ExpiryArg::Ex),
            ("PX", ExpiryArg::Px),
            ("EXAT", ExpiryArg::ExAt),
            ("PXAT", ExpiryArg::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| option.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, arg)| arg)
    }

    fn in_seconds(self) -> bool {
        matches!(self, ExpiryArg::Ex | ExpiryArg::ExAt)
    }

    fn relative(self) -> bool {
        matches!(self, ExpiryArg::Ex | ExpiryArg::Px)
    }
}

/// An integer argument, or Redis's reply to one that is not.
pub(crate) fn integer(argument: &[u8]) -> Result<i64, Frame> {
    parse_i64(argument).ok_or_else(reply::not_integer)
}

/// The leader's clock as Redis's signed millisecond time.
fn clock_ms(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}

/// SET's (and SETEX's, PSETEX's) expiry as an absolute deadline, checked as Redis's
/// `getExpireMillisecondsOrReply` checks it: the amount must be positive, and neither the unit
/// conversion nor adding the clock may overflow.
pub(crate) fn set_deadline(call: &Call<'_>, arg: ExpiryArg, amount: &[u8]) -> Result<u64, Frame> {
    let amount = integer(amount)?;
    let invalid = || reply::invalid_expire(call.name);
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = if arg.in_seconds() { amount.checked_mul(1000).ok_or_else(invalid)? } else { amount };
    let base = if arg.relative() { clock_ms(call.now_ms) } else { 0 };
    let deadline = ms.checked_add(base).ok_or_else(invalid)?;
    Ok(deadline.unsigned_abs())
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`.
///
/// Options are read left to right as Redis reads them: NX and XX exclude each other, the four
/// expiries and KEEPTTL exclude each other (repeating the same expiry is allowed and the last
/// amount wins), GET combines with anything. A conflict or an expiry without its amount is a
/// syntax error; the amount is checked only after every option parsed.
pub(crate) fn set(call: &Call<'_>) -> Result<Plan, Frame> {
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut keep_ttl = false;
    let mut expiry: Option<(ExpiryArg, &Bytes)> = None;
    let options = &call.args[3..];
    let mut at = 0;
    while at < options.len() {
        let option = &options[at][..];
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("NX") && condition != SetCondition::IfPresent {
            condition = SetCondition::IfAbsent;
        } else if is("XX") && condition != SetCondition::IfAbsent {
            condition = SetCondition::IfPresent;
        } else if is("GET") {
            get = true;
        } else if is("KEEPTTL") && expiry.is_none() {
            keep_ttl = true;
        } else {
            let arg = ExpiryArg::named(option).ok_or_else(reply::syntax_error)?;
            let amount = options.get(at + 1).ok_or_else(reply::syntax_error)?;
            if keep_ttl || expiry.is_some_and(|(previous, _)| previous != arg) {
                return Err(reply::syntax_error());
            }
            expiry = Some((arg, amount));
            at += 1;
        }
        at += 1;
    }
    let ttl = match expiry {
        Some((arg, amount)) => SetTtl::At(set_deadline(call, arg, amount)?),
        None if keep_ttl => SetTtl::Keep,
        None => SetTtl::Clear,
    };
    let reply = if get { SetReply::OldValue } else { SetReply::Ok };
    let set = SetWrite { key: call.arg(1), value: call.arg(2), condition, ttl, reply };
    Ok(call.write(Write::Set(set)))
}

/// `EXPIRE key amount [NX | XX | GT | LT]` and its three siblings: `in_seconds` for EXPIRE and
/// EXPIREAT, `relative` for EXPIRE and PEXPIRE.
///
/// Checked in Redis's order: the options first, then the amount, then overflow of the unit
/// conversion and of adding the clock. A negative or past deadline is valid (it deletes the key).
pub(crate) fn expire(call: &Call<'_>, in_seconds: bool, relative: bool) -> Result<Plan, Frame> {
    let condition = expire_condition(&call.args[3..])?;
    let amount = integer(&call.args[2])?;
    let invalid = || reply::invalid_expire(call.name);
    let ms = if in_seconds { amount.checked_mul(1000).ok_or_else(invalid)? } else { amount };
    let base = if relative { clock_ms(call.now_ms) } else { 0 };
    let deadline = ms.checked_add(base).ok_or_else(invalid)?;
    Ok(call.write(Write::Expire { key: call.arg(1), deadline, condition }))
}

fn expire_condition(options: &[Bytes]) -> Result<ExpireCondition, Frame> {
    let mut condition = ExpireCondition::default();
    for option in options {
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("NX") {
            condition.nx = true;
        } else if is("XX") {
            condition.xx = true;
        } else if is("GT") {
            condition.gt = true;
        } else if is("LT") {
            condition.lt = true;
        } else {
            return Err(reply::error_quoting("ERR Unsupported option ", option, ""));
        }
    }
    if condition.nx && (condition.xx || condition.gt || condition.lt) {
        return Err(Frame::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if condition.gt && condition.lt {
        return Err(Frame::error("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(condition)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: the cursor first (`invalid cursor`),
/// then the options in pairs, in any order, a later one overriding an earlier.
pub(crate) fn scan(call: &Call<'_>) -> Result<Plan, Frame> {
    let cursor = parse_cursor(&call.args[1]).ok_or_else(|| Frame::error("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut count = SCAN_COUNT_DEFAULT;
    let mut type_matches = true;
    let mut options = call.args[2..].iter();
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(reply::syntax_error)?;
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("COUNT") {
            // Zero or negative is a syntax error, not a range error, in Redis.
            count = u64::try_from(integer(value)?)
                .ok()
                .filter(|count| *count >= 1)
                .ok_or_else(reply::syntax_error)?;
        } else if is("MATCH") {
            // `*` matches everything: Redis skips matching for it, and so do we.
            pattern = (&value[..] != b"*").then(|| value.clone());
        } else if is("TYPE") {
            let known = TYPE_NAMES.iter().any(|name| value.eq_ignore_ascii_case(name.as_bytes()));
            if !known {
                return Err(reply::error_quoting("ERR unknown type name '", value, "'"));
            }
            type_matches = value.eq_ignore_ascii_case(b"string");
        } else {
            return Err(reply::syntax_error());
        }
    }
    Ok(Plan::Read(Query::Scan { cursor, pattern, count, type_matches }))
}

/// `FLUSHDB` / `FLUSHALL` with an optional `SYNC` or `ASYNC`, which change nothing here: the
/// store is emptied within the apply either way.
pub(crate) fn flush(call: &Call<'_>) -> Result<Plan, Frame> {
    let accepted = match call.args {
        [_] => true,
        [_, mode] => mode.eq_ignore_ascii_case(b"SYNC") || mode.eq_ignore_ascii_case(b"ASYNC"),
        _ => false,
    };
    if accepted {
        Ok(call.write(Write::Flush))
    } else {
        Err(reply::syntax_error())
    }
}
