//! `conclave chaos` end to end: real processes, real faults, a checked history. One run with
//! linearizable reads must pass; the same run with stale follower reads must be caught.

use std::process::Command;

fn chaos(report: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["chaos", "--time", "30s", "--seed", "1", "--report"])
        .arg(report)
        .args(extra)
        .output()
        .expect("conclave chaos runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_short_chaos_run_with_linearizable_reads_passes_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let (code, out) = chaos(&report, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("verdict: LINEARIZABLE"), "{out}");
    assert!(out.contains("lost acknowledged writes: none"), "{out}");
    // Faults really happened, and every file of the report is there.
    let nemesis = read(report.join("nemesis.jsonl"));
    assert!(nemesis.lines().filter(|l| l.contains("\"start\"")).count() >= 3, "{nemesis}");
    let history = read(report.join("history.jsonl"));
    assert!(history.lines().count() > 1000, "a busy run: {} events", history.lines().count());
    assert!(read(report.join("timeline.html")).contains("<svg"));
    assert!(read(report.join("check.txt")).contains("LINEARIZABLE"));
    assert!(read(report.join("timeseries.csv")).starts_with("second,ok,fail,info"));
    for node in 1..=3 {
        assert!(read(report.join(format!("nodes/node-{node}.log"))).contains("INFO"));
    }
    // The history is in the checker's format: `conclave check` agrees.
    let check = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["check", "--model", "kv"])
        .arg(report.join("history.jsonl"))
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
}

#[test]
fn stale_follower_reads_are_caught_as_not_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let (code, out) = chaos(&report, &["--read-mode", "stale"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("verdict: NOT LINEARIZABLE"), "{out}");
    let check = read(report.join("check.json"));
    assert!(check.contains("\"verdict\": \"not-linearizable\""), "{check}");
}
