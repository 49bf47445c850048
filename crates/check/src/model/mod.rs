//! Sequential specifications: what each object does when operations run one at a time. The
//! checker asks a model, state by state, whether an operation could have returned what it did.

mod bank;
mod counter;
mod kv;
mod queue;
mod register;
mod set;

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

pub use bank::{Bank, BankOp};
pub use counter::{Counter, CounterOp};
pub use kv::{Kv, KvOp};
pub use queue::{Queue, QueueOp};
pub use register::{Register, RegisterOp};
pub use set::{Set, SetOp};

use crate::error::Error;
use crate::operation::{Operation, Outcome};
use crate::value::Value;

/// A sequential object: an initial state and a step function. One model instance describes one
/// key's object; the checker runs a separate search per key.
///
/// `State` is `Eq + Hash` because the checker memoises (linearized set, state) pairs: two paths
/// that linearized the same operations and reached the same state have the same future, so only
/// one is explored. That memo is what makes the search practical.
pub trait Model {
    /// The object's state. Keep it small: it is cloned on every successful step.
    type State: Clone + Eq + Hash + fmt::Debug;
    /// An operation in the model's own terms, decoded once from the history's values.
    type Op: Clone + fmt::Debug;

    /// The model's name, as the CLI spells it.
    fn name(&self) -> &'static str;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Decodes an operation; an unknown `f` or badly shaped arguments are input errors naming
    /// the line. The result is known only for `ok` operations (see [`known_result`]).
    fn prepare(&self, op: &Operation) -> Result<Self::Op, Error>;

    /// True if the operation cannot change the state. Such operations are dropped when their
    /// outcome is unknown: whether or not they happened, nothing else could tell.
    fn is_read_only(&self, op: &Self::Op) -> bool;

    /// Applies `op` to `state`: the new state if `op`, taking effect now, would return exactly
    /// what it returned; `None` if it could not have.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Which of one key's operations, if their outcome is unknown, no other operation could
    /// tell apart from never having happened; `ops` pairs each operation with whether it is
    /// `ok`. The checker leaves those out of the search. It is only sound when any linearization
    /// that places such an operation stays a linearization without it; each model's doc says
    /// why its rule has that property. Dropping them matters: every unknown operation the
    /// search must consider multiplies the configurations it explores to prove a violation.
    fn unobservable(&self, ops: &[(&Self::Op, bool)]) -> Vec<bool> {
        vec![false; ops.len()]
    }

    /// Roughly how many values the state holds: the memo's memory bound counts in these, so
    /// models with large states (sets, queues, long strings) run out of budget before memory.
    fn weight(&self, _state: &Self::State) -> usize {
        1
    }

    /// The state for people, in reports; Rust's debug notation unless a model knows better.
    fn show(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// Defines [`ModelKind`] from one table: each model's variant, its name (as the command line
/// and the meta line spell it) and a one-line description of its operations. Parsing, printing,
/// the command line's list of possible values and its help all derive from this table, so a
/// model is added in one place.
macro_rules! model_kinds {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $description:literal;)*) => {
        /// The models the checker offers, by name; [`check_history`](crate::check_history)
        /// builds the concrete [`Model`] for the one chosen.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ModelKind {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ModelKind {
            /// Every model, in the order the help text lists them.
            pub const ALL: &'static [ModelKind] = &[$(ModelKind::$variant),*];

            /// The name used on the command line and in the meta line.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ModelKind::$variant => $name,)*
                }
            }

            /// What the model's operations are, in one line, for help texts.
            pub fn description(self) -> &'static str {
                match self {
                    $(ModelKind::$variant => $description,)*
                }
            }
        }
    };
}

model_kinds! {
    /// A register with `read` and `write`.
    Register => "register", "read, write";
    /// A register with `read`, `write` and `cas [expected new]`.
    CasRegister => "cas-register", "read, write, cas [expected new]";
    /// A map, one register per key, with `get`, `put` and `append`.
    Kv => "kv", "get, put, append; every key checked on its own";
    /// A counter with `add n` and `read`.
    Counter => "counter", "add n, read";
    /// A grow-only set with `add x` and `read` (the whole set).
    Set => "set", "add x, read (the whole set)";
    /// A FIFO queue with `enqueue x` and `dequeue` (nil when empty).
    Queue => "queue", "enqueue x, dequeue (nil when empty)";
    /// Accounts with `transfer {from, to, amount}` and `read` (all balances).
    Bank => "bank", "transfer {from, to, amount}, read (all balances); needs initial balances";
}

impl ModelKind {
    /// True for the models whose state is one value that an initial value can replace
    /// (`register`, `cas-register`, `kv`); the others start from their own empty state.
    pub fn takes_initial_value(self) -> bool {
        matches!(self, ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv)
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        ModelKind::ALL.iter().copied().find(|kind| kind.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown model {name:?} (expected one of {})", names.join(", "))
        })
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result a model may compare against: `Some` only for `ok` operations, since an `info`
/// operation's result was never seen and a `fail`ed one has none.
pub fn known_result(op: &Operation) -> Option<&Value> {
    match op.outcome {
        Outcome::Ok => op.result.as_ref(),
        Outcome::Fail | Outcome::Info => None,
    }
}

/// An input error about `op`, naming its invocation's line.
pub(crate) fn bad_op(op: &Operation, reason: impl Into<String>) -> Error {
    Error::Operation { line: op.invoke_line, f: op.f.clone(), reason: reason.into() }
}

/// The error for an `f` the model does not know, listing the ones it does.
pub(crate) fn unknown_f(op: &Operation, model: &str, known: &[&str]) -> Error {
    bad_op(op, format!("unknown operation for the {model} model (expected {})", known.join(", ")))
}

/// The integer argument of `op`, or an error saying what was expected.
pub(crate) fn int_arg(op: &Operation, what: &str) -> Result<i64, Error> {
    op.value
        .as_int()
        .ok_or_else(|| bad_op(op, format!("expects {what} (an integer), got {}", op.value)))
}

/// The integer result of an `ok` operation; `None` when unknown.
pub(crate) fn int_result(op: &Operation) -> Result<Option<i64>, Error> {
    match known_result(op) {
        None => Ok(None),
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(other) => Err(bad_op(op, format!("expects an integer result, got {other}"))),
    }
}
