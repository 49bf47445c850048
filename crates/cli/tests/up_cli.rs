//! `conclave up` as a user meets it: the node logs it writes, and what it says when a node
//! cannot start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rustix::process::{kill_process, Pid, Signal};

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

/// A node that refuses its configuration: `up` fails, and says why in the node's own words
/// instead of only pointing at the log.
#[test]
fn a_node_failing_at_start_is_reported_with_its_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let out = conclave()
        .args(["up", "--nodes", "1", "--data-dir", data.to_str().unwrap()])
        .arg("--serve-arg=--tick-ms=0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("node 1 exited at start"), "{stderr}");
    assert!(stderr.contains("tick_ms"), "the node's error should be quoted:\n{stderr}");
}

/// Runs `conclave up` with `nodes` nodes in `data` until it says the cluster is up, then stops it
/// with SIGTERM.
fn up_until_started(data: &std::path::Path, nodes: &str) {
    let mut up = conclave()
        .args(["up", "--nodes", nodes, "--data-dir", data.to_str().unwrap()])
        .arg("--serve-arg=--tick-ms=10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(up.stdout.take().unwrap());
    let mut started = false;
    for line in stdout.lines() {
        if line.unwrap().contains("Ctrl-C stops the cluster") {
            started = true;
            break;
        }
    }
    let pid = Pid::from_raw(up.id() as i32).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
    let status = up.wait().unwrap();
    assert!(started, "the cluster did not start ({status})");
}

/// The node logs are files, so they must hold plain text: no terminal colour codes.
#[test]
fn node_logs_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    up_until_started(&data, "1");
    let log = std::fs::read_to_string(data.join("node-1.log")).unwrap();
    assert!(log.contains("INFO"), "the node should have logged at info level:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the log file:\n{log:?}");
}

/// `up` makes a random cluster secret, private to the user, passes it to every node (which then
/// do not warn that they have none), and keeps it for the next run.
#[test]
fn up_gives_its_nodes_a_private_random_cluster_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    up_until_started(&data, "2");
    let path = data.join("cluster-secret");
    let secret = std::fs::read_to_string(&path).unwrap();
    assert_eq!(secret.len(), 64, "{secret:?}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for node in 1..=2 {
        let log = std::fs::read_to_string(data.join(format!("node-{node}.log"))).unwrap();
        assert!(!log.contains("no cluster secret"), "node {node} runs without one:\n{log}");
        assert!(!log.contains("authentication failed"), "node {node}:\n{log}");
    }
    up_until_started(&data, "2");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret, "the secret changed");
}
