//! A FIFO queue: `enqueue x` and `dequeue`, which returns the oldest element or nil when the
//! queue is empty. It starts empty. Nil cannot be enqueued: it would be indistinguishable from
//! an empty dequeue.

use std::collections::VecDeque;

use super::{bad_op, known_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;
use crate::value::Value;

/// A queue operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOp {
    /// `enqueue x`.
    Enqueue(Value),
    /// `dequeue`: returned this element, or nil for an empty queue (`None`: not known).
    Dequeue(Option<Value>),
}

/// A FIFO queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct Queue;

impl Model for Queue {
    type State = VecDeque<Value>;
    type Op = QueueOp;

    fn name(&self) -> &'static str {
        "queue"
    }

    fn init(&self) -> VecDeque<Value> {
        VecDeque::new()
    }

    fn prepare(&self, op: &Operation) -> Result<QueueOp, Error> {
        match op.f.as_str() {
            "enqueue" if op.value.is_nil() => Err(bad_op(op, "cannot enqueue nil")),
            "enqueue" => Ok(QueueOp::Enqueue(op.value.clone())),
            "dequeue" => Ok(QueueOp::Dequeue(known_result(op).cloned())),
            _ => Err(unknown_f(op, self.name(), &["enqueue", "dequeue"])),
        }
    }

    fn is_read_only(&self, _op: &QueueOp) -> bool {
        // Even a dequeue whose result is unknown may have removed an element.
        false
    }

    fn show(&self, state: &VecDeque<Value>) -> String {
        Value::List(state.iter().cloned().collect()).to_string()
    }

    fn weight(&self, state: &VecDeque<Value>) -> usize {
        1 + state.iter().map(Value::weight).sum::<usize>()
    }

    fn step(&self, state: &VecDeque<Value>, op: &QueueOp) -> Option<VecDeque<Value>> {
        match op {
            QueueOp::Enqueue(x) => {
                let mut next = state.clone();
                next.push_back(x.clone());
                Some(next)
            }
            QueueOp::Dequeue(seen) => match (state.front(), seen) {
                (None, None | Some(Value::Nil)) => Some(state.clone()),
                (None, Some(_)) => None,
                (Some(head), Some(seen)) if head != seen => None,
                (Some(_), _) => {
                    let mut next = state.clone();
                    next.pop_front();
                    Some(next)
                }
            },
        }
    }
}
