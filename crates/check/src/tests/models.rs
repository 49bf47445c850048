//! Hand-built histories for every model, written as little stories: one event per line,
//! `PROCESS TYPE F [@KEY] [VALUE]`, values in EDN. On a completion the value is the result.
//! Lines are in real-time order, so an operation whose completion comes before another's
//! invocation precedes it.

use crate::import::edn::parse_edn;
use crate::{
    check_history, Budget, CheckOptions, Event, EventKind, History, ModelKind, Report, Verdict,
};

/// Parses a story into a history.
pub(crate) fn story(text: &str) -> History {
    let mut events = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.splitn(4, ' ').filter(|w| !w.is_empty());
        let process: u64 = words.next().and_then(|p| p.parse().ok()).expect("a process");
        let kind = match words.next() {
            Some("invoke") => EventKind::Invoke,
            Some("ok") => EventKind::Ok,
            Some("fail") => EventKind::Fail,
            Some("info") => EventKind::Info,
            other => panic!("bad type {other:?} in {line:?}"),
        };
        let f = words.next().expect("an f");
        let mut event = Event::invoke(process, f);
        event.kind = kind;
        let mut rest = words.next().unwrap_or("").trim();
        if let Some(keyed) = rest.strip_prefix('@') {
            let (key, after) = keyed.split_once(' ').unwrap_or((keyed, ""));
            event.key = Some(key.into());
            rest = after.trim();
        }
        if !rest.is_empty() {
            let value = parse_edn(rest).unwrap_or_else(|e| panic!("{line:?}: {e}")).to_value();
            if kind == EventKind::Ok {
                event.result = Some(value);
            } else {
                event.value = value;
            }
        }
        events.push(event);
    }
    History::from_events(events)
}

pub(crate) fn check(model: ModelKind, text: &str) -> Report {
    let options = CheckOptions {
        model: Some(model),
        balances: Some(vec![10, 10, 10]),
        budget: Budget::steps(1_000_000),
    };
    check_history(&story(text), &options).expect("a usable history").1
}

#[track_caller]
fn assert_linearizable(model: ModelKind, text: &str) {
    let report = check(model, text);
    assert_eq!(report.verdict, Verdict::Linearizable, "{report:#?}");
}

/// Asserts a violation and returns (prefix length, unplaceable ids).
#[track_caller]
fn assert_violation(model: ModelKind, text: &str) -> (usize, Vec<usize>) {
    let report = check(model, text);
    match &report.verdict {
        Verdict::NotLinearizable(v) => (v.prefix.len(), v.unplaceable.clone()),
        other => panic!("expected a violation, got {other:?}: {report:#?}"),
    }
}

mod register {
    use super::*;
    use ModelKind::Register;

    #[test]
    fn a_read_overlapping_a_write_may_see_either_value() {
        for seen in ["nil", "1"] {
            assert_linearizable(
                Register,
                &format!(
                    "0 invoke write 1
                     1 invoke read
                     1 ok read {seen}
                     0 ok write"
                ),
            );
        }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught() {
        let (prefix, unplaceable) = assert_violation(
            Register,
            "0 invoke write 1
             1 invoke read
             1 ok read 2
             0 ok write",
        );
        // Either order of the two is tried; the deepest attempt placed the write.
        assert_eq!((prefix, unplaceable), (1, vec![1]));
    }

    #[test]
    fn reads_must_not_go_back_in_time() {
        // 1 then 2 written in sequence; a reader sees 2 then 1.
        assert_violation(
            Register,
            "0 invoke write 1
             0 ok write
             0 invoke write 2
             1 invoke read
             1 ok read 2
             1 invoke read
             1 ok read 1
             0 ok write",
        );
    }

    #[test]
    fn cas_is_not_a_register_operation() {
        let err = check_history(
            &story("0 invoke cas [1 2]\n0 ok cas"),
            &CheckOptions { model: Some(Register), ..CheckOptions::default() },
        )
        .unwrap_err();
        assert_eq!(err.line(), Some(1));
        assert!(err.to_string().contains("expected read, write"), "{err}");
    }
}

mod cas_register {
    use super::*;
    use ModelKind::CasRegister;

