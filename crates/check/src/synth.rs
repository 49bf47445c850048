//! Histories that are linearizable by construction, for tests and benchmarks.
//!
//! Each client runs operations one after another over a made-up timeline. Every operation gets
//! a linearization point strictly inside its interval; the operations are executed one at a
//! time in the order of their points against a plain sequential implementation (written here,
//! separately from the models, so the two check each other), which fixes every result. The
//! resulting history therefore has a linearization — the order of the points — whatever the
//! seed. Unknown outcomes (`info`, sometimes never completed) took effect or not at random, and
//! `fail`ed operations did not take effect.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::history::{Event, EventKind, History, Meta};
use crate::model::ModelKind;
use crate::value::Value;

/// A small, fast, seeded generator (SplitMix64), so histories replay from their seed without a
/// dependency.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Synth {
    /// The object.
    pub model: ModelKind,
    /// The bank's number of accounts (the bank model only).
    pub accounts: usize,
    /// Each bank account's initial balance (the bank model only).
    pub balance: i64,
    /// Concurrent clients.
    pub clients: usize,
    /// Operations in all.
    pub ops: usize,
    /// Keys drawn from (`k0`, `k1`, ...); 0 writes no `key` field.
    pub keys: usize,
    /// Percentage of operations whose outcome is unknown.
    pub info_percent: u32,
    /// Percentage of operations that fail (did not take effect).
    pub fail_percent: u32,
    /// Longest operation, in timeline units; longer means more overlap.
    pub duration_max: u64,
    /// The seed.
    pub seed: u64,
}

impl Synth {
    /// A plain configuration: no unknown or failed outcomes, moderate overlap.
    /// A bank has 4 accounts of 100.
    pub fn new(model: ModelKind, clients: usize, ops: usize, seed: u64) -> Synth {
        Synth {
            model,
            accounts: 4,
            balance: 100,
            clients,
            ops,
            keys: 0,
            info_percent: 0,
            fail_percent: 0,
            duration_max: 10,
            seed,
        }
    }
}

/// How a generated operation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Ok,
    Fail,
    /// Unknown outcome; `applied` says whether it took effect; `completed` whether an `info`
    /// completion is written (else the operation stays open).
    Info {
        applied: bool,
        completed: bool,
    },
}

#[derive(Clone, Debug)]
struct Planned {
    process: u64,
    f: &'static str,
    key: Option<Value>,
    value: Value,
    result: Option<Value>,
    ending: Ending,
    invoke_time: u64,
    point_time: u64,
    complete_time: u64,
}

/// One key's state in the sequential reference implementation.
#[derive(Clone, Debug, Default)]
struct Reference {
    value: Value,
    count: i64,
    set: BTreeSet<i64>,
    queue: VecDeque<i64>,
    balances: Vec<i64>,
}

/// Generates a history. Its meta line names the model (and a bank's balances).
pub fn generate(spec: &Synth) -> History {
    let mut rng = SplitMix::new(spec.seed);
    let clients = spec.clients.max(1);
    let mut planned = plan(spec, clients, &mut rng);
    // Execute in the order of the linearization points.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].point_time);
    let mut states: BTreeMap<Option<Value>, Reference> = BTreeMap::new();
    for i in order {
        let op = &mut planned[i];
        let state = states.entry(op.key.clone()).or_insert_with(|| initial(spec));
        execute(spec.model, state, op, &mut rng);
    }
    history_of(spec, &planned)
}

fn initial(spec: &Synth) -> Reference {
    let mut state = Reference::default();
    if spec.model == ModelKind::Bank {
        state.balances = vec![spec.balance; spec.accounts];
    }
    state
}

/// Draws every operation's client, interval, point, arguments and ending.
fn plan(spec: &Synth, clients: usize, rng: &mut SplitMix) -> Vec<Planned> {
    let mut planned = Vec::with_capacity(spec.ops);
    let slots = 3 * clients as u64;
    for c in 0..clients {
        let mut process = c as u64;
        let mut t = 0u64;
        let count = spec.ops / clients + usize::from(c < spec.ops % clients);
        for _ in 0..count {
            let invoke = t + rng.below(4);
            let duration = 2 + rng.below(spec.duration_max.max(1));
            let point = invoke + 1 + rng.below(duration - 1);
            let complete = invoke + duration;
            t = complete + 1;
            let unique = planned.len() as i64 + 1;
            let (f, value) = arguments(spec, unique, rng);
            let ending = if rng.percent(spec.info_percent) {
                Ending::Info { applied: rng.percent(50), completed: rng.percent(70) }
            } else if rng.percent(spec.fail_percent) {
                Ending::Fail
            } else {
                Ending::Ok
            };
            let key =
                (spec.keys > 0).then(|| Value::Str(format!("k{}", rng.below(spec.keys as u64))));
            // Distinct times on every client: time = raw * 3C + 3c + {0 invoke, 1 point, 2 end}.
            let at = |raw: u64, slot: u64| raw * slots + 3 * c as u64 + slot;
            planned.push(Planned {
                process,
                f,
                key,
                value,
                result: None,
                ending,
                invoke_time: at(invoke, 0),
                point_time: at(point, 1),
                complete_time: at(complete, 2),
            });
            // Jepsen never reuses a process after an unknown outcome; neither do we.
            if matches!(ending, Ending::Info { .. }) {
                process += clients as u64;
            }
        }
    }
    planned
}

