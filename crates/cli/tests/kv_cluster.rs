//! The key-value server as users run it: real `conclave serve` processes on loopback, driven
//! through the `redis` client crate, raw sockets, the admin port, `redis-cli` and
//! `redis-benchmark`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, http, ProcCluster, WAIT};
use redis::Commands;

#[test]
fn every_node_serves_reads_and_writes() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    for i in 0..3 {
        let mut con = cluster.redis(i);
        let _: () = con.set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    for i in 0..3 {
        let mut con = cluster.redis(i);
        for j in 0..3 {
            let value: String = con.get(format!("k{j}")).unwrap();
            assert_eq!(value, format!("v{j}"), "node {} reading k{j}", i + 1);
        }
        let n: i64 = con.incr("counter", 1).unwrap();
        assert_eq!(n, i as i64 + 1);
    }
    let mut con = cluster.redis(1);
    let values: Vec<Option<String>> = con.mget(&["k0", "missing", "k2"]).unwrap();
    assert_eq!(values, vec![Some("v0".into()), None, Some("v2".into())]);
    let removed: i64 = con.del(&["k0", "k1"]).unwrap();
    assert_eq!(removed, 2);
    let keys: Vec<String> = con.scan_match("k*").unwrap().collect();
    assert_eq!(keys, vec!["k2".to_string()]);

    // Expiry is decided by the leader and replicated: the key disappears everywhere.
    let _: () = redis::cmd("SET").arg("short").arg("x").arg("PX").arg(300).query(&mut con).unwrap();
    let ttl: i64 = con.pttl("short").unwrap();
    assert!((1..=300).contains(&ttl), "pttl {ttl}");
    for i in 0..3 {
        let mut con = cluster.redis(i);
        eventually("the key to expire", || {
            let value: Option<String> = con.get("short").unwrap();
            value.is_none().then_some(())
        });
        let ttl: i64 = con.ttl("short").unwrap();
        assert_eq!(ttl, -2);
    }

    // INFO names the process and Raft's view.
    let leader = cluster.wait_leader();
    let info: String = redis::cmd("INFO").query(&mut cluster.redis(leader)).unwrap();
    assert!(info.contains(&format!("process_id:{}", cluster.pid(leader))), "{info}");
    assert!(info.contains("raft_role:leader"), "{info}");
    assert!(info.contains(&format!("leader_id:{}", leader + 1)), "{info}");
    assert!(info.contains("commit_index:"), "{info}");

    // Per-connection settings.
    let mut con = cluster.redis((leader + 1) % 3);
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("tester").query(&mut con).unwrap();
    let name: String = redis::cmd("CLIENT").arg("GETNAME").query(&mut con).unwrap();
    assert_eq!(name, "tester");
    let _: () = redis::cmd("READMODE").arg("stale").query(&mut con).unwrap();
    let mode: String = redis::cmd("READMODE").query(&mut con).unwrap();
    assert_eq!(mode, "stale");
    let _: () = redis::cmd("REDIRECT").arg("ON").query(&mut con).unwrap();
    let error = con.set::<_, _, ()>("redirected", "1").unwrap_err();
    assert_eq!(error.code(), Some("MOVED"), "{error}");
    assert!(error.to_string().contains(&cluster.ports[leader].client.to_string()), "{error}");
    let pipeline_results: Vec<i64> = redis::pipe()
        .incr("p", 1)
        .incr("p", 1)
        .incr("p", 1)
        .query(&mut cluster.redis(leader))
        .unwrap();
    assert_eq!(pipeline_results, vec![1, 2, 3]);
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let old = cluster.wait_leader();
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Writers on the two followers (they forward): they keep writing across the failover.
    let mut writers = Vec::new();
    for w in 0..2 {
        let node = (old + 1 + w) % 3;
        let url = format!("redis://{}/", cluster.ports[node].client);
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let client = redis::Client::open(url).unwrap();
            let mut con = client.get_connection_with_timeout(WAIT).unwrap();
            con.set_read_timeout(Some(WAIT)).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}:{n}");
                if con.set::<_, _, ()>(&key, n).is_ok() {
                    acked.lock().unwrap().insert(key, n);
                }
                n += 1;
            }
        }));
    }
    let count = || acked.lock().unwrap().len();
    eventually("writes before the failover", || (count() >= 200).then_some(()));
    cluster.kill(old);
    let before = count();
    let new = cluster.wait_leader_other_than(Some(old));
    assert_ne!(new, old);
    eventually("writes after the failover", || (count() >= before + 200).then_some(()));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let check = |cluster: &ProcCluster, nodes: &[usize], when: &str| {
        for &i in nodes {
            let mut con = cluster.redis(i);
            for (key, n) in &acked {
                // TRYAGAIN (a read not confirmed in time, a leader just elected) asks the client
                // to retry; it says nothing about the data, so retry it.
                let value: Option<u64> = eventually("a confirmed read", || match con.get(key) {
                    Err(e) if e.kind() == redis::ErrorKind::TryAgain => None,
                    other => Some(other.unwrap()),
                });
                assert_eq!(
                    value,
                    Some(*n),
                    "node {} lost acknowledged {key} {when}\n{}",
                    i + 1,
                    cluster.logs()
                );
            }
        }
    };
    // On the two survivors right after re-election, then on all three once the old leader is
    // back (it must not bring back a different history).
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    check(&cluster, &survivors, "after re-election");
    cluster.start(old);
    check(&cluster, &[0, 1, 2], "after the old leader restarted");
}

