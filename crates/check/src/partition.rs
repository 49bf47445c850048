//! Splitting a history by key and checking each key on its own (P-compositionality: a history
//! of independent objects is linearizable exactly when each object's sub-history is), then
//! combining the answers. Splitting turns one search exponential in the whole history's
//! concurrency into many small ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::checker::{search, Candidate, Meter, Search};
use crate::error::Error;
use crate::history::History;
use crate::model::Model;
use crate::model::{Bank, Counter, Kv, ModelKind, Queue, Register, Set};
use crate::operation::{pair_operations, Operation, Outcome};
use crate::report::{Report, Verdict, Violation};
use crate::value::Value;

/// How much work a check may do before answering `Unknown`.
///
/// Steps are deterministic (the same history and budget give the same verdict on any machine),
/// so tests use them; time is what users think in. Both may be set; the first reached wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall time for the whole check.
    pub time: Option<Duration>,
    /// Search steps for the whole check.
    pub steps: Option<u64>,
    /// How much one key's search may hold, in values (see [`Model::weight`]): the memo and the
    /// current path keep model states, so this bounds memory. Roughly 100 bytes a value.
    pub memo_values_max: usize,
}

impl Budget {
    /// The default memo bound: a few hundred megabytes at most.
    pub const MEMO_VALUES_MAX_DEFAULT: usize = 4_000_000;

    /// A wall-time budget.
    pub fn time(time: Duration) -> Budget {
        Budget { time: Some(time), steps: None, memo_values_max: Budget::MEMO_VALUES_MAX_DEFAULT }
    }

    /// A deterministic step budget.
    pub fn steps(steps: u64) -> Budget {
        Budget { time: None, steps: Some(steps), memo_values_max: Budget::MEMO_VALUES_MAX_DEFAULT }
    }
}

impl Default for Budget {
    /// Ten seconds, the CLI's default.
    fn default() -> Self {
        Budget::time(Duration::from_secs(10))
    }
}

/// How to check a history: which model, its parameters, and the budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The model; when `None`, the history's meta line decides, else `kv` if any event names a
    /// key and `cas-register` if none does.
    pub model: Option<ModelKind>,
    /// The bank's initial balances; when `None`, the meta line's.
    pub balances: Option<Vec<i64>>,
    /// The budget.
    pub budget: Budget,
}

/// Steps each key may use in the first pass. A key that needs more waits for the second pass,
/// so one hard key cannot starve the others: a violation in an easy key is still found.
const FIRST_PASS_STEPS: u64 = 200_000;

/// Pairs the history's events into operations, picks the model and checks. Returns the
/// operations too, since the report names them by position in that list.
pub fn check_history(
    history: &History,
    options: &CheckOptions,
) -> Result<(Vec<Operation>, Report), Error> {
    let ops = pair_operations(&history.events)?;
    let meta = history.meta.as_ref();
    let kind = match (options.model, meta.and_then(|m| m.model.as_deref())) {
        (Some(kind), _) => kind,
        (None, Some(name)) => name.parse().map_err(Error::Model)?,
        (None, None) if ops.iter().any(|op| op.key.is_some()) => ModelKind::Kv,
        (None, None) => ModelKind::CasRegister,
    };
    let initial = initial_value(kind, meta.and_then(|m| m.initial.clone()))?;
    let budget = &options.budget;
    let report = match kind {
        ModelKind::Register => {
            check_operations(&Register::plain().starting_at(initial), &ops, budget)
        }
        ModelKind::CasRegister => {
            check_operations(&Register::cas().starting_at(initial), &ops, budget)
        }
        ModelKind::Kv => check_operations(&Kv::starting_at(initial), &ops, budget),
        ModelKind::Counter => check_operations(&Counter, &ops, budget),
        ModelKind::Set => check_operations(&Set, &ops, budget),
        ModelKind::Queue => check_operations(&Queue, &ops, budget),
        ModelKind::Bank => {
            let balances = options
                .balances
                .clone()
                .or_else(|| meta.and_then(|m| m.balances.clone()))
                .ok_or_else(|| {
                    Error::Model(
                        "the bank model needs initial balances: a meta line with \"balances\" \
                         or --accounts N --balance B"
                            .into(),
                    )
                })?;
            check_operations(&Bank::new(balances)?, &ops, budget)
        }
    }?;
    Ok((ops, report))
}

/// The state a register or key starts from: the meta line's `initial` (which the command line's
/// `--initial-value` sets), else nil. Refused for models whose state is not one value, rather
/// than ignored: a user who gives one expects it to matter.
fn initial_value(kind: ModelKind, initial: Option<serde_json::Value>) -> Result<Value, Error> {
    let Some(json) = initial else { return Ok(Value::Nil) };
    if !kind.takes_initial_value() {
        let takers: Vec<&str> =
            ModelKind::ALL.iter().filter(|k| k.takes_initial_value()).map(|k| k.as_str()).collect();
        return Err(Error::Model(format!(
            "the {kind} model takes no initial value (only {} do)",
            takers.join(", ")
        )));
    }
    Value::try_from(json).map_err(|e| Error::Model(format!("initial value: {e}")))
}

