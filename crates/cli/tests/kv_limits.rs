//! Client limits on real `conclave serve` processes: what one connection, and all of them
//! together, may hold and for how long, and the data set's `maxmemory`. Each test pins down an
//! attack that took a leader down or a misleading error, and observes the server through INFO
//! (never through sleeps).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{eventually, ProcCluster, WAIT};
use redis::Commands;

/// The value of `field` in INFO's `section`.
fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}: {info}"))
        .trim()
        .parse()
        .unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Reads until the server closes the connection; panics if it has not within [`WAIT`]. Returns
/// how many bytes came before the end.
fn read_until_closed(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return total,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

/// The report: six connections pipelining GETs of an 8 MB key without reading the replies grew
/// the leader to 3 GB. A session now stops executing while its replies are backed up, and
/// closes a connection whose replies stay above the soft limit.
#[test]
fn a_client_pipelining_large_reads_without_reading_is_closed_and_memory_stays_bounded() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--client-output-soft-bytes=1048576".into());
    cluster.extra.push("--client-output-soft-s=1".into());
    cluster.start_all();
    let mut con = cluster.redis(0);
    let value = vec![b'v'; 2 << 20];
    let _: () = con.set("big", &value[..]).unwrap();

    let mut greedy = connect(cluster.ports[0].client);
    let pipeline = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(200);
    greedy.write_all(pipeline.as_bytes()).unwrap();
    eventually("the greedy client to be closed", || {
        (info_field(&mut con, "stats", "client_output_buffer_limit_disconnections") == 1)
            .then_some(())
    });
    let received = read_until_closed(&mut greedy);
    assert!(received < 50 * value.len(), "{received} bytes of replies were produced");
    // The server never held more than about one reply for it, not 200 of them (400 MB).
    let held = info_field(&mut con, "clients", "client_recent_max_output_buffer");
    assert!(held <= 2 * value.len() as u64, "one client held {held} bytes of replies");
    // Everyone else is still served.
    let len: usize = con.strlen("big").unwrap();
    assert_eq!(len, value.len());
}

/// Redis's hard output limit: a reply that would take a connection's untaken replies past it
/// closes the connection at once.
#[test]
fn a_reply_beyond_the_hard_output_limit_closes_the_connection() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--client-output-hard-bytes=1048576".into());
    cluster.start_all();
    let mut con = cluster.redis(0);
    let limit: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("client-output-buffer-limit").query(&mut con).unwrap();
    assert_eq!(limit[1], format!("normal 1048576 {} 60", 16 << 20));
    let _: () = con.set("big", vec![b'v'; 2 << 20]).unwrap();
    let mut reader = connect(cluster.ports[0].client);
    reader.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n").unwrap();
    assert!(read_until_closed(&mut reader) < 1 << 20);
    assert_eq!(info_field(&mut con, "stats", "client_output_buffer_limit_disconnections"), 1);
    let len: usize = con.strlen("big").unwrap();
    assert_eq!(len, 2 << 20);
}

/// The report: connections holding unfinished requests held memory forever. A request left
/// half-sent is dropped after the partial-request timeout, and an idle connection (one that
/// neither sends nor takes replies) after `timeout` when it is set.
#[test]
fn an_unfinished_request_and_an_idle_connection_are_closed_after_their_timeouts() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--client-partial-request-timeout-ms=300".into());
    cluster.extra.push("--client-idle-timeout-s=1".into());
    cluster.start_all();
    let mut con = cluster.redis(0);
    let timeout: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("timeout").query(&mut con).unwrap();
    assert_eq!(timeout, vec!["timeout".to_string(), "1".to_string()]);

    let mut half = connect(cluster.ports[0].client);
    half.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\nonly a few bytes").unwrap();
    assert_eq!(read_until_closed(&mut half), 0);

    let mut idle = connect(cluster.ports[0].client);
    idle.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    idle.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    assert_eq!(read_until_closed(&mut idle), 0);

    // A client that takes none of its replies is idle as well, even with replies waiting.
    let mut con = cluster.redis(0);
    let _: () = con.set("big", vec![b'v'; 6 << 20]).unwrap();
    let mut stalled = connect(cluster.ports[0].client);
    stalled.write_all("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(8).as_bytes()).unwrap();
    let mut con = cluster.redis(0);
    // Only the asking connection is left once the stalled one is closed.
    eventually("the stalled client to be closed", || {
        (info_field(&mut con, "clients", "connected_clients") == 1).then_some(())
    });
    assert!(read_until_closed(&mut stalled) < 8 * (6 << 20));
}

/// The report: 100 connections each holding an unfinished 8 MB request held 810 MB, with no
/// global limit. Above `max_client_memory_bytes` (Redis's `maxmemory-clients`) the connection
/// holding the most is closed first, and the others keep being served.
#[test]
fn over_the_client_memory_limit_the_largest_client_is_closed_first() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--max-request-bytes=16777216".into());
    cluster.extra.push(format!("--max-client-memory-bytes={}", 18 << 20));
    cluster.start_all();
    let mut con = cluster.redis(0);
    let limit: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-clients").query(&mut con).unwrap();
    assert_eq!(limit[1], (18 << 20).to_string());

    let start = |len: usize, sent: usize| {
        let mut stream = connect(cluster.ports[0].client);
        let head = format!("*3\r\n$3\r\nSET\r\n$5\r\nlarge\r\n${len}\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&vec![b'x'; sent]).unwrap();
        stream
    };
    let mut largest = start(15 << 20, 14 << 20);
    eventually("the server to hold the large request", || {
        (info_field(&mut con, "memory", "mem_clients_normal") >= 14 << 20).then_some(())
    });
    let mut small = start(4 << 20, 3 << 20);
    assert_eq!(read_until_closed(&mut largest), 0, "the largest client is closed");
    // The smaller one finishes its request and is answered.
    small.write_all(&vec![b'x'; 1 << 20]).unwrap();
    small.write_all(b"\r\n").unwrap();
    let mut reply = [0u8; 5];
    small.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    assert_eq!(info_field(&mut con, "stats", "evicted_clients"), 1);
}

