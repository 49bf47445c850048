//! The data set's accounted size and the `maxmemory` check: the size follows every change the
//! same way on every node, and a full store refuses what may grow it but still deletes.

use bytes::Bytes;

use super::harness::{args, Node};
use crate::{plan, KvStore, Plan};

fn write(node: &Node, line: &str) -> Bytes {
    match plan(&args(line), node.now) {
        Some(Plan::Write(command)) => command,
        other => panic!("`{line}` is not a write: {other:?}"),
    }
}

#[test]
fn the_data_size_follows_every_change_and_survives_a_snapshot() {
    let mut node = Node::new();
    assert_eq!(node.store.data_bytes(), 0);
    node.run("SET key value");
    let one = node.store.data_bytes();
    assert!(one >= 8, "a key and its value count: {one}");
    node.run("APPEND key 12345");
    assert_eq!(node.store.data_bytes(), one + 5);
    node.run("SET key v");
    assert_eq!(node.store.data_bytes(), one - 4);
    node.run("MSET a 1 b 2");
    node.run("SET gone x PX 10");
    let restored = KvStore::restore(&node.store.snapshot()).unwrap();
    assert_eq!(restored.data_bytes(), node.store.data_bytes());
    node.advance(20);
    node.run("TICK");
    node.run("DEL key a");
    node.run("GETDEL b");
    assert_eq!(node.store.data_bytes(), 0);
    node.run("SET key value");
    node.run("FLUSHDB");
    assert_eq!(node.store.data_bytes(), 0);
}

#[test]
fn a_full_store_refuses_what_may_grow_it_and_admits_what_shrinks_it() {
    let mut node = Node::new();
    assert!(node.store.admits(&write(&node, "SET big 0123456789"), 0), "0 means no limit");
    node.run("SET big 0123456789012345678901234567890123456789");
    let limit = node.store.data_bytes() + 8;
    for line in ["SET other 0123456789", "APPEND big 0123456789", "INCR counter", "MSET a 1 b 2"] {
        assert!(!node.store.admits(&write(&node, line), limit), "`{line}` must be refused");
    }
    for line in ["DEL big", "GETDEL big", "EXPIRE big 10", "PERSIST big", "FLUSHDB"] {
        assert!(node.store.admits(&write(&node, line), limit), "`{line}` must be admitted");
    }
    node.run("DEL big");
    assert!(node.store.admits(&write(&node, "SET other 0123456789"), limit));
}
