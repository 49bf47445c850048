//! The replicated state: keys, values, deadlines and the replicated clock, and the primitive
//! changes every write is made of.

use imbl::ordmap::Entry as MapEntry;
use imbl::{OrdMap, OrdSet};

use bytes::Bytes;

use crate::hash::Slot;

/// The key-value state machine: what every node of the group holds, identical on all of them.
///
/// Keys live in a persistent ordered map (cloned in O(1) for a snapshot, sharing its nodes)
/// ordered by `(hash, key)` with a fixed hash (see the crate docs):
/// O(log n) per key with one integer comparison per step, SCAN's order for free (a cursor is a
/// hash to resume from), and iteration in the same order on every node, so snapshots are
/// byte-identical. A `HashMap` with a fixed seed would be O(1), but SCAN would then need a second,
/// ordered index beside it, and every write would pay for both.
///
/// Invariants, checked after every apply by the tests:
/// - `deadlines` holds `(deadline, slot)` exactly for the entries that have a deadline.
/// - Every deadline is later than `clock`: `apply` deletes what falls due before it executes a
///   command, and a deadline set at or before the clock deletes its key instead. So a read never
///   meets a key that should have expired by the replicated clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    // The data.
    pub(crate) entries: OrdMap<Slot, Entry>,
    /// The keys that have a deadline, earliest first: expiring is popping from the front, so
    /// it costs O(log n) per expired key and nothing for the keys that are not due.
    pub(crate) deadlines: OrdSet<(u64, Slot)>,
    /// The replicated clock: the largest leader clock of any command applied, in ms since the
    /// epoch. Never moves backwards.
    pub(crate) clock: u64,
    /// The data set's size as [`entry_bytes`] counts it, summed over the entries. Kept in step
    /// by every change, so it is the same on every node at the same log position.
    pub(crate) data_bytes: u64,
}

/// What one key costs in [`KvStore::data_bytes`]: its key and value, plus a fixed overhead
/// standing for the map node, the `Bytes` handles and the deadline. A fixed formula rather than
/// the allocator's figure, so every node accounts the same and the limit check is
/// deterministic.
pub(crate) fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    key.len() as u64 + value.len() as u64 + ENTRY_OVERHEAD_BYTES
}

/// The fixed part of [`entry_bytes`]: about what a map node share, a hash, two `Bytes`
/// and a deadline take.
pub(crate) const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// A value and its deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The value. Reads hand out clones of it: a reference count, not a copy.
    pub(crate) value: Bytes,
    /// When the key expires, in ms since the epoch by the replicated clock; `None` for never.
    pub(crate) deadline: Option<u64>,
}