    #[test]
    fn successful_and_failed_cas() {
        assert_linearizable(
            CasRegister,
            "0 invoke write 1
             0 ok write
             1 invoke cas [1 2]
             2 invoke cas [1 3]
             1 ok cas
             2 fail cas
             0 invoke read
             0 ok read 2",
        );
    }

    #[test]
    fn two_cas_from_the_same_value_cannot_both_succeed() {
        assert_violation(
            CasRegister,
            "0 invoke write 1
             0 ok write
             1 invoke cas [1 2]
             2 invoke cas [1 3]
             1 ok cas
             2 ok cas",
        );
    }

    #[test]
    fn an_info_write_that_is_later_observed() {
        assert_linearizable(
            CasRegister,
            "0 invoke write 1
             0 ok write
             1 invoke write 3
             1 info write
             2 invoke read
             2 ok read 3
             2 invoke cas [3 4]
             2 ok cas
             2 invoke read
             2 ok read 4",
        );
    }

    #[test]
    fn an_info_write_never_observed() {
        let text = "0 invoke write 1
                    0 ok write
                    1 invoke write 3
                    1 info write
                    2 invoke read
                    2 ok read 1
                    2 invoke read
                    2 ok read 1";
        assert_linearizable(CasRegister, text);
        // Nothing read 3, so the search does not even consider it.
        assert_eq!(check(CasRegister, text).info_unobservable_dropped, 1);
    }

    #[test]
    fn an_info_write_that_never_completes_may_take_effect_much_later() {
        assert_linearizable(
            CasRegister,
            "1 invoke write 3
             0 invoke write 1
             0 ok write
             2 invoke read
             2 ok read 1
             2 invoke read
             2 ok read 3",
        );
    }

    #[test]
    fn an_info_write_takes_effect_at_most_once() {
        // Once 3 was seen and then overwritten by 4, seeing 3 again needs a second write of 3.
        assert_violation(
            CasRegister,
            "1 invoke write 3
             1 info write
             2 invoke read
             2 ok read 3
             0 invoke write 4
             0 ok write
             2 invoke read
             2 ok read 3",
        );
    }

    #[test]
    fn a_read_of_a_failed_write_is_caught() {
        let (prefix, unplaceable) = assert_violation(
            CasRegister,
            "0 invoke write 1
             0 ok write
             1 invoke write 7
             1 fail write
             2 invoke read
             2 ok read 7",
        );
        assert_eq!((prefix, unplaceable), (1, vec![2]), "op 2 is the read");
    }

    #[test]
    fn a_stale_read_after_a_partition_is_caught() {
        // Process 0 talks to the majority and writes 2; process 1, on the minority side of a
        // partition, then reads the old value from a deposed leader.
        let (prefix, unplaceable) = assert_violation(
            CasRegister,
            "0 invoke write 1
             0 ok write
             1 invoke read
             1 ok read 1
             0 invoke write 2
             0 ok write
             1 invoke read
             1 ok read 1",
        );
        assert_eq!((prefix, unplaceable), (3, vec![3]), "3 placed; the last read is stuck");
    }

    #[test]
    fn info_reads_are_dropped() {
        let report = check(
            CasRegister,
            "0 invoke read
             0 info read
             1 invoke write 1
             1 ok write",
        );
        assert_eq!((report.info_reads_dropped, report.verdict), (1, Verdict::Linearizable));
    }

    #[test]
    fn a_malformed_cas_names_its_line() {
        let err = check_history(
            &story("0 invoke write 1\n0 ok write\n0 invoke cas 5\n0 ok cas"),
            &CheckOptions { model: Some(CasRegister), ..CheckOptions::default() },
        )
        .unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert!(err.to_string().contains("[expected, new]"), "{err}");
    }
}

mod kv {
    use super::*;
    use crate::Value;
    use ModelKind::Kv;

