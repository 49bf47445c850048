//! Users and ACLs over real sockets against real `conclave serve` processes: users created on
//! the leader authenticate on followers, permissions and key patterns are enforced wherever the
//! client connects, changes reach open connections, and users survive restarts and snapshots.
//! Driven through the `redis` client crate, `redis-cli --user --pass` and the Python client.

mod common;

use std::process::Command;

use common::{eventually, http, ProcCluster};
use redis::{Commands, Connection, RedisResult};

const ALICE_RULES: &[&str] = &[
    "on",
    ">wonderland",
    "~app:*",
    "%R~ro:*",
    "+@read",
    "+@write",
    "-flushdb",
    "+acl|whoami",
    "+client",
];

fn query<T: redis::FromRedisValue>(con: &mut Connection, line: &[&str]) -> RedisResult<T> {
    let mut cmd = redis::cmd(line[0]);
    for arg in &line[1..] {
        cmd.arg(*arg);
    }
    cmd.query(con)
}

fn error_text<T: std::fmt::Debug>(result: RedisResult<T>) -> String {
    let error = result.expect_err("an error reply");
    // The redis crate splits a reply into code and detail; put Redis's text back together.
    format!("{} {}", error.code().unwrap_or("?"), error.detail().unwrap_or(""))
}

/// `ACL SETUSER name rules...` on `node`.
fn set_user(cluster: &ProcCluster, node: usize, name: &str, rules: &[&str]) {
    let mut line = vec!["ACL", "SETUSER", name];
    line.extend_from_slice(rules);
    let reply: String = query(&mut cluster.redis(node), &line).unwrap();
    assert_eq!(reply, "OK");
}

/// A connection to `node` authenticated as `user`, once the user has reached that node.
fn login(cluster: &ProcCluster, node: usize, user: &str, password: &str) -> Connection {
    let mut con = cluster.redis(node);
    eventually("the user to reach the node", || {
        query::<String>(&mut con, &["AUTH", user, password]).ok()
    });
    con
}

fn metrics(cluster: &ProcCluster, node: usize) -> String {
    let (code, body) = http(cluster.ports[node].admin, "GET", "/metrics", "").unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

fn counter(metrics: &str, series: &str) -> u64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("{series} missing"));
    line[series.len()..].trim().parse().unwrap()
}