impl KvStore {
    /// An empty store with its clock at zero: the state of every node before the first entry.
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The number of keys, for DBSIZE and INFO.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of keys with a deadline (INFO's `keyspace` line reports it as `expires`).
    pub fn expires(&self) -> usize {
        self.deadlines.len()
    }

    /// The earliest deadline of any key. The leader proposes
    /// [`expire_command`](crate::expire_command) once its own clock passes it; a follower
    /// ignores it (it never deletes on its own).
    pub fn next_expiry(&self) -> Option<u64> {
        self.deadlines.get_min().map(|(deadline, _)| *deadline)
    }

    /// The replicated clock: the largest leader clock of any command applied so far.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The data set's size in bytes: every key and value plus a fixed overhead per key. The
    /// leader refuses writes that could grow it once it passes `maxmemory`; being a function of
    /// the applied log alone, it is the same on every node.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// The entry of `key`.
    pub(crate) fn get(&self, key: &Bytes) -> Option<&Entry> {
        self.entries.get(&Slot::new(key.clone()))
    }

    /// Advances the replicated clock to `now_ms` if that is later, then deletes every key whose
    /// deadline is at or before it. Returns how many keys it deleted.
    pub(crate) fn advance_clock(&mut self, now_ms: u64) -> usize {
        self.clock = self.clock.max(now_ms);
        let mut expired = 0;
        while let Some((deadline, _)) = self.deadlines.get_min() {
            if *deadline > self.clock {
                break;
            }
            let (_, slot) = self.deadlines.remove_min().expect("the first deadline was just seen");
            if let Some(entry) = self.entries.remove(&slot) {
                self.data_bytes -= entry_bytes(&slot.key, &entry.value);
            }
            expired += 1;
        }
        expired
    }

    /// Sets `slot` to `value` with `deadline`, keeping the deadline index in step. A deadline at
    /// or before the clock deletes the key instead: Redis deletes a key that SET (or EXPIRE) gives
    /// a time already past, and storing it would break the invariant that reads never see one.
    pub(crate) fn put(&mut self, slot: Slot, value: Bytes, deadline: Option<u64>) {
        if deadline.is_some_and(|deadline| deadline <= self.clock) {
            self.remove(&slot);
            return;
        }
        match self.entries.entry(slot) {
            MapEntry::Occupied(mut occupied) => {
                reindex(&mut self.deadlines, occupied.key(), occupied.get().deadline, deadline);
                self.data_bytes -= occupied.get().value.len() as u64;
                self.data_bytes += value.len() as u64;
                *occupied.get_mut() = Entry { value, deadline };
            }
            MapEntry::Vacant(vacant) => {
                reindex(&mut self.deadlines, vacant.key(), None, deadline);
                self.data_bytes += entry_bytes(&vacant.key().key, &value);
                vacant.insert(Entry { value, deadline });
            }
        }
    }

    /// Gives an existing key a new deadline (or none); a deadline at or before the clock deletes
    /// it, as in [`KvStore::put`]. Returns whether the key existed.
    pub(crate) fn set_deadline(&mut self, slot: &Slot, deadline: Option<u64>) -> bool {
        if deadline.is_some_and(|deadline| deadline <= self.clock) {
            return self.remove(slot).is_some();
        }
        let Some(entry) = self.entries.get_mut(slot) else {
            return false;
        };
        reindex(&mut self.deadlines, slot, entry.deadline, deadline);
        entry.deadline = deadline;
        true
    }

    /// Deletes `slot`, returning its entry.
    pub(crate) fn remove(&mut self, slot: &Slot) -> Option<Entry> {
        let entry = self.entries.remove(slot)?;
        reindex(&mut self.deadlines, slot, entry.deadline, None);
        self.data_bytes -= entry_bytes(&slot.key, &entry.value);
        Some(entry)
    }

    /// Deletes every key. The clock stays: it never moves backwards.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.deadlines.clear();
        self.data_bytes = 0;
    }

    /// Panics unless both invariants hold. O(n): for tests, after every apply.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        let indexed: OrdSet<(u64, Slot)> = self
            .entries
            .iter()
            .filter_map(|(slot, entry)| entry.deadline.map(|deadline| (deadline, slot.clone())))
            .collect();
        assert_eq!(indexed, self.deadlines, "the deadline index is out of step with the entries");
        let counted: u64 =
            self.entries.iter().map(|(slot, entry)| entry_bytes(&slot.key, &entry.value)).sum();
        assert_eq!(counted, self.data_bytes, "data_bytes is out of step with the entries");
        for slot in self.entries.keys() {
            assert_eq!(slot.hash, crate::hash::key_hash(&slot.key), "a slot with a stale hash");
        }
        if let Some(first) = self.next_expiry() {
            assert!(first > self.clock, "a key due at {first} outlived the clock {}", self.clock);
        }
    }
}

/// Moves `slot` in the deadline index from `old` to `new`.
fn reindex(deadlines: &mut OrdSet<(u64, Slot)>, slot: &Slot, old: Option<u64>, new: Option<u64>) {
    if old == new {
        return;
    }
    if let Some(old) = old {
        deadlines.remove(&(old, slot.clone()));
    }
    if let Some(new) = new {
        deadlines.insert((new, slot.clone()));
    }
}
