//! Every command's happy path and errors, against the replies Redis 7 documents and gives.

use bytes::Bytes;
use conclave_resp::Frame;

use super::harness::*;
use crate::{plan, Plan, Query};

#[test]
fn get_and_set() {
    Node::new().script(&[
        ("GET k", nil()),
        ("SET k v", ok()),
        ("GET k", bulk("v")),
        ("SET k w", ok()),
        ("GET k", bulk("w")),
        ("set K other", ok()),
        ("GET K", bulk("other")),
        ("SET empty ''", ok()),
        ("GET empty", bulk("")),
        ("SET '' value-of-the-empty-key", ok()),
        ("GET ''", bulk("value-of-the-empty-key")),
    ]);
}

#[test]
fn set_nx_and_xx() {
    Node::new().script(&[
        ("SET k v XX", nil()),
        ("GET k", nil()),
        ("SET k v NX", ok()),
        ("SET k w NX", nil()),
        ("GET k", bulk("v")),
        ("SET k w XX", ok()),
        ("GET k", bulk("w")),
        ("SET k x nx NX", nil()),
    ]);
}

#[test]
fn set_get_replies_with_the_old_value_even_when_nx_or_xx_stops_the_write() {
    Node::new().script(&[
        ("SET k v GET", nil()),
        ("SET k w GET", bulk("v")),
        ("SET k x NX GET", bulk("w")),
        ("GET k", bulk("w")),
        ("SET absent x XX GET", nil()),
        ("EXISTS absent", int(0)),
        ("SET fresh x NX GET", nil()),
        ("GET fresh", bulk("x")),
        ("SET k y GET EX 100", bulk("w")),
        ("TTL k", int(100)),
    ]);
}

#[test]
fn set_option_conflicts_are_syntax_errors() {
    let mut node = Node::new();
    for line in [
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v EX 10 PX 100",
        "SET k v PX 100 EXAT 10",
        "SET k v EXAT 10 PXAT 10",
        "SET k v EX 10 KEEPTTL",
        "SET k v KEEPTTL EX 10",
        "SET k v KEEPTTL PXAT 10",
        "SET k v EX",
        "SET k v NX EX",
        "SET k v PERSIST",
        "SET k v BOGUS",
        "SET k v 10",
    ] {
        assert_eq!(node.run(line), err(SYNTAX), "{line}");
    }
    assert_eq!(node.store.len(), 0, "no refused SET changed anything");
    // The same expiry twice is allowed, the last amount winning, as in Redis.
    node.script(&[("SET k v EX 10 EX 20", ok()), ("TTL k", int(20)), ("SET k v NX NX", nil())]);
}

#[test]
fn set_expiry_amounts_are_checked_as_redis_checks_them() {
    let invalid = err("ERR invalid expire time in 'set' command");
    Node::new().script(&[
        ("SET k v EX 0", invalid.clone()),
        ("SET k v PX -1", invalid.clone()),
        ("SET k v EXAT 0", invalid.clone()),
        ("SET k v EX 9223372036854775", invalid.clone()),
        ("SET k v PX 9223372036854775807", invalid.clone()),
        ("SET k v EX ten", err(NOT_INTEGER)),
        ("SET k v PX 1.5", err(NOT_INTEGER)),
        ("SET k v EX 99999999999999999999", err(NOT_INTEGER)),
        // Syntax is checked before the amount.
        ("SET k v EX zero NX XX", err(SYNTAX)),
        ("EXISTS k", int(0)),
        ("SET k v EX 10", ok()),
        ("PTTL k", int(10_000)),
        ("SET k v PX 1500", ok()),
        ("PTTL k", int(1_500)),
        ("SET k v PXAT 1700000009000", ok()),
        ("PTTL k", int(9_000)),
        ("SET k v EXAT 1700000100", ok()),
        ("PTTL k", int(100_000)),
        ("SET k v KEEPTTL", ok()),
        ("PTTL k", int(100_000)),
    ]);
}

#[test]
fn setnx_setex_psetex_getset_getdel() {
    Node::new().script(&[
        ("SETNX k v", int(1)),
        ("SETNX k w", int(0)),
        ("GET k", bulk("v")),
        ("SETEX k 100 w", ok()),
        ("GET k", bulk("w")),
        ("TTL k", int(100)),
        ("SETEX k 0 w", err("ERR invalid expire time in 'setex' command")),
        ("SETEX k -5 w", err("ERR invalid expire time in 'setex' command")),
        ("SETEX k ten w", err(NOT_INTEGER)),
        ("PSETEX k 2500 x", ok()),
        ("PTTL k", int(2_500)),
        ("PSETEX k 0 x", err("ERR invalid expire time in 'psetex' command")),
        ("GETSET k y", bulk("x")),
        ("TTL k", int(-1)),
        ("GETSET fresh z", nil()),
        ("GET fresh", bulk("z")),
        ("GETDEL k", bulk("y")),
        ("GETDEL k", nil()),
        ("EXISTS k", int(0)),
    ]);
}