#[test]
fn a_user_made_on_the_leader_is_enforced_on_a_follower() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    set_user(&cluster, leader, "alice", ALICE_RULES);

    // The log holds the hash, never the password; ACL LIST shows Redis's line.
    let list: Vec<String> = query(&mut cluster.redis(leader), &["ACL", "LIST"]).unwrap();
    let alice = list.iter().find(|l| l.starts_with("user alice ")).expect("alice listed");
    assert!(alice.starts_with("user alice on sanitize-payload #"), "{alice}");
    assert!(
        alice.ends_with(
            " ~app:* %R~ro:* resetchannels -@all +@read +@write -flushdb +acl|whoami +client"
        ),
        "{alice}"
    );
    assert!(!alice.contains("wonderland"), "{alice}");
    assert!(
        list.contains(&"user default on nopass sanitize-payload ~* &* +@all".to_string()),
        "{list:?}"
    );
    // Made on a follower, a user's password is hashed there, before the write is forwarded.
    set_user(&cluster, follower, "erin", &["on", ">forwardedsecret", "+@all"]);
    login(&cluster, leader, "erin", "forwardedsecret");
    for node in 0..3 {
        let wal: Vec<u8> = std::fs::read_dir(cluster.data_dir(node))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .flat_map(|e| std::fs::read(e.path()).unwrap_or_default())
            .collect();
        assert!(
            !wal.windows(10).any(|w| w == b"wonderland"),
            "plaintext on node {}'s disk",
            node + 1
        );
    }

    // AUTH on a follower, against its replica of the table.
    let mut con = login(&cluster, follower, "alice", "wonderland");
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "alice");
    let info: String = query(&mut con, &["CLIENT", "INFO"]).unwrap();
    assert!(info.contains(" user=alice "), "{info}");
    // Writes are forwarded to the leader as alice, and allowed there too.
    let _: () = con.set("app:1", "v").unwrap();
    let value: String = con.get("app:1").unwrap();
    assert_eq!(value, "v");
    assert_eq!(
        error_text(con.set::<_, _, ()>("other", "v")),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        error_text(con.get::<_, Option<String>>("other")),
        "NOPERM No permissions to access a key"
    );
    // %R~: read-only keys.
    let absent: Option<String> = con.get("ro:1").unwrap();
    assert_eq!(absent, None);
    assert_eq!(
        error_text(con.set::<_, _, ()>("ro:1", "v")),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        error_text(query::<String>(&mut con, &["FLUSHDB"])),
        "NOPERM User alice has no permissions to run the 'flushdb' command"
    );
    assert_eq!(
        error_text(query::<String>(&mut con, &["ACL", "SETUSER", "mallory", "on"])),
        "NOPERM User alice has no permissions to run the 'acl|setuser' command"
    );

    // Refused AUTHs, with Redis's text, counted on the client port.
    let before =
        counter(&metrics(&cluster, follower), "conclave_auth_failures_total{port=\"client\"}");
    let mut other = cluster.redis(follower);
    let wrongpass = "WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(error_text(query::<String>(&mut other, &["AUTH", "alice", "nope"])), wrongpass);
    assert_eq!(error_text(query::<String>(&mut other, &["AUTH", "nobody", "x"])), wrongpass);
    let text = metrics(&cluster, follower);
    assert!(text.contains("# TYPE conclave_auth_failures_total counter\n"), "{text}");
    assert_eq!(counter(&text, "conclave_auth_failures_total{port=\"client\"}"), before + 2);
    let info: String = query(&mut cluster.redis(follower), &["INFO", "stats"]).unwrap();
    for line in ["acl_access_denied_auth:2", "acl_access_denied_cmd:2", "acl_access_denied_key:3"] {
        assert!(info.contains(line), "{line} in {info}");
    }

    // The follower's ACL LOG has her refusals and the failed AUTHs, newest first.
    let log: Vec<redis::Value> = query(&mut cluster.redis(follower), &["ACL", "LOG"]).unwrap();
    let shown = format!("{log:?}");
    for needle in [
        "\"auth\"",
        "\"nobody\"",
        "\"key\"",
        "\"other\"",
        "\"command\"",
        "\"flushdb\"",
        "\"alice\"",
    ] {
        assert!(shown.contains(needle), "{needle} in {shown}");
    }
    let _: String = query(&mut cluster.redis(follower), &["ACL", "LOG", "RESET"]).unwrap();
    let log: Vec<redis::Value> = query(&mut cluster.redis(follower), &["ACL", "LOG"]).unwrap();
    assert!(log.is_empty(), "{log:?}");

    // A change applies to alice's next command, on her open connection.
    set_user(&cluster, leader, "alice", &["-get"]);
    let denied = eventually("the change to reach the follower", || {
        con.get::<_, Option<String>>("app:1").err()
    });
    assert_eq!(
        format!("{} {}", denied.code().unwrap_or("?"), denied.detail().unwrap_or("")),
        "NOPERM User alice has no permissions to run the 'get' command"
    );
    // Deleting her closes her connections.
    let deleted: i64 = query(&mut cluster.redis(leader), &["ACL", "DELUSER", "alice"]).unwrap();
    assert_eq!(deleted, 1);
    let closed = eventually("the connection to close", || {
        query::<String>(&mut con, &["ACL", "WHOAMI"]).err()
    });
    assert!(closed.is_io_error() || closed.is_connection_dropped(), "{closed:?}");
    assert_eq!(
        error_text(query::<String>(&mut other, &["AUTH", "alice", "wonderland"])),
        wrongpass
    );
}