#[test]
fn a_full_restart_after_kill_9_keeps_everything() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.extra.push("--snapshot-entries=100".into());
    cluster.start_all();
    let mut con = cluster.redis(0);
    for n in 0..300 {
        let _: () = con.set(format!("key{n}"), n).unwrap();
    }
    drop(con);
    for i in 0..3 {
        cluster.kill(i);
    }
    cluster.start_all();
    for i in 0..3 {
        let mut con = cluster.redis(i);
        for n in 0..300 {
            let value: Option<i64> = con.get(format!("key{n}")).unwrap();
            assert_eq!(value, Some(n), "node {}", i + 1);
        }
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 300);
    }
    let status = cluster.status(0).unwrap();
    assert!(status["snapshot_index"].as_u64().unwrap() >= 100, "{status}");

    // Again on new ports: the configured addresses win over the old ones that the snapshots'
    // address book carries, so the nodes find each other.
    for i in 0..3 {
        cluster.kill(i);
    }
    let fresh = ProcCluster::new(3, 3);
    cluster.ports = fresh.ports.clone();
    cluster.start_all();
    let mut con = cluster.redis(2);
    let value: Option<i64> = con.get("key299").unwrap();
    assert_eq!(value, Some(299));
    let _: () = con.set("after-move", 1).unwrap();
}

