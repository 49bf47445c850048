//! Who may talk to a node, over real sockets against real `conclave serve` processes: the admin
//! port's bearer token and its refusal of browser requests, protected mode, and the client
//! port's guard against HTTP requests (cross-protocol scripting).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{http, http_response, ProcCluster};
use redis::Commands;
use serde_json::Value;

const TOKEN: &str = "test-admin-token-0123456789abcdef";
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn conclave() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conclave"));
    // The tests choose every credential themselves.
    command.env_remove("CONCLAVE_ADMIN_TOKEN").env_remove("CONCLAVE_PASSWORD");
    command
}

/// A one-node cluster whose admin port requires [`TOKEN`].
fn cluster_with_token() -> ProcCluster {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.admin_token = Some(TOKEN.into());
    cluster.start_all();
    cluster
}

fn member_count(cluster: &ProcCluster) -> usize {
    let status = cluster.status(0).expect("status with the token");
    status["members"].as_array().unwrap().len()
}

fn node_log(cluster: &ProcCluster) -> String {
    std::fs::read_to_string(cluster.dir.path().join("node-1.log")).unwrap()
}

/// Without the token nothing answers but a 401 with the RFC 6750 challenge, status and metrics
/// included; with it everything works, and each change is logged with who asked.
#[test]
fn the_admin_port_requires_the_bearer_token() {
    let cluster = cluster_with_token();
    let admin = cluster.ports[0].admin;
    let add = r#"{"action":"add-learner","id":2,"peer_addr":"127.0.0.1:9"}"#;
    let requests = [
        ("GET", "/status", ""),
        ("GET", "/metrics", ""),
        ("POST", "/members", add),
        ("POST", "/transfer-leader", "{}"),
    ];
    for (method, path, body) in requests {
        let (head, reply) = http_response(admin, method, path, &[JSON], body).unwrap();
        assert!(head.starts_with("HTTP/1.1 401 "), "{method} {path} without a token: {head}");
        assert!(head.contains("\r\nWWW-Authenticate: Bearer realm=\"conclave-admin\""), "{head}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert!(reply["error"].as_str().is_some_and(|e| e.contains("Bearer")), "{reply}");
    }
    let wrong = [("Authorization", "Bearer not-the-token"), JSON];
    let (head, _) = http_response(admin, "POST", "/members", &wrong, add).unwrap();
    assert!(head.starts_with("HTTP/1.1 401 "), "{head}");
    assert!(head.contains("error=\"invalid_token\""), "{head}");
    let basic = [("Authorization", "Basic dXNlcjpwYXNz"), JSON];
    let (head, _) = http_response(admin, "POST", "/members", &basic, add).unwrap();
    assert!(head.starts_with("HTTP/1.1 401 "), "{head}");
    assert_eq!(member_count(&cluster), 1, "a refused request changed the membership");
    assert!(node_log(&cluster).contains("admin request refused"));

    let bearer = format!("Bearer {TOKEN}");
    let authorized = [("Authorization", bearer.as_str()), JSON];
    let (head, metrics) = http_response(admin, "GET", "/metrics", &authorized, "").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(metrics.contains("conclave_term"), "{metrics}");
    let (head, reply) = http_response(admin, "POST", "/members", &authorized, add).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}\n{reply}");
    assert_eq!(member_count(&cluster), 2, "the learner was added");
    let (_, reply) =
        http_response(admin, "POST", "/transfer-leader", &authorized, r#"{"to":1}"#).unwrap();
    let log = node_log(&cluster);
    let line = |what: &str| log.lines().find(|l| l.contains(what)).map(str::to_string);
    let change = line("membership change requested").expect("the change is logged");
    assert!(change.contains("INFO") && change.contains("127.0.0.1"), "{change}");
    assert!(change.contains("matched") && change.contains("add-learner"), "{change}");
    let transfer = line("leadership transfer requested").unwrap_or_else(|| panic!("{reply}"));
    assert!(transfer.contains("127.0.0.1") && transfer.contains("matched"), "{transfer}");
}

/// A web page can make a browser send "simple" requests (text/plain, any origin) to loopback;
/// none may change anything, even where no token is configured.
#[test]
fn the_admin_port_refuses_browser_requests() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    let admin = cluster.ports[0].admin;
    let add = r#"{"action":"add-learner","id":2,"peer_addr":"127.0.0.1:9"}"#;
    let browser = [("Content-Type", "text/plain"), ("Origin", "http://evil.example")];
    let (code, reply) =
        common::http_with_headers(admin, "POST", "/members", &browser, add).unwrap();
    assert_eq!(code, 403, "{reply}");
    assert!(reply.contains("cross-origin"), "{reply}");
    let origin_only = [JSON, ("Origin", "http://evil.example")];
    let (code, _) =
        common::http_with_headers(admin, "POST", "/members", &origin_only, add).unwrap();
    assert_eq!(code, 403);
    let (code, _) = common::http_with_headers(admin, "GET", "/status", &origin_only, "").unwrap();
    assert_eq!(code, 403, "a page must not read the status either");
    let plain = [("Content-Type", "text/plain")];
    let (code, reply) = common::http_with_headers(admin, "POST", "/members", &plain, add).unwrap();
    assert_eq!(code, 415, "{reply}");
    let (code, _) = common::http_with_headers(admin, "POST", "/transfer-leader", &[], "").unwrap();
    assert_eq!(code, 415, "a change without a content type");
    assert_eq!(member_count(&cluster), 1, "a refused request changed the membership");
    // A page served by the admin port itself, and a JSON client, are let through.
    let own = format!("http://{admin}");
    let same_origin = [JSON, ("Origin", own.as_str())];
    let (code, reply) =
        common::http_with_headers(admin, "POST", "/members", &same_origin, add).unwrap();
    assert_eq!(code, 200, "{reply}");
    assert_eq!(member_count(&cluster), 2);
}

