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

/// A write of `v`, or a CAS storing `v`, is unobservable when no `ok` read returned `v` and no
/// CAS expects `v`. Why leaving it out keeps a linearization valid: until the next write or CAS
/// that succeeds, the register holds `v`; in that window an `ok` read would return `v` and a
/// successful CAS would expect `v`, so the window holds only writes and failed operations,
/// which do not care what the register held before them.
fn unobservable(ops: &[(&RegisterOp, bool)]) -> Vec<bool> {
    let mut observed: Vec<&Value> = Vec::new();
    for (op, ok) in ops {
        match op {
            RegisterOp::Read(Some(v)) if *ok => observed.push(v),
            RegisterOp::Cas(expected, _) => observed.push(expected),
            _ => {}
        }
    }
    ops.iter()
        .map(|(op, _)| match op {
            RegisterOp::Write(v) | RegisterOp::Cas(_, v) => !observed.contains(&v),
            RegisterOp::Read(_) => false,
        })
        .collect()
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

    fn unobservable(&self, ops: &[(&RegisterOp, bool)]) -> Vec<bool> {
        unobservable(ops)
    }

    fn show(&self, state: &Value) -> String {
        state.to_string()
    }

    fn weight(&self, state: &Value) -> usize {
        state.weight()
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

    fn unobservable(&self, ops: &[(&RegisterOp, bool)]) -> Vec<bool> {
        unobservable(ops)
    }

    fn show(&self, state: &Value) -> String {
        state.to_string()
    }

    fn weight(&self, state: &Value) -> usize {
        state.weight()
    }

    fn step(&self, state: &Value, op: &RegisterOp) -> Option<Value> {
        step(state, op)
    }
}
