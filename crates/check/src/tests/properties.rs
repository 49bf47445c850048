//! Property tests.
//!
//! 1. Histories generated from a real sequential execution ([`crate::synth`]) are linearizable,
//!    for every model, with unknown and failed outcomes mixed in.
//! 2. Altering them in ways that provably break linearizability is caught.
//! 3. On small random histories (mostly not linearizable), the checker agrees with a brute-force
//!    search over every order, straight from the definition: so neither verdict is ever wrong.

use proptest::prelude::*;

use crate::model::{Kv, Model, Queue, Register, Set};
use crate::synth::{generate, SplitMix, Synth};
use crate::{
    check_history, check_operations, pair_operations, Budget, CheckOptions, Event, History,
    ModelKind, Operation, Outcome, Value, Verdict,
};

fn verdict_of(model: ModelKind, history: &History) -> (Vec<Operation>, Verdict) {
    let options =
        CheckOptions { model: Some(model), balances: None, budget: Budget::steps(20_000_000) };
    let (ops, report) = check_history(history, &options).expect("a usable history");
    (ops, report.verdict)
}

/// Random generation parameters. Sizes are modest because proving a violation means exploring
/// every reachable configuration, which grows exponentially with concurrency; queues worst of
/// all (every order of concurrent enqueues is a different state), so they get fewer operations.
fn synth_strategy() -> impl Strategy<Value = Synth> {
    (
        0..ModelKind::ALL.len(),
        1usize..6,
        1usize..26,
        0usize..3,
        0u32..20,
        0u32..30,
        2u64..12,
        any::<u64>(),
    )
        .prop_map(|(m, clients, ops, keys, info, fail, duration, seed)| Synth {
            model: ModelKind::ALL[m],
            accounts: 4,
            balance: 20,
            clients,
            ops: if ModelKind::ALL[m] == ModelKind::Queue { ops.min(11) } else { ops },
            keys,
            info_percent: info,
            fail_percent: fail,
            duration_max: duration,
            seed,
        })
}

