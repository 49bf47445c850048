//! A key-value map. Keys are independent objects, so the checker splits the history by key
//! (P-compositionality) and this model describes one key's value: it starts absent (nil), or at
//! a given initial value for stores that answer a missing key with one (often `""`), and
//! supports `get`, `put` and `append`.

use super::{bad_op, known_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;
use crate::value::Value;

/// A key-value operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// `get` (or `read`): returned this value (`None`: not known).
    Get(Option<Value>),
    /// `put v` (or `write v`).
    Put(Value),
    /// `append v`: a string is concatenated to a string (Redis's APPEND); anything else is pushed
    /// onto a list (Jepsen's list-append). Appending to an absent key starts it.
    Append(Value),
}

/// One key of a key-value map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    /// What a key holds before any write: nil (absent) unless the store under test answers a
    /// missing key with a value.
    initial: Value,
}

impl Kv {
    /// A map whose keys start at `initial` instead of nil.
    pub fn starting_at(initial: Value) -> Kv {
        Kv { initial }
    }
}

impl Model for Kv {
    type State = Value;
    type Op = KvOp;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn prepare(&self, op: &Operation) -> Result<KvOp, Error> {
        match op.f.as_str() {
            "get" | "read" => Ok(KvOp::Get(known_result(op).cloned())),
            "put" | "write" => Ok(KvOp::Put(op.value.clone())),
            "append" if op.value.is_nil() => Err(bad_op(op, "append needs a value")),
            "append" => Ok(KvOp::Append(op.value.clone())),
            _ => Err(unknown_f(op, self.name(), &["get", "put", "append"])),
        }
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(_))
    }

    /// Only for keys whose every put and append is a non-empty string (then appends always
    /// succeed): a put of `v` is unobservable when no `ok` get returned a string starting with
    /// `v`, and an append of `a` when no `ok` get returned a string containing `a`. Until the next
    /// put, every value of the key starts with `v` (contains `a`), so an `ok` get in that window
    /// would have shown it; the window holds only appends and puts, which succeed whatever the
    /// value was.
    fn unobservable(&self, ops: &[(&KvOp, bool)]) -> Vec<bool> {
        let strings = ops.iter().all(|(op, _)| match op {
            KvOp::Put(Value::Str(s)) | KvOp::Append(Value::Str(s)) => !s.is_empty(),
            KvOp::Put(_) | KvOp::Append(_) => false,
            KvOp::Get(_) => true,
        });
        if !strings {
            return vec![false; ops.len()];
        }
        let seen: Vec<&str> = ops
            .iter()
            .filter_map(|(op, ok)| match op {
                KvOp::Get(Some(Value::Str(s))) if *ok => Some(s.as_str()),
                _ => None,
            })
            .collect();
        ops.iter()
            .map(|(op, _)| match op {
                KvOp::Put(Value::Str(v)) => !seen.iter().any(|s| s.starts_with(v.as_str())),
                KvOp::Append(Value::Str(a)) => !seen.iter().any(|s| s.contains(a.as_str())),
                _ => false,
            })
            .collect()
    }

    fn show(&self, state: &Value) -> String {
        state.to_string()
    }

    fn weight(&self, state: &Value) -> usize {
        state.weight()
    }

    fn step(&self, state: &Value, op: &KvOp) -> Option<Value> {
        match op {
            KvOp::Get(None) => Some(state.clone()),
            KvOp::Get(Some(seen)) => (seen == state).then(|| state.clone()),
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Append(suffix) => append(state, suffix),
        }
    }
}

/// The value after appending; `None` when the stored value cannot be appended to (an integer,
/// say), which no successful append could have done.
fn append(state: &Value, suffix: &Value) -> Option<Value> {
    match (state, suffix) {
        (Value::Nil, Value::Str(s)) => Some(Value::Str(s.clone())),
        (Value::Nil, other) => Some(Value::List(vec![other.clone()])),
        (Value::Str(a), Value::Str(b)) => Some(Value::Str(format!("{a}{b}"))),
        (Value::List(items), other) => {
            let mut items = items.clone();
            items.push(other.clone());
            Some(Value::List(items))
        }
        _ => None,
    }
}