/// CONCLAVE's subcommands are commands like any other for ACLs (only the forwarding handshake
/// is exempt), and a client that logs in again on a follower has its writes run as the new
/// user on the leader, not as the one the forwarding connection first logged in as.
#[test]
fn conclave_commands_obey_acls_and_auth_changes_the_forwarded_user() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.start_all();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    set_user(&cluster, leader, "getter", &["on", ">g", "~*", "-@all", "+get"]);
    set_user(&cluster, leader, "narrow", &["on", ">n", "~n:*", "+@all"]);
    set_user(&cluster, leader, "wide", &["on", ">w", "~*", "+@all"]);

    let mut getter = login(&cluster, follower, "getter", "g");
    assert_eq!(
        error_text(query::<String>(&mut getter, &["CONCLAVE", "LEADER"])),
        "NOPERM User getter has no permissions to run the 'conclave' command"
    );
    let handshake: String = query(&mut getter, &["CONCLAVE", "FORWARDED"]).unwrap();
    assert_eq!(handshake, "OK");

    let mut con = login(&cluster, follower, "narrow", "n");
    let _: () = con.set("n:1", "v").unwrap();
    login(&cluster, follower, "wide", "w");
    let _: String = query(&mut con, &["AUTH", "wide", "w"]).unwrap();
    let _: () = con.set("x:1", "v").expect("the leader runs the write as wide");
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "wide");
}

