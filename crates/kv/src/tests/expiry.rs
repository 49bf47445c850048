//! Expiry by the replicated clock: deadlines set at the leader, keys deleted on every node at the
//! same log position, TTLs, and the EXPIRE family's options.

use super::harness::*;
use crate::{expire_command, plan, KvStore, Plan};

#[test]
fn a_key_set_with_ex_is_deleted_by_the_first_command_applied_past_its_deadline() {
    let mut node = Node::new();
    node.script(&[("SET k v EX 10", ok()), ("SET other v", ok())]);
    assert_eq!(node.store.expires(), 1);
    assert_eq!(node.store.next_expiry(), Some(EPOCH_MS + 10_000));
    node.advance(9_999);
    node.script(&[("SET unrelated v", ok()), ("GET k", bulk("v"))]);
    node.advance(1);
    // Any write advances the replicated clock, and expiry happens before the write executes.
    node.script(&[("SET unrelated w", ok()), ("GET k", nil()), ("TTL k", int(-2))]);
    assert_eq!(node.store.expires(), 0);
    assert_eq!(node.store.next_expiry(), None);
    assert_eq!(node.store.len(), 2);
}

#[test]
fn reads_see_a_key_until_the_replicated_clock_passes_its_deadline() {
    let mut node = Node::new();
    node.run("SET k v PX 100");
    // The node's own clock is past the deadline, but no command has moved the replicated clock:
    // the key is still there, with no time left.
    node.advance(500);
    node.script(&[
        ("GET k", bulk("v")),
        ("PTTL k", int(0)),
        ("TTL k", int(0)),
        ("EXISTS k", int(1)),
    ]);
    assert_eq!(node.store.clock(), EPOCH_MS);
    // The leader's expiry tick deletes it on every node that applies the tick.
    node.script(&[("TICK", int(1)), ("GET k", nil()), ("EXISTS k", int(0)), ("DBSIZE", int(0))]);
    assert_eq!(node.store.clock(), EPOCH_MS + 500);
}

#[test]
fn a_write_sees_the_key_expired_in_the_same_apply() {
    let mut node = Node::new();
    node.run("SET k 5 PX 100");
    node.advance(100);
    // INCR executes after the clock advanced, so it starts from an absent key.
    node.script(&[("INCR k", int(1)), ("TTL k", int(-1))]);
    node.run("SET j v PX 100");
    node.advance(100);
    node.script(&[("SET j w NX", ok()), ("SET j x XX GET", bulk("w"))]);
}

#[test]
fn ttl_and_pttl_report_the_time_left_rounded_as_redis_rounds() {
    let mut node = Node::new();
    node.script(&[
        ("TTL missing", int(-2)),
        ("PTTL missing", int(-2)),
        ("SET k v", ok()),
        ("TTL k", int(-1)),
        ("PTTL k", int(-1)),
        ("SET k v EX 100", ok()),
        ("TTL k", int(100)),
        ("PTTL k", int(100_000)),
    ]);
    node.advance(1_499);
    node.script(&[("PTTL k", int(98_501)), ("TTL k", int(99))]);
    node.advance(2);
    node.script(&[("PTTL k", int(98_499)), ("TTL k", int(98))]);
}

#[test]
fn expiretime_and_pexpiretime_report_the_deadline() {
    Node::new().script(&[
        ("EXPIRETIME k", int(-2)),
        ("SET k v", ok()),
        ("PEXPIRETIME k", int(-1)),
        ("PEXPIREAT k 1700000012345", int(1)),
        ("PEXPIRETIME k", int(1_700_000_012_345)),
        ("EXPIRETIME k", int(1_700_000_012)),
        ("EXPIREAT k 1800000000", int(1)),
        ("EXPIRETIME k", int(1_800_000_000)),
    ]);
}

#[test]
fn persist_removes_a_deadline() {
    let mut node = Node::new();
    node.script(&[
        ("PERSIST missing", int(0)),
        ("SET k v", ok()),
        ("PERSIST k", int(0)),
        ("EXPIRE k 10", int(1)),
        ("PERSIST k", int(1)),
        ("TTL k", int(-1)),
        ("PERSIST k", int(0)),
    ]);
    assert_eq!(node.store.expires(), 0);
    node.advance(20_000);
    node.script(&[("TICK", int(0)), ("GET k", bulk("v"))]);
}

