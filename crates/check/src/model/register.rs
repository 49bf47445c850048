//! Registers: one value, read and overwritten; the compare-and-set variant also swaps it
//! conditionally. Both start at nil, as Jepsen's registers do.

use super::{bad_op, known_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;
use crate::value::Value;

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// `read`: returned this value (`None`: not known).
    Read(Option<Value>),
    /// `write v`.
    Write(Value),
    /// `cas [expected new]`: an `ok` CAS found `expected` and stored `new`.
    Cas(Value, Value),
}

/// A read/write register.
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

/// A read/write/compare-and-set register.
#[derive(Clone, Copy, Debug, Default)]
pub struct CasRegister;

fn prepare(op: &Operation, cas: bool, model: &str) -> Result<RegisterOp, Error> {
    match op.f.as_str() {
        "read" => Ok(RegisterOp::Read(known_result(op).cloned())),
        "write" => Ok(RegisterOp::Write(op.value.clone())),
        "cas" if cas => match op.value.as_list() {
            Some([expected, new]) => Ok(RegisterOp::Cas(expected.clone(), new.clone())),
            _ => Err(bad_op(op, format!("expects [expected, new], got {}", op.value))),
        },
        _ if cas => Err(unknown_f(op, model, &["read", "write", "cas"])),
        _ => Err(unknown_f(op, model, &["read", "write"])),
    }
}

fn step(state: &Value, op: &RegisterOp) -> Option<Value> {
    match op {
        RegisterOp::Read(None) => Some(state.clone()),
        RegisterOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
        RegisterOp::Write(v) => Some(v.clone()),
        RegisterOp::Cas(expected, new) => (expected == state).then(|| new.clone()),
    }
}

impl Model for Register {
    type State = Value;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        "register"
    }

    fn init(&self) -> Value {
        Value::Nil
    }

    fn prepare(&self, op: &Operation) -> Result<RegisterOp, Error> {
        prepare(op, false, self.name())
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    fn show(&self, state: &Value) -> String {
        state.to_string()
    }

    fn weight(&self, state: &Value) -> usize {
        state.weight()
    }

    fn defer_unknown(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    fn step(&self, state: &Value, op: &RegisterOp) -> Option<Value> {
        step(state, op)
    }
}

impl Model for CasRegister {
    type State = Value;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        "cas-register"
    }

    fn init(&self) -> Value {
        Value::Nil
    }

    fn prepare(&self, op: &Operation) -> Result<RegisterOp, Error> {
        prepare(op, true, self.name())
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    fn show(&self, state: &Value) -> String {
        state.to_string()
    }

    fn weight(&self, state: &Value) -> usize {
        state.weight()
    }

    fn defer_unknown(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    fn step(&self, state: &Value, op: &RegisterOp) -> Option<Value> {
        step(state, op)
    }
}
