//! SCAN and KEYS through the commands, and the fixed hash their cursors are made of.

use std::collections::BTreeSet;

use bytes::Bytes;
use conclave_resp::Frame;
use proptest::prelude::*;

use super::harness::*;
use crate::hash::{fnv1a, key_hash};

/// One SCAN call: the next cursor and the keys returned.
fn scan(node: &mut Node, cursor: u64, options: &str) -> (u64, Vec<Bytes>) {
    let Frame::Array(reply) = node.run(&format!("SCAN {cursor} {options}")) else {
        panic!("SCAN did not reply with an array");
    };
    let [Frame::Bulk(next), Frame::Array(keys)] = &reply[..] else {
        panic!("SCAN's reply is not [cursor, keys]: {reply:?}");
    };
    let next = std::str::from_utf8(next).unwrap().parse().unwrap();
    let keys = keys
        .iter()
        .map(|key| match key {
            Frame::Bulk(key) => key.clone(),
            other => panic!("a key that is not a bulk string: {other:?}"),
        })
        .collect();
    (next, keys)
}

/// Every key a full scan returns, and how many calls it took.
fn scan_all(node: &mut Node, options: &str) -> (Vec<Bytes>, usize) {
    let (mut cursor, mut all, mut calls) = (0, Vec::new(), 0);
    loop {
        let (next, keys) = scan(node, cursor, options);
        all.extend(keys);
        calls += 1;
        if next == 0 {
            return (all, calls);
        }
        assert!(next > cursor, "cursors increase");
        cursor = next;
    }
}

fn node_with_keys(count: usize) -> Node {
    let mut node = Node::new();
    for key in 0..count {
        node.run(&format!("SET key:{key} v"));
    }
    node
}

#[test]
fn a_full_scan_of_a_quiet_store_returns_every_key_once() {
    let mut node = node_with_keys(100);
    let (keys, calls) = scan_all(&mut node, "");
    assert_eq!(keys.len(), 100);
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 100);
    assert_eq!(calls, 10, "COUNT defaults to 10");
    let (keys, calls) = scan_all(&mut node, "COUNT 1000");
    assert_eq!((keys.len(), calls), (100, 1));
    let (keys, calls) = scan_all(&mut node, "count 7");
    assert_eq!((keys.len(), calls), (100, 15));
}

#[test]
fn an_empty_store_scans_in_one_call() {
    let mut node = Node::new();
    assert_eq!(scan(&mut node, 0, ""), (0, vec![]));
    assert_eq!(scan(&mut node, 12_345, ""), (0, vec![]));
}

#[test]
fn match_and_type_filter_what_is_returned_not_what_is_walked() {
    let mut node = node_with_keys(30);
    node.run("SET other v");
    let (keys, calls) = scan_all(&mut node, "MATCH key:1*");
    let mut keys: Vec<_> =
        keys.iter().map(|key| String::from_utf8(key.to_vec()).unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "key:1", "key:10", "key:11", "key:12", "key:13", "key:14", "key:15", "key:16",
            "key:17", "key:18", "key:19"
        ]
    );
    assert_eq!(calls, 4, "31 keys walked 10 at a time");
    assert_eq!(scan_all(&mut node, "MATCH * COUNT 100").0.len(), 31);
    assert_eq!(scan_all(&mut node, "TYPE string COUNT 100").0.len(), 31);
    assert_eq!(scan_all(&mut node, "TYPE STRING").0.len(), 31);
    let (keys, calls) = scan_all(&mut node, "TYPE hash");
    assert_eq!((keys.len(), calls), (0, 4));
    let (keys, _) = scan_all(&mut node, "COUNT 5 MATCH other TYPE string");
    assert_eq!(keys, vec![Bytes::from("other")]);
}

#[test]
fn scan_errors_are_worded_as_in_redis() {
    Node::new().script(&[
        ("SCAN abc", err("ERR invalid cursor")),
        ("SCAN -1", err("ERR invalid cursor")),
        ("SCAN 18446744073709551616", err("ERR invalid cursor")),
        ("SCAN 0 COUNT 0", err(SYNTAX)),
        ("SCAN 0 COUNT -3", err(SYNTAX)),
        ("SCAN 0 COUNT ten", err(NOT_INTEGER)),
        ("SCAN 0 MATCH", err(SYNTAX)),
        ("SCAN 0 COUNT 10 MATCH", err(SYNTAX)),
        ("SCAN 0 LIMIT 10", err(SYNTAX)),
        ("SCAN 0 TYPE nosuchtype", err("ERR unknown type name 'nosuchtype'")),
        ("SCAN abc COUNT 0", err("ERR invalid cursor")),
    ]);
}

#[test]
fn keys_returns_the_keys_matching_a_glob() {
    let mut node = Node::new();
    node.run("MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5");
    let mut matching = |pattern: &str| {
        let Frame::Array(keys) = node.run(&format!("KEYS {pattern}")) else { panic!() };
        let mut keys: Vec<String> = keys
            .into_iter()
            .map(|key| match key {
                Frame::Bulk(key) => String::from_utf8(key.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(matching("h?llo"), ["hallo", "hello", "hxllo"]);
    assert_eq!(matching("h*llo"), ["hallo", "heeeello", "hello", "hllo", "hxllo"]);
    assert_eq!(matching("h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(matching("h[^e]llo"), ["hallo", "hxllo"]);
    assert_eq!(matching("h[a-b]llo"), ["hallo"]);
    assert_eq!(matching("nothing*").len(), 0);
    assert_eq!(matching("*").len(), 5);
}

#[test]
fn the_key_hash_is_pinned_forever() {
    // Cursors held by clients and images written by older releases depend on these numbers
    // (checked against an independent implementation of FNV-1a and fmix64).
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(key_hash(b""), 0xefd0_1f60_ba99_2926);
    assert_eq!(key_hash(b"user:1"), 0x4ce5_3ee4_648c_ef41);
}

/// One step of a scan under concurrent writes: a SCAN call with this COUNT, then these changes.
type Step = (u64, Vec<(bool, u8)>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Redis's guarantee through the real commands and the real hash: a key present from the
    /// first SCAN call to the last is returned, whatever is written and deleted in between.
    #[test]
    fn scan_returns_every_key_present_throughout_despite_writes_between_calls(
        initial in prop::collection::btree_set(0u8..120, 0..80),
        steps in prop::collection::vec(
            (1u64..12, prop::collection::vec((any::<bool>(), 0u8..120), 0..8)),
            1..30,
        ),
    ) {
        let mut node = Node::new();
        for key in &initial {
            node.run(&format!("SET k{key} v"));
        }
        let mut present_throughout = initial.clone();
        let mut returned = BTreeSet::new();
        let mut cursor = 0;
        let mut steps = steps.into_iter();
        loop {
            let (count, changes): Step = steps.next().unwrap_or((1_000, Vec::new()));
            let (next, keys) = scan(&mut node, cursor, &format!("COUNT {count}"));
            returned.extend(keys);
            if next == 0 {
                break;
            }
            prop_assert!(next > cursor);
            cursor = next;
            for (insert, key) in changes {
                if insert {
                    node.run(&format!("SET k{key} v"));
                } else {
                    node.run(&format!("DEL k{key}"));
                    present_throughout.remove(&key);
                }
            }
        }
        for key in present_throughout {
            prop_assert!(returned.contains(&Bytes::from(format!("k{key}"))), "k{key} never returned");
        }
    }
}