#[test]
fn del_unlink_exists_and_touch_count_as_redis_counts() {
    Node::new().script(&[
        ("MSET a 1 b 2 c 3", ok()),
        ("EXISTS a a b missing", int(3)),
        ("TOUCH a missing a", int(2)),
        ("DEL a a missing", int(1)),
        ("UNLINK b c b", int(2)),
        ("EXISTS a b c", int(0)),
        ("DBSIZE", int(0)),
    ]);
}

#[test]
fn incr_decr_incrby_decrby() {
    Node::new().script(&[
        ("INCR n", int(1)),
        ("INCR n", int(2)),
        ("DECR n", int(1)),
        ("INCRBY n 10", int(11)),
        ("DECRBY n 20", int(-9)),
        ("GET n", bulk("-9")),
        ("INCRBY n -1", int(-10)),
        ("DECR fresh", int(-1)),
        ("SET big 9223372036854775806", ok()),
        ("INCR big", int(i64::MAX)),
        ("INCR big", err("ERR increment or decrement would overflow")),
        ("GET big", bulk("9223372036854775807")),
        ("SET small -9223372036854775807", ok()),
        ("DECR small", int(i64::MIN)),
        ("DECRBY small 1", err("ERR increment or decrement would overflow")),
        ("INCRBY low -9223372036854775808", int(i64::MIN)),
        ("DECRBY n -9223372036854775808", err("ERR decrement would overflow")),
    ]);
}

#[test]
fn incr_refuses_what_is_not_a_64_bit_integer() {
    let mut node = Node::new();
    for value in ["abc", "''", "1.5", "+1", "01", "-0", "9223372036854775808", "1x"] {
        node.run(&format!("SET v {value}"));
        assert_eq!(node.run("INCR v"), err(NOT_INTEGER), "INCR of {value}");
    }
    node.script(&[
        ("INCRBY n ten", err(NOT_INTEGER)),
        ("DECRBY n 1.0", err(NOT_INTEGER)),
        ("INCRBY n 9223372036854775808", err(NOT_INTEGER)),
        ("EXISTS n", int(0)),
    ]);
}

#[test]
fn append_and_strlen() {
    Node::new().script(&[
        ("STRLEN k", int(0)),
        ("APPEND k Hello", int(5)),
        ("APPEND k _World", int(11)),
        ("APPEND k ''", int(11)),
        ("GET k", bulk("Hello_World")),
        ("STRLEN k", int(11)),
        ("APPEND n 1", int(1)),
        ("APPEND n 2", int(2)),
        ("INCR n", int(13)),
    ]);
}

#[test]
fn append_grows_a_value_without_disturbing_earlier_reads() {
    let mut node = Node::new();
    node.run("SET k abc");
    let Plan::Read(get) = plan(&args("GET k"), node.now).unwrap() else { panic!() };
    // A reader still holds the old value while APPEND grows it.
    let before = node.store.query(&get, node.now);
    for _ in 0..100 {
        node.run("APPEND k d");
    }
    assert_eq!(before, bulk("abc"));
    assert_eq!(node.run("STRLEN k"), int(103));
}

#[test]
fn mget_mset_msetnx() {
    Node::new().script(&[
        ("MSET a 1 b 2", ok()),
        ("MGET a missing b", Frame::Array(vec![bulk("1"), nil(), bulk("2")])),
        ("MSET a 3 a 4", ok()),
        ("GET a", bulk("4")),
        ("MSETNX a 5 c 6", int(0)),
        ("EXISTS c", int(0)),
        ("MSETNX c 6 d 7", int(1)),
        ("MGET c d", bulks(&["6", "7"])),
        ("MSET a 1 b", err("ERR wrong number of arguments for 'mset' command")),
        ("MSETNX a 1 b", err("ERR wrong number of arguments for 'msetnx' command")),
        ("SET t v EX 100", ok()),
        ("MSET t w", ok()),
        ("TTL t", int(-1)),
    ]);
}

#[test]
fn type_dbsize_keys_randomkey_and_flush() {
    let mut node = Node::new();
    node.script(&[
        ("RANDOMKEY", nil()),
        ("TYPE k", simple("none")),
        ("MSET k 1 key 2 other 3", ok()),
        ("TYPE k", simple("string")),
        ("DBSIZE", int(3)),
    ]);
    let Frame::Array(mut keys) = node.run("KEYS k*") else { panic!() };
    keys.sort_by_key(|key| format!("{key:?}"));
    assert_eq!(keys, vec![bulk("k"), bulk("key")]);
    let Frame::Bulk(random) = node.run("RANDOMKEY") else { panic!() };
    assert!([&b"k"[..], b"key", b"other"].contains(&&random[..]));
    node.script(&[
        ("FLUSHDB", ok()),
        ("DBSIZE", int(0)),
        ("SET k v", ok()),
        ("FLUSHALL ASYNC", ok()),
        ("SET k v", ok()),
        ("flushdb sync", ok()),
        ("DBSIZE", int(0)),
        ("FLUSHDB NOW", err(SYNTAX)),
        ("FLUSHALL SYNC ASYNC", err(SYNTAX)),
    ]);
}