/// Appends an operation by a fresh process after every other event, so it is preceded in real
/// time by every operation that completed.
fn append_late_op(history: &mut History, f: &str, key: Option<Value>, value: Value, result: Value) {
    let process = history.events.iter().map(|e| e.process).max().unwrap_or(0) + 1;
    let mut invoke = Event::invoke(process, f).with_value(value);
    invoke.key = key.clone();
    let mut ok = Event::ok(process, f).with_result(result);
    ok.key = key;
    history.events.push(invoke);
    history.events.push(ok);
    *history = History {
        meta: history.meta.take(),
        ..History::from_events(std::mem::take(&mut history.events))
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, max_global_rejects: 100_000, .. ProptestConfig::default() })]

    #[test]
    fn histories_of_real_executions_are_linearizable(spec in synth_strategy()) {
        let history = generate(&spec);
        let (ops, verdict) = verdict_of(spec.model, &history);
        prop_assert_eq!(verdict, Verdict::Linearizable, "{:?}\n{}", spec, history.to_jsonl());
        prop_assert!(ops.len() == spec.ops);
    }

    /// A read, after everything, of a value nobody wrote.
    #[test]
    fn a_late_read_of_a_value_never_written_is_caught(spec in synth_strategy()) {
        let mut history = generate(&spec);
        let key = (spec.keys > 0).then(|| Value::from("k0"));
        let (f, result) = match spec.model {
            ModelKind::Register | ModelKind::CasRegister => ("read", Value::Int(i64::MAX)),
            ModelKind::Kv => ("get", Value::from("never written")),
            // Adds are 1 to 5, so no execution reaches this.
            ModelKind::Counter => ("read", Value::Int(6 * spec.ops as i64 + 1)),
            ModelKind::Set => ("read", Value::List(vec![Value::Int(-5)])),
            ModelKind::Queue => ("dequeue", Value::Int(-5)),
            // Four accounts of 20: the total is 80.
            ModelKind::Bank => ("read", Value::List(vec![Value::Int(81), 0.into(), 0.into(), 0.into()])),
        };
        append_late_op(&mut history, f, key, Value::Nil, result);
        let (_, verdict) = verdict_of(spec.model, &history);
        prop_assert!(matches!(verdict, Verdict::NotLinearizable(_)), "{:?}: {:?}", spec, verdict);
    }

    /// Two `ok` writes W1 (of a) then W2, W1 completing before W2 is invoked; then a read, invoked
    /// after W2 completed, returns a. Every value is written once, so the read needs W1 to be the
    /// last write before it, but W2 lies between them in real time. (Fewer unknown outcomes here:
    /// every order of pending `info` appends is a different state the late read must be tried
    /// against.)
    #[test]
    fn a_stale_read_after_an_overwrite_is_caught(
        model in prop::sample::select(vec![ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv]),
        clients in 1usize..5,
        ops in 2usize..30,
        keys in 0usize..3,
        info in 0u32..15,
        seed in any::<u64>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let spec = Synth { info_percent: info, fail_percent: 10, keys, ..Synth::new(model, clients, ops, seed) };
        let mut history = generate(&spec);
        let all = pair_operations(&history.events).unwrap();
        let writes: Vec<&Operation> = all
            .iter()
            .filter(|op| op.outcome == Outcome::Ok && (op.f == "write" || op.f == "put" || op.f == "cas"))
            .collect();
        // Pairs (W1, W2) on one key with W1 before W2 in real time.
        let pairs: Vec<(&Operation, &Operation)> = writes
            .iter()
            .flat_map(|w1| writes.iter().map(move |w2| (*w1, *w2)))
            .filter(|(w1, w2)| w1.key == w2.key && w1.complete_position < Some(w2.invoke_position))
            .collect();
        prop_assume!(!pairs.is_empty());
        let (w1, _) = pairs[pick.index(pairs.len())];
        let written = match (w1.f.as_str(), &w1.value) {
            ("cas", Value::List(pair)) => pair[1].clone(),
            (_, v) => v.clone(),
        };
        let f = if model == ModelKind::Kv { "get" } else { "read" };
        append_late_op(&mut history, f, w1.key.clone(), Value::Nil, written);
        let (_, verdict) = verdict_of(model, &history);
        prop_assert!(matches!(verdict, Verdict::NotLinearizable(_)), "{:?}", verdict);
    }

    /// Queues: an element dequeued by an `ok` dequeue is dequeued again later.
    #[test]
    fn a_duplicate_dequeue_is_caught(clients in 1usize..5, ops in 2usize..12, seed in any::<u64>()) {
        let spec = Synth { info_percent: 10, ..Synth::new(ModelKind::Queue, clients, ops, seed) };
        let mut history = generate(&spec);
        let all = pair_operations(&history.events).unwrap();
        let taken = all.iter().find_map(|op| match (&op.outcome, op.f.as_str(), &op.result) {
            (Outcome::Ok, "dequeue", Some(v)) if !v.is_nil() => Some(v.clone()),
            _ => None,
        });
        prop_assume!(taken.is_some());
        append_late_op(&mut history, "dequeue", None, Value::Nil, taken.unwrap_or_default());
        let (_, verdict) = verdict_of(ModelKind::Queue, &history);
        prop_assert!(matches!(verdict, Verdict::NotLinearizable(_)));
    }

    /// Sets and counters: a late read that misses an acknowledged add.
    #[test]
    fn a_late_read_missing_an_acknowledged_add_is_caught(
        counter in any::<bool>(), clients in 1usize..5, ops in 2usize..30, seed in any::<u64>(),
    ) {
        let model = if counter { ModelKind::Counter } else { ModelKind::Set };
        let spec = Synth { info_percent: 20, fail_percent: 10, ..Synth::new(model, clients, ops, seed) };
        let mut history = generate(&spec);
        let all = pair_operations(&history.events).unwrap();
        let acked: Vec<&Operation> = all.iter().filter(|op| op.outcome == Outcome::Ok && op.f == "add").collect();
        prop_assume!(!acked.is_empty());
        let result = if counter {
            // Adds are positive, so the count is at least the acknowledged sum; one less is too
            // little whatever the unknown adds did.
            Value::Int(acked.iter().filter_map(|op| op.value.as_int()).sum::<i64>() - 1)
        } else {
            // Everything ever added (acknowledged or not) except one acknowledged element.
            let missing = &acked[0].value;
            let mut all_added: Vec<Value> = all.iter().filter(|op| op.f == "add" && op.outcome != Outcome::Fail).map(|op| op.value.clone()).collect();
            all_added.retain(|v| v != missing);
            Value::List(all_added)
        };
        append_late_op(&mut history, "read", None, Value::Nil, result);
        let (_, verdict) = verdict_of(model, &history);
        prop_assert!(matches!(verdict, Verdict::NotLinearizable(_)));
    }
}

// --- Agreement with a brute-force search ---------------------------------------------------------

