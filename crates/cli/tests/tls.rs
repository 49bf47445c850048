//! TLS against real `conclave serve` processes: `redis-cli --tls` and redis-py with `ssl=True`
//! on the TLS client port, client certificates required or not, peers in mutual TLS refusing a
//! node whose certificate another CA signed, the admin port over HTTPS with a client
//! certificate in place of the token, and certificate reload without a restart. Certificates
//! come from `conclave certs`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, ProcCluster, WAIT};
use conclave_server::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The files `conclave certs` writes into one directory.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// A new CA with `nodes` node certificates and a client certificate, in `dir`.
    fn new(dir: &Path, nodes: usize) -> Certs {
        let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["certs", "--nodes", &nodes.to_string(), "--dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "conclave certs: {}", String::from_utf8_lossy(&out.stderr));
        Certs { dir: dir.to_path_buf() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `conclave serve` flags for node `id` (from 1) with these certificates.
    fn serve_flags(&self, id: usize) -> Vec<String> {
        vec![
            format!("--tls-cert-file={}", self.path(&format!("node-{id}.crt"))),
            format!("--tls-key-file={}", self.path(&format!("node-{id}.key"))),
            format!("--tls-ca-cert-file={}", self.path("ca.crt")),
        ]
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A one-node cluster with a TLS client port at the returned address and `flags` added.
fn tls_node(certs: &Certs, flags: &[&str]) -> (ProcCluster, SocketAddr) {
    let mut cluster = ProcCluster::new(1, 1);
    let tls_addr = free_addr();
    cluster.extra.push(format!("--tls-client-addr={tls_addr}"));
    cluster.extra.extend(certs.serve_flags(1));
    cluster.extra.extend(flags.iter().map(|flag| flag.to_string()));
    cluster.start_all();
    (cluster, tls_addr)
}

/// `redis-cli --tls` against `addr` with the extra `tls` flags and the command `args`.
fn redis_cli_tls(addr: SocketAddr, tls: &[String], args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(["--tls", "-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(tls)
        .args(args)
        .output()
        .expect("redis-cli runs (apt-get install redis-tools)")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `redis-cli --tls --cacert` works when client certificates are not required, and redis-py
/// with `ssl=True` works with and without a client certificate.
#[test]
fn redis_cli_and_redis_py_speak_tls_to_the_client_port() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::new(dir.path(), 1);
    let (cluster, tls_addr) = tls_node(&certs, &["--tls-auth-clients=optional"]);
    let cacert = vec!["--cacert".to_string(), certs.path("ca.crt")];
    let out = redis_cli_tls(tls_addr, &cacert, &["SET", "greeting", "hello"]);
    assert_eq!(text(&out).trim(), "OK", "{}\n{}", text(&out), cluster.logs());
    let out = redis_cli_tls(tls_addr, &cacert, &["GET", "greeting"]);
    assert_eq!(text(&out).trim(), "hello");
    let out = redis_cli_tls(tls_addr, &cacert, &["CONFIG", "GET", "tls-*"]);
    let config: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    let value = |name: &str| config.iter().position(|l| *l == name).map(|i| config[i + 1]);
    assert_eq!(value("tls-port"), Some(tls_addr.port().to_string().as_str()), "{config:?}");
    assert_eq!(value("tls-auth-clients"), Some("optional"), "{config:?}");
    // The plain port serves the same data; plain text on the TLS port gets no RESP reply.
    let plain: String = redis::cmd("GET").arg("greeting").query(&mut cluster.redis(0)).unwrap();
    assert_eq!(plain, "hello");
    let out = Command::new("redis-cli")
        .args(["-p", &tls_addr.port().to_string(), "PING"])
        .output()
        .unwrap();
    assert!(!text(&out).contains("PONG"), "plain text answered on the TLS port: {}", text(&out));

    let script = r#"
import sys, redis
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca)
assert r.get("greeting") == b"hello"
assert r.set("from-python", "1") is True
r = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                ssl_certfile=cert, ssl_keyfile=key)
assert r.get("from-python") == b"1"
print("python tls ok")
"#;
    let port = tls_addr.port().to_string();
    let (cert, key) = (certs.path("client.crt"), certs.path("client.key"));
    let out = Command::new("python3")
        .args(["-c", script, &port, &certs.path("ca.crt"), &cert, &key])
        .output()
        .expect("python3 runs (with `pip install redis`)");
    assert!(
        out.status.success() && text(&out).contains("python tls ok"),
        "redis-py over TLS failed: {}\n{}",
        text(&out),
        cluster.logs()
    );

    // The command line's own clients: `conclave kv` and `conclave bench kv`.
    let conclave = |command: &[&str], args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(command)
            .args(["--addr", &tls_addr.to_string(), "--tls-ca-cert-file", &certs.path("ca.crt")])
            .args(args)
            .output()
            .unwrap()
    };
    let out = conclave(&["kv"], &["get", "from-python"]);
    assert!(out.status.success() && text(&out).trim() == "1", "{}", text(&out));
    let bench = ["--clients", "2", "--requests", "50", "--keyspace", "10"];
    let out = conclave(&["bench", "kv"], &bench);
    assert!(out.status.success(), "{}", text(&out));
    let stats: serde_json::Value = serde_json::from_str(
        &common::http(cluster.ports[0].admin, "GET", "/status", "").unwrap().1,
    )
    .unwrap();
    assert!(stats["keys"].as_u64().unwrap() >= 3, "the benchmark wrote over TLS: {stats}");
}

/// With `tls_auth_clients yes` (Redis's default) a client without a certificate, or with one
/// another CA signed, is refused in the handshake; one with a CA-signed certificate works.
#[test]
fn required_client_certificates_refuse_clients_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::new(&dir.path().join("cluster"), 1);
    let strangers = Certs::new(&dir.path().join("strangers"), 1);
    let (cluster, tls_addr) = tls_node(&certs, &[]);
    let cacert = vec!["--cacert".to_string(), certs.path("ca.crt")];
    let out = redis_cli_tls(tls_addr, &cacert, &["PING"]);
    assert!(!text(&out).contains("PONG"), "no certificate, yet: {}", text(&out));
    let mut foreign = cacert.clone();
    foreign.extend(["--cert".into(), strangers.path("client.crt")]);
    foreign.extend(["--key".into(), strangers.path("client.key")]);
    let out = redis_cli_tls(tls_addr, &foreign, &["PING"]);
    assert!(!text(&out).contains("PONG"), "another CA's certificate, yet: {}", text(&out));
    let mut signed = cacert;
    signed.extend([
        "--cert".into(),
        certs.path("client.crt"),
        "--key".into(),
        certs.path("client.key"),
    ]);
    let out = redis_cli_tls(tls_addr, &signed, &["PING"]);
    assert_eq!(text(&out).trim(), "PONG", "{}\n{}", text(&out), cluster.logs());
    let status = cluster.status(0).unwrap();
    assert!(status["tls"]["fingerprint"].as_str().is_some_and(|f| f.len() == 64), "{status}");
}

/// The leader (among nodes 1 and 2) once they agree on one.
fn leader_of_first_two(cluster: &ProcCluster) -> usize {
    eventually("nodes 1 and 2 agree on a leader", || {
        let leaders: Vec<Option<u64>> =
            (0..2).map(|i| cluster.status(i).and_then(|s| s["leader"].as_u64())).collect();
        match leaders[..] {
            [Some(a), Some(b)] if a == b => Some(a as usize - 1),
            _ => None,
        }
    })
}

fn keys(cluster: &ProcCluster, i: usize) -> Option<u64> {
    cluster.status(i).and_then(|s| s["keys"].as_u64())
}

/// With `tls_cluster` a node whose certificate another CA signed cannot take part, though it
/// knows the cluster secret: the others refuse it in the TLS handshake and it receives
/// nothing. Restarted with a certificate of the cluster CA it catches up.
#[test]
fn mutual_tls_keeps_out_a_peer_without_a_cluster_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::new(&dir.path().join("cluster"), 3);
    let strangers = Certs::new(&dir.path().join("strangers"), 3);
    let mut cluster = ProcCluster::new(3, 3);
    let base = cluster.extra.clone();
    let start = |cluster: &mut ProcCluster, i: usize, certs: &Certs| {
        cluster.extra = base.clone();
        cluster.extra.push("--tls-cluster".into());
        cluster.extra.extend(certs.serve_flags(i + 1));
        cluster.start(i);
    };
    start(&mut cluster, 0, &certs);
    start(&mut cluster, 1, &certs);
    start(&mut cluster, 2, &strangers);
    let leader = leader_of_first_two(&cluster);
    let mut redis = cluster.redis(leader);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut redis).unwrap();
    for i in 0..2 {
        eventually("the write reaches nodes 1 and 2", || {
            (keys(&cluster, i) == Some(1)).then_some(())
        });
    }
    // Node 3 is refused: its peers log the failed handshake, and it has nothing.
    eventually("a refused TLS handshake in the logs", || {
        cluster.logs().contains("TLS handshake failed").then_some(())
    });
    assert_eq!(keys(&cluster, 2), Some(0), "{}", cluster.logs());
    let status = cluster.status(leader).unwrap();
    let member3 = status["members"].as_array().unwrap().iter().find(|m| m["id"] == 3).cloned();
    assert_eq!(member3.unwrap()["connected"], false, "{status}");

    cluster.kill(2);
    start(&mut cluster, 2, &certs);
    eventually("node 3 catches up with a cluster certificate", || {
        (keys(&cluster, 2) == Some(1)).then_some(())
    });
}