/// `conclave cluster` sends the token from a file (as `conclave up` writes it) or the
/// environment, and says what is missing when it has none.
#[test]
fn conclave_cluster_sends_the_admin_token() {
    let cluster = cluster_with_token();
    let admin = cluster.ports[0].admin.to_string();
    let out = conclave().args(["cluster", "--admin", &admin, "status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--admin-token-file"), "{stderr}");
    let file = cluster.dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    // The file, given on purpose, wins over a variable left from another cluster.
    let out = conclave()
        .args(["cluster", "--admin", &admin, "--admin-token-file", file.to_str().unwrap()])
        .arg("status")
        .env("CONCLAVE_ADMIN_TOKEN", "stale-token-of-another-cluster")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["role"], "leader");
    let out = conclave()
        .args(["cluster", "--admin", &admin, "add", "2", "127.0.0.1:9"])
        .env("CONCLAVE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(member_count(&cluster), 2);
}

/// `conclave up` makes a token only its owner can read, gives it to the nodes and says how to
/// use it.
#[test]
fn conclave_up_generates_a_private_admin_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let mut up = conclave()
        .args(["up", "--nodes", "1", "--data-dir", data.to_str().unwrap()])
        .arg("--serve-arg=--tick-ms=10")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in BufReader::new(up.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Ctrl-C stops the cluster") {
            break;
        }
    }
    let token_file = data.join("admin-token");
    let checks = (|| {
        let mode = std::fs::metadata(&token_file).ok()?.permissions().mode() & 0o777;
        let token = std::fs::read_to_string(&token_file).ok()?.trim().to_string();
        let ports = std::fs::read_to_string(data.join("ports")).ok()?;
        let admin: SocketAddr = ports.split_whitespace().nth(2)?.parse().ok()?;
        let (without, _) = http(admin, "GET", "/status", "").ok()?;
        let bearer = format!("Bearer {token}");
        let (with, _) =
            common::http_with_headers(admin, "GET", "/status", &[("Authorization", &bearer)], "")
                .ok()?;
        Some((mode, token.len(), without, with))
    })();
    let pid = rustix::process::Pid::from_raw(up.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    up.wait().unwrap();
    assert!(printed.contains("Ctrl-C stops the cluster"), "the cluster did not start:\n{printed}");
    assert_eq!(checks, Some((0o600, 64, 401, 200)), "{printed}");
    assert!(printed.contains(&token_file.display().to_string()), "{printed}");
    assert!(printed.contains("Authorization: Bearer"), "{printed}");
    assert!(printed.contains("--admin-token-file"), "{printed}");
}

/// `conclave serve` listening on every interface, port 0 (the test only connects over loopback).
fn serve_on_all_interfaces(data: &Path, extra: &[&str]) -> Command {
    let mut command = conclave();
    command
        .args(["serve", "--id=1", "--tick-ms=10"])
        .arg(format!("--data-dir={}", data.display()))
        .args(["--client-addr=0.0.0.0:0", "--peer-addr=0.0.0.0:0", "--admin-addr=0.0.0.0:0"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Reads the node's log until it says it started; returns the client port it bound. The log
/// goes on being read (and dropped) until the node exits, so the node never writes to a closed
/// pipe.
fn wait_started(child: &mut Child) -> Result<u16, String> {
    let stderr = child.stderr.take().unwrap();
    let (started, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut started = Some(started);
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !line.contains("node started") {
                seen.push_str(&line);
                seen.push('\n');
                continue;
            }
            let port = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("client="))
                .and_then(|addr| addr.parse::<SocketAddr>().ok())
                .map(|addr| addr.port());
            if let Some(started) = started.take() {
                let _ = started.send(port.ok_or(line));
            }
        }
        if let Some(started) = started {
            let _ = started.send(Err(format!("the node stopped before starting:\n{seen}")));
        }
    });
    wait.recv().expect("the log reader answers")
}