    #[test]
    fn keys_are_independent() {
        // Per key this is fine; as one register it would not be.
        assert_linearizable(
            Kv,
            r#"0 invoke put @x "a"
               0 ok put @x
               1 invoke put @y "b"
               1 ok put @y
               2 invoke get @x
               2 ok get @x "a"
               2 invoke get @z
               2 ok get @z nil"#,
        );
    }

    #[test]
    fn appends_concatenate_and_may_interleave() {
        assert_linearizable(
            Kv,
            r#"0 invoke append @x "a"
               1 invoke append @x "b"
               0 ok append @x
               1 ok append @x
               2 invoke get @x
               2 ok get @x "ba"
               3 invoke append @l 1
               3 ok append @l
               3 invoke append @l 2
               3 ok append @l
               3 invoke get @l
               3 ok get @l [1 2]"#,
        );
    }

    #[test]
    fn a_violation_names_its_key_and_other_keys_still_pass() {
        let report = check(
            Kv,
            r#"0 invoke put @x "a"
               0 ok put @x
               1 invoke put @y "b"
               1 ok put @y
               1 invoke put @y "c"
               1 ok put @y
               2 invoke get @y
               2 ok get @y "b"
               2 invoke get @x
               2 ok get @x "a""#,
        );
        assert_eq!(report.keys, 2);
        assert_eq!(report.violations.len(), 1);
        let Verdict::NotLinearizable(v) = &report.verdict else { panic!("{report:#?}") };
        assert_eq!(v.key, Some(Value::from("y")));
        assert_eq!((v.prefix.len(), v.unplaceable.clone()), (2, vec![3]));
    }

    #[test]
    fn lost_append() {
        assert_violation(
            Kv,
            r#"0 invoke append @x "a"
               0 ok append @x
               1 invoke append @x "b"
               1 ok append @x
               2 invoke get @x
               2 ok get @x "b""#,
        );
    }
}

mod counter {
    use super::*;
    use ModelKind::Counter;

    #[test]
    fn concurrent_adds_and_reads() {
        for seen in [0, 2, 3, 5] {
            assert_linearizable(
                Counter,
                &format!(
                    "0 invoke add 2
                     1 invoke add 3
                     2 invoke read
                     2 ok read {seen}
                     0 ok add
                     1 ok add
                     2 invoke read
                     2 ok read 5"
                ),
            );
        }
    }

    #[test]
    fn impossible_counts_are_caught() {
        assert_violation(
            Counter,
            "0 invoke add 2
             1 invoke add 3
             2 invoke read
             2 ok read 4
             0 ok add
             1 ok add",
        );
        // An acknowledged add lost.
        assert_violation(
            Counter,
            "0 invoke add 2
             0 ok add
             1 invoke add -1
             1 info add
             2 invoke read
             2 ok read 0",
        );
    }
}

mod set {
    use super::*;
    use ModelKind::Set;

    #[test]
    fn reads_see_consistent_snapshots() {
        assert_linearizable(
            Set,
            "0 invoke add 1
             0 ok add
             1 invoke add 2
             2 invoke read
             2 ok read #{2 1}
             1 ok add
             2 invoke read
             2 ok read [1 2 2]",
        );
    }

    #[test]
    fn a_lost_element_is_caught() {
        assert_violation(
            Set,
            "0 invoke add 1
             0 ok add
             1 invoke add 2
             1 ok add
             2 invoke read
             2 ok read [2]",
        );
    }
}

mod queue {
    use super::*;
    use ModelKind::Queue;

    #[test]
    fn concurrent_enqueues_leave_in_either_order() {
        for (a, b) in [(1, 2), (2, 1)] {
            assert_linearizable(
                Queue,
                &format!(
                    "0 invoke enqueue 1
                     1 invoke enqueue 2
                     0 ok enqueue
                     1 ok enqueue
                     2 invoke dequeue
                     2 ok dequeue {a}
                     2 invoke dequeue
                     2 ok dequeue {b}
                     2 invoke dequeue
                     2 ok dequeue nil"
                ),
            );
        }
    }