/// `maxmemory`: once the data set is full, writes that would grow it get Redis's `-OOM` error
/// (through a follower too), while DEL still works and makes room again.
#[test]
fn a_full_store_answers_oom_and_still_deletes() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.extra.push("--max-memory-bytes=100000".into());
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let mut con = cluster.redis(leader);
    let value = vec![b'v'; 10_000];
    let mut stored = 0;
    let error = loop {
        match con.set::<_, _, ()>(format!("k{stored}"), &value[..]) {
            Ok(()) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 20, "maxmemory was never enforced");
    };
    assert!(stored >= 8, "refused too early, after {stored} keys");
    assert_eq!(error.code(), Some("OOM"), "{error:?}");
    assert!(
        error.to_string().contains("command not allowed when used memory > 'maxmemory'."),
        "{error}"
    );
    let mut through_follower = cluster.redis(follower);
    let refused = through_follower.set::<_, _, ()>("another", &value[..]).unwrap_err();
    assert_eq!(refused.code(), Some("OOM"), "{refused:?}");
    let deleted: i64 = through_follower.del(&["k0", "k1"]).unwrap();
    assert_eq!(deleted, 2);
    let _: () = con.set("another", &value[..]).unwrap();
    assert!(info_field(&mut con, "memory", "used_memory_dataset") <= 100_000);
}

/// The report: a write refused by the leader's client limit was answered "outcome unknown
/// (leadership changed)". The leader turned the forwarding connection away before the write was
/// sent, so the error must say the write was not applied, and why.
#[test]
fn a_forwarded_write_refused_by_the_leaders_client_limit_says_it_was_not_applied() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.extra.push("--max-clients=1".into());
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    // The one client the leader accepts.
    let mut holder = cluster.redis(leader);
    let _: () = redis::cmd("PING").query(&mut holder).unwrap();
    let mut con = cluster.redis(follower);
    let error = con.set::<_, _, ()>("k", "v").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("not applied"), "{text}");
    assert!(text.contains("max number of clients reached"), "{text}");
    assert!(!text.contains("unknown"), "{text}");
    let value: Option<String> = holder.get("k").unwrap();
    assert_eq!(value, None);
}

/// The report: any client could send `CONCLAVE FORWARDED` and never be idle-timed out again.
/// Only a connection that proves it comes from a member (an HMAC with the cluster secret over a
/// nonce the leader just handed out) is kept open; a follower's own forwarding connection still
/// carries writes after the idle timeout has passed.
#[test]
fn only_a_member_s_forwarding_connection_escapes_the_idle_timeout() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.extra.push("--client-idle-timeout-s=1".into());
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let mut through_follower = cluster.redis(follower);
    let _: () = through_follower.set("k", "1").unwrap();

    let mut claims = connect(cluster.ports[leader].client);
    claims.write_all(b"CONCLAVE FORWARDED\r\n").unwrap();
    let mut ok = [0u8; 5];
    claims.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    let mut guesses = connect(cluster.ports[leader].client);
    guesses.write_all(b"CONCLAVE NONCE\r\n").unwrap();
    let mut nonce = [0u8; 5 + 16 + 2];
    guesses.read_exact(&mut nonce).unwrap();
    assert_eq!(&nonce[..5], b"$16\r\n");
    guesses.write_all(b"*3\r\n$8\r\nCONCLAVE\r\n$9\r\nFORWARDED\r\n$32\r\n").unwrap();
    guesses.write_all(&[0u8; 32]).unwrap();
    guesses.write_all(b"\r\n").unwrap();
    let mut refused = [0u8; 45];
    guesses.read_exact(&mut refused).unwrap();
    assert_eq!(&refused, b"-ERR CONCLAVE FORWARDED proof does not match\r");
    // The client of the follower stays active (its own connection has the timeout too) but
    // writes nothing, so the follower's forwarding connection to the leader idles.
    let mut on_leader = cluster.redis(leader);
    eventually("the leader to close idle connections", || {
        let _: String = redis::cmd("PING").query(&mut through_follower).unwrap();
        let _: String = redis::cmd("PING").query(&mut on_leader).unwrap();
        (info_field(&mut on_leader, "stats", "client_timeout_disconnections") >= 2).then_some(())
    });
    assert_eq!(read_until_closed(&mut claims), 0, "a bare claim is idle-timed out");
    assert_eq!(read_until_closed(&mut guesses), 1, "a wrong proof is idle-timed out");
    // The forwarding connection, idle longer than both, was kept.
    assert_eq!(info_field(&mut on_leader, "stats", "client_timeout_disconnections"), 2);
    let _: () = through_follower.set("k", "2").unwrap();
    let mut on_follower = cluster.redis(follower);
    assert_eq!(info_field(&mut on_follower, "stats", "forwarded_writes"), 2);
    let value: String = on_leader.get("k").unwrap();
    assert_eq!(value, "2");
}

/// A client configured for TLS but pointed at the plain client port gets a clear error at once,
/// instead of a connection left hanging until the partial-request timeout.
#[test]
fn a_tls_handshake_on_the_plain_port_gets_a_clear_error_and_is_closed() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    let mut stream = connect(cluster.ports[0].client);
    // The start of a ClientHello record: handshake, TLS 1.0 record version, 200 bytes.
    stream.write_all(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03").unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("-ERR Protocol error: a TLS handshake reached"), "{reply}");
    let mut con = cluster.redis(0);
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}