/// `conclave cluster` against an HTTPS admin port with `args` after the TLS flags.
fn cluster_cmd(admin: SocketAddr, tls: &[String], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
        .env_remove("CONCLAVE_ADMIN_TOKEN")
        .args(["cluster", "--admin", &admin.to_string()])
        .args(tls)
        .args(args)
        .output()
        .unwrap()
}

/// Over HTTPS a client certificate of the cluster CA authenticates an admin request in place
/// of the token; without either the request gets 401, and plain HTTP gets no answer.
#[test]
fn the_https_admin_port_takes_a_client_certificate_or_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::new(&dir.path().join("cluster"), 1);
    let strangers = Certs::new(&dir.path().join("strangers"), 1);
    let mut cluster = ProcCluster::new(1, 1);
    cluster.admin_token = Some("the-https-admin-token".into());
    cluster.extra.push("--tls-admin".into());
    cluster.extra.extend(certs.serve_flags(1));
    cluster.start(0);
    let admin = cluster.ports[0].admin;
    let ca = vec!["--tls-ca-cert-file".to_string(), certs.path("ca.crt")];
    let with_cert = |certs: &Certs| {
        let mut flags = ca.clone();
        flags.extend(["--tls-cert-file".into(), certs.path("client.crt")]);
        flags.extend(["--tls-key-file".into(), certs.path("client.key")]);
        flags
    };
    let out = eventually("the HTTPS admin port answers", || {
        let out = cluster_cmd(admin, &with_cert(&certs), &["status", "--local"]);
        out.status.success().then_some(out)
    });
    assert!(text(&out).contains("\"role\""), "{}", text(&out));
    let out = cluster_cmd(admin, &ca, &["status", "--local"]);
    let refusal = "requires Authorization: Bearer <token> or a client certificate";
    assert!(!out.status.success() && text(&out).contains(refusal), "{}", text(&out));
    let mut token = ca.clone();
    token.extend(["--admin-token".into(), "the-https-admin-token".into()]);
    assert!(cluster_cmd(admin, &token, &["status", "--local"]).status.success());
    let out = cluster_cmd(admin, &with_cert(&strangers), &["status", "--local"]);
    assert!(!out.status.success(), "another CA's certificate: {}", text(&out));
    let (code, _) = common::http(admin, "GET", "/status", "").unwrap_or((0, String::new()));
    assert_eq!(code, 0, "plain HTTP must get no HTTP answer from an HTTPS port");
}

