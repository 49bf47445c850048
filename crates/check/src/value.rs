//! The values operations carry: arguments, results, keys and model states.
//!
//! `serde_json::Value` is not `Hash` and its numbers may be floats, which have no usable
//! equality; the checker memoises on model states, so it needs values that hash and compare
//! exactly. Floats are therefore refused when a history is read.

use std::collections::BTreeMap;
use std::fmt;

/// An exact, hashable, ordered value: what a history's `key`, `value` and `result` fields hold.
/// `Nil` is JSON's `null` and EDN's `nil` (a read of a missing value, an empty dequeue).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum Value {
    /// No value.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer; wider numbers are refused rather than rounded.
    Int(i64),
    /// A string.
    Str(String),
    /// An ordered sequence (JSON array, EDN vector, list or set).
    List(Vec<Value>),
    /// A map with string keys (JSON object; EDN maps have their keys turned into strings).
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// True for `Nil`; used to leave absent fields out when writing.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The integer, if this is one; models use it to read counters, amounts and accounts.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements, if this is a list; models use it for CAS pairs and set reads.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// Roughly how many values this holds (a long string counts as several): the checker's
    /// memory bound is counted in these.
    pub fn weight(&self) -> usize {
        match self {
            Value::Nil | Value::Bool(_) | Value::Int(_) => 1,
            Value::Str(s) => 1 + s.len() / 32,
            Value::List(items) => 1 + items.iter().map(Value::weight).sum::<usize>(),
            Value::Map(map) => {
                1 + map.iter().map(|(k, v)| 1 + k.len() / 32 + v.weight()).sum::<usize>()
            }
        }
    }

    /// A short description of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items)
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = String;

    fn try_from(json: serde_json::Value) -> Result<Self, String> {
        Ok(match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => {
                    return Err(format!(
                        "the number {n} is not a 64-bit signed integer (floats and wider \
                         integers have no exact equality, so they are not supported)"
                    ))
                }
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(items) => {
                Value::List(items.into_iter().map(Value::try_from).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| Ok((k, Value::try_from(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

impl From<Value> for serde_json::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Str(s) => serde_json::Value::String(s),
            Value::List(items) => {
                serde_json::Value::Array(items.into_iter().map(Into::into).collect())
            }
            Value::Map(map) => {
                serde_json::Value::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

/// JSON text, except that `Nil` prints as `nil`: the word users of Jepsen histories expect in
/// reports.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", serde_json::Value::String(k.clone()))?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_refusals() {
        let v: Value = serde_json::from_str(r#"{"a": [1, "x", null, true]}"#).unwrap();
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"a":[1,"x",null,true]}"#);
        let err = serde_json::from_str::<Value>("1.5").unwrap_err().to_string();
        assert!(err.contains("not a 64-bit signed integer"), "{err}");
        assert!(serde_json::from_str::<Value>("18446744073709551615").is_err());
    }

    #[test]
    fn display_uses_nil() {
        let v = Value::List(vec![Value::Nil, Value::from(3), Value::from("a\"b")]);
        assert_eq!(v.to_string(), r#"[nil, 3, "a\"b"]"#);
    }
}
