//! Jepsen logs and EDN histories, imported and checked end to end.

use crate::{check_history, parse_history, CheckOptions, Format, Verdict};

/// A CAS register under a partition, Jepsen-style: process 2 times out (`:info`) and comes back
/// as process 7 (old id + concurrency 5); a `:nemesis` and other log lines are mixed in.
const CAS_LOG_GOOD: &str = "\
2024-01-01 12:00:00,000{GMT}\tINFO\t[main] jepsen.core - Running test
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]
INFO  jepsen.util - 1\t:ok\t:read\t1
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - :nemesis\t:info\t:start\t\"cut off n5\"
INFO  jepsen.util - 3\t:invoke\t:cas\t[2 3]
INFO  jepsen.util - 3\t:fail\t:cas\t[2 3]
INFO  jepsen.util - 2\t:info\t:cas\t[1 4]\t:timed-out
INFO  jepsen.util - 7\t:invoke\t:read\tnil
INFO  jepsen.util - 7\t:ok\t:read\t4
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:info\t:read\tnil\t:timed-out
INFO  jepsen.util - 9\t:invoke\t:write\t0
INFO  jepsen.util - 9\t:ok\t:write\t0
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:read\t0
";

#[test]
fn a_jepsen_log_with_info_fail_nil_and_noise_is_linearizable() {
    let history = parse_history(CAS_LOG_GOOD, Format::JepsenLog).unwrap();
    let (ops, report) = check_history(&history, &CheckOptions::default()).unwrap();
    assert_eq!(report.model, "cas-register");
    assert_eq!(ops.len(), 8);
    assert_eq!((report.ok, report.info, report.fail, report.info_reads_dropped), (5, 2, 1, 1));
    assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.summary(&ops));
}

#[test]
fn a_jepsen_log_with_a_stale_read_is_caught() {
    // After the write of 0 completes, process 1 still reads 4.
    let bad = CAS_LOG_GOOD.replace("1\t:ok\t:read\t0", "1\t:ok\t:read\t4");
    let history = parse_history(&bad, Format::JepsenLog).unwrap();
    let (ops, report) = check_history(&history, &CheckOptions::default()).unwrap();
    let Verdict::NotLinearizable(v) = &report.verdict else { panic!("{report:#?}") };
    let stuck: Vec<usize> = v.unplaceable.iter().map(|id| ops[*id].invoke_line).collect();
    assert_eq!(stuck, vec![18], "the last read (line 18) could not be placed");
}

#[test]
fn a_jepsen_log_reusing_an_open_process_is_an_error_with_its_line() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                INFO  jepsen.util - 0\t:invoke\t:write\t3\n";
    let history = parse_history(text, Format::JepsenLog).unwrap();
    let err = check_history(&history, &CheckOptions::default()).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().contains("still open"), "{err}");
}

#[test]
fn a_malformed_jepsen_log_line_names_its_line() {
    let text = format!("{CAS_LOG_GOOD}INFO  jepsen.util - 5\t:invoke\t:cas\t[1 2\n");
    let err = parse_history(&text, Format::JepsenLog).unwrap_err();
    assert_eq!(err.line(), Some(20), "{err}");
}

const KV_EDN: &str = r#"
; a key-value history: keys in :key or in [k v] tuples, strings, integers and nil
{:process 0, :type :invoke, :f :put, :key "a", :value "x", :time 100}
{:process 1, :type :invoke, :f :get, :key "a", :value nil, :time 110}
{:process 0, :type :ok, :f :put, :key "a", :value "x", :time 120}
{:process 1, :type :ok, :f :get, :key "a", :value nil, :time 130}
{:process :nemesis, :type :info, :f :start-partition, :value nil}
{:process 2, :type :invoke, :f :append, :value ["b" 1]}
{:process 2, :type :ok, :f :append, :value ["b" 1]}
{:process 3, :type :invoke, :f :put, :value ["b" 7]}
{:process 3, :type :fail, :f :put, :value ["b" 7]}
{:process 4, :type :invoke, :f :put, :value [3 "z"]}
{:process 4, :type :info, :f :put, :value [3 "z"]}
{:process 2, :type :invoke, :f :get, :value ["b" nil]}
{:process 2, :type :ok, :f :get, :value ["b" [1]]}
{:process 1, :type :invoke, :f :get, :key 3}
{:process 1, :type :ok, :f :get, :key 3, :value nil}
"#;

#[test]
fn an_edn_history_is_split_by_key_and_linearizable() {
    let history = parse_history(KV_EDN, Format::JepsenEdn).unwrap();
    let (ops, report) = check_history(&history, &CheckOptions::default()).unwrap();
    assert_eq!(report.model, "kv");
    assert_eq!((ops.len(), report.keys), (7, 3));
    assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.summary(&ops));
}

#[test]
fn an_edn_history_reading_a_failed_put_is_caught() {
    let bad = KV_EDN.replace(r#":value ["b" [1]]"#, r#":value ["b" 7]"#);
    let history = parse_history(&bad, Format::JepsenEdn).unwrap();
    let (_, report) = check_history(&history, &CheckOptions::default()).unwrap();
    let Verdict::NotLinearizable(v) = &report.verdict else { panic!("{report:#?}") };
    assert_eq!(v.key, Some("b".into()));
}

#[test]
fn a_malformed_edn_line_names_its_line() {
    let bad = KV_EDN.replace(":time 130}", ":time 130");
    let err = parse_history(&bad, Format::JepsenEdn).unwrap_err();
    assert_eq!(err.line(), Some(6), "{err}");
}

mod no_panics {
    use proptest::prelude::*;

    use crate::{check_history, parse_history, Budget, CheckOptions, Format, ModelKind};

    /// Pieces that look like history lines, so the fuzzing gets past the first character.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[-0-9a-z:\"\\[\\]{}#_ ,.\\\\]{0,40}",
            "INFO  jepsen\\.util - [0-9:a-z]{1,3}\t:(invoke|ok|fail|info|x)\t:[a-z]{1,5}\t[-0-9\\[\\] nil\"]{0,8}",
            "\\{:process [0-9] :type :(invoke|ok|fail|info) :f :(get|put|append|x) :value [\\[\\]0-9a-z \"]{0,8}\\}",
            "\\{\"process\":[0-9],\"type\":\"(invoke|ok|fail|info|meta)\",\"f\":\"(read|write|cas|add|transfer|enqueue|dequeue|x)\",\"value\":[\\[\\],0-9\"a-z{}:]{0,10}\\}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

        /// Whatever the input, every format and model either checks it or says which line is
        /// wrong; nothing panics.
        #[test]
        fn arbitrary_input_never_panics(lines in prop::collection::vec(line(), 0..12), model in 0usize..7) {
            let text = lines.join("\n");
            for format in [Format::Json, Format::JepsenLog, Format::JepsenEdn] {
                if let Ok(history) = parse_history(&text, format) {
                    let options = CheckOptions {
                        model: Some(ModelKind::ALL[model]),
                        balances: Some(vec![3, 3]),
                        budget: Budget::steps(10_000),
                    };
                    let _ = check_history(&history, &options);
                }
            }
        }
    }
}
