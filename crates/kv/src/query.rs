//! Reads: answered from a node's state after the server's read barrier, without consensus.

use bytes::Bytes;
use conclave_resp::Frame;

use crate::glob::glob_match;
use crate::hash::{mix64, Slot};
use crate::reply;
use crate::scan::walk;
use crate::store::{Entry, KvStore};

/// A read command, planned by [`plan`](crate::plan) and run by [`KvStore::query`] once the
/// server's read barrier (ReadIndex or a lease) has passed. Keys are the client's argument
/// buffers, shared rather than copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// GET: the value, or a null.
    Get(Bytes),
    /// MGET: an array of values and nulls, one per key.
    MGet(Vec<Bytes>),
    /// EXISTS (and TOUCH): how many of the keys exist, a key named twice counted twice.
    Exists(Vec<Bytes>),
    /// STRLEN: the value's length, 0 for an absent key.
    StrLen(Bytes),
    /// TYPE: `string` or `none`.
    Type(Bytes),
    /// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for an absent key, -1 for one without deadline.
    Ttl {
        /// The key.
        key: Bytes,
        /// Which of the four commands, so which unit and whether relative to now.
        form: TtlForm,
    },
    /// SCAN: one batch of keys and the cursor to continue from (0 when the walk is complete).
    Scan {
        /// Where to resume: 0 to start, else the cursor the previous call returned.
        cursor: u64,
        /// MATCH's glob; `None` for no MATCH (or `MATCH *`).
        pattern: Option<Bytes>,
        /// COUNT: roughly how many keys to visit (matching or not). A call visits at least this
        /// many, unless the walk ends, and more only to finish the keys sharing a hash.
        count: u64,
        /// Whether TYPE (if given) names `string`, the only type stored. When it names another
        /// type the walk still advances, as in Redis, but no key is returned.
        type_matches: bool,
    },
    /// KEYS: every key matching the glob. O(n): as in Redis, for debugging, not for traffic.
    Keys(Bytes),
    /// DBSIZE: the number of keys.
    DbSize,
    /// RANDOMKEY: some key, or a null when there is none (see [`KvStore::query`]).
    RandomKey,
}

/// Which TTL command a [`Query::Ttl`] is, since they differ only in unit and reference point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlForm {
    /// TTL: seconds left, rounded to the nearest second.
    Seconds,
    /// PTTL: milliseconds left.
    Milliseconds,
    /// EXPIRETIME: the deadline as a Unix time in seconds (rounded as TTL is).
    UnixSeconds,
    /// PEXPIRETIME: the deadline as a Unix time in milliseconds.
    UnixMilliseconds,
}

impl KvStore {
    /// Runs a read and returns its reply.
    ///
    /// Whether a key has expired is decided by the replicated clock, never by `now_ms`: a key
    /// whose deadline the leader's clock has passed stays readable until the leader's
    /// [`expire_command`](crate::expire_command) (or any later write) is applied here. `now_ms`
    /// (this node's clock) is used only to show the time left by TTL and PTTL, which floor at 0
    /// for such a key, and to pick RANDOMKEY's key.
    pub fn query(&self, query: &Query, now_ms: u64) -> Frame {
        match query {
            Query::Get(key) => reply::bulk_or_null(self.get(key).map(|entry| entry.value.clone())),
            Query::MGet(keys) => Frame::Array(
                keys.iter()
                    .map(|key| reply::bulk_or_null(self.get(key).map(|entry| entry.value.clone())))
                    .collect(),
            ),
            Query::Exists(keys) => {
                reply::count(keys.iter().filter(|key| self.get(key).is_some()).count())
            }
            Query::StrLen(key) => reply::count(self.get(key).map_or(0, |entry| entry.value.len())),
            Query::Type(key) => {
                let name: &'static [u8] = if self.get(key).is_some() { b"string" } else { b"none" };
                Frame::Simple(Bytes::from_static(name))
            }
            Query::Ttl { key, form } => ttl(self.get(key), *form, now_ms),
            Query::Scan { cursor, pattern, count, type_matches } => {
                let mut keys = Vec::new();
                let next = walk(&self.entries, *cursor, *count, |slot| {
                    let wanted = *type_matches
                        && pattern.as_ref().is_none_or(|pattern| glob_match(pattern, &slot.key));
                    if wanted {
                        keys.push(Frame::Bulk(slot.key.clone()));
                    }
                });
                Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(keys)])
            }
            Query::Keys(pattern) => Frame::Array(
                self.entries
                    .keys()
                    .filter(|slot| glob_match(pattern, &slot.key))
                    .map(|slot| Frame::Bulk(slot.key.clone()))
                    .collect(),
            ),
            Query::DbSize => reply::count(self.len()),
            Query::RandomKey => self.random_key(now_ms),
        }
    }

    /// RANDOMKEY without randomness: the first key at or after a hash drawn by mixing `now_ms`
    /// (wrapping to the first key). O(log n). Keys are spread evenly over the hash space, so the
    /// pick is close to uniform across calls; two calls in the same millisecond pick the same key.
    fn random_key(&self, now_ms: u64) -> Frame {
        let start = Slot::first_at(mix64(now_ms));
        let picked = self.entries.range(start..).next().or_else(|| self.entries.iter().next());
        reply::bulk_or_null(picked.map(|(slot, _)| slot.key.clone()))
    }
}

/// The reply of the TTL family, as Redis's `ttlGenericCommand` computes it.
fn ttl(entry: Option<&Entry>, form: TtlForm, now_ms: u64) -> Frame {
    let Some(entry) = entry else {
        return Frame::Integer(-2);
    };
    let Some(deadline) = entry.deadline else {
        return Frame::Integer(-1);
    };
    let ms = match form {
        TtlForm::Seconds | TtlForm::Milliseconds => deadline.saturating_sub(now_ms),
        TtlForm::UnixSeconds | TtlForm::UnixMilliseconds => deadline,
    };
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Frame::Integer(match form {
        TtlForm::Seconds | TtlForm::UnixSeconds => ms.saturating_add(500) / 1000,
        TtlForm::Milliseconds | TtlForm::UnixMilliseconds => ms,
    })
}
