//! A direct check for lost acknowledged writes, alongside the linearizability check: it names
//! the write that vanished in words a person reads at once.
//!
//! Values written are unique. If a `put` of `x` was acknowledged before the final read of its key
//! began, and it began after the `put` of the value `v` that the final read returned had
//! completed, then `x` had to replace `v`: the final read seeing `v` (or nothing) means `x` was
//! lost. This is sound (it never blames a correct system) but not complete: the checker finds
//! everything else.

use std::collections::HashMap;

use conclave_check::{Event, EventKind, Value};

use crate::workload::FINAL_READER;

/// One paired operation, by event positions.
struct Op<'a> {
    invoke: usize,
    complete: Option<usize>,
    kind: EventKind,
    key: Option<&'a Value>,
    value: &'a Value,
    result: Option<&'a Value>,
    process: u64,
}

fn pair(events: &[Event]) -> Vec<Op<'_>> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut ops: Vec<Op<'_>> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if event.kind == EventKind::Invoke {
            open.insert(event.process, ops.len());
            ops.push(Op {
                invoke: i,
                complete: None,
                kind: EventKind::Invoke,
                key: event.key.as_ref(),
                value: &event.value,
                result: None,
                process: event.process,
            });
        } else if let Some(at) = open.remove(&event.process) {
            let op = &mut ops[at];
            op.complete = Some(i);
            op.kind = event.kind;
            op.result = event.result.as_ref();
        }
    }
    ops
}

/// Describes every acknowledged write the final reads show was lost.
pub fn lost_writes(events: &[Event]) -> Vec<String> {
    let ops = pair(events);
    let puts: Vec<&Op<'_>> = ops.iter().filter(|op| events[op.invoke].f == "put").collect();
    let mut lost = Vec::new();
    for read in ops.iter().filter(|op| op.process == FINAL_READER && op.kind == EventKind::Ok) {
        let Some(seen) = read.result else { continue };
        let written = puts.iter().find(|w| w.key == read.key && w.value == seen);
        for put in puts.iter().filter(|w| w.key == read.key && w.kind == EventKind::Ok) {
            let Some(acked) = put.complete else { continue };
            if acked >= read.invoke || put.value == seen {
                continue;
            }
            let must_follow = match (seen, written) {
                (Value::Nil, _) => true,
                (_, Some(w)) => {
                    w.kind == EventKind::Ok && w.complete.is_some_and(|c| c < put.invoke)
                }
                (_, None) => false,
            };
            if must_follow {
                lost.push(format!(
                    "key {}: the put of {} was acknowledged (event {}), but the final read \
                     (event {}) returned {}",
                    read.key.map_or_else(|| "-".into(), Value::to_string),
                    put.value,
                    acked,
                    read.invoke,
                    seen
                ));
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(p: u64, v: &str) -> [Event; 2] {
        [
            Event::invoke(p, "put").with_key("k").with_value(v),
            Event::ok(p, "put").with_key("k").with_value(v),
        ]
    }

    fn final_read(result: Value) -> [Event; 2] {
        [
            Event::invoke(FINAL_READER, "get").with_key("k"),
            Event::ok(FINAL_READER, "get").with_key("k").with_result(result),
        ]
    }

    #[test]
    fn a_final_read_of_an_overwritten_value_names_the_lost_write() {
        let mut events = Vec::new();
        events.extend(put(0, "a"));
        events.extend(put(1, "b"));
        events.extend(final_read(Value::from("a")));
        let lost = lost_writes(&events);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("\"b\"") || lost[0].contains('b'), "{lost:?}");
        events.truncate(4);
        events.extend(final_read(Value::from("b")));
        assert!(lost_writes(&events).is_empty());
    }

    #[test]
    fn concurrent_or_unacknowledged_writes_are_not_blamed() {
        // a and b overlap: either may be last.
        let events = vec![
            Event::invoke(0, "put").with_key("k").with_value("a"),
            Event::invoke(1, "put").with_key("k").with_value("b"),
            Event::ok(1, "put").with_key("k").with_value("b"),
            Event::ok(0, "put").with_key("k").with_value("a"),
            Event::invoke(2, "put").with_key("k").with_value("c"),
            Event::info(2, "put").with_key("k").with_value("c"),
            Event::invoke(FINAL_READER, "get").with_key("k"),
            Event::ok(FINAL_READER, "get").with_key("k").with_result(Value::from("b")),
        ];
        assert!(lost_writes(&events).is_empty());
        // Nothing read at all after an acknowledged write: lost.
        let mut events = put(0, "a").to_vec();
        events.extend(final_read(Value::Nil));
        assert_eq!(lost_writes(&events).len(), 1);
    }
}