/// A TLS connection that stays open: a blocking rustls client speaking RESP.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: &str) -> std::io::Result<TlsClient> {
        let config: Arc<rustls::ClientConfig> =
            conclave_server::client_config(Path::new(ca), None).unwrap();
        let name = ServerName::IpAddress(addr.ip().into());
        let connection = rustls::ClientConnection::new(config, name).unwrap();
        let socket = TcpStream::connect(addr)?;
        socket.set_read_timeout(Some(WAIT))?;
        let mut client = TlsClient { stream: rustls::StreamOwned::new(connection, socket) };
        client.ping()?;
        Ok(client)
    }

    fn ping(&mut self) -> std::io::Result<()> {
        self.stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut reply = [0u8; 7];
        self.stream.read_exact(&mut reply)?;
        assert_eq!(&reply, b"+PONG\r\n");
        Ok(())
    }

    /// The SHA-256 fingerprint of the certificate the server presented.
    fn fingerprint(&self) -> String {
        let certs = self.stream.conn.peer_certificates().expect("a server certificate");
        conclave_server::fingerprint(certs[0].as_ref())
    }
}

fn file_fingerprint(path: &str) -> String {
    conclave_server::fingerprint(CertificateDer::from_pem_file(path).unwrap().as_ref())
}

/// Copies the node-1 certificate, key and CA of `from` over the files the node reads.
fn install(from: &Certs, to: &Path) {
    for (source, target) in
        [("node-1.crt", "node.crt"), ("node-1.key", "node.key"), ("ca.crt", "ca.crt")]
    {
        std::fs::copy(from.dir.join(source), to.join(target)).unwrap();
    }
}

