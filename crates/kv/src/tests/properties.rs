//! Properties over random command sequences: snapshots restore to the same state and the same
//! future, stores given the same log agree, and nothing panics on arbitrary bytes.

use bytes::Bytes;
use conclave_resp::Frame;
use proptest::prelude::*;

use super::harness::*;
use crate::codec::{decode, encode};
use crate::{expire_command, plan, KvStore, Plan};

/// One client step: how far the leader's clock moved, then a command line (or `TICK`).
type Step = (u64, String);

fn key() -> impl Strategy<Value = String> {
    (0u8..6).prop_map(|key| format!("k{key}"))
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["1", "-7", "41", "abc", "''", "9223372036854775807", "x"])
        .prop_map(str::to_owned)
}

fn set_options() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "NX",
        "XX",
        "GET",
        "KEEPTTL",
        "EX 2",
        "PX 1500",
        "PX 300 NX",
        "XX GET EX 1",
        "EXAT 1700000003",
        "PXAT 1700000000500",
        "KEEPTTL GET",
        "NX XX",
        "EX 0",
    ])
    .prop_map(str::to_owned)
}

fn expire_options() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "NX", "XX", "GT", "LT", "XX GT", "NX LT"]).prop_map(str::to_owned)
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (key(), value(), set_options()).prop_map(|(k, v, o)| format!("SET {k} {v} {o}")),
        3 => key().prop_map(|k| format!("GET {k}")),
        1 => (key(), key()).prop_map(|(a, b)| format!("DEL {a} {b}")),
        2 => key().prop_map(|k| format!("INCR {k}")),
        1 => (key(), -5i64..5).prop_map(|(k, n)| format!("DECRBY {k} {n}")),
        1 => (key(), value()).prop_map(|(k, v)| format!("APPEND {k} {v}")),
        2 => (key(), -1i64..4, expire_options())
            .prop_map(|(k, n, o)| format!("EXPIRE {k} {n} {o}")),
        1 => (key(), 0i64..3000).prop_map(|(k, n)| format!("PEXPIRE {k} {n}")),
        1 => key().prop_map(|k| format!("PERSIST {k}")),
        1 => key().prop_map(|k| format!("GETDEL {k}")),
        1 => (key(), value()).prop_map(|(k, v)| format!("GETSET {k} {v}")),
        1 => (key(), value(), key()).prop_map(|(a, v, b)| format!("MSET {a} {v} {b} {v}")),
        1 => (key(), value(), key()).prop_map(|(a, v, b)| format!("MSETNX {a} {v} {b} {v}")),
        1 => (key(), value()).prop_map(|(k, v)| format!("SETNX {k} {v}")),
        1 => (key(), 1i64..3).prop_map(|(k, n)| format!("SETEX {k} {n} v")),
        2 => key().prop_map(|k| format!("PTTL {k}")),
        1 => (key(), key()).prop_map(|(a, b)| format!("EXISTS {a} {b} {a}")),
        1 => (key(), key()).prop_map(|(a, b)| format!("MGET {a} {b}")),
        1 => key().prop_map(|k| format!("STRLEN {k}")),
        1 => Just("DBSIZE".to_owned()),
        1 => Just("KEYS *".to_owned()),
        1 => (any::<u64>(), 1u64..4).prop_map(|(c, n)| format!("SCAN {c} COUNT {n}")),
        2 => Just("TICK".to_owned()),
        1 => Just("FLUSHDB".to_owned()),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0u64..1500, command()), 1..max)
}