#[test]
fn random_key_spreads_over_the_keys() {
    let mut node = Node::new();
    for key in 0..8 {
        node.run(&format!("SET key{key} v"));
    }
    let mut picked = std::collections::BTreeSet::new();
    for _ in 0..200 {
        node.advance(1);
        picked.insert(format!("{:?}", node.run("RANDOMKEY")));
    }
    assert_eq!(picked.len(), 8, "every key is picked at some millisecond");
}

#[test]
fn every_command_checks_its_arity_as_redis_does() {
    // (name, argument counts that are wrong, the name included)
    let cases: &[(&str, &[usize])] = &[
        ("get", &[1, 3]),
        ("set", &[1, 2]),
        ("setnx", &[2, 4]),
        ("setex", &[3, 5]),
        ("psetex", &[3, 5]),
        ("getset", &[2, 4]),
        ("getdel", &[1, 3]),
        ("del", &[1]),
        ("unlink", &[1]),
        ("exists", &[1]),
        ("touch", &[1]),
        ("incr", &[1, 3]),
        ("decr", &[1, 3]),
        ("incrby", &[2, 4]),
        ("decrby", &[2, 4]),
        ("append", &[2, 4]),
        ("strlen", &[1, 3]),
        ("mget", &[1]),
        ("mset", &[1, 2, 4]),
        ("msetnx", &[1, 2, 4]),
        ("type", &[1, 3]),
        ("ttl", &[1, 3]),
        ("pttl", &[1, 3]),
        ("expiretime", &[1, 3]),
        ("pexpiretime", &[1, 3]),
        ("expire", &[1, 2]),
        ("pexpire", &[1, 2]),
        ("expireat", &[1, 2]),
        ("pexpireat", &[1, 2]),
        ("persist", &[1, 3]),
        ("scan", &[1]),
        ("keys", &[1, 3]),
        ("dbsize", &[2]),
        ("randomkey", &[2]),
    ];
    for (name, counts) in cases {
        for &count in counts.iter() {
            let mut line = vec![name.to_uppercase()];
            line.extend((1..count).map(|i| format!("a{i}")));
            let reply = plan(&args(&line.join(" ")), EPOCH_MS);
            let expected = err(&format!("ERR wrong number of arguments for '{name}' command"));
            assert_eq!(reply, Some(Plan::Reply(expected)), "{name} with {count} arguments");
        }
    }
}

#[test]
fn reads_writes_and_immediate_replies_are_planned_as_the_server_expects() {
    let planned = |line: &str| plan(&args(line), EPOCH_MS).expect("a data command");
    assert_eq!(planned("get k"), Plan::Read(Query::Get(Bytes::from("k"))));
    for line in ["GET k", "MGET a b", "EXISTS k", "STRLEN k", "TTL k", "SCAN 0", "KEYS *", "DBSIZE"]
    {
        assert!(matches!(planned(line), Plan::Read(_)), "{line}");
    }
    for line in ["SET k v", "INCR k", "DEL k", "GETDEL k", "SET k v GET", "EXPIRE k 1", "FLUSHALL"]
    {
        assert!(matches!(planned(line), Plan::Write(_)), "{line}");
    }
    assert!(matches!(planned("SET k v NX XX"), Plan::Reply(_)));
    for not_ours in
        ["PING", "HELLO 3", "INFO", "CLIENT LIST", "SELECT 0", "NOSUCHCOMMAND", "getex k"]
    {
        assert_eq!(plan(&args(not_ours), EPOCH_MS), None, "{not_ours}");
    }
    assert_eq!(plan(&[], EPOCH_MS), None);
}

#[test]
fn keys_and_values_are_binary_safe() {
    let mut node = Node::new();
    let key = Bytes::from_static(b"\x00\xff\r\n key");
    let value = Bytes::from_static(b"\x00\x01\x02\r\n");
    let set = [Bytes::from("SET"), key.clone(), value.clone()];
    assert_eq!(node.run_args(&set), ok());
    assert_eq!(node.run_args(&[Bytes::from("GET"), key.clone()]), Frame::Bulk(value));
    let unsupported = node.run_args(&[
        Bytes::from("EXPIRE"),
        key,
        Bytes::from("10"),
        Bytes::from_static(b"B\r\nAD"),
    ]);
    assert_eq!(unsupported, err("ERR Unsupported option B  AD"));
}
