//! Registers: one value, read and overwritten; the compare-and-set variant also swaps it
//! conditionally. Both start at nil, as Jepsen's registers do, unless given an initial value
//! (a service whose missing value reads as the empty string starts at `""`).

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

/// A register: `read` and `write`, plus `cas` when built with [`Register::cas`]. One type for
/// both, since the only difference is which operations [`Model::prepare`] accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// Whether `cas [expected new]` is an operation of this register.
    cas: bool,
    /// The value before any write.
    initial: Value,
}

impl Register {
    /// A read/write register starting at nil.
    pub fn plain() -> Register {
        Register { cas: false, initial: Value::Nil }
    }

    /// A read/write/compare-and-set register starting at nil.
    pub fn cas() -> Register {
        Register { cas: true, initial: Value::Nil }
    }

    /// The same register starting at `initial` instead of nil.
    pub fn starting_at(self, initial: Value) -> Register {
        Register { initial, ..self }
    }
}

impl Default for Register {
    /// A read/write register starting at nil.
    fn default() -> Self {
        Register::plain()
    }
}

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
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn prepare(&self, op: &Operation) -> Result<RegisterOp, Error> {
        prepare(op, self.cas, self.name())
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
