//! The JSON-lines history format (docs/HISTORY.md): one event per line, invocations and
//! completions, in real-time order. Parsing, writing, and reading a file.
//!
//! The format is the checker's native one so that every recorder (the simulator, the chaos
//! runner, tests) and every importer (Jepsen logs and EDN) meet at one type, [`History`].

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::value::Value;

/// What an event says about its operation. The four words are Jepsen's, with Jepsen's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A client started the operation.
    Invoke,
    /// The operation took effect and returned its result.
    Ok,
    /// The operation certainly did not take effect (for example a CAS whose comparison failed,
    /// or a request refused before it was proposed).
    Fail,
    /// The outcome is unknown (a timeout, a lost connection): it may take effect at any time
    /// after its invocation, or never.
    Info,
}

impl EventKind {
    /// The word used in the format, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }
}

/// One line of a history: an invocation or a completion by one client (`process`).
///
/// Order is the order of lines: an event happened after every event on an earlier line. That is
/// the only real-time information the checker uses; `time` is shown to people, never trusted,
/// because clocks of different clients disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's position, counted from 0. Optional; when present it must increase from line
    /// to line, so a file reordered by mistake is refused rather than checked wrongly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// When the event happened, in nanoseconds from any fixed origin (optional, informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// The client. One client has at most one operation open at a time.
    pub process: u64,
    /// Invocation or one of the three completions.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The operation's name (`read`, `write`, `cas`, `put`, ...); the model gives it meaning.
    pub f: String,
    /// The object the operation touches. Operations on different keys are checked
    /// independently (P-compositionality); absent means the one unnamed object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The operation's arguments (the value written, `[expected, new]` for a CAS, ...).
    #[serde(default, skip_serializing_if = "Value::is_nil")]
    pub value: Value,
    /// What the operation returned, on an `ok` completion (the value read, the item dequeued).
    /// An explicit `null` is a result (nil); an absent field means "see `value`", as Jepsen
    /// puts results there.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The 1-based line the event came from, for error messages. Not part of the format.
    #[serde(skip)]
    pub line: usize,
}

/// Maps a present field (even `null`) to `Some`, so `"result": null` differs from no `result`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Event {
    fn new(kind: EventKind, process: u64, f: &str) -> Self {
        Event {
            index: None,
            time: None,
            process,
            kind,
            f: f.to_owned(),
            key: None,
            value: Value::Nil,
            result: None,
            line: 0,
        }
    }

    /// An invocation of `f` by `process`; add arguments with [`Event::with_value`].
    pub fn invoke(process: u64, f: &str) -> Self {
        Event::new(EventKind::Invoke, process, f)
    }

    /// A successful completion; add the result with [`Event::with_result`].
    pub fn ok(process: u64, f: &str) -> Self {
        Event::new(EventKind::Ok, process, f)
    }

    /// A completion saying the operation did not take effect.
    pub fn fail(process: u64, f: &str) -> Self {
        Event::new(EventKind::Fail, process, f)
    }

    /// A completion saying the outcome is unknown.
    pub fn info(process: u64, f: &str) -> Self {
        Event::new(EventKind::Info, process, f)
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Value>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the arguments.
    pub fn with_value(mut self, value: impl Into<Value>) -> Self {
        self.value = value.into();
        self
    }

    /// Sets the result.
    pub fn with_result(mut self, result: impl Into<Value>) -> Self {
        self.result = Some(result.into());
        self
    }

    /// Sets the time (nanoseconds).
    pub fn at(mut self, time: u64) -> Self {
        self.time = Some(time);
        self
    }
}

/// Parameters of the system under test that are not events: which model fits, the bank's
/// initial balances, and a register's or key's initial value. Written as an optional first line `{"type":"meta", ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The model's name (`register`, `cas-register`, `kv`, `counter`, `set`, `queue`, `bank`);
    /// a command-line choice overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The bank's initial balances, account `i` holding `balances[i]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<i64>>,
    /// What a register, or each key of a key-value store, holds before any write (nil when
    /// absent). Services that answer a missing key with `""` need `""` here, else their first
    /// reads look like values out of thin air.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<serde_json::Value>,
}

/// A whole history: the optional meta line and the events in line order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The meta line, if the history had one.
    pub meta: Option<Meta>,
    /// The events, in real-time order.
    pub events: Vec<Event>,
}

