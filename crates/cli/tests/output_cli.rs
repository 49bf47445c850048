//! Standard output closed early, as `conclave sim ... | head` does: the command stops quietly
//! instead of panicking.

use std::io::Read;
use std::process::{Command, Stdio};

/// Runs `conclave args` with its standard output a pipe whose reader is already gone; returns
/// the exit status and standard error.
fn run_into_a_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = rustix::pipe::pipe().expect("a pipe");
    // Closed before the command starts, so its every write fails with EPIPE.
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr)
}

#[test]
fn a_closed_stdout_ends_the_command_without_a_panic() {
    for args in [
        &["sim", "--nodes", "3", "--ops", "50", "--seeds", "1..3"][..],
        &["sim", "--seed", "7", "--ops", "50"][..],
    ] {
        let (code, stderr) = run_into_a_closed_pipe(args);
        assert_ne!(code, Some(101), "{args:?} panicked:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
        assert_eq!(code, Some(141), "{args:?}: 128 + SIGPIPE, as a shell reports it\n{stderr}");
    }
}
