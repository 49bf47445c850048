//! A counter: `add n` (n may be negative) and `read`. It starts at 0.

use super::{int_arg, int_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;

/// A counter operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    /// `add n`.
    Add(i64),
    /// `read`: returned this count (`None`: not known).
    Read(Option<i64>),
}

/// A counter starting at 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter;

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn init(&self) -> i64 {
        0
    }

    fn prepare(&self, op: &Operation) -> Result<CounterOp, Error> {
        match op.f.as_str() {
            "add" => Ok(CounterOp::Add(int_arg(op, "the amount to add")?)),
            "read" => Ok(CounterOp::Read(int_result(op)?)),
            _ => Err(unknown_f(op, self.name(), &["add", "read"])),
        }
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }

    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            // An overflowing add cannot have succeeded in a 64-bit counter.
            CounterOp::Add(n) => state.checked_add(n),
            CounterOp::Read(None) => Some(*state),
            CounterOp::Read(Some(seen)) => (seen == *state).then_some(*state),
        }
    }
}
