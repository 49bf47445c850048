//! `conclave sim --record`, `--replay` and `--shrink` as a user runs them: replay files, their
//! traces, and the exit statuses scripts rely on.
//!
//! The broken Raft variants exist only in a binary built with the `bug-injection` feature, so
//! the tests that shrink them run with `cargo nextest run -p conclave-cli --features
//! bug-injection`; the library tests in `crates/sim/tests/raft_shrink.rs` shrink every variant in
//! the default run.

use std::path::Path;
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

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("a UTF-8 temp path").to_string()
}

#[test]
fn a_recorded_run_replays_to_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (file, first, second) =
        (path(dir.path(), "run.json"), path(dir.path(), "a.jsonl"), path(dir.path(), "b.jsonl"));
    let out = conclave(&[
        "sim", "--seed", "3", "--ops", "200", "--faults", "all", "--record", &file, "--trace",
        &first,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("recorded the run in"), "{}", stdout(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"schedule\": [") && text.contains("\"violation\": null"), "{text}");

    let out = conclave(&["sim", "--replay", &file, "--trace", &second]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("replay: no violation, as recorded"), "{}", stdout(&out));
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    assert!(a.len() > 10_000, "a real run: {} bytes of trace", a.len());
    assert!(a == b, "the replay's trace differs from the recorded run's");
}

#[test]
fn shrinking_a_passing_run_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "shrunk.json");
    let out = conclave(&["sim", "--seed", "2", "--ops", "100", "--shrink", "--out", &file]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("nothing to shrink"), "{}", stdout(&out));
    assert!(!Path::new(&file).exists());
}

#[test]
fn bad_replay_files_and_flags_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "bad.json");
    std::fs::write(&file, r#"{"conclave_replay": 1, "options": {"nodez": 3}}"#).unwrap();
    let out = conclave(&["sim", "--replay", &file]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown key `nodez`"), "{}", stderr(&out));

    let schedule = r#"{"conclave_replay": 1, "options": {"nodes": 3},
        "schedule": [{"at_us": 100, "fault": "crash", "node": 7, "for_us": 10}]}"#;
    std::fs::write(&file, schedule).unwrap();
    let out = conclave(&["sim", "--replay", &file]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fault_schedule[0]"), "{}", stderr(&out));

    let out = conclave(&["sim", "--replay", &file, "--nodes", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--nodes"), "{}", stderr(&out));

    let out = conclave(&["sim", "--out", "x.json"]);
    assert_eq!(out.status.code(), Some(2), "--out needs --shrink");

    let out = conclave(&["sim", "--replay", &path(dir.path(), "missing.json")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read replay file"), "{}", stderr(&out));
}

#[test]
fn a_hand_written_schedule_is_replayed_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (file, trace) = (path(dir.path(), "hand.json"), path(dir.path(), "hand.jsonl"));
    let text = r#"{
      "conclave_replay": 1,
      "options": {"seed": 4, "nodes": 3, "ops": 50, "clients": 1},
      "schedule": [
        {"at_us": 200000, "fault": "crash", "node": 1, "for_us": 100000},
        {"at_us": 250000, "fault": "partition", "groups": [[2], [1, 3]], "for_us": 50000}
      ]
    }"#;
    std::fs::write(&file, text).unwrap();
    let out = conclave(&["sim", "--replay", &file, "--trace", &trace]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let trace = std::fs::read_to_string(&trace).unwrap();
    for line in [
        r#"{"t":200000,"ev":"crash","node":1}"#,
        r#"{"t":250000,"ev":"partition","groups":[[1,3],[2]]}"#,
        r#"{"t":300000,"ev":"heal"}"#,
        r#"{"t":300000,"ev":"restart","node":1}"#,
    ] {
        assert!(trace.lines().any(|l| l == line), "the trace lacks {line}");
    }
}

#[cfg(not(feature = "bug-injection"))]
#[test]
fn a_replay_file_naming_a_bug_needs_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "bug.json");
    let text = r#"{"conclave_replay": 1, "protocol": {"bugs": ["double-vote"]}}"#;
    std::fs::write(&file, text).unwrap();
    let out = conclave(&["sim", "--replay", &file]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--features bug-injection"), "{}", stderr(&out));
}

/// `--bug` offers exactly Raft's list of variants, each with its description, and a replay file
/// naming a variant that is not on it is refused with the list.
#[cfg(feature = "bug-injection")]
#[test]
fn bug_names_come_from_rafts_list() {
    use conclave_raft::BugVariant;
    let help = stdout(&conclave(&["sim", "--help"]));
    for &bug in BugVariant::ALL {
        assert!(help.contains(bug.as_str()), "{bug} missing from:\n{help}");
        assert!(help.contains(bug.description()), "{bug}'s description missing from:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "bug.json");
    let text = r#"{"conclave_replay": 1, "protocol": {"bugs": ["meteor"]}}"#;
    std::fs::write(&file, text).unwrap();
    let out = conclave(&["sim", "--replay", &file]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"meteor\"") && stderr(&out).contains("double-vote"),
        "{}",
        stderr(&out)
    );
}

/// Shrinks `--bug bug` at `seed`, checks the report, replays the file and returns its text.
#[cfg(feature = "bug-injection")]
fn shrink_and_replay(bug: &str, seed: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "shrunk.json");
    let mut args = vec!["sim", "--bug", bug, "--seed", seed, "--faults", "all", "--shrink"];
    args.extend_from_slice(&["--out", &file]);
    args.extend_from_slice(extra);
    let out = conclave(&args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    for needle in ["shrunk in", "before:", "after:", "wrote", "and its trace"] {
        assert!(text.contains(needle), "the report lacks `{needle}`:\n{text}");
    }
    eprintln!("{bug}:\n{text}");
    let trace = path(dir.path(), "shrunk.trace.jsonl");
    assert!(std::fs::metadata(&trace).unwrap().len() > 0);

    let replay = conclave(&["sim", "--replay", &file]);
    assert_eq!(replay.status.code(), Some(1), "{}{}", stdout(&replay), stderr(&replay));
    assert!(stdout(&replay).contains("reproduced the recorded"), "{}", stdout(&replay));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains(&format!("\"bugs\": [\"{bug}\"]")), "{written}");
    written
}

#[cfg(feature = "bug-injection")]
#[test]
fn every_broken_variant_shrinks_to_a_file_that_replays() {
    let fig8 = ["--append-entries-max", "1", "--inflight-max", "1", "--ops", "2000"];
    for (bug, seed, extra) in [
        ("forget-vote", "0", &[][..]),
        ("double-vote", "2", &[][..]),
        ("no-truncate", "0", &[][..]),
        ("apply-before-commit", "1", &[][..]),
        ("figure8-commit", "6", &fig8[..]),
    ] {
        let written = shrink_and_replay(bug, seed, extra);
        let nodes: usize = written
            .lines()
            .find_map(|line| line.trim().strip_prefix("\"nodes\": "))
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .expect("the file names its node count");
        assert!(nodes <= 3, "{bug}: {nodes} nodes left");
    }
}