#[test]
fn expire_and_its_nx_xx_gt_lt_options() {
    Node::new().script(&[
        ("EXPIRE missing 10", int(0)),
        ("SET k v", ok()),
        // No deadline: XX and GT refuse (none counts as infinite), NX and LT accept.
        ("EXPIRE k 100 XX", int(0)),
        ("EXPIRE k 100 GT", int(0)),
        ("TTL k", int(-1)),
        ("EXPIRE k 100 LT", int(1)),
        ("TTL k", int(100)),
        ("PERSIST k", int(1)),
        ("EXPIRE k 100 NX", int(1)),
        // With a deadline of 100 s.
        ("EXPIRE k 50 NX", int(0)),
        ("EXPIRE k 200 XX", int(1)),
        ("TTL k", int(200)),
        ("EXPIRE k 150 GT", int(0)),
        ("EXPIRE k 200 GT", int(0)),
        ("EXPIRE k 300 GT", int(1)),
        ("EXPIRE k 300 LT", int(0)),
        ("EXPIRE k 400 LT", int(0)),
        ("EXPIRE k 250 LT", int(1)),
        ("TTL k", int(250)),
        ("EXPIRE k 260 XX GT", int(1)),
        ("EXPIRE k 100 xx lt", int(1)),
        ("PEXPIRE k 5000", int(1)),
        ("PTTL k", int(5_000)),
    ]);
}

#[test]
fn expire_options_and_amounts_are_checked_as_redis_checks_them() {
    let nx_conflict = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    let gt_lt = err("ERR GT and LT options at the same time are not compatible");
    Node::new().script(&[
        ("SET k v", ok()),
        ("EXPIRE k 10 NX XX", nx_conflict.clone()),
        ("EXPIRE k 10 GT NX", nx_conflict.clone()),
        ("EXPIRE k 10 NX LT", nx_conflict),
        ("EXPIRE k 10 GT LT", gt_lt),
        ("EXPIRE k 10 FOO", err("ERR Unsupported option FOO")),
        ("EXPIRE k 10 nx foo", err("ERR Unsupported option foo")),
        // Options are checked before the amount.
        ("EXPIRE k ten BAR", err("ERR Unsupported option BAR")),
        ("EXPIRE k ten", err(NOT_INTEGER)),
        ("PEXPIRE k 1.5", err(NOT_INTEGER)),
        ("EXPIRE k 9223372036854776", err("ERR invalid expire time in 'expire' command")),
        ("EXPIRE k -9223372036854776", err("ERR invalid expire time in 'expire' command")),
        ("PEXPIRE k 9223372036854775807", err("ERR invalid expire time in 'pexpire' command")),
        ("EXPIREAT k 9223372036854776", err("ERR invalid expire time in 'expireat' command")),
        // PEXPIREAT adds nothing, so the largest time is valid.
        ("PEXPIREAT k 9223372036854775807", int(1)),
        ("PEXPIRETIME k", int(i64::MAX)),
        ("TTL k", int(9_223_370_336_854_776)),
    ]);
}

#[test]
fn a_deadline_already_past_deletes_the_key() {
    Node::new().script(&[
        ("SET k v", ok()),
        ("EXPIRE k 0", int(1)),
        ("EXISTS k", int(0)),
        ("SET k v", ok()),
        ("EXPIRE k -10", int(1)),
        ("EXISTS k", int(0)),
        ("SET k v", ok()),
        ("EXPIREAT k 1", int(1)),
        ("EXISTS k", int(0)),
        ("SET k v", ok()),
        ("PEXPIREAT k -5", int(1)),
        ("EXISTS k", int(0)),
        ("SET k v EX 100", ok()),
        ("EXPIRE k -1 LT", int(1)),
        ("EXISTS k", int(0)),
        // SET with a past absolute time sets and deletes at once; its reply is still OK.
        ("SET k v PXAT 1000", ok()),
        ("EXISTS k", int(0)),
        ("SET k v", ok()),
        ("SET k w EXAT 1 GET", bulk("v")),
        ("EXISTS k", int(0)),
        ("DBSIZE", int(0)),
    ]);
}

