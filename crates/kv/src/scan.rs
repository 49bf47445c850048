//! SCAN's walk over the key order, and why it keeps Redis's guarantee.
//!
//! Keys are ordered by `(hash, key)`; a cursor is a hash. A call walks the keys whose hash is at
//! least the cursor, in order, until it has visited `count` of them *and* finished the run of keys
//! sharing the last hash; the next cursor is the hash of the first key it did not visit, or 0 when
//! it reached the end.
//!
//! The guarantee (a key present from the first call to the last is returned at least once, keys
//! inserted or deleted meanwhile may or may not be) follows because the cursors of one scan
//! strictly increase, and each call visits every key present at that moment whose hash lies
//! between its cursor and the next one: a key present throughout, with hash `h`, lies in exactly
//! one such interval and is visited by that call. Runs of keys sharing a hash are never split,
//! because a cursor cannot point between them. Nothing is remembered between calls, so a cursor
//! stays valid across leader changes, snapshots and restarts, on any node.
//!
//! A cursor never resumes at hash 0 (every call visits at least one key, and the next key's hash
//! is larger than that key's), so 0 is free to mean "done", as in Redis.

use imbl::OrdMap;

use crate::hash::Slot;

/// Walks `entries` from `cursor`, visiting at least `count` keys (at least one) unless the walk
/// ends, plus the rest of the last hash's run. Returns the next cursor: 0 once nothing is left.
pub(crate) fn walk<V: Clone>(
    entries: &OrdMap<Slot, V>,
    cursor: u64,
    count: u64,
    mut visit: impl FnMut(&Slot),
) -> u64 {
    let count = count.max(1);
    let mut last_hash = None;
    for (visited, slot) in entries.range(Slot::first_at(cursor)..).map(|(slot, _)| slot).enumerate()
    {
        if visited as u64 >= count && last_hash != Some(slot.hash) {
            return slot.hash;
        }
        visit(slot);
        last_hash = Some(slot.hash);
    }
    0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use imbl::OrdMap;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::walk;
    use crate::hash::Slot;

    /// A slot with a made-up hash, so that tests can force many keys onto few hashes.
    fn slot(key: u8, buckets: u8) -> Slot {
        Slot { hash: u64::from(key % buckets) * 1000, key: Bytes::from(vec![key]) }
    }

    #[test]
    fn keys_sharing_a_hash_are_returned_by_one_call() {
        let entries: OrdMap<Slot, ()> = (0..12).map(|key| (slot(key, 3), ())).collect();
        let mut seen = Vec::new();
        // COUNT 1, but four keys share hash 0.
        let next = walk(&entries, 0, 1, |slot| seen.push(slot.key[0]));
        assert_eq!(seen, vec![0, 3, 6, 9]);
        assert_eq!(next, 1000);
        let next = walk(&entries, next, 5, |_| {});
        assert_eq!(next, 0, "8 keys remain in two runs; COUNT 5 ends inside the second run");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Keys present for the whole scan are returned at least once, whatever is inserted or
        /// deleted between calls, and with many keys forced onto the same hash.
        #[test]
        fn a_key_present_throughout_is_returned(
            initial in prop::collection::btree_set(any::<u8>(), 0..60),
            buckets in 1u8..40,
            steps in prop::collection::vec(
                (1u64..8, prop::collection::vec((any::<bool>(), any::<u8>()), 0..6)),
                1..40,
            ),
        ) {
            let mut entries: OrdMap<Slot, ()> =
                initial.iter().map(|key| (slot(*key, buckets), ())).collect();
            let mut present_throughout: BTreeSet<u8> = initial.clone();
            let mut returned = BTreeSet::new();
            let mut cursor = 0;
            let mut steps = steps.into_iter();
            loop {
                let (count, changes) = steps.next().unwrap_or((1_000, Vec::new()));
                cursor = walk(&entries, cursor, count, |slot| {
                    returned.insert(slot.key[0]);
                });
                if cursor == 0 {
                    break;
                }
                for (insert, key) in changes {
                    if insert {
                        entries.insert(slot(key, buckets), ());
                    } else {
                        entries.remove(&slot(key, buckets));
                        present_throughout.remove(&key);
                    }
                }
            }
            let missed: Vec<_> = present_throughout.difference(&returned).collect();
            prop_assert!(missed.is_empty(), "keys present throughout but never returned: {missed:?}");
        }
    }
}