/// As in Redis, `off` stops new logins but leaves open connections working (Redis's own
/// acl.tcl turns `default` off from a `default` connection and goes on using it); deleting the
/// user is what closes them.
#[test]
fn a_user_turned_off_keeps_its_connections_but_cannot_log_in() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    set_user(&cluster, 0, "paused", &["on", ">p", "~*", "+@all"]);
    let mut con = login(&cluster, 0, "paused", "p");
    let _: String = query(&mut con, &["ACL", "SETUSER", "paused", "off"]).unwrap();
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "paused");
    assert_eq!(
        error_text(query::<String>(&mut cluster.redis(0), &["AUTH", "paused", "p"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let _: String = query(&mut con, &["ACL", "SETUSER", "default", "off"]).unwrap();
    assert_eq!(
        error_text(query::<String>(&mut cluster.redis(0), &["PING"])),
        "NOAUTH Authentication required."
    );
    let deleted: i64 = query(&mut con, &["ACL", "DELUSER", "paused"]).unwrap();
    assert_eq!(deleted, 1);
    let closed = eventually("the connection to close", || {
        query::<String>(&mut con, &["ACL", "WHOAMI"]).err()
    });
    assert!(closed.is_io_error() || closed.is_connection_dropped(), "{closed:?}");
}

/// HELLO reads all its options before applying any, as Redis: the last AUTH and SETNAME win, a
/// failed AUTH leaves the name alone, and a name is checked as CLIENT SETNAME checks it (a
/// newline in it would forge lines of CLIENT INFO and ACL LOG).
#[test]
fn hello_options_apply_as_in_redis() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    set_user(&cluster, 0, "first", &["on", ">s", "+@all"]);
    set_user(&cluster, 0, "second", &["on", ">s", "+@all"]);
    let mut con = cluster.redis(0);
    let hello = |con: &mut Connection, line: &[&str]| {
        query::<redis::Value>(con, &[&["HELLO", "2"], line].concat())
    };
    hello(&mut con, &["AUTH", "nobody", "x", "AUTH", "second", "s", "AUTH", "first", "s"]).unwrap();
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "first");
    hello(&mut con, &["SETNAME", "c1", "SETNAME", "c2"]).unwrap();
    let name: String = query(&mut con, &["CLIENT", "GETNAME"]).unwrap();
    assert_eq!(name, "c2");
    let bad_name = "ERR Client names cannot contain spaces, newlines or special characters.";
    assert_eq!(error_text(hello(&mut con, &["SETNAME", "c3", "SETNAME", "a b"])), bad_name);
    assert_eq!(error_text(hello(&mut con, &["SETNAME", "x\nuser=default"])), bad_name);
    assert_eq!(
        error_text(hello(&mut con, &["AUTH", "second", "wrong", "SETNAME", "c4"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let name: String = query(&mut con, &["CLIENT", "GETNAME"]).unwrap();
    assert_eq!(name, "c2");
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "first");
    assert_eq!(error_text(hello(&mut con, &["BOGUS"])), "ERR Syntax error in HELLO option 'BOGUS'");
}

/// The user name a failed AUTH names appears in the node's log quoted, so a newline in it
/// cannot forge a log line.
#[test]
fn a_failed_auth_cannot_forge_log_lines() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    let forged = "FORGED INFO admin logged in";
    let mut con = cluster.redis(0);
    let user = format!("x\n{forged}");
    assert!(query::<String>(&mut con, &["AUTH", &user, "pw"]).is_err());
    eventually("the refusal in the log", || cluster.logs().contains("AUTH failed").then_some(()));
    let logs = cluster.logs();
    assert!(!logs.lines().any(|line| line.starts_with("FORGED")), "{logs}");
}

/// Deleting a user closes its connections even when a user of the same name is made again at
/// once (a password rotated by delete-and-create): the new user is not the old one.
#[test]
fn a_user_deleted_and_made_again_closes_the_old_connections() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    set_user(&cluster, 0, "rotated", &["on", ">old", "~*", "+@all"]);
    let mut con = login(&cluster, 0, "rotated", "old");
    let mut admin = cluster.redis(0);
    let (deleted, made): (i64, String) = redis::pipe()
        .cmd("ACL")
        .arg(&["DELUSER", "rotated"])
        .cmd("ACL")
        .arg(&["SETUSER", "rotated", "on", ">new", "~*", "+@all"])
        .query(&mut admin)
        .unwrap();
    assert_eq!((deleted, made.as_str()), (1, "OK"));
    let closed = eventually("the old connection to close", || {
        query::<String>(&mut con, &["ACL", "WHOAMI"]).err()
    });
    assert!(closed.is_io_error() || closed.is_connection_dropped(), "{closed:?}");
    login(&cluster, 0, "rotated", "new");
}

#[test]
fn the_acl_subcommands_answer_as_redis_does() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    let mut con = cluster.redis(0);
    let categories: Vec<String> = query(&mut con, &["ACL", "CAT"]).unwrap();
    for category in
        ["keyspace", "read", "write", "string", "admin", "fast", "slow", "dangerous", "connection"]
    {
        assert!(categories.iter().any(|c| c == category), "{category} in {categories:?}");
    }
    let strings: Vec<String> = query(&mut con, &["ACL", "CAT", "string"]).unwrap();
    assert!(strings.contains(&"get".to_string()) && !strings.contains(&"del".to_string()));
    assert_eq!(
        error_text(query::<Vec<String>>(&mut con, &["ACL", "CAT", "nosuch"])),
        "ERR Unknown category 'nosuch'"
    );
    assert_eq!(
        error_text(query::<Vec<String>>(&mut con, &["ACL", "CAT", "a", "b"])),
        "ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP."
    );
    assert_eq!(
        error_text(query::<Vec<String>>(&mut con, &["ACL", "help", "x"])),
        "ERR wrong number of arguments for 'acl|help' command"
    );
    assert_eq!(
        error_text(query::<String>(&mut con, &["ACL", "SETUSER", "bob", "+nosuch"])),
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    assert_eq!(
        error_text(query::<String>(&mut con, &["ACL", "SETUSER", "bob", "bogus"])),
        "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"
    );
    assert_eq!(
        error_text(query::<i64>(&mut con, &["ACL", "DELUSER", "default"])),
        "ERR The 'default' user cannot be removed"
    );
    let genpass: String = query(&mut con, &["ACL", "GENPASS"]).unwrap();
    assert_eq!(genpass.len(), 64);
    assert!(genpass.bytes().all(|b| b.is_ascii_hexdigit()));
    let short: String = query(&mut con, &["ACL", "GENPASS", "10"]).unwrap();
    assert_eq!(short.len(), 3);
    set_user(&cluster, 0, "bob", &["on", "nopass", "%R~*", "+@read"]);
    let users: Vec<String> = query(&mut con, &["ACL", "USERS"]).unwrap();
    assert_eq!(users, ["bob", "default"]);
    let ok: String = query(&mut con, &["ACL", "DRYRUN", "bob", "GET", "x"]).unwrap();
    assert_eq!(ok, "OK");
    let no: String = query(&mut con, &["ACL", "DRYRUN", "bob", "SET", "x", "1"]).unwrap();
    assert_eq!(no, "User bob has no permissions to run the 'set' command");
    assert_eq!(
        error_text(query::<String>(&mut con, &["ACL", "DRYRUN", "bob", "NoSuch"])),
        "ERR Command 'NoSuch' not found"
    );
    assert_eq!(error_text(query::<String>(&mut con, &["AUTH", "a", "b", "c"])), "ERR syntax error");
    assert_eq!(
        error_text(query::<String>(&mut con, &["AUTH"])),
        "ERR wrong number of arguments for 'auth' command"
    );
    for sub in ["LOAD", "SAVE"] {
        let refused = error_text(query::<String>(&mut con, &["ACL", sub]));
        assert!(
            refused.starts_with("ERR This Redis instance is not configured to use an ACL file"),
            "{refused}"
        );
    }
    assert_eq!(
        error_text(query::<String>(&mut con, &["ACL", "DRYRUN", "ghost", "GET", "x"])),
        "ERR User 'ghost' not found"
    );
    let user: redis::Value = query(&mut con, &["ACL", "GETUSER", "bob"]).unwrap();
    let shown = format!("{user:?}");
    assert!(shown.contains("%R~*") && shown.contains("-@all +@read"), "{shown}");
    // In RESP3 the flags are a set, as Redis sends them.
    let raw = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(cluster.ports[0].client).unwrap();
        stream.set_read_timeout(Some(common::WAIT)).unwrap();
        stream.write_all(b"HELLO 3\r\nACL GETUSER bob\r\n").unwrap();
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&raw).contains("selectors") {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&raw).into_owned()
    };
    assert!(raw.contains("$5\r\nflags\r\n~3\r\n$2\r\non\r\n$6\r\nnopass\r\n"), "{raw:?}");
    let nobody: Option<String> = query(&mut con, &["ACL", "GETUSER", "nobody"]).unwrap();
    assert_eq!(nobody, None);

    // A restricted default user: a connection without AUTH runs as it.
    set_user(&cluster, 0, "default", &["-flushall"]);
    let mut fresh = cluster.redis(0);
    assert_eq!(
        error_text(query::<String>(&mut fresh, &["FLUSHALL"])),
        "NOPERM User default has no permissions to run the 'flushall' command"
    );
    // redis-cli with --user and --pass.
    set_user(&cluster, 0, "carol", &["on", ">c4r0l", "~*", "+@all"]);
    let port = cluster.ports[0].client.port().to_string();
    let cli = |args: &[&str]| {
        let found = Command::new("redis-cli").arg("--version").output().is_ok();
        assert!(found, "redis-cli is not installed (apt-get install redis-tools)");
        let out = Command::new("redis-cli").args(["-p", &port]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        format!("{}{stderr}", String::from_utf8_lossy(&out.stdout))
    };
    let auth = ["--user", "carol", "--pass", "c4r0l", "--no-auth-warning"];
    assert_eq!(cli(&[&auth[..], &["SET", "cli", "1"]].concat()), "OK\n");
    assert_eq!(cli(&[&auth[..], &["ACL", "WHOAMI"]].concat()), "carol\n");
    // redis-cli reports the refused AUTH, then runs the command as the open default user.
    let wrong = cli(&["--user", "carol", "--pass", "x", "--no-auth-warning", "ACL", "WHOAMI"]);
    assert!(wrong.contains("WRONGPASS") && wrong.starts_with("default\n"), "{wrong}");

    // `conclave kv` logs in as a user too.
    let kv = |args: &[&str]| {
        let addr = cluster.ports[0].client.to_string();
        Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["kv", "--addr", &addr, "--user", "bob", "--password", "x"])
            .args(args)
            .env_remove("CONCLAVE_PASSWORD")
            .env_remove("CONCLAVE_USER")
            .output()
            .unwrap()
    };
    let read = kv(&["get", "cli"]);
    assert!(read.status.success(), "{read:?}");
    assert_eq!(String::from_utf8_lossy(&read.stdout), "1\n");
    let write = kv(&["set", "cli", "2"]);
    assert!(!write.status.success(), "bob may not write: {write:?}");
    assert!(String::from_utf8_lossy(&write.stdout).contains("NOPERM"), "{write:?}");

    // Whether AUTH is needed follows `default`, as in Redis.
    set_user(&cluster, 0, "default", &["resetpass", ">d"]);
    let mut waiting = cluster.redis(0);
    assert_eq!(
        error_text(query::<String>(&mut waiting, &["PING"])),
        "NOAUTH Authentication required."
    );
    let _: String = query(&mut con, &["ACL", "SETUSER", "default", "nopass"]).unwrap();
    let pong = eventually("default to open", || query::<String>(&mut waiting, &["PING"]).ok());
    assert_eq!(pong, "PONG");
}

