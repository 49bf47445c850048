//! What a check found, for programs (the verdict, JSON) and for people (the summary).

use std::fmt::Write as _;
use std::time::Duration;

use crate::operation::{OpId, Operation};
use crate::value::Value;

/// Why one key's operations are not linearizable: how far the best attempt got, and what it
/// could not place next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key (None: the history names no keys).
    pub key: Option<Value>,
    /// The longest linearizable prefix the search found, in linearization order.
    pub prefix: Vec<OpId>,
    /// The operations that could have taken effect after `prefix` (their invocations precede
    /// the first pending completion), in invocation order. None of them could be placed there:
    /// the model refused each, or placing it led only to dead ends already explored. Usually
    /// this is the one operation that went wrong (a stale read, say).
    pub unplaceable: Vec<OpId>,
    /// The model's state after `prefix`, for people ([`crate::Model::show`]).
    pub state: String,
}

/// The answer. It is never a guess: `Linearizable` means an order was found, `NotLinearizable`
/// means the search proved none exists, and anything in between is `Unknown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations have a linearization.
    Linearizable,
    /// At least one key's do not; this is the first such key's violation (see
    /// [`Report::violations`] for all of them).
    NotLinearizable(Violation),
    /// No key is known to be wrong, but the budget ran out before some were decided.
    Unknown,
}

impl Verdict {
    /// The CLI's exit status: 0 linearizable, 1 not, 3 unknown (2 is unusable input).
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable(_) => 1,
            Verdict::Unknown => 3,
        }
    }

    /// The verdict in capitals, for summaries.
    pub fn headline(&self) -> &'static str {
        match self {
            Verdict::Linearizable => "LINEARIZABLE",
            Verdict::NotLinearizable(_) => "NOT LINEARIZABLE",
            Verdict::Unknown => "UNKNOWN (budget exhausted)",
        }
    }
}

/// A check's verdict with the numbers behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// The model's name.
    pub model: &'static str,
    /// Operations in the history (paired invocations).
    pub operations: usize,
    /// Of those, completed `ok`.
    pub ok: usize,
    /// Of those, with unknown outcome (`info` or never completed).
    pub info: usize,
    /// Of those, `fail`ed: dropped, they did not happen.
    pub fail: usize,
    /// `info` operations that cannot change state (reads): dropped, they cannot matter.
    pub info_reads_dropped: usize,
    /// Other `info` operations no operation could have observed ([`crate::Model::unobservable`]):
    /// dropped, since leaving them out never loses a linearization.
    pub info_unobservable_dropped: usize,
    /// Distinct clients.
    pub processes: usize,
    /// Distinct keys (independent searches).
    pub keys: usize,
    /// Every key found not linearizable, in key order.
    pub violations: Vec<Violation>,
    /// Keys the budget did not decide.
    pub unknown_keys: Vec<Option<Value>>,
    /// Search steps over all keys.
    pub steps: u64,
    /// Configurations (linearized set, state) the search recorded, over all keys.
    pub visited: u64,
    /// Wall time of the check.
    pub elapsed: Duration,
}

fn key_text(key: &Option<Value>) -> String {
    key.as_ref().map_or_else(|| "(no key)".to_owned(), Value::to_string)
}

impl Report {
    /// A summary for people: the counts, the time, the verdict and, for a violation, the
    /// operations that could not be placed. `ops` is the list the report's ids index.
    pub fn summary(&self, ops: &[Operation]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "model {}: {} operations ({} ok, {} info, {} fail dropped, {} info reads and {} \
             unobserved info dropped), {} processes, {} keys",
            self.model,
            self.operations,
            self.ok,
            self.info,
            self.fail,
            self.info_reads_dropped,
            self.info_unobservable_dropped,
            self.processes,
            self.keys
        );
        let _ = writeln!(
            out,
            "checked in {:.1} ms ({} steps, {} states visited)",
            self.elapsed.as_secs_f64() * 1000.0,
            self.steps,
            self.visited
        );
        let _ = writeln!(out, "verdict: {}", self.verdict.headline());
        for violation in &self.violations {
            let key = match &violation.key {
                Some(key) => format!("key {key}: "),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{key}linearized {} operations (the longest linearizable prefix), reaching state \
                 {}; none of these could take effect next:",
                violation.prefix.len(),
                violation.state
            );
            for id in &violation.unplaceable {
                if let Some(op) = ops.get(*id) {
                    let _ = writeln!(out, "  op {id}: {op}");
                }
            }
            if let Some(op) = violation.prefix.last().and_then(|id| ops.get(*id)) {
                let _ = writeln!(out, "  (the last operation placed: op {}: {op})", op.id);
            }
        }
        if !self.unknown_keys.is_empty() {
            let keys: Vec<String> = self.unknown_keys.iter().take(10).map(key_text).collect();
            let more = self.unknown_keys.len().saturating_sub(keys.len());
            let _ = write!(out, "undecided keys: {}", keys.join(", "));
            if more > 0 {
                let _ = write!(out, " and {more} more");
            }
            let _ = writeln!(out);
        }
        out
    }

    /// The report as JSON, operations spelled out, for scripts (`conclave check --json`).
    pub fn to_json(&self, ops: &[Operation]) -> serde_json::Value {
        let describe = |ids: &[OpId]| -> Vec<serde_json::Value> {
            ids.iter()
                .filter_map(|id| ops.get(*id))
                .map(|op| {
                    serde_json::json!({
                        "id": op.id,
                        "process": op.process,
                        "f": op.f,
                        "key": op.key.clone().map(serde_json::Value::from),
                        "value": serde_json::Value::from(op.value.clone()),
                        "result": op.result.clone().map(serde_json::Value::from),
                        "outcome": op.outcome,
                        "invoke_line": op.invoke_line,
                        "complete_line": op.complete_line,
                    })
                })
                .collect()
        };
        let violations: Vec<serde_json::Value> = self
            .violations
            .iter()
            .map(|v| {
                serde_json::json!({
                    "key": v.key.clone().map(serde_json::Value::from),
                    "prefix_length": v.prefix.len(),
                    "prefix": v.prefix,
                    "unplaceable": describe(&v.unplaceable),
                    "state": v.state,
                })
            })
            .collect();
        let verdict = match self.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "not-linearizable",
            Verdict::Unknown => "unknown",
        };
        serde_json::json!({
            "verdict": verdict,
            "model": self.model,
            "operations": self.operations,
            "ok": self.ok,
            "info": self.info,
            "fail": self.fail,
            "info_reads_dropped": self.info_reads_dropped,
            "info_unobservable_dropped": self.info_unobservable_dropped,
            "processes": self.processes,
            "keys": self.keys,
            "violations": violations,
            "unknown_keys": self.unknown_keys.iter().map(|k| k.clone().map(serde_json::Value::from)).collect::<Vec<_>>(),
            "steps": self.steps,
            "visited": self.visited,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
        })
    }
}
