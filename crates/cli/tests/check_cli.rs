//! `conclave check` as users run it: small history files in each format, the exit statuses
//! (0 linearizable, 1 not, 2 unusable input, 3 unknown), `--json` and `--html`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave")).args(args).output().expect("the binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A register: write 1, then a concurrent write 2 and read of 1, then a read of 2.
const GOOD: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":0,"type":"invoke","f":"write","value":2}
{"process":1,"type":"invoke","f":"read"}
{"process":1,"type":"ok","f":"read","result":1}
{"process":0,"type":"ok","f":"write","value":2}
{"process":1,"type":"invoke","f":"read"}
{"process":1,"type":"ok","f":"read","result":2}
"#;

/// The same, but the last read returns the overwritten value: a stale read.
fn stale() -> String {
    GOOD.replace(r#""result":2}"#, r#""result":1}"#)
}

#[test]
fn a_linearizable_history_exits_0_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "good.jsonl", GOOD);
    let out = conclave(&["check", "--model", "register", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 operations") && stdout.contains("verdict: LINEARIZABLE"),
        "{stdout}"
    );
    assert!(stdout.contains("checked in"), "{stdout}");
}

#[test]
fn a_stale_read_exits_1_naming_the_read_and_draws_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "stale.jsonl", &stale());
    let html = dir.path().join("timeline.html");
    let out = conclave(&[
        "check",
        "--model",
        "register",
        "--html",
        html.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("NOT LINEARIZABLE"), "{stdout}");
    assert!(stdout.contains("linearized 3 operations"), "{stdout}");
    assert!(stdout.contains("op 3: p1 read -> 1 ok (lines 7-8)"), "{stdout}");
    let page = std::fs::read_to_string(&html).expect("the timeline was written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("process 0") && page.contains("process 1"), "one lane per client");
    assert!(page.contains("unplaceable") && page.contains("COULD NOT BE PLACED"));
    assert!(!page.contains("<script") && !page.contains("http-equiv"), "self-contained");
}

#[test]
fn json_output_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "stale.jsonl", &stale());
    let out = conclave(&["check", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["verdict"], "not-linearizable");
    assert_eq!(report["model"], "cas-register", "no key and no meta line: cas-register");
    assert_eq!(report["violations"][0]["unplaceable"][0]["invoke_line"], 7);
}

#[test]
fn unusable_input_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = GOOD.replace(r#"{"process":1,"type":"invoke","f":"read"}"#, "{oops");
    let file = write(dir.path(), "broken.jsonl", &broken);
    let out = conclave(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 4"), "{}", text(&out));

    let out = conclave(&["check", dir.path().join("missing.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let file =
        write(dir.path(), "bank.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n");
    let out = conclave(&["check", "--model", "bank", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("initial balances"), "{}", text(&out));
}

#[test]
fn a_tiny_step_budget_exits_3() {
    // Twelve concurrent writes and a read of a value none wrote: proving it takes many steps.
    let dir = tempfile::tempdir().unwrap();
    let mut history = String::new();
    for p in 0..12 {
        history.push_str(&format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}\n"
        ));
    }
    for p in 0..12 {
        history.push_str(&format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"write\"}}\n"));
    }
    history.push_str("{\"process\":20,\"type\":\"invoke\",\"f\":\"read\"}\n");
    history.push_str("{\"process\":20,\"type\":\"ok\",\"f\":\"read\",\"result\":99}\n");
    let file = write(dir.path(), "hard.jsonl", &history);
    let out = conclave(&["check", "--steps", "100", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNKNOWN"));
    let out = conclave(&["check", "--budget", "30s", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn jepsen_log_and_edn_formats() {
    let dir = tempfile::tempdir().unwrap();
    let log = "INFO  jepsen.core - starting\n\
               INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
               INFO  jepsen.util - 0\t:ok\t:write\t3\n\
               INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n\
               INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
               INFO  jepsen.util - 1\t:info\t:cas\t[3 4]\n\
               INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 2\t:ok\t:read\t4\n";
    let file = write(dir.path(), "cas.log", log);
    let out = conclave(&["check", "--format", "jepsen-log", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let bad =
        write(dir.path(), "bad.log", &format!("{log}INFO  jepsen.util - x\t:ok\t:read\tnil\n"));
    let out = conclave(&["check", "--format", "jepsen-log", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 9"), "{}", text(&out));

    let edn = "{:process 0 :type :invoke :f :put :key \"a\" :value 1}\n\
               {:process 0 :type :ok :f :put :key \"a\" :value 1}\n\
               {:process 1 :type :invoke :f :get :value [\"a\" nil]}\n\
               {:process 1 :type :ok :f :get :value [\"a\" 2]}\n";
    let file = write(dir.path(), "kv.edn", edn);
    let out = conclave(&["check", "--format", "jepsen-edn", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("key \"a\""), "{}", text(&out));
}

#[test]
fn bank_balances_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let history = "{\"process\":0,\"type\":\"invoke\",\"f\":\"transfer\",\"value\":{\"from\":0,\"to\":1,\"amount\":3}}\n\
                   {\"process\":0,\"type\":\"ok\",\"f\":\"transfer\"}\n\
                   {\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\
                   {\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"result\":[7,13]}\n";
    let file = write(dir.path(), "bank.jsonl", history);
    let path = file.to_str().unwrap();
    let out = conclave(&["check", "--model", "bank", "--accounts", "2", "--balance", "10", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = conclave(&["check", "--model", "bank", "--accounts", "2", "--balance", "11", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A store that answers a missing key with `""`: the read before any write is only linearizable
/// when the checker is told the initial value, in Jepsen EDN as in JSON lines.
#[test]
fn initial_value_lets_a_read_of_a_missing_key_return_the_empty_string() {
    let dir = tempfile::tempdir().unwrap();
    let edn = "{:process 0 :type :invoke :f :get :value [\"a\" nil]}\n\
               {:process 0 :type :ok :f :get :value [\"a\" \"\"]}\n\
               {:process 1 :type :invoke :f :put :key \"a\" :value \"x\"}\n\
               {:process 1 :type :ok :f :put :key \"a\" :value \"x\"}\n";
    let file = write(dir.path(), "empty.edn", edn);
    let file = file.to_str().unwrap();
    let out = conclave(&["check", "--format", "jepsen-edn", file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = conclave(&["check", "--format", "jepsen-edn", "--initial-value", "", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The JSON format says the same on its meta line.
    let jsonl = "{\"type\":\"meta\",\"model\":\"kv\",\"initial\":\"\"}\n\
                 {\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"a\"}\n\
                 {\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"a\",\"result\":\"\"}\n";
    let file = write(dir.path(), "empty.jsonl", jsonl);
    let out = conclave(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A model whose state is not one value refuses it rather than ignoring it.
    let out =
        conclave(&["check", "--model", "counter", "--initial-value", "0", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// The models and formats the help lists are the checker's own, with their descriptions.
#[test]
fn help_lists_the_checkers_models_and_formats() {
    let out = conclave(&["check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for name in ["register", "cas-register", "kv", "counter", "set", "queue", "bank"] {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
    assert!(help.contains("cas [expected new]"), "{help}");
    assert!(help.contains("jepsen-edn") && help.contains("Knossos EDN"), "{help}");
    let out = conclave(&["check", "--model", "registr", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cas-register"));
}