/// Straight from the definition: is there a sequence containing every `ok` operation and any
/// of the `info` ones, respecting real time (an operation that completed before another was
/// invoked comes first), that the model accepts? Every order is tried; no memo, no tricks.
fn brute_force<M: Model>(model: &M, ops: &[Operation]) -> bool {
    let used: Vec<(&Operation, M::Op)> = ops
        .iter()
        .filter(|op| op.outcome != Outcome::Fail)
        .map(|op| (op, model.prepare(op).expect("valid")))
        .collect();
    fn go<M: Model>(
        model: &M,
        used: &[(&Operation, M::Op)],
        placed: &mut Vec<bool>,
        state: &M::State,
    ) -> bool {
        let ok_left =
            used.iter().zip(placed.iter()).any(|((op, _), p)| !p && op.outcome == Outcome::Ok);
        if !ok_left {
            return true;
        }
        for (i, (op, decoded)) in used.iter().enumerate() {
            if placed[i] {
                continue;
            }
            // `op` may go next only if no unplaced operation completed before it was invoked.
            let blocked = used.iter().zip(placed.iter()).any(|((other, _), p)| {
                !p && other.outcome == Outcome::Ok
                    && other.complete_position.is_some_and(|end| end < op.invoke_position)
            });
            if blocked {
                continue;
            }
            if let Some(next) = model.step(state, decoded) {
                placed[i] = true;
                let found = go(model, used, placed, &next);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    let mut placed = vec![false; used.len()];
    go(model, &used, &mut placed, &model.init())
}

/// Which object a random history exercises.
#[derive(Clone, Copy, Debug)]
enum Object {
    CasRegister,
    Queue,
    Kv,
    Set,
}

/// A random history of `ops` operations over `processes` clients with values drawn from a tiny
/// domain, so that both verdicts are common.
fn random_history(seed: u64, processes: u64, ops: usize, object: Object) -> History {
    let mut rng = SplitMix::new(seed);
    let mut events = Vec::new();
    let mut open: Vec<Option<Event>> = vec![None; processes as usize];
    let mut started = 0;
    let token = |rng: &mut SplitMix| Value::from(["a", "b", "c"][rng.below(3) as usize]);
    while started < ops || open.iter().any(Option::is_some) {
        let p = rng.below(processes) as usize;
        match open[p].take() {
            None if started < ops => {
                started += 1;
                let value = Value::Int(rng.below(3) as i64);
                let (f, arg) = match (object, rng.below(3)) {
                    (Object::CasRegister, 0) => ("read", Value::Nil),
                    (Object::CasRegister, 1) => ("write", value),
                    (Object::CasRegister, _) => {
                        ("cas", Value::List(vec![value, Value::Int(rng.below(3) as i64)]))
                    }
                    (Object::Queue, 0) => ("dequeue", Value::Nil),
                    (Object::Queue, _) => ("enqueue", value),
                    (Object::Kv, 0) => ("get", Value::Nil),
                    (Object::Kv, 1) => ("put", token(&mut rng)),
                    (Object::Kv, _) => ("append", token(&mut rng)),
                    (Object::Set, 0) => ("read", Value::Nil),
                    (Object::Set, _) => ("add", value),
                };
                let invoke = Event::invoke(p as u64, f).with_value(arg);
                open[p] = Some(invoke.clone());
                events.push(invoke);
            }
            None => {}
            Some(invoke) => {
                let roll = rng.below(10);
                let mut done = match roll {
                    0 => Event::fail(p as u64, &invoke.f),
                    1 | 2 => Event::info(p as u64, &invoke.f),
                    _ => Event::ok(p as u64, &invoke.f),
                };
                if roll >= 3 {
                    done.result = match invoke.f.as_str() {
                        "read" if matches!(object, Object::Set) => Some(Value::List(
                            (0..3).filter(|_| rng.percent(50)).map(Value::Int).collect(),
                        )),
                        "read" | "dequeue" => Some(match rng.below(4) {
                            3 => Value::Nil,
                            v => Value::Int(v as i64),
                        }),
                        "get" => Some(
                            ["", "a", "b", "ab", "ba", "ca", "abc"]
                                .get(rng.below(8) as usize)
                                .map_or(Value::Nil, |s| Value::from(*s)),
                        ),
                        _ => None,
                    };
                }
                events.push(done);
            }
        }
    }
    History::from_events(events)
}

fn agrees<M: Model>(model: &M, history: &History) -> Result<(), TestCaseError> {
    let ops = pair_operations(&history.events).unwrap();
    let expected = brute_force(model, &ops);
    match check_operations(model, &ops, &Budget::steps(u64::MAX)).unwrap().verdict {
        Verdict::Linearizable => prop_assert!(expected, "{}", history.to_jsonl()),
        Verdict::NotLinearizable(_) => prop_assert!(!expected, "{}", history.to_jsonl()),
        Verdict::Unknown => prop_assert!(false, "unbounded budget gave Unknown"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn verdicts_agree_with_brute_force(
        seed in any::<u64>(),
        processes in 1u64..4,
        ops in 1usize..8,
        object in prop::sample::select(vec![Object::CasRegister, Object::Queue, Object::Kv, Object::Set]),
    ) {
        let history = random_history(seed, processes, ops, object);
        match object {
            Object::CasRegister => agrees(&Register::cas(), &history)?,
            Object::Queue => agrees(&Queue, &history)?,
            Object::Kv => agrees(&Kv::default(), &history)?,
            Object::Set => agrees(&Set, &history)?,
        }
    }
}
