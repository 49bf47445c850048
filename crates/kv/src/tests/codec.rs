//! The log encoding: every write round-trips, the common ones are compact, and damaged entries
//! get the same error reply on every node without changing anything.

use bytes::Bytes;

use super::harness::*;
use crate::codec::{decode, encode};
use crate::write::{ExpireCondition, SetCondition, SetReply, SetTtl, SetWrite, Write};
use crate::{plan, KvStore, Plan};

fn key(text: &str) -> Bytes {
    Bytes::from(text.to_owned())
}

fn every_kind_of_write() -> Vec<Write> {
    let set = SetWrite {
        key: key("k"),
        value: key("v"),
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        reply: SetReply::Ok,
    };
    vec![
        Write::Tick,
        Write::Set(set.clone()),
        Write::Set(SetWrite {
            condition: SetCondition::IfAbsent,
            ttl: SetTtl::At(u64::MAX),
            reply: SetReply::OldValue,
            ..set.clone()
        }),
        Write::Set(SetWrite {
            condition: SetCondition::IfPresent,
            ttl: SetTtl::Keep,
            reply: SetReply::Flag,
            ..set
        }),
        Write::GetDel(key("k")),
        Write::Delete(vec![key("a"), key(""), key("c")]),
        Write::Delete(vec![]),
        Write::IncrBy { key: key("n"), delta: i64::MIN },
        Write::IncrBy { key: key("n"), delta: i64::MAX },
        Write::Append { key: key("k"), suffix: key("tail") },
        Write::MSet(vec![(key("a"), key("1")), (key("b"), key(""))]),
        Write::MSetNx(vec![(key("a"), key("1"))]),
        Write::Expire {
            key: key("k"),
            deadline: -5,
            condition: ExpireCondition { nx: false, xx: true, gt: true, lt: false },
        },
        Write::Expire { key: key("k"), deadline: i64::MAX, condition: ExpireCondition::default() },
        Write::Persist(key("k")),
        Write::Flush,
    ]
}

#[test]
fn every_write_round_trips() {
    for write in every_kind_of_write() {
        for now_ms in [0, EPOCH_MS, u64::MAX] {
            let encoded = encode(now_ms, &write);
            assert_eq!(decode(&encoded), Ok((now_ms, write.clone())), "{write:?}");
        }
    }
}

#[test]
fn a_plain_set_is_compact() {
    let Some(Plan::Write(command)) = plan(&args("SET key value"), EPOCH_MS) else { panic!() };
    // format, operation, a 6-byte clock, flags, and the two strings with their lengths.
    assert_eq!(command.len(), 1 + 1 + 6 + 1 + 4 + 6);
    assert_eq!(command[0], 1, "the format byte comes first");
}

#[test]
fn damaged_entries_get_an_error_reply_and_change_nothing() {
    let mut store = KvStore::new();
    let Some(Plan::Write(set)) = plan(&args("SET k v EX 10"), EPOCH_MS) else { panic!() };
    store.apply(&set);
    let before = store.clone();
    let mut trailing = set.to_vec();
    trailing.push(0);
    let mut bad_flags = set.to_vec();
    bad_flags[8] = 0xff;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "ERR undecodable command in the log: the input ends in the middle of the format byte"),
        (vec![2, 0, 0], "ERR undecodable command in the log: format 2 is not one this release reads (it reads format 1)"),
        (vec![1, 200, 0], "ERR undecodable command in the log: operation 200 is unknown"),
        (set[..set.len() - 2].to_vec(), "ERR undecodable command in the log: the input ends in the middle of the deadline"),
        (trailing, "ERR undecodable command in the log: 1 bytes follow the last field"),
        (bad_flags, "ERR undecodable command in the log: flags 0xff are not valid for SET"),
        (vec![1, 3, 0, 0xff, 0xff, 0xff, 0x0f], "ERR undecodable command in the log: the key count claims 33554431 items but only 0 bytes follow"),
    ];
    for (entry, expected) in cases {
        assert_eq!(store.apply(&entry), err(expected), "{entry:?}");
        assert_eq!(store, before, "a damaged entry changed the store");
    }
}
