//! The `conclave sim` command as a user runs it: summaries, sweeps, traces and bad input.

use std::process::{Command, Output};

fn conclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave")).args(args).output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_run_under_faults_prints_its_summary_and_succeeds() {
    let out = conclave(&[
        "sim",
        "--nodes",
        "5",
        "--ops",
        "300",
        "--seed",
        "7",
        "--faults",
        "partition,crash,drop,delay,duplicate",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for needle in [
        "ops acknowledged",
        "elections",
        "messages sent",
        "dropped",
        "virtual time",
        "wall time",
        "simulated events/s",
    ] {
        assert!(text.contains(needle), "summary lacks `{needle}`:\n{text}");
    }
}

#[test]
fn the_same_seed_writes_the_same_trace_file() {
    let dir = std::env::temp_dir().join(format!("conclave-cli-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = |name: &str, seed: &str| {
        let path = dir.join(name);
        let out = conclave(&[
            "sim",
            "--ops",
            "100",
            "--seed",
            seed,
            "--faults",
            "all",
            "--trace",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read(path).unwrap()
    };
    let a = trace("a.jsonl", "3");
    let b = trace("b.jsonl", "3");
    let c = trace("c.jsonl", "4");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!a.is_empty() && a.split(|b| *b == b'\n').next().unwrap().starts_with(b"{\"t\":"));
    assert_eq!(a, b, "same seed, different traces");
    assert_ne!(a, c, "different seeds, same trace");
}

#[test]
fn a_sweep_reports_every_seed_and_a_tally() {
    let out =
        conclave(&["sim", "--nodes", "3", "--ops", "100", "--seeds", "1..4", "--faults", "all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("seed ") && l.contains(": ok")).count(),
        4,
        "{text}"
    );
    assert!(text.contains("swept 4 seeds") && text.contains("0 failed"), "{text}");
}

#[test]
fn bad_input_is_refused_with_a_message_naming_it() {
    let out = conclave(&["sim", "--faults", "partition,meteor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("meteor"), "{}", stderr(&out));

    let out = conclave(&["sim", "--seeds", "9..2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty range"), "{}", stderr(&out));

    let out = conclave(&["sim", "--election-ticks", "5", "--heartbeat-ticks", "5"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("heartbeat_ticks"), "{}", stderr(&out));

    let out = conclave(&["sim", "--nodes", "12"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nodes"), "{}", stderr(&out));

    let out = conclave(&["sim", "--clock-drift", "0.9"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("clock_drift"), "{}", stderr(&out));

    let out = conclave(&["sim", "--lease-margin-ticks", "10"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lease_margin_ticks"), "{}", stderr(&out));
}

#[test]
fn membership_changes_transfers_and_reads_run_under_faults() {
    let out = conclave(&[
        "sim",
        "--seed",
        "5",
        "--ops",
        "800",
        "--faults",
        "membership,transfer,crash,partition",
        "--read-ratio",
        "0.5",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("membership changes and transfers:"), "{text}");
    assert!(text.contains("ReadIndexRequest") || text.contains("reads;"), "{text}");
}

#[test]
fn the_core_benchmark_commits_on_every_node() {
    let out = conclave(&["bench", "core", "--nodes", "3", "--commands", "20000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("commands/s (committed and applied on every node)"),
        "{}",
        stdout(&out)
    );
}