    #[test]
    fn fifo_order_and_emptiness_are_enforced() {
        assert_violation(
            Queue,
            "0 invoke enqueue 1
             0 ok enqueue
             0 invoke enqueue 2
             0 ok enqueue
             2 invoke dequeue
             2 ok dequeue 2",
        );
        assert_violation(
            Queue,
            "0 invoke enqueue 1
             0 ok enqueue
             2 invoke dequeue
             2 ok dequeue nil",
        );
        // The same element dequeued twice.
        assert_violation(
            Queue,
            "0 invoke enqueue 1
             0 ok enqueue
             1 invoke dequeue
             2 invoke dequeue
             1 ok dequeue 1
             2 ok dequeue 1",
        );
    }

    #[test]
    fn an_info_dequeue_may_have_taken_the_element() {
        assert_linearizable(
            Queue,
            "0 invoke enqueue 1
             0 ok enqueue
             1 invoke dequeue
             1 info dequeue
             2 invoke dequeue
             2 ok dequeue nil",
        );
    }
}

mod bank {
    use super::*;
    use ModelKind::Bank;

    #[test]
    fn transfers_and_reads() {
        // Balances start at [10 10 10] (see `check`).
        assert_linearizable(
            Bank,
            "0 invoke transfer {:from 0 :to 1 :amount 4}
             1 invoke read
             1 ok read [10 10 10]
             0 ok transfer
             1 invoke transfer [2 0 10]
             1 info transfer
             2 invoke read
             2 ok read {0 6, 1 14, 2 10}",
        );
    }

    #[test]
    fn money_is_conserved_and_never_overdrawn() {
        assert_violation(
            Bank,
            "0 invoke transfer {:from 0 :to 1 :amount 4}
             0 ok transfer
             1 invoke read
             1 ok read [6 14 11]",
        );
        assert_violation(
            Bank,
            "0 invoke transfer {:from 0 :to 1 :amount 11}
             0 ok transfer",
        );
        // A read missing an account can never match.
        assert_violation(Bank, "1 invoke read\n1 ok read [10 10]");
    }

    #[test]
    fn needs_balances_and_real_accounts() {
        let options = CheckOptions { model: Some(Bank), ..CheckOptions::default() };
        let err = check_history(&story("0 invoke read\n0 ok read [1]"), &options).unwrap_err();
        assert!(err.to_string().contains("initial balances"), "{err}");
        let options = CheckOptions { balances: Some(vec![5, 5]), ..options };
        let err = check_history(&story("0 invoke transfer [0 2 1]\n0 ok transfer"), &options)
            .unwrap_err();
        assert!(err.to_string().contains("not an account"), "{err}");
        assert_eq!(err.line(), Some(1));
    }
}

mod budget {
    use super::*;

    /// Many concurrent writes all read back in an impossible way: the search must try many
    /// orders before proving it, so a tiny budget gives up.
    #[test]
    fn a_small_step_budget_gives_unknown_and_never_a_guess() {
        let mut text = String::new();
        for p in 0..12 {
            text.push_str(&format!("{p} invoke write {p}\n"));
        }
        for p in 0..12 {
            text.push_str(&format!("{p} ok write\n"));
        }
        text.push_str("20 invoke read\n20 ok read 99\n");
        let history = story(&text);
        let options =
            |budget| CheckOptions { model: Some(ModelKind::Register), balances: None, budget };
        let (_, report) = check_history(&history, &options(Budget::steps(50))).unwrap();
        assert_eq!(report.verdict, Verdict::Unknown);
        assert_eq!(report.verdict.exit_code(), 3);
        assert!(report.steps <= 50);
        let (_, report) = check_history(&history, &options(Budget::steps(u64::MAX))).unwrap();
        assert!(matches!(report.verdict, Verdict::NotLinearizable(_)));
    }

