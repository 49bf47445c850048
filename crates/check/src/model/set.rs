//! A grow-only set: `add x` and `read`, which returns the whole set (in any order; duplicates in
//! a read are ignored). It starts empty.

use std::collections::BTreeSet;

use super::{bad_op, known_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;
use crate::value::Value;

/// A set operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// `add x`.
    Add(Value),
    /// `read`: returned these elements (`None`: not known).
    Read(Option<BTreeSet<Value>>),
}

/// A grow-only set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Set;

impl Model for Set {
    type State = BTreeSet<Value>;
    type Op = SetOp;

    fn name(&self) -> &'static str {
        "set"
    }

    fn init(&self) -> BTreeSet<Value> {
        BTreeSet::new()
    }

    fn prepare(&self, op: &Operation) -> Result<SetOp, Error> {
        match op.f.as_str() {
            "add" => Ok(SetOp::Add(op.value.clone())),
            "read" => match known_result(op) {
                None => Ok(SetOp::Read(None)),
                Some(Value::List(items)) => Ok(SetOp::Read(Some(items.iter().cloned().collect()))),
                Some(other) => Err(bad_op(
                    op,
                    format!("expects the whole set (a list) as the result, got {other}"),
                )),
            },
            _ => Err(unknown_f(op, self.name(), &["add", "read"])),
        }
    }

    fn is_read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    /// An add of `x` is unobservable when no `ok` read contains `x`: once added, `x` stays, so
    /// every `ok` read after it would contain it; with none after it, and adds succeeding in any
    /// state, nothing depends on it.
    fn unobservable(&self, ops: &[(&SetOp, bool)]) -> Vec<bool> {
        let seen: Vec<&BTreeSet<Value>> = ops
            .iter()
            .filter_map(|(op, ok)| match op {
                SetOp::Read(Some(s)) if *ok => Some(s),
                _ => None,
            })
            .collect();
        ops.iter()
            .map(|(op, _)| match op {
                SetOp::Add(x) => !seen.iter().any(|s| s.contains(x)),
                SetOp::Read(_) => false,
            })
            .collect()
    }

    fn show(&self, state: &BTreeSet<Value>) -> String {
        Value::List(state.iter().cloned().collect()).to_string()
    }

    fn weight(&self, state: &BTreeSet<Value>) -> usize {
        1 + state.iter().map(Value::weight).sum::<usize>()
    }

    fn step(&self, state: &BTreeSet<Value>, op: &SetOp) -> Option<BTreeSet<Value>> {
        match op {
            SetOp::Add(x) => {
                let mut next = state.clone();
                next.insert(x.clone());
                Some(next)
            }
            SetOp::Read(None) => Some(state.clone()),
            SetOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
        }
    }
}
