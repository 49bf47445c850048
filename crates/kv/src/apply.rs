//! Applying a write from the log: the same bytes give the same state change and the same reply
//! on every node.

use bytes::{Bytes, BytesMut};
use conclave_resp::Frame;

use crate::codec;
use crate::hash::Slot;
use crate::number::parse_i64;
use crate::reply;
use crate::store::KvStore;
use crate::write::{ExpireCondition, SetCondition, SetReply, SetTtl, SetWrite, Write};

impl KvStore {
    /// Whether the leader may propose `command` under a data limit of `max_bytes` (0: no
    /// limit), as Redis's `maxmemory` with the `noeviction` policy: a command that can only
    /// shrink the data set or leave its size alone (DEL, GETDEL, EXPIRE, PERSIST, FLUSHDB) is
    /// always admitted, so a full store can be emptied; one that may grow it (SET, APPEND, INCR,
    /// MSET...) is refused when the data set plus the command's size would exceed the limit.
    ///
    /// Checked when proposing only: `apply` never refuses, so every node applies the same log
    /// the same way whatever its own limit.
    pub fn admits(&self, command: &[u8], max_bytes: u64) -> bool {
        if max_bytes == 0 {
            return true;
        }
        let Ok((_, write)) = codec::decode(command) else {
            return true;
        };
        let may_grow = matches!(
            write,
            Write::Set(_)
                | Write::IncrBy { .. }
                | Write::Append { .. }
                | Write::MSet(_)
                | Write::MSetNx(_)
        );
        !may_grow || self.data_bytes.saturating_add(command.len() as u64) <= max_bytes
    }

    /// Applies one command from the log and returns the reply for the client that proposed it.
    ///
    /// It first advances the replicated clock to the command's leader clock (if later) and
    /// deletes every key that is then due, then executes the command; so a command never sees a
    /// key that has expired by the replicated clock.
    ///
    /// Never panics on any bytes: an entry that does not decode yields an error reply (the same
    /// on every node, since it depends only on the bytes) and changes nothing, not even the clock.
    pub fn apply(&mut self, command: &[u8]) -> Frame {
        let (now_ms, write) = match codec::decode(command) {
            Ok(decoded) => decoded,
            Err(error) => return reply::undecodable(&error),
        };
        let expired = self.advance_clock(now_ms);
        match write {
            // The leader's tick says how many keys it expired, for its metrics.
            Write::Tick => reply::count(expired),
            Write::Set(set) => self.apply_set(set),
            Write::GetDel(key) => {
                reply::bulk_or_null(self.remove(&Slot::new(key)).map(|e| e.value))
            }
            Write::Delete(keys) => {
                let deleted =
                    keys.into_iter().map(Slot::new).filter(|slot| self.remove(slot).is_some());
                reply::count(deleted.count())
            }
            Write::IncrBy { key, delta } => self.apply_incr(Slot::new(key), delta),
            Write::Append { key, suffix } => self.apply_append(Slot::new(key), suffix),
            Write::MSet(pairs) => {
                self.put_all(pairs);
                reply::ok()
            }
            Write::MSetNx(pairs) => {
                let none_exist = pairs.iter().all(|(key, _)| self.get(key).is_none());
                if none_exist {
                    self.put_all(pairs);
                }
                Frame::Integer(i64::from(none_exist))
            }
            Write::Expire { key, deadline, condition } => {
                self.apply_expire(Slot::new(key), deadline, condition)
            }
            Write::Persist(key) => {
                let slot = Slot::new(key);
                let has_deadline = self.entries.get(&slot).is_some_and(|e| e.deadline.is_some());
                Frame::Integer(i64::from(has_deadline && self.set_deadline(&slot, None)))
            }
            Write::Flush => {
                self.clear();
                reply::ok()
            }
        }
    }

    /// SET and its variants, as Redis's `setGenericCommand`: GET's old value is taken before
    /// NX/XX decide, and is the reply even when they stop the write.
    fn apply_set(&mut self, set: SetWrite) -> Frame {
        let slot = Slot::new(set.key);
        let old = self.entries.get(&slot);
        let old_value = old.map(|entry| entry.value.clone());
        let old_deadline = old.and_then(|entry| entry.deadline);
        let proceed = match set.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        if proceed {
            let deadline = match set.ttl {
                SetTtl::Clear => None,
                SetTtl::Keep => old_deadline,
                SetTtl::At(deadline) => Some(deadline),
            };
            self.put(slot, set.value, deadline);
        }
        match set.reply {
            SetReply::Ok if proceed => reply::ok(),
            SetReply::Ok => Frame::Null,
            SetReply::OldValue => reply::bulk_or_null(old_value),
            SetReply::Flag => Frame::Integer(i64::from(proceed)),
        }
    }

    /// MSET's writes, in order (a key named twice ends with its last value), clearing deadlines.
    fn put_all(&mut self, pairs: Vec<(Bytes, Bytes)>) {
        for (key, value) in pairs {
            self.put(Slot::new(key), value, None);
        }
    }

    /// INCR and its siblings: an absent key counts as 0; the deadline is kept.
    fn apply_incr(&mut self, slot: Slot, delta: i64) -> Frame {
        let (current, deadline) = match self.entries.get(&slot) {
            None => (0, None),
            Some(entry) => match parse_i64(&entry.value) {
                Some(current) => (current, entry.deadline),
                None => return reply::not_integer(),
            },
        };
        let Some(next) = current.checked_add(delta) else {
            return reply::increment_overflow();
        };
        self.put(slot, Bytes::from(next.to_string()), deadline);
        Frame::Integer(next)
    }

    /// APPEND: creates the key if absent; the deadline is kept. The value grows in place when no
    /// reader holds a clone of it, so building a string by repeated APPENDs is amortised O(1) per
    /// byte as in Redis, rather than a copy of the whole string each time.
    fn apply_append(&mut self, slot: Slot, suffix: Bytes) -> Frame {
        let Some(entry) = self.entries.get_mut(&slot) else {
            let len = suffix.len();
            self.put(slot, suffix, None);
            return reply::count(len);
        };
        let len = entry.value.len() + suffix.len();
        if len > reply::STRING_LENGTH_MAX {
            return reply::string_too_long();
        }
        let value = std::mem::take(&mut entry.value);
        let mut grown = value.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        grown.extend_from_slice(&suffix);
        entry.value = grown.freeze();
        self.data_bytes += suffix.len() as u64;
        reply::count(len)
    }

    /// The EXPIRE family, as Redis's `expireGenericCommand`: 0 for an absent key or a condition
    /// that fails (no deadline counts as infinitely late for GT and LT), else 1; a deadline at or
    /// before the clock deletes the key.
    fn apply_expire(&mut self, slot: Slot, deadline: i64, condition: ExpireCondition) -> Frame {
        let Some(entry) = self.entries.get(&slot) else {
            return Frame::Integer(0);
        };
        let current = entry.deadline.map(|current| i64::try_from(current).unwrap_or(i64::MAX));
        let refused = (condition.nx && current.is_some())
            || (condition.xx && current.is_none())
            || (condition.gt && current.is_none_or(|current| deadline <= current))
            || (condition.lt && current.is_some_and(|current| deadline >= current));
        if refused {
            return Frame::Integer(0);
        }
        // A negative deadline is in the past like any other: clamped to 0, it deletes the key.
        let deadline = u64::try_from(deadline).unwrap_or(0);
        self.set_deadline(&slot, Some(deadline));
        Frame::Integer(1)
    }
}
