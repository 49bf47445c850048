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

/// The node logs are files, so they must hold plain text: no terminal colour codes.
#[test]
fn node_logs_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let mut up = conclave()
        .args(["up", "--nodes", "1", "--data-dir", data.to_str().unwrap()])
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
    let log = std::fs::read_to_string(data.join("node-1.log")).unwrap();
    assert!(log.contains("INFO"), "the node should have logged at info level:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the log file:\n{log:?}");
}