impl History {
    /// A history of these events; their `line` is set to their position + 1 so that errors about
    /// histories built in memory still point somewhere.
    pub fn from_events(events: Vec<Event>) -> Self {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.line = i + 1;
                e
            })
            .collect();
        History { meta: None, events }
    }

    /// Sets the value a register or key holds before any write, whatever the format the history
    /// came from: Jepsen's logs and EDN have no meta line to say it, so the command line's
    /// `--initial-value` arrives here after import. Replaces the meta line's `initial`.
    pub fn set_initial_value(&mut self, value: Value) {
        self.meta.get_or_insert_with(Meta::default).initial = Some(value.into());
    }

    /// Parses the JSON-lines format. Blank lines are skipped; every other line must be an event
    /// (or, first, the meta line). Errors name the line.
    pub fn parse_jsonl(text: &str) -> Result<History, Error> {
        let mut history = History::default();
        let mut last_index: Option<u64> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            // Events are parsed directly (fast); anything else is looked at again as JSON, to
            // find the meta line or say what is wrong.
            let mut event = match serde_json::from_str::<Event>(raw) {
                Ok(event) => event,
                Err(direct) => {
                    let json: serde_json::Value = serde_json::from_str(raw)
                        .map_err(|e| syntax(line, format!("not JSON: {}", without_position(&e))))?;
                    if json.get("type").and_then(|t| t.as_str()) != Some("meta") {
                        let reason = format!(
                            "bad event (column {}): {}",
                            direct.column(),
                            without_position(&direct)
                        );
                        return Err(syntax(line, reason));
                    }
                    if history.meta.is_some() || !history.events.is_empty() {
                        return Err(syntax(line, "the meta line must be the first line".into()));
                    }
                    let meta = Meta::deserialize(&json)
                        .map_err(|e| syntax(line, format!("bad meta line: {e}")))?;
                    history.meta = Some(meta);
                    continue;
                }
            };
            event.line = line;
            if let Some(index) = event.index {
                if last_index.is_some_and(|last| index <= last) {
                    return Err(syntax(
                        line,
                        format!(
                            "index {index} does not increase (the previous event's was {}); \
                             lines must be in real-time order",
                            last_index.unwrap_or_default()
                        ),
                    ));
                }
                last_index = Some(index);
            }
            history.events.push(event);
        }
        Ok(history)
    }

    /// The history in the JSON-lines format, one event per line, `index` filled in.
    pub fn to_jsonl(&self) -> String {
        let mut writer = HistoryWriter::new(Vec::new());
        // Writing to a Vec cannot fail.
        if let Some(meta) = &self.meta {
            let _ = writer.write_meta(meta);
        }
        for event in &self.events {
            let _ = writer.write(event.clone());
        }
        String::from_utf8_lossy(&writer.into_inner()).into_owned()
    }
}

/// serde_json's message without its "at line 1 column 7": each line is parsed alone, so that
/// position would contradict the file's line number.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

fn syntax(line: usize, reason: String) -> Error {
    Error::Syntax { line, reason }
}

/// Records a history as it happens, one line per event, so a recorder that crashes leaves every
/// event before the crash on disk. It numbers events itself (`index`), so recorders cannot get
/// the order wrong.
pub struct HistoryWriter<W: Write> {
    out: W,
    next_index: u64,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer appending to `out` (a file, a `BufWriter`, a `Vec<u8>`).
    pub fn new(out: W) -> Self {
        HistoryWriter { out, next_index: 0 }
    }

    /// Writes the meta line; call it before any event.
    pub fn write_meta(&mut self, meta: &Meta) -> io::Result<()> {
        #[derive(Serialize)]
        struct MetaLine<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            meta: &'a Meta,
        }
        let line = MetaLine { kind: "meta", meta };
        serde_json::to_writer(&mut self.out, &line).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Writes one event, replacing its `index` with the next number.
    pub fn write(&mut self, mut event: Event) -> io::Result<()> {
        event.index = Some(self.next_index);
        self.next_index += 1;
        serde_json::to_writer(&mut self.out, &event).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads a file as text; the one place the crate touches the file system (the clippy
/// configuration refuses it elsewhere).
#[allow(clippy::disallowed_methods)]
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_meta_and_blank_lines() {
        let text = r#"{"type":"meta","model":"bank","balances":[10,20]}
{"index":0,"time":5,"process":1,"type":"invoke","f":"read"}

{"index":1,"process":1,"type":"ok","f":"read","result":null}
{"process":2,"type":"invoke","f":"write","key":"k","value":[1,2],"extra":"ignored"}
"#;
        let h = History::parse_jsonl(text).unwrap();
        assert_eq!(h.meta.as_ref().unwrap().balances, Some(vec![10, 20]));
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.events[0].time, Some(5));
        assert_eq!(h.events[1].result, Some(Value::Nil), "an explicit null is a result");
        assert_eq!(h.events[1].line, 4);
        assert_eq!(h.events[2].key, Some(Value::from("k")));
        assert_eq!(h.events[2].result, None);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("{\"process\":1,\"type\":\"invoke\",\"f\":\"r\"}\n{oops", 2, "not JSON"),
            ("{\"process\":1,\"type\":\"okay\",\"f\":\"r\"}", 1, "unknown variant"),
            ("{\"process\":-1,\"type\":\"ok\",\"f\":\"r\"}", 1, "bad event"),
            ("{\"process\":1,\"type\":\"ok\",\"f\":\"r\",\"value\":1.5}", 1, "64-bit"),
            (
                "{\"index\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"r\"}\n\n\
                 {\"index\":2,\"process\":1,\"type\":\"ok\",\"f\":\"r\"}",
                3,
                "does not increase",
            ),
            ("{\"process\":1,\"type\":\"invoke\",\"f\":\"r\"}\n{\"type\":\"meta\"}", 2, "first"),
        ];
        for (text, line, needle) in cases {
            let err = History::parse_jsonl(text).unwrap_err();
            assert_eq!(err.line(), Some(line), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn writer_round_trips() {
        let mut history = History::from_events(vec![
            Event::invoke(0, "cas").with_value(vec![Value::from(1), Value::from(2)]).at(10),
            Event::ok(0, "cas").at(20),
            Event::invoke(1, "get").with_key("x"),
            Event::ok(1, "get").with_key("x").with_result(Value::Nil),
        ]);
        history.meta = Some(Meta { model: Some("kv".into()), ..Meta::default() });
        let text = history.to_jsonl();
        assert!(text.starts_with("{\"type\":\"meta\",\"model\":\"kv\"}\n"), "{text}");
        assert!(text.contains("{\"index\":3,"), "{text}");
        let back = History::parse_jsonl(&text).unwrap();
        assert_eq!(back.meta, history.meta);
        assert_eq!(back.events.len(), 4);
        for (a, b) in back.events.iter().zip(&history.events) {
            assert_eq!(
                (a.kind, &a.f, &a.key, &a.value, &a.result),
                (b.kind, &b.f, &b.key, &b.value, &b.result)
            );
        }
    }
}
