//! The fixed key hash, and the slot a key occupies in the store's order.
//!
//! Keys are ordered by `(hash, key)`. SCAN's cursor is a position in that order, so the hash is
//! part of the protocol a client sees and part of the snapshot format (restore checks the order):
//! it must give the same number for the same key on every node, on every platform and in every
//! release. That rules out `std`'s `DefaultHasher` and `RandomState`, whose output is unspecified
//! and seeded per process. The hash is written out here instead: 64-bit FNV-1a, then MurmurHash3's
//! `fmix64` finaliser. FNV-1a alone is stable and cheap, but it spreads keys that differ only in
//! their last bytes (`user:1`, `user:2`) poorly over the high bits; the finaliser is a bijection
//! that mixes every input bit into every output bit, so the order (and RANDOMKEY's pick) is close
//! to uniform over the hash space. Collisions are harmless to correctness: keys sharing a hash
//! are told apart by the key itself and are returned together by one SCAN call.

use bytes::Bytes;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `data`. Also the snapshot's checksum: it catches the accidental damage
/// (truncation, flipped bytes) that the storage layer's own checksums might not cover once an
/// image has travelled through InstallSnapshot.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// MurmurHash3's 64-bit finaliser: a bijection that mixes every bit into every other.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The hash that orders keys and that SCAN cursors are made of. Never change it: cursors handed
/// to clients and snapshot images written by an older release depend on it.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    mix64(fnv1a(key))
}

/// A key and its hash: the store's map key. The derived order compares the hash first (one
/// integer comparison for almost every step of a lookup) and the key bytes only on equal hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    /// `key_hash(&key)`. Invariant: always equal to it; only `Slot::new` builds a slot with a key.
    pub(crate) hash: u64,
    /// The key.
    pub(crate) key: Bytes,
}

impl Slot {
    /// The slot of `key`.
    pub(crate) fn new(key: Bytes) -> Slot {
        Slot { hash: key_hash(&key), key }
    }

    /// The smallest slot with this hash (the empty key sorts first): where a range over the order
    /// starts to find every key whose hash is at least `hash`.
    pub(crate) fn first_at(hash: u64) -> Slot {
        Slot { hash, key: Bytes::new() }
    }
}
