//! Operations: an invocation paired with its completion. The checker reasons about operations
//! (intervals of real time), not about single events.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::history::{Event, EventKind};
use crate::value::Value;

/// An operation's number: its position in the list [`pair_operations`] returns (the order of
/// invocations). Reports use it to name operations.
pub type OpId = usize;

/// How an operation ended, which decides how the checker treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It took effect exactly once, between its invocation and its completion.
    Ok,
    /// It did not take effect; the checker drops it.
    Fail,
    /// Unknown: an `info` completion or no completion at all. It may take effect at any time
    /// after its invocation, or never.
    Info,
}

/// One operation of one client: what it asked, what it got, and when (as event positions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Its number (the order of invocations).
    pub id: OpId,
    /// The client.
    pub process: u64,
    /// The operation's name.
    pub f: String,
    /// The object it touches, if the history names objects.
    pub key: Option<Value>,
    /// Its arguments: the invocation's `value` (a completion's `value` is not read for them:
    /// the invocation is when the client knew its arguments).
    pub value: Value,
    /// What it returned: the `ok` completion's `result`, or its `value` when it has no
    /// `result`. `None` when the operation did not complete with `ok`.
    pub result: Option<Value>,
    /// How it ended.
    pub outcome: Outcome,
    /// The invocation's position among the events (0-based): the start of its interval.
    pub invoke_position: usize,
    /// The completion's position, if it completed; `None` means it is open forever.
    pub complete_position: Option<usize>,
    /// The invocation's line, for messages.
    pub invoke_line: usize,
    /// The completion's line, for messages.
    pub complete_line: Option<usize>,
    /// The invocation's time, if recorded.
    pub invoke_time: Option<u64>,
    /// The completion's time, if recorded.
    pub complete_time: Option<u64>,
}

impl Operation {
    /// A one-line description for people: `p3 cas [1, 4] ok`, `p1 get "k" -> "v" ok`.
    pub fn describe(&self) -> String {
        let mut text = format!("p{} {}", self.process, self.f);
        if let Some(key) = &self.key {
            text.push_str(&format!(" {key}"));
        }
        if !self.value.is_nil() {
            text.push_str(&format!(" {}", self.value));
        }
        // Jepsen repeats a write's value on its completion; showing it twice would be noise.
        if let Some(result) =
            self.result.as_ref().filter(|r| self.value.is_nil() || **r != self.value)
        {
            text.push_str(&format!(" -> {result}"));
        }
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info if self.complete_position.is_some() => "info",
            Outcome::Info => "info (never completed)",
        };
        text.push(' ');
        text.push_str(outcome);
        text
    }

    /// The lines it spans, `12-15` or `12-` when it never completed.
    pub fn lines(&self) -> String {
        match self.complete_line {
            Some(end) => format!("{}-{end}", self.invoke_line),
            None => format!("{}-", self.invoke_line),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (lines {})", self.describe(), self.lines())
    }
}

/// Pairs each invocation with its client's next completion.
///
/// Errors (with the line): a completion with no open invocation; an invocation while the same
/// client has one open (a client is sequential; after `info` it may invoke again, because the
/// `info` ended its wait); a completion whose `f` or `key` differs from its invocation's.
/// Invocations never completed become `info` operations.
pub fn pair_operations(events: &[Event]) -> Result<Vec<Operation>, Error> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut open: BTreeMap<u64, OpId> = BTreeMap::new();
    for (position, event) in events.iter().enumerate() {
        match event.kind {
            EventKind::Invoke => {
                if let Some(&previous) = open.get(&event.process) {
                    return Err(Error::Pairing {
                        line: event.line,
                        reason: format!(
                            "process {} invokes {} while its {} from line {} is still open",
                            event.process, event.f, ops[previous].f, ops[previous].invoke_line
                        ),
                    });
                }
                let id = ops.len();
                open.insert(event.process, id);
                ops.push(Operation {
                    id,
                    process: event.process,
                    f: event.f.clone(),
                    key: event.key.clone(),
                    value: event.value.clone(),
                    result: None,
                    outcome: Outcome::Info,
                    invoke_position: position,
                    complete_position: None,
                    invoke_line: event.line,
                    complete_line: None,
                    invoke_time: event.time,
                    complete_time: None,
                });
            }
            kind => {
                let Some(id) = open.remove(&event.process) else {
                    return Err(Error::Pairing {
                        line: event.line,
                        reason: format!(
                            "process {} completes {} ({}) with no open invocation",
                            event.process,
                            event.f,
                            kind.as_str()
                        ),
                    });
                };
                complete(&mut ops[id], event, position, kind)?;
            }
        }
    }
    Ok(ops)
}

fn complete(
    op: &mut Operation,
    event: &Event,
    position: usize,
    kind: EventKind,
) -> Result<(), Error> {
    if event.f != op.f {
        return Err(Error::Pairing {
            line: event.line,
            reason: format!(
                "process {} completes {} but invoked {} at line {}",
                event.process, event.f, op.f, op.invoke_line
            ),
        });
    }
    if event.key.is_some() && event.key != op.key {
        return Err(Error::Pairing {
            line: event.line,
            reason: format!(
                "process {} completes {} on key {} but invoked it on {} at line {}",
                event.process,
                event.f,
                event.key.clone().unwrap_or_default(),
                op.key.clone().unwrap_or_default(),
                op.invoke_line
            ),
        });
    }
    op.outcome = match kind {
        EventKind::Ok => Outcome::Ok,
        EventKind::Fail => Outcome::Fail,
        EventKind::Info | EventKind::Invoke => Outcome::Info,
    };
    if kind == EventKind::Ok {
        op.result = Some(event.result.clone().unwrap_or_else(|| event.value.clone()));
    }
    op.complete_position = Some(position);
    op.complete_line = Some(event.line);
    op.complete_time = event.time;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    #[test]
    fn pairs_per_process_and_keeps_open_ops_as_info() {
        let h = History::from_events(vec![
            Event::invoke(1, "write").with_value(3),
            Event::invoke(2, "read"),
            Event::ok(2, "read").with_value(0),
            Event::info(1, "write"),
            Event::invoke(1, "read"),
            Event::invoke(3, "write").with_value(9),
            Event::ok(1, "read").with_result(Value::Nil),
        ]);
        let ops = pair_operations(&h.events).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!((ops[0].outcome, ops[0].complete_position), (Outcome::Info, Some(3)));
        assert_eq!(ops[1].result, Some(Value::Int(0)), "result falls back to value");
        assert_eq!(ops[2].result, Some(Value::Nil));
        assert_eq!((ops[3].outcome, ops[3].complete_position), (Outcome::Info, None));
        assert_eq!(ops[3].describe(), "p3 write 9 info (never completed)");
    }

    #[test]
    fn pairing_errors_name_the_line() {
        let cases = vec![
            (vec![Event::ok(1, "read")], 1, "no open invocation"),
            (vec![Event::invoke(1, "read"), Event::invoke(1, "read")], 2, "still open"),
            (vec![Event::invoke(1, "read"), Event::ok(1, "write")], 2, "invoked read"),
            (
                vec![Event::invoke(1, "get").with_key("a"), Event::ok(1, "get").with_key("b")],
                2,
                "on key",
            ),
        ];
        for (events, line, needle) in cases {
            let err = pair_operations(&History::from_events(events).events).unwrap_err();
            assert_eq!(err.line(), Some(line));
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