/// Certificate reload: after the files are replaced and `conclave cluster tls-reload` is run,
/// a new connection gets the new certificate while one opened before keeps working; a bad file
/// is refused with its name and the new certificate stays; SIGHUP reloads as well. With the file
/// check on, replacing the files alone is enough.
#[test]
fn reloaded_certificates_reach_new_connections_and_old_ones_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let first = Certs::new(&dir.path().join("first"), 1);
    let second = Certs::new(&dir.path().join("second"), 1);
    let live = dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    install(&first, &live);
    let files = Certs { dir: live.clone() };
    let mut cluster = ProcCluster::new(1, 1);
    let tls_addr = free_addr();
    cluster.extra.extend([
        format!("--tls-client-addr={tls_addr}"),
        format!("--tls-cert-file={}", files.path("node.crt")),
        format!("--tls-key-file={}", files.path("node.key")),
        format!("--tls-ca-cert-file={}", files.path("ca.crt")),
        "--tls-auth-clients=no".into(),
        "--tls-reload-check-ms=0".into(),
    ]);
    cluster.start_all();
    let mut old =
        eventually("the TLS port", || TlsClient::connect(tls_addr, &first.path("ca.crt")).ok());
    assert_eq!(old.fingerprint(), file_fingerprint(&first.path("node-1.crt")));

    install(&second, &live);
    let admin = cluster.ports[0].admin;
    let out = cluster_cmd(admin, &[], &["tls-reload"]);
    assert!(out.status.success(), "{}\n{}", text(&out), cluster.logs());
    let second_fingerprint = file_fingerprint(&second.path("node-1.crt"));
    assert!(text(&out).contains(&second_fingerprint), "{}", text(&out));
    let new = TlsClient::connect(tls_addr, &second.path("ca.crt")).unwrap();
    assert_eq!(new.fingerprint(), second_fingerprint);
    assert!(
        TlsClient::connect(tls_addr, &first.path("ca.crt")).is_err(),
        "the old CA no longer verifies it"
    );
    old.ping().expect("a connection from before the reload keeps working");

    std::fs::write(live.join("node.key"), "not a key").unwrap();
    let out = cluster_cmd(admin, &[], &["tls-reload"]);
    assert!(!out.status.success() && text(&out).contains("node.key"), "{}", text(&out));
    let after = TlsClient::connect(tls_addr, &second.path("ca.crt")).unwrap();
    assert_eq!(after.fingerprint(), second_fingerprint, "a failed reload keeps the certificate");

    // SIGHUP reloads too.
    install(&first, &live);
    let hup = Command::new("kill").args(["-HUP", &cluster.pid(0).to_string()]).status().unwrap();
    assert!(hup.success());
    let reloaded = eventually("SIGHUP reloads the certificates", || {
        TlsClient::connect(tls_addr, &first.path("ca.crt")).ok()
    });
    assert_eq!(reloaded.fingerprint(), file_fingerprint(&first.path("node-1.crt")));
    drop(cluster);

    // The same node with the file check on: replacing the files is enough.
    install(&first, &live);
    let mut cluster = ProcCluster::new(1, 1);
    let tls_addr = free_addr();
    let flags = cluster.extra.clone();
    cluster.extra = flags
        .into_iter()
        .chain([
            format!("--tls-client-addr={tls_addr}"),
            format!("--tls-cert-file={}", files.path("node.crt")),
            format!("--tls-key-file={}", files.path("node.key")),
            format!("--tls-ca-cert-file={}", files.path("ca.crt")),
            "--tls-auth-clients=no".into(),
            "--tls-reload-check-ms=50".into(),
        ])
        .collect();
    cluster.start_all();
    let old =
        eventually("the TLS port", || TlsClient::connect(tls_addr, &first.path("ca.crt")).ok());
    assert_eq!(old.fingerprint(), file_fingerprint(&first.path("node-1.crt")));
    install(&second, &live);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(client) = TlsClient::connect(tls_addr, &second.path("ca.crt")) {
            assert_eq!(client.fingerprint(), second_fingerprint);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed files were not reloaded\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// In a cluster where every node has a TLS client port, a follower forwards a TLS client's
/// write to the leader's TLS port (presenting its node certificate, which the leader requires
/// of clients), and a TLS client that asked for redirects is sent to the leader's TLS port.
#[test]
fn followers_forward_and_redirect_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::new(dir.path(), 3);
    let mut cluster = ProcCluster::new(3, 3);
    let tls_addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let base = cluster.extra.clone();
    for (i, addr) in tls_addrs.iter().enumerate() {
        cluster.extra = base.clone();
        cluster.extra.extend(certs.serve_flags(i + 1));
        cluster.extra.extend([format!("--tls-client-addr={addr}"), "--tls-cluster".into()]);
        cluster.start(i);
    }
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let client_cert = vec![
        "--cacert".to_string(),
        certs.path("ca.crt"),
        "--cert".into(),
        certs.path("client.crt"),
        "--key".into(),
        certs.path("client.key"),
    ];
    let out = redis_cli_tls(tls_addrs[follower], &client_cert, &["SET", "forwarded", "yes"]);
    assert_eq!(text(&out).trim(), "OK", "{}\n{}", text(&out), cluster.logs());
    let metric = |i: usize, name: &str| -> u64 {
        let (_, metrics) = common::http(cluster.ports[i].admin, "GET", "/metrics", "").unwrap();
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default();
        line.split(' ')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {metrics}"))
    };
    assert!(metric(follower, "conclave_client_forwarded_total") >= 1);
    // No client connected to the leader's TLS port: the forwarded write did.
    assert!(
        metric(leader, "conclave_tls_client_connections_total") >= 1,
        "forwarded in clear text"
    );

    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'REDIRECT ON\\nSET redirected yes\\n' | redis-cli --tls -h 127.0.0.1 -p {} {}",
            tls_addrs[follower].port(),
            client_cert.join(" ")
        ))
        .output()
        .unwrap();
    let moved = format!("MOVED 0 {}", tls_addrs[leader]);
    assert!(text(&out).contains(&moved), "expected {moved}: {}", text(&out));
}

