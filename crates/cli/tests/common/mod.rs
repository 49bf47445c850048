//! A cluster of real `conclave serve` processes on loopback for integration tests: free ports,
//! a temporary data directory, and every child killed when the cluster is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const WAIT: Duration = Duration::from_secs(20);
/// The secret the test clusters' nodes share on their peer ports.
pub const CLUSTER_SECRET: &str = "the integration tests' cluster secret";

/// One node's addresses.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub admin: SocketAddr,
}

pub struct ProcCluster {
    pub dir: TempDir,
    pub ports: Vec<Ports>,
    pub children: Vec<Option<Child>>,
    pub voters: usize,
    pub extra: Vec<String>,
    /// Given to every node (in the environment) and sent with every admin request.
    pub admin_token: Option<String>,
}

fn free_ports(n: usize) -> Vec<SocketAddr> {
    let held: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    held.iter().map(|l| l.local_addr().unwrap()).collect()
}

impl ProcCluster {
    /// A cluster of `size` node slots, the first `voters` of them the initial members.
    pub fn new(size: usize, voters: usize) -> ProcCluster {
        let addrs = free_ports(size * 3);
        let ports = (0..size)
            .map(|i| Ports {
                client: addrs[3 * i],
                peer: addrs[3 * i + 1],
                admin: addrs[3 * i + 2],
            })
            .collect();
        ProcCluster {
            dir: tempfile::tempdir().unwrap(),
            ports,
            children: (0..size).map(|_| None).collect(),
            voters,
            extra: vec!["--tick-ms=10".into()],
            admin_token: None,
        }
    }

    pub fn members(&self) -> String {
        (0..self.voters)
            .map(|i| format!("{}={}", i + 1, self.ports[i].peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The file every node reads the cluster secret from.
    pub fn secret_file(&self) -> PathBuf {
        let path = self.dir.path().join("cluster-secret");
        if !path.exists() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, CLUSTER_SECRET).unwrap();
            // A node refuses a secret file every user may read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{}", i + 1))
    }

    /// Starts node `i` (from 0); nodes beyond the initial voters start with `--join`.
    pub fn start(&mut self, i: usize) {
        let p = self.ports[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{}.log", i + 1)))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_conclave"));
        command
            .arg("serve")
            .arg(format!("--id={}", i + 1))
            .arg(format!("--data-dir={}", self.data_dir(i).display()))
            .arg(format!("--members={}", self.members()))
            .arg(format!("--peer-addr={}", p.peer))
            .arg(format!("--client-addr={}", p.client))
            .arg(format!("--admin-addr={}", p.admin))
            .arg(format!("--cluster-secret-file={}", self.secret_file().display()))
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        if i >= self.voters {
            command.arg("--join");
        }
        if let Some(token) = &self.admin_token {
            command.env("CONCLAVE_ADMIN_TOKEN", token);
        }
        self.children[i] = Some(command.spawn().expect("conclave serve starts"));
    }

    pub fn start_all(&mut self) {
        for i in 0..self.voters {
            self.start(i);
        }
        self.wait_leader();
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].as_ref().unwrap().id()
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.children.len()).filter(|&i| self.children[i].is_some()).collect()
    }

    /// The leader's index, once every running member agrees on it.
    pub fn wait_leader(&self) -> usize {
        self.wait_leader_other_than(None)
    }

    /// The leader's index, once every running member agrees on it and it is not `old` (a node
    /// that was killed, which the others still believe in for a while).
    pub fn wait_leader_other_than(&self, old: Option<usize>) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            // A node that has not joined yet knows no leader: only members vote on the answer.
            let leaders: Vec<Option<u64>> = self
                .running()
                .into_iter()
                .filter_map(|i| {
                    let status = self.status(i);
                    let member = status.as_ref().is_none_or(|s| {
                        s["members"]
                            .as_array()
                            .is_some_and(|m| m.iter().any(|m| m["id"] == i as u64 + 1))
                    });
                    member.then(|| status.and_then(|s| s["leader"].as_u64()))
                })
                .collect();
            if let Some(Some(leader)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*leader)) && old != Some(*leader as usize - 1)
                {
                    return *leader as usize - 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {WAIT:?}: {leaders:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        let authorization = self.admin_token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        let (code, body) =
            http_with_headers(self.ports[i].admin, "GET", "/status", &headers, "").ok()?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    pub fn redis(&self, i: usize) -> redis::Connection {
        let url = format!("redis://{}/", self.ports[i].client);
        let client = redis::Client::open(url).unwrap();
        // A node just started may not be listening yet.
        let connection =
            eventually("the client port", || client.get_connection_with_timeout(WAIT).ok());
        connection.set_read_timeout(Some(WAIT)).unwrap();
        connection
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.ports.len() {
            if let Ok(text) =
                std::fs::read_to_string(self.dir.path().join(format!("node-{}.log", i + 1)))
            {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                out.push_str(&format!("--- node {} ---\n", i + 1));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// A minimal blocking HTTP request to an admin port, with a JSON body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_with_headers(addr, method, path, &[("Content-Type", "application/json")], body)
}

/// A minimal blocking HTTP request to an admin port with exactly the given header fields
/// (besides Host, Content-Length and Connection).
pub fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let (head, body) = http_response(addr, method, path, headers, body)?;
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body))
}

/// Like [`http_with_headers`], but returns the whole response head instead of the status code.
pub fn http_response(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(WAIT))?;
    let fields: String =
        headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{fields}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_string(), body.to_string()))
}

/// Retries `f` until it returns `Some` or the deadline passes.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