#[test]
fn the_python_client_logs_in_with_a_username() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    set_user(&cluster, 0, "py", &["on", ">snake", "~py:*", "+@all"]);
    let script = r#"
import sys, redis
from redis.backoff import NoBackoff
from redis.retry import Retry
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, username="py", password="snake", protocol=protocol, socket_timeout=10)
    assert r.acl_whoami() == b"py" or r.acl_whoami() == "py"
    assert r.set("py:k", "v") is True and r.get("py:k") == b"v"
    try:
        r.set("other", "v")
        raise SystemExit("a key outside the pattern was written")
    except redis.exceptions.NoPermissionError as e:
        assert "No permissions to access a key" in str(e), e
    try:
        # No retries: the client would otherwise back off and retry a refused AUTH.
        redis.Redis(host="127.0.0.1", port=port, username="py", password="bad", protocol=protocol,
                    retry=Retry(NoBackoff(), 0)).ping()
        raise SystemExit("a wrong password was accepted")
    except redis.exceptions.AuthenticationError:
        pass
print("python acl ok")
"#;
    let port = cluster.ports[0].client.port().to_string();
    let out = Command::new("python3")
        .args(["-c", script, &port])
        .output()
        .expect("python3 runs (with `pip install redis`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python acl ok"),
        "stdout: {stdout}\nstderr: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
}

