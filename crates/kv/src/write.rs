//! A write command as the log carries it: planned at the leader from a client's arguments
//! (`command.rs`), encoded into the log (`codec.rs`) and executed on every node (`apply.rs`).
//!
//! Everything that depends on the leader's clock is resolved before a write gets here: relative
//! expiries are absolute deadlines, so applying a write depends only on the store and the write.

use bytes::Bytes;

/// One write, decoded. Keys and values are owned copies, never slices of a log buffer, so the
/// store does not pin log entries in memory once they are compacted away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// The leader's expiry tick: only advances the replicated clock, which deletes what is due.
    Tick,
    /// SET and its variants (SETNX, SETEX, PSETEX, GETSET).
    Set(SetWrite),
    /// GETDEL: reply with the value and delete the key.
    GetDel(Bytes),
    /// DEL and UNLINK.
    Delete(Vec<Bytes>),
    /// INCR, DECR, INCRBY, DECRBY.
    IncrBy {
        /// The counter.
        key: Bytes,
        /// What to add; DECR's negation is already applied.
        delta: i64,
    },
    /// APPEND.
    Append {
        /// The string to grow (created if absent).
        key: Bytes,
        /// What to add at its end.
        suffix: Bytes,
    },
    /// MSET: set every pair, clearing their deadlines.
    MSet(Vec<(Bytes, Bytes)>),
    /// MSETNX: set every pair only if none of the keys exists.
    MSetNx(Vec<(Bytes, Bytes)>),
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
    Expire {
        /// The key to give a deadline.
        key: Bytes,
        /// The absolute deadline in ms since the epoch. Signed, because EXPIREAT accepts a
        /// negative time (which deletes the key) and GT/LT compare it as given.
        deadline: i64,
        /// NX / XX / GT / LT.
        condition: ExpireCondition,
    },
    /// PERSIST: drop a key's deadline.
    Persist(Bytes),
    /// FLUSHDB and FLUSHALL (there is one database).
    Flush,
}

/// SET in full: every variant of the SET family is one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SetWrite {
    /// The key to set.
    pub(crate) key: Bytes,
    /// Its new value.
    pub(crate) value: Bytes,
    /// NX / XX.
    pub(crate) condition: SetCondition,
    /// What happens to the key's deadline.
    pub(crate) ttl: SetTtl,
    /// Which reply the variant gives.
    pub(crate) reply: SetReply,
}

/// SET's NX / XX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetCondition {
    /// Set in any case.
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// What SET does to the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetTtl {
    /// Drop it (plain SET, GETSET, MSET).
    Clear,
    /// KEEPTTL: keep the existing one.
    Keep,
    /// EX / PX / EXAT / PXAT, SETEX, PSETEX: this absolute deadline in ms since the epoch.
    At(u64),
}

/// What a SET-family command replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetReply {
    /// SET: `OK`, or a null when NX/XX stopped it.
    Ok,
    /// SET ... GET and GETSET: the old value, or a null.
    OldValue,
    /// SETNX: 1 if it set the key, 0 if not.
    Flag,
}

/// EXPIRE's NX / XX / GT / LT options. Any combination decodes; `command.rs` refuses the ones
/// Redis refuses before they reach the log, and `apply` checks them in Redis's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExpireCondition {
    /// Only if the key has no deadline.
    pub(crate) nx: bool,
    /// Only if the key has a deadline.
    pub(crate) xx: bool,
    /// Only if the new deadline is later than the current one (none counts as infinite).
    pub(crate) gt: bool,
    /// Only if the new deadline is earlier than the current one (none counts as infinite).
    pub(crate) lt: bool,
}

impl ExpireCondition {
    /// The options as the encoding's flags byte.
    pub(crate) fn to_bits(self) -> u8 {
        u8::from(self.nx) | u8::from(self.xx) << 1 | u8::from(self.gt) << 2 | u8::from(self.lt) << 3
    }

    /// The options from a flags byte, or `None` if unknown bits are set.
    pub(crate) fn from_bits(bits: u8) -> Option<ExpireCondition> {
        (bits < 16).then_some(ExpireCondition {
            nx: bits & 1 != 0,
            xx: bits & 2 != 0,
            gt: bits & 4 != 0,
            lt: bits & 8 != 0,
        })
    }
}