/// Checks operations (from [`pair_operations`]) against `model`, key by key.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[Operation],
    budget: &Budget,
) -> Result<Report, Error> {
    let started = Instant::now();
    let mut report = Report {
        verdict: Verdict::Linearizable,
        model: model.name(),
        operations: ops.len(),
        ok: 0,
        info: 0,
        fail: 0,
        info_reads_dropped: 0,
        info_unobservable_dropped: 0,
        processes: ops.iter().map(|op| op.process).collect::<BTreeSet<_>>().len(),
        keys: 0,
        violations: Vec::new(),
        unknown_keys: Vec::new(),
        steps: 0,
        visited: 0,
        elapsed: Duration::ZERO,
    };
    let mut partitions: BTreeMap<Option<Value>, Vec<Candidate<M::Op>>> = BTreeMap::new();
    for op in ops {
        // Decoded even when dropped, so a malformed line is reported whatever its outcome.
        let decoded = model.prepare(op)?;
        let keyed = partitions.entry(op.key.clone()).or_default();
        match op.outcome {
            Outcome::Fail => report.fail += 1,
            Outcome::Info if model.is_read_only(&decoded) => {
                report.info += 1;
                report.info_reads_dropped += 1;
            }
            Outcome::Info => {
                report.info += 1;
                keyed.push(Candidate {
                    id: op.id,
                    op: decoded,
                    call: op.invoke_position,
                    ret: None,
                });
            }
            Outcome::Ok => {
                report.ok += 1;
                keyed.push(Candidate {
                    id: op.id,
                    op: decoded,
                    call: op.invoke_position,
                    ret: op.complete_position,
                });
            }
        }
    }
    report.keys = partitions.len();
    for candidates in partitions.values_mut() {
        if candidates.iter().all(|c| c.ret.is_some()) {
            continue;
        }
        let view: Vec<(&M::Op, bool)> =
            candidates.iter().map(|c| (&c.op, c.ret.is_some())).collect();
        let unobservable = model.unobservable(&view);
        let before = candidates.len();
        let mut flags = unobservable.into_iter();
        candidates.retain(|c| !(flags.next().unwrap_or(false) && c.ret.is_none()));
        report.info_unobservable_dropped += before - candidates.len();
    }

    let deadline = budget.time.map(|t| started + t);
    let mut steps_left = budget.steps.unwrap_or(u64::MAX);
    let mut retry: Vec<&Option<Value>> = Vec::new();
    let first_pass_steps = if partitions.len() > 1 { FIRST_PASS_STEPS } else { u64::MAX };
    for (key, candidates) in &partitions {
        let allowance = steps_left.min(first_pass_steps);
        let meter =
            Meter { steps_left: allowance, deadline, memo_values_max: budget.memo_values_max };
        let capped = allowance < steps_left;
        match run(model, key, candidates, meter, &mut report, &mut steps_left) {
            Run::Decided => {}
            // Stopped by its first-pass share only: the second pass may still decide it.
            Run::OutOfSteps if capped => retry.push(key),
            Run::OutOfSteps | Run::OutOfBudget => report.unknown_keys.push(key.clone()),
        }
    }
    // Second pass: only worth it while no key is known to be wrong.
    if report.violations.is_empty() {
        for key in retry {
            let candidates = partitions.get(key).map(Vec::as_slice).unwrap_or_default();
            let meter = Meter { steps_left, deadline, memo_values_max: budget.memo_values_max };
            if run(model, key, candidates, meter, &mut report, &mut steps_left) != Run::Decided {
                report.unknown_keys.push(key.clone());
            }
        }
    } else {
        report.unknown_keys.extend(retry.into_iter().cloned());
    }
    report.unknown_keys.sort();

    report.verdict = match report.violations.first() {
        Some(violation) => Verdict::NotLinearizable(violation.clone()),
        None if !report.unknown_keys.is_empty() => Verdict::Unknown,
        None => Verdict::Linearizable,
    };
    report.elapsed = started.elapsed();
    Ok(report)
}

/// How one key's search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// Linearizable or not.
    Decided,
    /// It used every step it was given.
    OutOfSteps,
    /// The deadline passed or the memory bound was reached.
    OutOfBudget,
}

/// Searches one key; records a violation and the effort in `report`.
fn run<M: Model>(
    model: &M,
    key: &Option<Value>,
    candidates: &[Candidate<M::Op>],
    meter: Meter,
    report: &mut Report,
    steps_left: &mut u64,
) -> Run {
    let (outcome, effort) = search(model, candidates, meter);
    *steps_left = steps_left.saturating_sub(effort.steps);
    report.steps += effort.steps;
    report.visited += effort.visited;
    match outcome {
        Search::Linearizable => Run::Decided,
        Search::NotLinearizable { prefix, unplaceable, state } => {
            report.violations.push(Violation { key: key.clone(), prefix, unplaceable, state });
            Run::Decided
        }
        Search::Unknown if effort.steps >= meter.steps_left => Run::OutOfSteps,
        Search::Unknown => Run::OutOfBudget,
    }
}