fn arguments(spec: &Synth, unique: i64, rng: &mut SplitMix) -> (&'static str, Value) {
    let read = rng.percent(40);
    let (accounts, balance) = (spec.accounts, spec.balance);
    match spec.model {
        ModelKind::Register | ModelKind::CasRegister if read => ("read", Value::Nil),
        ModelKind::CasRegister if rng.percent(50) => ("cas", Value::Nil), // filled in later
        ModelKind::Register | ModelKind::CasRegister => ("write", Value::Int(unique)),
        ModelKind::Kv if read => ("get", Value::Nil),
        ModelKind::Kv if rng.percent(50) => ("put", Value::Str(format!("x{unique};"))),
        ModelKind::Kv => ("append", Value::Str(format!("y{unique};"))),
        ModelKind::Counter if read => ("read", Value::Nil),
        ModelKind::Counter => ("add", Value::Int(1 + rng.below(5) as i64)),
        ModelKind::Set if read => ("read", Value::Nil),
        ModelKind::Set => ("add", Value::Int(unique)),
        ModelKind::Queue if read => ("dequeue", Value::Nil),
        ModelKind::Queue => ("enqueue", Value::Int(unique)),
        ModelKind::Bank if read => ("read", Value::Nil),
        ModelKind::Bank => {
            let from = rng.below(accounts as u64) as i64;
            let to = rng.below(accounts as u64) as i64;
            let amount = rng.below(balance.max(1) as u64 / 2 + 1) as i64;
            ("transfer", Value::List(vec![Value::Int(from), Value::Int(to), Value::Int(amount)]))
        }
    }
}

/// Runs one operation at its linearization point, fixing its result, and turns an `ok` that
/// the object would refuse (a CAS that does not match, an overdraft) into `fail`.
fn execute(model: ModelKind, state: &mut Reference, op: &mut Planned, rng: &mut SplitMix) {
    let applies = match op.ending {
        Ending::Ok => true,
        Ending::Fail => false,
        Ending::Info { applied, .. } => applied,
    };
    if op.f == "cas" {
        // Mostly expect the current value, so most CASes succeed.
        let expected = if rng.percent(70) { state.value.clone() } else { Value::Int(-1) };
        // Negative and distinct from every write's (positive) value and from -1, so every value
        // is written at most once.
        let new = Value::Int(-2 - op.point_time as i64);
        op.value = Value::List(vec![expected.clone(), new.clone()]);
        let matches = expected == state.value;
        if applies && matches {
            state.value = new;
        } else if op.ending == Ending::Ok {
            op.ending = Ending::Fail;
        }
        return;
    }
    if !applies {
        return;
    }
    let result = match (model, op.f) {
        (_, "write" | "put") => {
            state.value = op.value.clone();
            None
        }
        (_, "append") => {
            let current = match &state.value {
                Value::Str(s) => s.as_str(),
                _ => "",
            };
            let suffix = match &op.value {
                Value::Str(s) => s.as_str(),
                _ => "",
            };
            state.value = Value::Str(format!("{current}{suffix}"));
            None
        }
        (ModelKind::Counter, "add") => {
            state.count += op.value.as_int().unwrap_or_default();
            None
        }
        (ModelKind::Counter, "read") => Some(Value::Int(state.count)),
        (ModelKind::Set, "add") => {
            state.set.insert(op.value.as_int().unwrap_or_default());
            None
        }
        (ModelKind::Set, "read") => {
            Some(Value::List(state.set.iter().map(|x| Value::Int(*x)).collect()))
        }
        (ModelKind::Queue, "enqueue") => {
            state.queue.push_back(op.value.as_int().unwrap_or_default());
            None
        }
        (ModelKind::Queue, "dequeue") => {
            Some(state.queue.pop_front().map_or(Value::Nil, Value::Int))
        }
        (ModelKind::Bank, "transfer") => {
            let args: Vec<usize> = op
                .value
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_int().and_then(|n| usize::try_from(n).ok()))
                .collect();
            if let [from, to, amount] = args[..] {
                let amount = amount as i64;
                if state.balances[from] >= amount {
                    state.balances[from] -= amount;
                    state.balances[to] += amount;
                } else if op.ending == Ending::Ok {
                    op.ending = Ending::Fail;
                }
            }
            None
        }
        (ModelKind::Bank, "read") => {
            Some(Value::List(state.balances.iter().map(|b| Value::Int(*b)).collect()))
        }
        (_, "read" | "get") => Some(state.value.clone()),
        (model, f) => unreachable!("{f} is not generated for {model:?}"),
    };
    op.result = result;
}

fn history_of(spec: &Synth, planned: &[Planned]) -> History {
    let mut timed: Vec<(u64, Event)> = Vec::with_capacity(2 * planned.len());
    for op in planned {
        let mut invoke =
            Event::invoke(op.process, op.f).with_value(op.value.clone()).at(op.invoke_time);
        invoke.key = op.key.clone();
        timed.push((op.invoke_time, invoke));
        let kind = match op.ending {
            Ending::Ok => EventKind::Ok,
            Ending::Fail => EventKind::Fail,
            Ending::Info { completed: true, .. } => EventKind::Info,
            Ending::Info { completed: false, .. } => continue,
        };
        let mut complete =
            Event::invoke(op.process, op.f).with_value(op.value.clone()).at(op.complete_time);
        complete.kind = kind;
        complete.key = op.key.clone();
        if kind == EventKind::Ok {
            complete.result = op.result.clone();
        }
        timed.push((op.complete_time, complete));
    }
    timed.sort_by_key(|(t, _)| *t);
    let mut history = History::from_events(timed.into_iter().map(|(_, e)| e).collect());
    let balances = (spec.model == ModelKind::Bank).then(|| vec![spec.balance; spec.accounts]);
    history.meta =
        Some(Meta { model: Some(spec.model.as_str().into()), balances, ..Meta::default() });
    history
}