/// Runs `steps` on `node`, returning every reply.
fn play(node: &mut Node, steps: &[Step]) -> Vec<Frame> {
    steps
        .iter()
        .map(|(elapsed, line)| {
            node.advance(*elapsed);
            node.run(line)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Apply a prefix, snapshot, restore, then continue on both: same replies, same images.
    #[test]
    fn a_restored_store_continues_exactly_as_the_original(
        prefix in steps(40),
        suffix in steps(40),
    ) {
        let mut original = Node::new();
        play(&mut original, &prefix);
        let image = original.store.snapshot();
        let restored_store = KvStore::restore(&image).expect("a fresh image restores");
        prop_assert_eq!(&restored_store, &original.store);
        prop_assert_eq!(restored_store.snapshot(), image);
        let mut restored = Node { store: restored_store, now: original.now };
        prop_assert_eq!(play(&mut original, &suffix), play(&mut restored, &suffix));
        prop_assert_eq!(original.store.snapshot(), restored.store.snapshot());
    }

    /// Two stores given the same log (one of them via a log decoded and re-encoded) agree on
    /// every reply and on the final image; and encoding is canonical.
    #[test]
    fn stores_given_the_same_log_agree(steps in steps(60)) {
        let mut leader = Node::new();
        let mut log = Vec::new();
        for (elapsed, line) in &steps {
            leader.advance(*elapsed);
            let planned = if line == "TICK" {
                Some(Plan::Write(expire_command(leader.now)))
            } else {
                plan(&args(line), leader.now)
            };
            if let Some(Plan::Write(command)) = planned {
                let (now_ms, write) = decode(&command).expect("planned writes decode");
                prop_assert_eq!(encode(now_ms, &write), command.clone());
                log.push(command);
            }
        }
        let (mut first, mut second) = (KvStore::new(), KvStore::new());
        for command in &log {
            prop_assert_eq!(first.apply(command), second.apply(command));
        }
        prop_assert_eq!(first.snapshot(), second.snapshot());
    }

    #[test]
    fn apply_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        tail in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut store = KvStore::new();
        store.apply(&bytes);
        // Also entries that get past the format byte and the operation.
        for operation in 0..12u8 {
            let mut entry = vec![1, operation];
            entry.extend_from_slice(&tail);
            store.apply(&entry);
            store.assert_invariants();
        }
    }

    #[test]
    fn apply_never_panics_on_damaged_real_commands(
        steps in steps(10),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut node = Node::new();
        for (_, line) in &steps {
            let Some(Plan::Write(command)) = plan(&args(line), node.now) else { continue };
            let mut damaged = command.to_vec();
            for (at, byte) in &damage {
                let at = at.index(damaged.len());
                damaged[at] = *byte;
            }
            node.apply(&damaged);
            node.apply(&command[..cut.index(command.len())]);
        }
    }

    #[test]
    fn restore_never_panics_on_arbitrary_or_damaged_images(
        bytes in prop::collection::vec(any::<u8>(), 0..96),
        steps in steps(12),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let _ = KvStore::restore(&bytes);
        let mut framed = b"CKVS\x01".to_vec();
        framed.extend_from_slice(&((13 + bytes.len()) as u64).to_le_bytes());
        framed.extend_from_slice(&bytes);
        let _ = KvStore::restore(&framed);
        let mut node = Node::new();
        play(&mut node, &steps);
        let mut image = node.store.snapshot().to_vec();
        for (at, byte) in &damage {
            let at = at.index(image.len());
            image[at] = *byte;
        }
        if let Ok(store) = KvStore::restore(&image) {
            store.assert_invariants();
        }
    }

    #[test]
    fn plan_never_panics_on_arbitrary_arguments(
        name in prop::sample::select(vec![
            "SET", "EXPIRE", "PEXPIREAT", "SCAN", "SETEX", "INCRBY", "DECRBY", "FLUSHALL", "MSET", "GET",
        ]),
        rest in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "NX", "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "COUNT",
                    "MATCH", "TYPE", "0", "-1", "9223372036854775807", "-9223372036854775808",
                ]).prop_map(|word| Bytes::from_static(word.as_bytes())),
                prop::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from),
            ],
            0..6,
        ),
        now_ms in prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>()],
    ) {
        let mut arguments = vec![Bytes::from_static(name.as_bytes())];
        arguments.extend(rest);
        if let Some(Plan::Write(command)) = plan(&arguments, now_ms) {
            KvStore::new().apply(&command);
        }
    }
}