    /// A hard key first in key order must not use up the budget before an easy key's violation
    /// is found: each key gets a share in a first pass.
    #[test]
    fn a_hard_key_does_not_hide_an_easy_violation() {
        let mut text = String::new();
        for p in 0..16 {
            text.push_str(&format!("{p} invoke put @a {p}\n"));
        }
        for p in 0..16 {
            text.push_str(&format!("{p} ok put @a\n"));
        }
        text.push_str("20 invoke get @a\n20 ok get @a 99\n");
        text.push_str("21 invoke put @b 1\n21 ok put @b\n21 invoke get @b\n21 ok get @b 2\n");
        let options = CheckOptions {
            model: Some(ModelKind::Kv),
            balances: None,
            budget: Budget::steps(300_000),
        };
        let (_, report) = check_history(&story(&text), &options).unwrap();
        let Verdict::NotLinearizable(v) = &report.verdict else { panic!("{report:#?}") };
        assert_eq!(v.key, Some("b".into()));
        assert_eq!(report.unknown_keys, vec![Some("a".into())], "the hard key stays undecided");
        assert!(report.steps <= 300_000);
    }
}

/// Stores that answer a missing key with `""` (or a register that starts at 0) are judged
/// against that initial value when the history says so, and against nil when it does not.
mod initial_values {
    use super::*;
    use crate::{Error, Value};

    const READ_BEFORE_WRITE: &str = r#"0 invoke get @x
                                         0 ok get @x ""
                                         1 invoke put @x "a"
                                         1 ok put @x
                                         0 invoke append @x "b"
                                         0 ok append @x
                                         0 invoke get @x
                                         0 ok get @x "ab""#;

    fn check_with(model: ModelKind, initial: Option<Value>, text: &str) -> Result<Report, Error> {
        let mut history = story(text);
        if let Some(initial) = initial {
            history.set_initial_value(initial);
        }
        let options = CheckOptions { model: Some(model), ..CheckOptions::default() };
        check_history(&history, &options).map(|(_, report)| report)
    }

    #[test]
    fn an_empty_string_read_before_any_write_needs_the_initial_value() {
        let without = check_with(ModelKind::Kv, None, READ_BEFORE_WRITE).unwrap();
        assert!(matches!(without.verdict, Verdict::NotLinearizable(_)), "{without:#?}");
        let with = check_with(ModelKind::Kv, Some(Value::from("")), READ_BEFORE_WRITE).unwrap();
        assert_eq!(with.verdict, Verdict::Linearizable, "{with:#?}");
    }

    #[test]
    fn an_initial_value_replaces_nil_rather_than_adding_to_it() {
        // With `""` as the initial value, a read of nil is now the value from thin air.
        let text = "0 invoke read\n0 ok read nil";
        let report = check_with(ModelKind::Register, Some(Value::from("")), text).unwrap();
        assert!(matches!(report.verdict, Verdict::NotLinearizable(_)), "{report:#?}");
    }

    #[test]
    fn registers_and_cas_registers_start_at_the_initial_value() {
        let text = "0 invoke cas [0 1]\n0 ok cas\n1 invoke read\n1 ok read 1";
        let report = check_with(ModelKind::CasRegister, Some(Value::Int(0)), text).unwrap();
        assert_eq!(report.verdict, Verdict::Linearizable, "{report:#?}");
        let report = check_with(ModelKind::CasRegister, None, text).unwrap();
        assert!(matches!(report.verdict, Verdict::NotLinearizable(_)), "{report:#?}");
    }

    #[test]
    fn a_model_without_a_single_value_refuses_an_initial_value() {
        let text = "0 invoke add 1\n0 ok add";
        let error = check_with(ModelKind::Counter, Some(Value::Int(5)), text).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("counter") && message.contains("kv"), "{message}");
    }

    #[test]
    fn the_meta_line_carries_the_initial_value() {
        let text = "{\"type\":\"meta\",\"model\":\"kv\",\"initial\":\"\"}\n\
                    {\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\"}\n\
                    {\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"result\":\"\"}\n";
        let history = History::parse_jsonl(text).unwrap();
        let (_, report) = check_history(&history, &CheckOptions::default()).unwrap();
        assert_eq!(report.verdict, Verdict::Linearizable, "{report:#?}");
    }
}