#[test]
fn set_and_getset_and_mset_clear_the_deadline_while_keepttl_incr_and_append_keep_it() {
    Node::new().script(&[
        ("SET k 1 EX 100", ok()),
        ("SET k 2 KEEPTTL", ok()),
        ("TTL k", int(100)),
        ("INCR k", int(3)),
        ("TTL k", int(100)),
        ("APPEND k 0", int(2)),
        ("TTL k", int(100)),
        ("SET k 4", ok()),
        ("TTL k", int(-1)),
        ("SET k 5 EX 100", ok()),
        ("GETSET k 6", bulk("5")),
        ("TTL k", int(-1)),
        ("SET k KEEPTTL KEEPTTL", ok()),
        ("GET k", bulk("KEEPTTL")),
    ]);
}

#[test]
fn the_replicated_clock_never_moves_backwards() {
    let mut node = Node::new();
    node.run("SET k v PX 1000");
    node.advance(5_000);
    node.run("SET unrelated v");
    assert_eq!(node.store.clock(), EPOCH_MS + 5_000);
    // A new leader whose clock is 10 s behind: its commands do not move the clock back...
    node.now -= 10_000;
    node.run("SET other v");
    assert_eq!(node.store.clock(), EPOCH_MS + 5_000);
    // ...and a deadline it computes that is already behind the replicated clock deletes the key.
    node.script(&[("SET slow v EX 2", ok()), ("EXISTS slow", int(0))]);
    node.script(&[("SET fine v EX 20", ok()), ("EXISTS fine", int(1))]);
    assert_eq!(node.store.apply(&expire_command(0)), int(0));
    assert_eq!(node.store.clock(), EPOCH_MS + 5_000);
}

#[test]
fn the_expiry_tick_deletes_every_due_key_and_reports_how_many() {
    let mut node = Node::new();
    for (key, ms) in [("a", 100), ("b", 200), ("c", 300), ("d", 400)] {
        node.run(&format!("SET {key} v PX {ms}"));
    }
    node.run("SET forever v");
    assert_eq!((node.store.expires(), node.store.next_expiry()), (4, Some(EPOCH_MS + 100)));
    node.advance(250);
    node.script(&[("TICK", int(2)), ("MGET a b c", Frame::Array(vec![nil(), nil(), bulk("v")]))]);
    assert_eq!((node.store.expires(), node.store.next_expiry()), (2, Some(EPOCH_MS + 300)));
    node.advance(1_000);
    node.script(&[("TICK", int(2)), ("TICK", int(0)), ("DBSIZE", int(1))]);
}

#[test]
fn flush_deletes_everything_but_keeps_the_clock() {
    let mut node = Node::new();
    node.script(&[("SET k v EX 10", ok()), ("SET j v", ok())]);
    node.advance(3);
    node.run("FLUSHALL");
    assert_eq!((node.store.len(), node.store.expires()), (0, 0));
    assert_eq!(node.store.clock(), EPOCH_MS + 3);
}

#[test]
fn every_node_applying_the_same_log_deletes_the_same_keys() {
    // The leader plans with its clock; followers' clocks never enter apply.
    let mut leader = Node::new();
    let mut log = Vec::new();
    for (at, line) in
        [(0, "SET a v PX 50"), (10, "SET b v PX 500"), (100, "SET c v"), (600, "TICK")]
    {
        leader.now = EPOCH_MS + at;
        log.push(if line == "TICK" {
            expire_command(leader.now)
        } else {
            let Some(Plan::Write(command)) = plan(&args(line), leader.now) else { panic!() };
            command
        });
    }
    let mut followers = [KvStore::new(), KvStore::new()];
    for follower in &mut followers {
        for command in &log {
            follower.apply(command);
        }
    }
    assert_eq!(followers[0], followers[1]);
    assert_eq!(followers[0].len(), 1);
    assert_eq!(followers[0].clock(), EPOCH_MS + 600);
}

use conclave_resp::Frame;