/// `conclave up --tls` makes the CA and node certificates (keys 0600) and prints a
/// `redis-cli --tls --cacert` command that works as printed; the peers run mutual TLS.
#[test]
fn up_with_tls_prints_a_redis_cli_command_that_works() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let mut up = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["up", "--tls", "--nodes", "3", "--data-dir", data.to_str().unwrap()])
        .arg("--serve-arg=--tick-ms=10")
        .env_remove("CONCLAVE_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(up.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C stops the cluster");
        printed.push(line);
        if done {
            break;
        }
    }
    let command =
        printed.iter().find_map(|l| l.trim().split_once("  redis-cli --tls ").map(|(_, c)| c));
    let outcome = command.map(|command| {
        let args: Vec<&str> = command.split_whitespace().collect();
        let set =
            Command::new("redis-cli").arg("--tls").args(&args).args(["SET", "k", "v"]).output();
        let get = Command::new("redis-cli").arg("--tls").args(&args).args(["GET", "k"]).output();
        (set.unwrap(), get.unwrap())
    });
    let pid = rustix::process::Pid::from_raw(up.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    up.wait().unwrap();
    let (set, get) = outcome.unwrap_or_else(|| panic!("no redis-cli --tls line: {printed:#?}"));
    assert_eq!(text(&set).trim(), "OK", "{printed:#?}");
    assert_eq!(text(&get).trim(), "v");
    for key in ["ca.key", "node-1.key", "node-3.key", "client.key"] {
        let mode = std::fs::metadata(data.join("tls").join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let log = std::fs::read_to_string(data.join("node-1.log")).unwrap();
    assert!(log.contains("tls_cluster=true"), "{log}");
}
