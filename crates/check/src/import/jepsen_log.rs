//! Jepsen's textual operation log for a single compare-and-set register, the format of
//! Knossos's classic test histories:
//!
//! ```text
//! INFO  jepsen.util - 3  :invoke  :cas  [1 4]
//! INFO  jepsen.util - 3  :fail  :cas  [1 4]
//! INFO  jepsen.util - 5  :ok  :read  nil
//! INFO  jepsen.util - :nemesis  :info  :start  nil
//! ```
//!
//! After `jepsen.util - ` come tab-separated fields (shown above as two spaces): process, type,
//! f, value (EDN), and possibly more (an error message), which are ignored. Lines without that
//! marker, or with the marker but no tab (Jepsen's other messages), are skipped. Records of
//! non-numeric processes (`:nemesis`) are skipped: they are fault injections, not client
//! operations. A record that cannot be read is an error naming its line.

use crate::error::Error;
use crate::history::{Event, EventKind, History, Meta};
use crate::import::edn::{parse_edn, Edn};
use crate::value::Value;

/// What precedes a record on a Jepsen log line.
const MARKER: &str = "jepsen.util - ";

/// Reads a Jepsen log; the history's meta line names the `cas-register` model.
pub fn parse_jepsen_log(text: &str) -> Result<History, Error> {
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(at) = raw.find(MARKER) else { continue };
        let record = &raw[at + MARKER.len()..];
        if !record.contains('\t') {
            continue;
        }
        if let Some(event) = parse_record(record, line)? {
            events.push(event);
        }
    }
    Ok(History {
        meta: Some(Meta { model: Some("cas-register".into()), ..Meta::default() }),
        events,
    })
}

fn parse_record(record: &str, line: usize) -> Result<Option<Event>, Error> {
    let bad = |reason: String| Error::Syntax { line, reason };
    let fields: Vec<&str> = record.split('\t').map(str::trim).collect();
    let [process, kind, f, rest @ ..] = fields.as_slice() else {
        return Err(bad(format!("expected process, type and f separated by tabs, got {record:?}")));
    };
    if process.starts_with(':') {
        return Ok(None);
    }
    let process: u64 =
        process.parse().map_err(|_| bad(format!("process {process:?} is not a number")))?;
    let kind = match *kind {
        ":invoke" => EventKind::Invoke,
        ":ok" => EventKind::Ok,
        ":fail" => EventKind::Fail,
        ":info" => EventKind::Info,
        other => {
            return Err(bad(format!("type {other:?} is not :invoke, :ok, :fail or :info")));
        }
    };
    let f = f
        .strip_prefix(':')
        .filter(|name| !name.is_empty())
        .ok_or_else(|| bad(format!("f {f:?} is not a keyword")))?;
    let value = match rest.first() {
        None => Value::Nil,
        Some(text) => parse_edn(text)
            .map_err(|e| bad(format!("value {text:?}: {e}")))
            .map(|edn: Edn| edn.to_value())?,
    };
    let mut event = Event::invoke(process, f).with_value(value);
    event.kind = kind;
    event.line = line;
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_skips_the_rest() {
        let text = "2013-11-05 INFO  jepsen.core - Starting the test\n\
                    INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n\
                    INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
                    INFO  jepsen.util - waiting for recovery\n\
                    INFO  jepsen.util - 3\t:info\t:cas\t[1 4]\t:timed-out\n\
                    INFO  jepsen.util - 5\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 5\t:ok\t:read\tnil\n";
        let h = parse_jepsen_log(text).unwrap();
        assert_eq!(h.meta.unwrap().model.as_deref(), Some("cas-register"));
        let summary: Vec<(usize, u64, EventKind, &str, Value)> = h
            .events
            .iter()
            .map(|e| (e.line, e.process, e.kind, e.f.as_str(), e.value.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, 3, EventKind::Invoke, "cas", Value::List(vec![Value::Int(1), Value::Int(4)])),
                (5, 3, EventKind::Info, "cas", Value::List(vec![Value::Int(1), Value::Int(4)])),
                (6, 5, EventKind::Invoke, "read", Value::Nil),
                (7, 5, EventKind::Ok, "read", Value::Nil),
            ]
        );
    }

    #[test]
    fn malformed_records_name_their_line() {
        for (record, needle) in [
            ("x\t:invoke\t:read\tnil", "not a number"),
            ("1\t:started\t:read\tnil", "is not :invoke"),
            ("1\t:invoke\tread\tnil", "not a keyword"),
            ("1\t:invoke\t:cas\t[1 4", "missing"),
            ("1\t:invoke", "expected process"),
        ] {
            let text = format!(
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - {record}\n"
            );
            let err = parse_jepsen_log(&text).unwrap_err();
            assert_eq!(err.line(), Some(2), "{err}");
            assert!(err.to_string().contains(needle), "{record}: {err}");
        }
    }
}