/// Users live in the WAL and in snapshots: they survive a restart of every node from a
/// compacted log, and a node added later learns them from a snapshot.
#[test]
fn users_survive_restarts_and_travel_in_snapshots() {
    let mut cluster = ProcCluster::new(4, 3);
    cluster.extra.push("--snapshot-entries=50".into());
    cluster.start_all();
    let leader = cluster.wait_leader();
    set_user(&cluster, leader, "dave", &["on", ">d", "~*", "+@all"]);
    // From the WAL alone: no snapshot has been taken yet.
    for node in 0..3 {
        cluster.kill(node);
    }
    cluster.start_all();
    for node in 0..3 {
        login(&cluster, node, "dave", "d");
    }
    let status = cluster.status(0).unwrap();
    assert_eq!(status["snapshot_index"], 0, "{status}");
    let leader = cluster.wait_leader();
    // More entries than a snapshot keeps behind it (1,000), so the entry that made dave is
    // compacted away and only the snapshot still has him.
    let mut con = cluster.redis(leader);
    let mut pipe = redis::pipe();
    for n in 0..1200 {
        pipe.set(format!("key{n}"), n).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    eventually("a snapshot past dave's entry", || {
        let status = cluster.status(leader)?;
        (status["snapshot_index"].as_u64()? > 1100).then_some(())
    });
    for node in 0..3 {
        cluster.kill(node);
    }
    cluster.start_all();
    for node in 0..3 {
        let mut con = login(&cluster, node, "dave", "d");
        let value: i64 = con.get("key1199").unwrap();
        assert_eq!(value, 1199);
    }
    // A new node catches up by snapshot and knows dave.
    cluster.start(3);
    let add =
        format!(r#"{{"action":"add-learner","id":4,"peer_addr":"{}"}}"#, cluster.ports[3].peer);
    // Leadership may still move after the restart: ask whoever leads until one accepts.
    eventually("a leader to add node 4", || {
        let leader = cluster.wait_leader();
        let (code, _) = http(cluster.ports[leader].admin, "POST", "/members", &add).ok()?;
        (code == 200).then_some(())
    });
    let mut con = login(&cluster, 3, "dave", "d");
    let whoami: String = query(&mut con, &["ACL", "WHOAMI"]).unwrap();
    assert_eq!(whoami, "dave");
    eventually("node 4 to report the installed snapshot", || {
        (cluster.status(3)?["snapshot_index"].as_u64()? > 1000).then_some(())
    });
}

/// `requirepass` stays the default user's password on its node, whatever the replicated
/// table says about `default`'s other rules; a refused admin token is counted.
#[test]
fn requirepass_guards_the_default_user_and_admin_failures_are_counted() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.extra.push("--password=hunter2".into());
    cluster.admin_token = Some("the-acl-tests-admin-token".into());
    cluster.start_all();
    let mut con = cluster.redis(0);
    assert_eq!(
        error_text(query::<String>(&mut con, &["GET", "k"])),
        "NOAUTH Authentication required."
    );
    let ok: String = query(&mut con, &["AUTH", "hunter2"]).unwrap();
    assert_eq!(ok, "OK");
    let _: String = query(&mut con, &["ACL", "SETUSER", "default", "nopass", "-keys"]).unwrap();
    let mut fresh = cluster.redis(0);
    assert_eq!(
        error_text(query::<String>(&mut fresh, &["PING"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        error_text(query::<String>(&mut fresh, &["AUTH", "default", "anything"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let ok: String = query(&mut fresh, &["AUTH", "default", "hunter2"]).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(
        error_text(query::<Vec<String>>(&mut fresh, &["KEYS", "*"])),
        "NOPERM User default has no permissions to run the 'keys' command"
    );
    let (code, _) = http(cluster.ports[0].admin, "GET", "/status", "").unwrap();
    assert_eq!(code, 401);
    let headers = [("Authorization", "Bearer the-acl-tests-admin-token")];
    let (code, body) =
        common::http_with_headers(cluster.ports[0].admin, "GET", "/metrics", &headers, "").unwrap();
    assert_eq!(code, 200);
    assert_eq!(counter(&body, "conclave_auth_failures_total{port=\"admin\"}"), 1, "{body}");
    assert_eq!(counter(&body, "conclave_auth_failures_total{port=\"client\"}"), 1, "{body}");
}

/// Protected mode counts ACL passwords as authentication: a node with state, whose users may
/// carry passwords, may listen beyond loopback without `--password` (its connections from beyond
/// loopback are then refused while any user needs no password); a fresh node, whose `default`
/// user is open, may not.
#[test]
fn protected_mode_lets_a_node_with_users_listen_beyond_loopback() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    set_user(&cluster, 0, "default", &["resetpass", ">guarded"]);
    cluster.kill(0);
    let exposed = |data_dir: &std::path::Path| {
        let log = cluster.dir.path().join("exposed.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["serve", "--id=1", "--tick-ms=10"])
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--cluster-secret-file={}", cluster.secret_file().display()))
            .args(["--client-addr=0.0.0.0:0", "--peer-addr=0.0.0.0:0", "--admin-addr=0.0.0.0:0"])
            .env("CONCLAVE_ADMIN_TOKEN", "the-acl-tests-admin-token")
            .env_remove("CONCLAVE_PASSWORD")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let outcome = eventually("the node to start or stop", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("node started") {
                return Some(Ok(()));
            }
            child.try_wait().unwrap().map(|_| Err(text))
        });
        let _ = child.kill();
        let _ = child.wait();
        outcome
    };
    assert_eq!(exposed(&cluster.data_dir(0)), Ok(()));
    let fresh = exposed(&cluster.dir.path().join("fresh")).expect_err("a fresh node was exposed");
    assert!(fresh.contains("protected mode") && fresh.contains("password"), "{fresh}");
}