#[test]
fn members_are_added_and_removed_through_the_admin_api() {
    let mut cluster = ProcCluster::new(4, 3);
    cluster.start_all();
    let _: () = cluster.redis(0).set("before", "1").unwrap();
    cluster.start(3);
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let add =
        format!(r#"{{"action":"add-learner","id":4,"peer_addr":"{}"}}"#, cluster.ports[3].peer);
    // A follower names the leader instead of acting.
    let (code, body) = http(cluster.ports[follower].admin, "POST", "/members", &add).unwrap();
    assert_eq!(code, 421, "{body}");
    assert!(body.contains(&cluster.ports[leader].admin.to_string()), "{body}");
    let (code, body) = http(cluster.ports[leader].admin, "POST", "/members", &add).unwrap();
    assert_eq!(code, 200, "{body}");
    eventually("the promotion", || {
        let (code, _) =
            http(cluster.ports[leader].admin, "POST", "/members", r#"{"action":"promote","id":4}"#)
                .ok()?;
        (code == 200).then_some(())
    });
    let status = cluster.status(leader).unwrap();
    let members = status["members"].as_array().unwrap();
    assert!(members.iter().any(|m| m["id"] == 4 && m["role"] == "voter"), "{status}");
    // The new voter serves, and knows what was written before it joined.
    let mut con = cluster.redis(3);
    let before: String = con.get("before").unwrap();
    assert_eq!(before, "1");
    let _: () = con.set("after", "2").unwrap();
    // Remove a follower; the cluster keeps serving with the rest.
    let victim = (leader + 2) % 3;
    let remove = format!(r#"{{"action":"remove","id":{}}}"#, victim + 1);
    let (code, body) = http(cluster.ports[leader].admin, "POST", "/members", &remove).unwrap();
    assert_eq!(code, 200, "{body}");
    let status = cluster.status(leader).unwrap();
    assert!(
        !status["members"].as_array().unwrap().iter().any(|m| m["id"] == victim as u64 + 1),
        "{status}"
    );
    let (code, body) =
        http(cluster.ports[leader].admin, "POST", "/members", r#"{"action":"fly","id":2}"#)
            .unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(cluster.ports[leader].admin, "GET", "/nowhere", "").unwrap();
    assert_eq!(code, 404);
    let (code, metrics) = http(cluster.ports[leader].admin, "GET", "/metrics", "").unwrap();
    assert_eq!(code, 200);
    for name in [
        "conclave_proposals_total",
        "conclave_fsync_seconds_bucket",
        "conclave_messages_sent_total",
        "conclave_transport_bytes_sent_total",
        "conclave_elections_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

/// Sends raw bytes and returns what came back until the server closed or went quiet.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn bad_input_gets_errors_and_the_server_keeps_serving() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--max-request-bytes=65536".into());
    cluster.start_all();
    let addr = cluster.ports[0].client;
    assert_eq!(raw(addr, b"*abc\r\n"), "-ERR Protocol error: invalid multibulk length\r\n");
    assert!(raw(addr, b"*1\r\n$99999999\r\n").starts_with("-ERR Protocol error"));
    assert!(raw(addr, b"*1\r\n+PING\r\n").starts_with("-ERR Protocol error: expected '$', got '+'"));
    let big = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n{}\r\n", "x".repeat(200_000));
    assert!(raw(addr, big.as_bytes()).starts_with("-ERR Protocol error"));
    // An unknown command is an error, and the connection stays usable.
    let reply = raw(addr, b"FLY me\r\nPING\r\nSET a b\r\nGET a\r\n");
    assert_eq!(
        reply,
        "-ERR unknown command 'FLY', with args beginning with: 'me' \r\n+PONG\r\n+OK\r\n$1\r\nb\r\n"
    );
    assert!(raw(addr, b"GET\r\n").starts_with("-ERR wrong number of arguments for 'get' command"));
    assert_eq!(raw(cluster.ports[0].admin, b"BLAH\r\n\r\n").split(' ').nth(1), Some("400"));
    // Still serving.
    let mut con = cluster.redis(0);
    let value: String = con.get("a").unwrap();
    assert_eq!(value, "b");
    assert!(cluster.children[0].as_mut().unwrap().try_wait().unwrap().is_none());
}

#[test]
fn auth_is_required_when_a_password_is_set() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--password=s3cret".into());
    cluster.start_all();
    let addr = cluster.ports[0].client;
    assert_eq!(raw(addr, b"GET a\r\n"), "-NOAUTH Authentication required.\r\n");
    assert!(raw(addr, b"AUTH wrong\r\n").starts_with("-WRONGPASS"));
    assert_eq!(raw(addr, b"AUTH s3cret\r\nSET a 1\r\nGET a\r\n"), "+OK\r\n+OK\r\n$1\r\n1\r\n");
    let client = redis::Client::open(format!("redis://:s3cret@{addr}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    let value: String = con.get("a").unwrap();
    assert_eq!(value, "1");
}

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("--version").output().is_ok();
    assert!(found, "{name} is not installed (apt-get install redis-tools)");
    Command::new(name)
}

#[test]
fn redis_cli_and_redis_benchmark_work_against_the_cluster() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let port = cluster.ports[follower].client.port().to_string();
    let cli = |args: &[&str]| {
        let out = tool("redis-cli").args(["-p", &port]).args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&["GET", "greeting"]), "hello world\n");
    let hello = cli(&["-3", "HELLO", "3"]);
    assert!(hello.lines().any(|l| l == "proto 3"), "{hello}");
    assert!(cli(&["INFO", "replication"]).contains("raft_role:follower"));
    let out = tool("redis-benchmark")
        .args(["-p", &port, "-t", "set,get", "-n", "2000", "-c", "8", "-d", "100", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(out.status.success(), "{out:?}");
    for op in ["SET", "GET"] {
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with(&format!("{op}: ")))
            .unwrap_or_else(|| panic!("no {op} line in {text}"));
        assert!(line.contains("requests per second"), "{line}");
    }
    let keys: i64 = redis::cmd("DBSIZE").query(&mut cluster.redis(leader)).unwrap();
    assert!(keys >= 2, "redis-benchmark's SETs landed: {keys}");
}

#[test]
fn kv_and_cluster_commands_work_through_any_node() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let conclave = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_conclave")).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let addr = cluster.ports[follower].client.to_string();
    assert_eq!(conclave(&["kv", "--addr", &addr, "set", "a", "1"]), (Some(0), "OK\n".into()));
    assert_eq!(conclave(&["kv", "--addr", &addr, "get", "a"]), (Some(0), "1\n".into()));
    assert_eq!(conclave(&["kv", "--addr", &addr, "scan"]), (Some(0), "a\n".into()));
    assert_eq!(
        conclave(&["kv", "--addr", &addr, "del", "a", "b"]),
        (Some(0), "(integer) 1\n".into())
    );
    let admin = cluster.ports[follower].admin.to_string();
    // Asked through a follower, status comes from the leader, which knows every match index.
    let (code, status) = conclave(&["cluster", "--admin", &admin, "status"]);
    assert_eq!(code, Some(0));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["leader"], leader as u64 + 1);
    assert_eq!(status["role"], "leader", "{status}");
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{status}");
    assert!(members.iter().all(|m| m["match"].as_u64().is_some()), "{status}");
    let (code, local) = conclave(&["cluster", "--admin", &admin, "status", "--local"]);
    assert_eq!(code, Some(0));
    let local: serde_json::Value = serde_json::from_str(&local).unwrap();
    assert_eq!(local["id"], follower as u64 + 1);
    assert_eq!(local["role"], "follower", "{local}");
    // Sent to a follower, the transfer finds the leader itself.
    let target = (leader + 2) % 3;
    let (code, out) =
        conclave(&["cluster", "--admin", &admin, "transfer-leader", &(target + 1).to_string()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(cluster.wait_leader(), target);
}

/// The Python client (`pip install redis`, which `.ci/run` does) against a follower, in RESP2
/// and RESP3: plain commands, a pipeline, expiry, SCAN and INFO.
#[test]
fn the_python_redis_client_works_against_a_follower() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let port = cluster.ports[(leader + 1) % 3].client.port();
    let script = r#"
import sys, redis
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=10)
    p = f"py{protocol}:"
    assert r.ping()
    assert r.set(p + "k", "v") is True
    assert r.get(p + "k") == b"v"
    assert r.set(p + "k", "w", nx=True) is None
    assert r.incr(p + "n") == 1 and r.incrby(p + "n", 41) == 42
    pipe = r.pipeline(transaction=False)
    for i in range(50):
        pipe.set(f"{p}pipe:{i}", i)
    pipe.get(p + "n")
    results = pipe.execute()
    assert results[:50] == [True] * 50 and results[50] == b"42", results
    assert r.mset({p + "a": "1", p + "b": "2"}) is True
    assert r.mget([p + "a", p + "b", p + "missing"]) == [b"1", b"2", None]
    assert r.expire(p + "a", 100) is True and 0 < r.ttl(p + "a") <= 100
    assert r.append(p + "b", "3") == 2 and r.strlen(p + "b") == 2
    assert r.getdel(p + "b") == b"23" and r.exists(p + "b") == 0
    keys = set(r.scan_iter(match=p + "pipe:*", count=7))
    assert len(keys) == 50, len(keys)
    assert r.type(p + "k") in (b"string", "string")
    info = r.info()
    assert info["process_id"] > 0 and "role" in info, info
    assert r.delete(p + "k", p + "n") == 2
print("python client ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("python3 runs (with `pip install redis`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("python client ok"),
        "the Python redis client failed (is it installed? `python3 -m pip install redis`)\n\
         stdout: {stdout}\nstderr: {stderr}\n{}",
        cluster.logs()
    );
}

// --- Forged peers: a process that reaches a peer port but does not know the cluster secret. ---

/// A heartbeat of `term` from the leader's role, as the runtime sends it in the KV group.
fn forged_heartbeat(to: u64, term: u64) -> Vec<u8> {
    use conclave_core::{Index, Term, WireMessage};
    let heartbeat =
        conclave_raft::Message::Heartbeat { term: Term(term), commit: Index(0), read_round: 0 };
    let mut payload = bytes::BytesMut::new();
    heartbeat.encode(&mut payload);
    conclave_transport::wire::batch_frame(
        conclave_core::NodeId(to),
        conclave_server::KV_GROUP,
        &payload,
    )
}

/// A version-1 hello (before peers authenticated): magic, cluster id, node, frame limit,
/// advertised length, no nonce.
fn old_hello(node: u64) -> Vec<u8> {
    let cluster_id = default_cluster_id();
    let mut body = vec![1, 1]; // version 1, kind hello
    body.extend_from_slice(b"CNCL");
    body.extend_from_slice(&cluster_id.to_le_bytes());
    body.extend_from_slice(&node.to_le_bytes());
    body.extend_from_slice(&(64u32 << 20).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c::crc32c(&body);
    let mut frame = ((body.len() + 4) as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// Connects to `addr`, writes every one of `frames` (reading the node's answer after the first,
/// if it gives one), and returns once the node has closed the connection.
fn forge(addr: std::net::SocketAddr, frames: &[Vec<u8>], read_answer: bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(&frames[0]).unwrap();
    if read_answer {
        // The node answers a good hello with its own hello and proof before it reads on; wait
        // for the start of that answer, so the forged frames come where a proof is expected.
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).unwrap();
    }
    for frame in &frames[1..] {
        // The node may already have closed: a failed write is the refusal we expect.
        if stream.write_all(frame).is_err() {
            break;
        }
    }
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest); // ends when the node closes (or resets)
}

#[test]
fn forged_peer_connections_are_refused_and_the_cluster_keeps_its_leader() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let term = cluster.status(leader).unwrap()["term"].as_u64().unwrap();
    let mut con = cluster.redis(leader);
    let _: () = con.set("before", 1).unwrap();

    for target in 0..3u64 {
        let addr = cluster.ports[target as usize].peer;
        let me = target + 1;
        // Claim to be the member just below the target (node 0 for node 1: not a member).
        let claimed = me - 1;
        for forged_term in [u64::MAX, term + 1000] {
            let heartbeat = forged_heartbeat(me, forged_term);
            // The old hello, as a version-1 node would send it.
            forge(addr, &[old_hello(claimed), heartbeat.clone()], false);
            // The new hello, then a proof made without the secret.
            let hello = conclave_transport::wire::hello_frame(
                default_cluster_id(),
                conclave_core::NodeId(claimed),
                [9; 32],
                b"",
            );
            let wrong_proof = conclave_transport::wire::proof_frame([0x5a; 32]);
            forge(addr, &[hello.clone(), wrong_proof, heartbeat.clone()], true);
            // The new hello, then no proof at all.
            forge(addr, &[hello, heartbeat], true);
        }
    }

    // The leader is still the leader of the same term, and writes go through.
    assert_eq!(cluster.wait_leader(), leader, "{}", cluster.logs());
    for i in 0..3 {
        let status = cluster.status(i).unwrap();
        assert_eq!(status["term"].as_u64(), Some(term), "node {}: {status}", i + 1);
    }
    let _: () = con.set("after", 2).unwrap();
    drop(con);
    // Each node logged the refusal, with the forger's address.
    for i in 0..3 {
        let log = std::fs::read_to_string(cluster.dir.path().join(format!("node-{}.log", i + 1)));
        let log = log.unwrap();
        let refused = log.lines().find(|line| line.contains("authentication failed"));
        assert!(refused.is_some_and(|line| line.contains("127.0.0.1:")), "node {}:\n{log}", i + 1);
    }

    // And after a restart of every node they still elect and serve.
    for i in 0..3 {
        cluster.kill(i);
    }
    cluster.start_all();
    let leader = cluster.wait_leader();
    let mut con = cluster.redis(leader);
    let value: Option<i64> = con.get("after").unwrap();
    assert_eq!(value, Some(2));
    let _: () = con.set("after-restart", 3).unwrap();
}

/// The wire id of the default cluster name, "conclave" (FNV-1a, as the server derives it).
fn default_cluster_id() -> u64 {
    b"conclave"
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}
