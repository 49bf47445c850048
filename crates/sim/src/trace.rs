//! The run's trace: one JSON object per line, one line per event, with virtual time `t` in µs.
//!
//! Events are recorded as small values and rendered to text only when someone reads them: at once
//! when a sink is attached, and for the in-memory ring of recent events only when a violation needs
//! them. So a run without a sink pays for a ring push per event, never for string formatting.
//!
//! Lines are written by hand (the crate has no serde): keys in a fixed order, strings escaped by
//! [`push_json_string`], so the same run always produces the same bytes.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use bytes::Bytes;
use conclave_core::{EntryKind, Index, NodeId, Role, Term};

use crate::client::command_value;

/// One traced event. Variants carry only ids, numbers, static names and shared `Bytes`, so
/// recording one costs no allocation (except a partition's group list, which is rare).
#[derive(Clone, Debug)]
pub(crate) enum TraceEvent {
    /// A protocol handed a message to the network.
    Send { from: NodeId, to: NodeId, kind: &'static str, term: Term },
    /// A message reached its recipient's `step`.
    Deliver { from: NodeId, to: NodeId, kind: &'static str, term: Term },
    /// A message copy was lost, and why.
    Drop { from: NodeId, to: NodeId, kind: &'static str, reason: &'static str },
    /// The network made a second copy of a message.
    Duplicate { from: NodeId, to: NodeId, kind: &'static str },
    /// A node lost its memory.
    Crash { node: NodeId },
    /// A node was rebuilt from its disk.
    Restart { node: NodeId },
    /// The network was split into these groups.
    Partition { groups: Vec<Vec<NodeId>> },
    /// The link `from -> to` was blocked in that direction only.
    Cut { from: NodeId, to: NodeId },
    /// Every partition and cut was removed.
    Heal,
    /// The network weather changed.
    Weather { drop: f64, duplicate: f64, delay: bool, reorder: bool },
    /// A node's role or term changed.
    Role { node: NodeId, role: Role, term: Term },
    /// A node's commit index advanced.
    Commit { node: NodeId, commit: Index },
    /// A node applied an entry to its state machine.
    Apply { node: NodeId, index: Index, term: Term, kind: EntryKind, data: Bytes },
    /// A simulated client did something.
    Client(ClientTrace),
    /// A node's state machine image was taken at `index` (asked for by `Ready::snapshot_due`).
    Snapshot { node: NodeId, index: Index, term: Term, bytes: usize },
    /// A node's state machine was restored from a snapshot: one a `Ready` carried beyond what it
    /// had applied, or its disk's at restart.
    Restore { node: NodeId, index: Index, term: Term },
    /// A node's durable log was compacted up to `upto`.
    Compact { node: NodeId, upto: Index },
    /// A crash lost writes that had not completed (the unsynced tail).
    DiskLost { node: NodeId, writes: u64, entries: u64 },
    /// Recovery cut a half-written record a crash left.
    Torn { node: NodeId, bytes: u64 },
    /// A disk sync failed; the node stops.
    FsyncError { node: NodeId },
    /// The nodes whose disks are now slow (empty: none).
    SlowDisk { nodes: Vec<NodeId> },
    /// The run moved to another phase (`ops`, `converge`, `done`).
    Phase { name: &'static str },
    /// A protocol's own nemesis action was injected (see `NemesisAction`).
    Action { name: &'static str },
    /// A read was asked of a node.
    Read { node: NodeId, id: u64, mode: &'static str },
    /// A read was served at `index` (the register then held the write at `value`, 0 for none),
    /// or failed (`index` and `value` absent, `error` says why).
    ReadDone { node: NodeId, id: u64, served: Option<(Index, Index)>, error: Option<String> },
    /// The nemesis asked the leader for a membership change or a leadership transfer; `outcome`
    /// is `ok` or the refusal.
    Admin { node: NodeId, request: String, outcome: String },
    /// A node's membership changed (as it appended, truncated or installed one).
    Membership { node: NodeId, membership: String },
}

/// A client event's fields; a struct of its own so callers can fill in the optional ones with
/// struct-update syntax.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientTrace {
    pub(crate) client: u32,
    pub(crate) action: ClientAction,
    pub(crate) op: u64,
    pub(crate) node: Option<NodeId>,
    pub(crate) index: Option<Index>,
    pub(crate) term: Option<Term>,
}

/// What a simulated client did, as named in the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAction {
    /// Proposed an operation to a node.
    Invoke,
    /// The operation was applied in the term it was proposed in: acknowledged.
    Ok,
    /// The attempt definitely failed (refused, or overwritten) and will be retried.
    Retry,
    /// The outcome is unknown (timeout, or the node crashed); the client moves on.
    Timeout,
}

impl ClientAction {
    fn name(self) -> &'static str {
        match self {
            ClientAction::Invoke => "invoke",
            ClientAction::Ok => "ok",
            ClientAction::Retry => "retry",
            ClientAction::Timeout => "timeout",
        }
    }
}

impl TraceEvent {
    /// Appends this event as one JSON object (without the newline) to `out`.
    pub(crate) fn write_json(&self, t_us: u64, out: &mut String) {
        // Writing to a String cannot fail, so the fmt::Results below are ignored on purpose.
        let _ = write!(out, "{{\"t\":{t_us},\"ev\":");
        match self {
            TraceEvent::Send { from, to, kind, term }
            | TraceEvent::Deliver { from, to, kind, term } => {
                let name = if matches!(self, TraceEvent::Send { .. }) { "send" } else { "deliver" };
                let _ = write!(out, "\"{name}\",\"from\":{from},\"to\":{to},\"kind\":");
                push_json_string(out, kind);
                let _ = write!(out, ",\"term\":{term}");
            }
            TraceEvent::Drop { from, to, kind, reason } => {
                let _ = write!(out, "\"drop\",\"from\":{from},\"to\":{to},\"kind\":");
                push_json_string(out, kind);
                let _ = write!(out, ",\"reason\":\"{reason}\"");
            }
            TraceEvent::Duplicate { from, to, kind } => {
                let _ = write!(out, "\"duplicate\",\"from\":{from},\"to\":{to},\"kind\":");
                push_json_string(out, kind);
            }
            TraceEvent::Crash { node } => {
                let _ = write!(out, "\"crash\",\"node\":{node}");
            }
            TraceEvent::Restart { node } => {
                let _ = write!(out, "\"restart\",\"node\":{node}");
            }
            TraceEvent::Partition { groups } => {
                out.push_str("\"partition\",\"groups\":[");
                for (position, group) in groups.iter().enumerate() {
                    if position > 0 {
                        out.push(',');
                    }
                    push_id_list(out, group);
                }
                out.push(']');
            }
            TraceEvent::Cut { from, to } => {
                let _ = write!(out, "\"cut\",\"from\":{from},\"to\":{to}");
            }
            TraceEvent::Heal => out.push_str("\"heal\""),
            TraceEvent::Weather { drop, duplicate, delay, reorder } => {
                let _ = write!(
                    out,
                    "\"weather\",\"drop\":{drop},\"duplicate\":{duplicate},\"delay\":{delay},\"reorder\":{reorder}"
                );
            }
            TraceEvent::Role { node, role, term } => {
                let _ = write!(out, "\"role\",\"node\":{node},\"role\":\"{role}\",\"term\":{term}");
            }
            TraceEvent::Commit { node, commit } => {
                let _ = write!(out, "\"commit\",\"node\":{node},\"commit\":{commit}");
            }
            TraceEvent::Apply { node, index, term, kind, data } => {
                let kind = match kind {
                    EntryKind::Noop => "noop",
                    EntryKind::Command => "command",
                    EntryKind::Config => "config",
                };
                let _ = write!(
                    out,
                    "\"apply\",\"node\":{node},\"index\":{index},\"term\":{term},\"kind\":\"{kind}\",\"data\":"
                );
                push_json_string(out, &String::from_utf8_lossy(data));
            }
            TraceEvent::Client(ClientTrace { client, action, op, node, index, term }) => {
                let _ = write!(
                    out,
                    "\"client\",\"client\":{client},\"action\":\"{}\",\"op\":{op},\"value\":",
                    action.name()
                );
                push_json_string(out, &command_value(*client, *op));
                if let Some(node) = node {
                    let _ = write!(out, ",\"node\":{node}");
                }
                if let Some(index) = index {
                    let _ = write!(out, ",\"index\":{index}");
                }
                if let Some(term) = term {
                    let _ = write!(out, ",\"term\":{term}");
                }
            }
            TraceEvent::Phase { name } => {
                let _ = write!(out, "\"phase\",\"name\":\"{name}\"");
            }
            TraceEvent::Action { name } => {
                let _ = write!(out, "\"action\",\"name\":\"{name}\"");
            }
            TraceEvent::Snapshot { node, index, term, bytes } => {
                let _ = write!(
                    out,
                    "\"snapshot\",\"node\":{node},\"index\":{index},\"term\":{term},\"bytes\":{bytes}"
                );
            }
            TraceEvent::Restore { node, index, term } => {
                let _ =
                    write!(out, "\"restore\",\"node\":{node},\"index\":{index},\"term\":{term}");
            }
            TraceEvent::Compact { node, upto } => {
                let _ = write!(out, "\"compact\",\"node\":{node},\"upto\":{upto}");
            }
            TraceEvent::DiskLost { node, writes, entries } => {
                let _ = write!(
                    out,
                    "\"disk-lost\",\"node\":{node},\"writes\":{writes},\"entries\":{entries}"
                );
            }
            TraceEvent::Torn { node, bytes } => {
                let _ = write!(out, "\"torn\",\"node\":{node},\"bytes\":{bytes}");
            }
            TraceEvent::FsyncError { node } => {
                let _ = write!(out, "\"fsync-error\",\"node\":{node}");
            }
            TraceEvent::SlowDisk { nodes } => {
                out.push_str("\"slow-disk\",\"nodes\":");
                push_id_list(out, nodes);
            }
            TraceEvent::Read { node, id, mode } => {
                let _ = write!(out, "\"read\",\"node\":{node},\"id\":{id},\"mode\":\"{mode}\"");
            }
            TraceEvent::ReadDone { node, id, served, error } => {
                let _ = write!(out, "\"read-done\",\"node\":{node},\"id\":{id}");
                if let Some((index, value)) = served {
                    let _ = write!(out, ",\"index\":{index},\"value\":{value}");
                }
                if let Some(error) = error {
                    out.push_str(",\"error\":");
                    push_json_string(out, error);
                }
            }
            TraceEvent::Admin { node, request, outcome } => {
                let _ = write!(out, "\"admin\",\"node\":{node},\"request\":");
                push_json_string(out, request);
                out.push_str(",\"outcome\":");
                push_json_string(out, outcome);
            }
            TraceEvent::Membership { node, membership } => {
                let _ = write!(out, "\"membership\",\"node\":{node},\"membership\":");
                push_json_string(out, membership);
            }
        }
        out.push('}');
    }
}

/// Appends `[1,2,3]`.
fn push_id_list(out: &mut String, ids: &[NodeId]) {
    out.push('[');
    for (position, id) in ids.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
}

/// Appends `text` to `out` as a JSON string literal, quotes included. Quotes, backslashes and
/// control characters are escaped (the common ones by name, the rest as `\u00XX`); everything else,
/// including non-ASCII, passes through as UTF-8, which JSON allows.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(control));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

/// Where trace events go: an optional caller-supplied sink, plus a ring of the most recent events
/// that is always kept, for violation reports.
pub(crate) struct Trace {
    sink: Option<BufWriter<Box<dyn Write>>>,
    /// The first error the sink returned; after it the sink is dropped, so a full disk stops the
    /// trace rather than the simulation.
    sink_error: Option<io::Error>,
    recent: VecDeque<(u64, TraceEvent)>,
    recent_len_max: usize,
    /// Reused for rendering each line, so writing to a sink does not allocate per event.
    line: String,
}

impl Trace {
    /// A trace keeping the last `recent_len_max` events, with no sink.
    pub(crate) fn new(recent_len_max: usize) -> Trace {
        Trace {
            sink: None,
            sink_error: None,
            recent: VecDeque::with_capacity(recent_len_max),
            recent_len_max,
            line: String::new(),
        }
    }

    /// Sends every later event to `sink` as JSON lines (buffered here).
    pub(crate) fn set_sink(&mut self, sink: Box<dyn Write>) {
        self.sink = Some(BufWriter::new(sink));
    }

    /// Records one event at virtual time `t_us`.
    pub(crate) fn record(&mut self, t_us: u64, event: TraceEvent) {
        if let Some(sink) = &mut self.sink {
            self.line.clear();
            event.write_json(t_us, &mut self.line);
            self.line.push('\n');
            if let Err(error) = sink.write_all(self.line.as_bytes()) {
                self.sink_error = Some(error);
                self.sink = None;
            }
        }
        if self.recent_len_max == 0 {
            return;
        }
        if self.recent.len() == self.recent_len_max {
            self.recent.pop_front();
        }
        self.recent.push_back((t_us, event));
    }

    /// The recent events rendered as JSON lines, oldest first.
    pub(crate) fn recent_lines(&self) -> Vec<String> {
        self.recent
            .iter()
            .map(|(t_us, event)| {
                let mut line = String::new();
                event.write_json(*t_us, &mut line);
                line
            })
            .collect()
    }

    /// Flushes the sink, remembering a failure like a failed write.
    pub(crate) fn flush(&mut self) {
        if let Some(sink) = &mut self.sink {
            if let Err(error) = sink.flush() {
                self.sink_error = Some(error);
                self.sink = None;
            }
        }
    }

    /// The error that stopped the sink, if any.
    pub(crate) fn sink_error(&self) -> Option<&io::Error> {
        self.sink_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn json(text: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, text);
        out
    }

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(json("plain"), "\"plain\"");
        assert_eq!(json("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(json(r"a\b"), r#""a\\b""#);
        assert_eq!(json("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(json("\u{0}\u{1f}\u{8}\u{c}"), r#""\u0000\u001f\b\f""#);
        assert_eq!(json("naïve ✓"), "\"naïve ✓\"");
        assert_eq!(json("\u{7f}"), "\"\u{7f}\"");
    }

    #[test]
    fn renders_each_event_kind() {
        let cases: Vec<(TraceEvent, &str)> = vec![
            (
                TraceEvent::Send {
                    from: NodeId(1),
                    to: NodeId(2),
                    kind: "Vote\"Req",
                    term: Term(3),
                },
                r#"{"t":7,"ev":"send","from":1,"to":2,"kind":"Vote\"Req","term":3}"#,
            ),
            (
                TraceEvent::Drop {
                    from: NodeId(1),
                    to: NodeId(2),
                    kind: "Append",
                    reason: "random",
                },
                r#"{"t":7,"ev":"drop","from":1,"to":2,"kind":"Append","reason":"random"}"#,
            ),
            (
                TraceEvent::Partition { groups: vec![vec![NodeId(1), NodeId(2)], vec![NodeId(3)]] },
                r#"{"t":7,"ev":"partition","groups":[[1,2],[3]]}"#,
            ),
            (
                TraceEvent::Role { node: NodeId(2), role: Role::PreCandidate, term: Term(4) },
                r#"{"t":7,"ev":"role","node":2,"role":"pre-candidate","term":4}"#,
            ),
            (
                TraceEvent::Apply {
                    node: NodeId(1),
                    index: Index(5),
                    term: Term(2),
                    kind: EntryKind::Command,
                    data: Bytes::from_static(b"x\n\xff"),
                },
                r#"{"t":7,"ev":"apply","node":1,"index":5,"term":2,"kind":"command","data":"x\n�"}"#,
            ),
            (
                TraceEvent::Client(ClientTrace {
                    client: 3,
                    action: ClientAction::Ok,
                    op: 9,
                    node: Some(NodeId(1)),
                    index: Some(Index(12)),
                    term: Some(Term(2)),
                }),
                r#"{"t":7,"ev":"client","client":3,"action":"ok","op":9,"value":"c3-9","node":1,"index":12,"term":2}"#,
            ),
            (
                TraceEvent::Weather { drop: 0.05, duplicate: 0.0, delay: true, reorder: false },
                r#"{"t":7,"ev":"weather","drop":0.05,"duplicate":0,"delay":true,"reorder":false}"#,
            ),
            (TraceEvent::Heal, r#"{"t":7,"ev":"heal"}"#),
            (
                TraceEvent::Snapshot {
                    node: NodeId(1),
                    index: Index(40),
                    term: Term(2),
                    bytes: 300,
                },
                r#"{"t":7,"ev":"snapshot","node":1,"index":40,"term":2,"bytes":300}"#,
            ),
            (
                TraceEvent::Restore { node: NodeId(3), index: Index(40), term: Term(2) },
                r#"{"t":7,"ev":"restore","node":3,"index":40,"term":2}"#,
            ),
            (
                TraceEvent::Compact { node: NodeId(1), upto: Index(40) },
                r#"{"t":7,"ev":"compact","node":1,"upto":40}"#,
            ),
            (
                TraceEvent::DiskLost { node: NodeId(2), writes: 2, entries: 5 },
                r#"{"t":7,"ev":"disk-lost","node":2,"writes":2,"entries":5}"#,
            ),
            (
                TraceEvent::Torn { node: NodeId(2), bytes: 17 },
                r#"{"t":7,"ev":"torn","node":2,"bytes":17}"#,
            ),
            (TraceEvent::FsyncError { node: NodeId(4) }, r#"{"t":7,"ev":"fsync-error","node":4}"#),
            (
                TraceEvent::SlowDisk { nodes: vec![NodeId(1), NodeId(5)] },
                r#"{"t":7,"ev":"slow-disk","nodes":[1,5]}"#,
            ),
            (TraceEvent::SlowDisk { nodes: vec![] }, r#"{"t":7,"ev":"slow-disk","nodes":[]}"#),
        ];
        for (event, expected) in cases {
            let mut line = String::new();
            event.write_json(7, &mut line);
            assert_eq!(line, expected);
        }
    }

    /// A `Write` whose bytes the test can read after handing it away.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ring_keeps_only_the_most_recent_and_sink_gets_everything() {
        let shared = Shared::default();
        let mut trace = Trace::new(3);
        trace.set_sink(Box::new(shared.clone()));
        for node in 1..=5 {
            trace.record(node * 10, TraceEvent::Crash { node: NodeId(node) });
        }
        trace.flush();
        let recent = trace.recent_lines();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0], r#"{"t":30,"ev":"crash","node":3}"#);
        let written = String::from_utf8(shared.0.borrow().clone()).unwrap();
        assert_eq!(written.lines().count(), 5);
        assert!(written.ends_with("{\"t\":50,\"ev\":\"crash\",\"node\":5}\n"));
    }

    #[test]
    fn a_failing_sink_is_dropped_and_its_error_kept() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::other("disk full"))
            }
        }
        let mut trace = Trace::new(2);
        trace.set_sink(Box::new(Broken));
        trace.record(1, TraceEvent::Heal);
        trace.flush();
        assert!(trace.sink_error().is_some());
        trace.record(2, TraceEvent::Heal);
        assert_eq!(trace.recent_lines().len(), 2);
    }
}
