//! Snapshot images: round trips, canonical bytes, and clear errors for damaged images.

use bytes::{BufMut, BytesMut};

use super::harness::*;
use crate::hash::fnv1a;
use crate::wire::{put_bytes, put_varint, WireError};
use crate::{KvStore, SnapshotError};

fn populated() -> Node {
    let mut node = Node::new();
    node.script(&[
        ("MSET a 1 b 2 c 3", ok()),
        ("SET session s PX 5000", ok()),
        ("SET empty ''", ok()),
        ("EXPIREAT b 1800000000", int(1)),
    ]);
    node.advance(1_234);
    node.run("INCR a");
    node
}

#[test]
fn an_empty_store_round_trips() {
    let image = KvStore::new().snapshot();
    assert_eq!(KvStore::restore(&image), Ok(KvStore::new()));
    assert_eq!(image.len(), 4 + 1 + 8 + 1 + 1 + 8);
}

#[test]
fn a_restored_store_equals_the_original_and_writes_the_same_image() {
    let node = populated();
    let image = node.store.snapshot();
    let restored = KvStore::restore(&image).expect("a fresh image restores");
    restored.assert_invariants();
    assert_eq!(restored, node.store);
    assert_eq!(restored.clock(), EPOCH_MS + 1_234);
    assert_eq!((restored.len(), restored.expires()), (5, 2));
    assert_eq!(restored.next_expiry(), Some(EPOCH_MS + 5_000));
    assert_eq!(restored.snapshot(), image);
}

#[test]
fn equal_states_reached_by_different_histories_write_equal_images() {
    let mut first = Node::new();
    first.script(&[
        ("SET x 1", ok()),
        ("SET y 2 EX 100", ok()),
        ("SET z 3", ok()),
        ("DEL z", int(1)),
    ]);
    let mut second = Node::new();
    second.script(&[("SET y 0", ok()), ("MSET y 2 x 1", ok()), ("EXPIRE y 100", int(1))]);
    assert_eq!(first.store.snapshot(), second.store.snapshot());
}

/// Builds an image around `body` with a correct header and checksum, as a faulty encoder might.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_slice(b"CKVS");
    out.put_u8(1);
    out.put_u64_le((4 + 1 + 8 + body.len() + 8) as u64);
    out.put_slice(body);
    let checksum = fnv1a(&out);
    out.put_u64_le(checksum);
    out.to_vec()
}

#[test]
fn damaged_images_are_refused_with_what_is_wrong() {
    let image = populated().store.snapshot().to_vec();
    let restore = |bytes: &[u8]| KvStore::restore(bytes).unwrap_err();

    assert_eq!(restore(&[]), SnapshotError::TooShort(0));
    assert_eq!(restore(b"CKV"), SnapshotError::TooShort(3));
    assert_eq!(restore(b"garbage"), SnapshotError::BadMagic);
    let mut magic = image.clone();
    magic[0] = b'X';
    assert_eq!(restore(&magic), SnapshotError::BadMagic);
    let mut version = image.clone();
    version[4] = 2;
    assert_eq!(restore(&version), SnapshotError::UnsupportedVersion(2));
    let declared = image.len() as u64;
    assert_eq!(
        restore(&image[..image.len() - 1]),
        SnapshotError::Truncated { declared, actual: image.len() - 1 }
    );
    assert_eq!(restore(&image[..20]), SnapshotError::Truncated { declared, actual: 20 });
    let mut longer = image.clone();
    longer.push(0);
    assert_eq!(restore(&longer), SnapshotError::Oversized { declared, actual: image.len() + 1 });
    for at in [13, 20, image.len() - 3] {
        let mut flipped = image.clone();
        flipped[at] ^= 0x10;
        assert_eq!(restore(&flipped), SnapshotError::ChecksumMismatch, "byte {at} flipped");
    }
    let message = restore(&image[..20]).to_string();
    assert_eq!(
        message,
        format!("the image is truncated: its header declares {declared} bytes but it has 20")
    );
}

#[test]
fn images_with_a_valid_checksum_but_a_bad_body_are_refused() {
    let entry = |out: &mut BytesMut, key: &[u8], deadline: u64| {
        put_bytes(out, key);
        put_bytes(out, b"v");
        put_varint(out, deadline);
    };
    // Two entries out of the store's order (the order of key hashes).
    let mut keys = [&b"a"[..], b"b"];
    keys.sort_by_key(|key| std::cmp::Reverse(crate::hash::key_hash(key)));
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 2);
    entry(&mut body, keys[0], 0);
    entry(&mut body, keys[1], 0);
    assert_eq!(KvStore::restore(&framed(&body)), Err(SnapshotError::OutOfOrder));
    // The same key twice.
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 2);
    entry(&mut body, b"a", 0);
    entry(&mut body, b"a", 0);
    assert_eq!(KvStore::restore(&framed(&body)), Err(SnapshotError::OutOfOrder));
    // A key that its own clock says is gone.
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 1);
    entry(&mut body, b"a", 100);
    assert_eq!(
        KvStore::restore(&framed(&body)),
        Err(SnapshotError::ExpiredEntry { deadline: 100, clock: 100 })
    );
    // Counts and lengths beyond the image, and trailing bytes.
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 1_000_000);
    assert!(matches!(
        KvStore::restore(&framed(&body)),
        Err(SnapshotError::Malformed(WireError::CountTooLarge { count: 1_000_000, .. }))
    ));
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 1);
    put_varint(&mut body, 50);
    body.put_slice(b"short");
    assert_eq!(
        KvStore::restore(&framed(&body)),
        Err(SnapshotError::Malformed(WireError::Truncated("a key")))
    );
    let mut body = BytesMut::new();
    put_varint(&mut body, 100);
    put_varint(&mut body, 0);
    body.put_u8(7);
    assert_eq!(
        KvStore::restore(&framed(&body)),
        Err(SnapshotError::Malformed(WireError::TrailingBytes(1)))
    );
}