#[test]
fn protected_mode_refuses_to_expose_a_node_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_on_all_interfaces(&dir.path().join("node"), &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a node with no authentication started on 0.0.0.0");
    assert!(stderr.contains("protected mode"), "{stderr}");
    assert!(stderr.contains("password") && stderr.contains("--insecure"), "{stderr}");
    // With only the password the admin port would still be open to everyone.
    let out =
        serve_on_all_interfaces(&dir.path().join("node"), &["--password=s3cret"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an open admin port on 0.0.0.0 was accepted");
    assert!(stderr.contains("admin") && stderr.contains("CONCLAVE_ADMIN_TOKEN"), "{stderr}");
    // With both, the peer port would still let anyone speak for a member.
    let out = serve_on_all_interfaces(&dir.path().join("node"), &["--password=s3cret"])
        .env("CONCLAVE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unauthenticated peer port on 0.0.0.0 was accepted");
    assert!(stderr.contains("cluster_secret"), "{stderr}");
}

#[test]
fn protected_mode_lets_an_authenticated_or_insecure_node_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut insecure =
        serve_on_all_interfaces(&dir.path().join("insecure"), &["--insecure"]).spawn().unwrap();
    let started = wait_started(&mut insecure);
    let pong = started.as_ref().ok().map(|port| {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("PING").query::<String>(&mut con).unwrap()
    });
    let _ = insecure.kill();
    let _ = insecure.wait();
    assert_eq!(pong.as_deref(), Some("PONG"), "{started:?}");

    let mut secured = serve_on_all_interfaces(&dir.path().join("secured"), &["--password=s3cret"])
        .env("CONCLAVE_ADMIN_TOKEN", TOKEN)
        .env("CONCLAVE_CLUSTER_SECRET", "a-secret-every-node-shares")
        .spawn()
        .unwrap();
    let started = wait_started(&mut secured);
    let _ = secured.kill();
    let _ = secured.wait();
    assert!(started.is_ok(), "{started:?}");
}

/// Sends `request` raw to the client port; returns what came back before the server closed the
/// connection, or `None` when it kept it open.
fn send_raw(addr: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok().map(|_| reply)
}

/// What a hostile web page makes a browser send: an HTTP POST whose body is Redis commands.
#[test]
fn an_http_request_to_the_client_port_runs_nothing() {
    let mut cluster = ProcCluster::new(1, 1);
    cluster.start_all();
    let client = cluster.ports[0].client;
    let body = "SET pwned 1\r\n";
    let post = format!(
        "POST / HTTP/1.1\r\nHost: {client}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(send_raw(client, post.as_bytes()), Some(Vec::new()), "the connection stays open");
    // A request whose line the server does not recognise is still stopped by its Host: field.
    let put = format!("PUT / HTTP/1.1\r\nhost: {client}\r\n\r\nSET pwned 2\r\n");
    let reply = send_raw(client, put.as_bytes()).expect("the connection is closed");
    assert!(!String::from_utf8_lossy(&reply).contains("+OK"), "{reply:?}");
    let mut con = cluster.redis(0);
    let exists: bool = con.exists("pwned").unwrap();
    assert!(!exists, "the body of an HTTP request was executed");
    let log = std::fs::read_to_string(cluster.dir.path().join("node-1.log")).unwrap();
    assert!(log.contains("possible SECURITY ATTACK"), "{log}");
}

/// Connections that send nothing held the admin port's memory and file descriptors without
/// limit. Past 64 open at once, a new one is answered 503 and closed at once; once they go, the
/// port serves again.
#[test]
fn the_admin_port_serves_a_bounded_number_of_connections() {
    let cluster = cluster_with_token();
    let admin = cluster.ports[0].admin;
    let silent: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(admin).unwrap()).collect();
    let mut extra = TcpStream::connect(admin).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{reply}");
    drop(silent);
    let authorized = [("Authorization", format!("Bearer {TOKEN}"))];
    let authorized: Vec<(&str, &str)> = authorized.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::eventually("the admin port to serve again", || {
        let (head, _) = http_response(admin, "GET", "/status", &authorized, "").ok()?;
        head.starts_with("HTTP/1.1 200").then_some(())
    });
}
