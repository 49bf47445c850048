//! The client history: what each simulated client asked for and what it was told, with virtual
//! times. It records every attempt, including the ones whose outcome is unknown, and converts
//! to the checker's format (docs/HISTORY.md) so every run ends with a linearizability check.

use bytes::Bytes;
use conclave_core::{Index, NodeId, Term};

/// One event in the client history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Virtual time of the event.
    pub time_us: u64,
    /// The client (0-based).
    pub client: u32,
    /// The operation's number within its client. Attempts that definitely failed are retried
    /// under the same number; after an unknown outcome the client starts a new one, so one number
    /// is applied at most once.
    pub op: u64,
    /// The command bytes (`c{client}-{op}`); for a read, empty, and on `ReadOk` the bytes read.
    pub value: Bytes,
    /// What happened.
    pub kind: HistoryKind,
}

/// What happened to an operation attempt. Every `Invoke` is followed (for that client) by exactly
/// one of the others, or by nothing if the run ended first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryKind {
    /// The client proposed the operation to `node`.
    Invoke {
        /// The node asked.
        node: NodeId,
    },
    /// The client asked `node` to read the register.
    InvokeRead {
        /// The node asked.
        node: NodeId,
        /// `read-index` or `lease`.
        mode: &'static str,
    },
    /// The read was served: the register held the write at `index` (0: no write yet), whose
    /// bytes are the event's `value`.
    ReadOk {
        /// The log index of the write read.
        index: Index,
    },
    /// The operation was applied at `index` in the term it was proposed in: it took effect.
    Ok {
        /// Where it landed.
        index: Index,
        /// The term it was proposed and applied in.
        term: Term,
    },
    /// The attempt definitely did not take effect.
    Fail {
        /// Why, in a word: `not-leader`, `refused`, `overwritten`, or for reads `timeout`,
        /// `crashed` or `read-failed`.
        reason: &'static str,
    },
    /// The outcome is unknown: the client timed out, or the node crashed while the client waited.
    /// The operation may or may not have taken effect, now or later.
    Timeout,
}

/// The history in the checker's format (a register: `write` of the command bytes, `read`
/// returning them or nil).
///
/// Outcomes map as Jepsen's: `Ok`/`ReadOk` are `ok`, `Fail` is `fail` (it did not happen), a
/// write's `Timeout` is `info` (it may happen later), and a read's `Timeout` is `fail` (a read
/// changes nothing, so dropping it is exact). A client whose write timed out continues as a new
/// process (`client + clients * n`), since the old one's operation never ends.
pub fn to_check_events(history: &[HistoryEvent], clients: usize) -> Vec<conclave_check::Event> {
    use conclave_check::{Event, Value};
    let clients = clients.max(1) as u64;
    let mut generation: Vec<u64> = Vec::new();
    let mut reading: Vec<bool> = Vec::new();
    let mut events = Vec::with_capacity(history.len());
    for event in history {
        let client = event.client as usize;
        if generation.len() <= client {
            generation.resize(client + 1, 0);
            reading.resize(client + 1, false);
        }
        let process = u64::from(event.client) + clients * generation[client];
        let text = || Value::from(String::from_utf8_lossy(&event.value).into_owned());
        let converted = match &event.kind {
            HistoryKind::Invoke { .. } => {
                reading[client] = false;
                Event::invoke(process, "write").with_value(text())
            }
            HistoryKind::InvokeRead { .. } => {
                reading[client] = true;
                Event::invoke(process, "read")
            }
            HistoryKind::ReadOk { index } => {
                let result = if index.0 == 0 { Value::Nil } else { text() };
                Event::ok(process, "read").with_result(result)
            }
            HistoryKind::Ok { .. } => Event::ok(process, "write").with_value(text()),
            HistoryKind::Fail { .. } if reading[client] => Event::fail(process, "read"),
            HistoryKind::Fail { .. } => Event::fail(process, "write").with_value(text()),
            HistoryKind::Timeout if reading[client] => Event::fail(process, "read"),
            HistoryKind::Timeout => {
                generation[client] += 1;
                Event::info(process, "write").with_value(text())
            }
        };
        events.push(converted.at(event.time_us * 1000));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_check::{check_history, Budget, CheckOptions, History, ModelKind, Verdict};

    fn event(time_us: u64, client: u32, value: &'static str, kind: HistoryKind) -> HistoryEvent {
        HistoryEvent { time_us, client, op: 0, value: Bytes::from_static(value.as_bytes()), kind }
    }

    fn verdict(history: &[HistoryEvent]) -> Verdict {
        let history = History::from_events(to_check_events(history, 2));
        let options = CheckOptions {
            model: Some(ModelKind::Register),
            balances: None,
            budget: Budget::steps(100_000),
        };
        check_history(&history, &options).unwrap().1.verdict
    }

    #[test]
    fn a_read_of_an_overwritten_value_after_the_overwrite_is_caught() {
        let node = NodeId(1);
        let ok = |index| HistoryKind::Ok { index: Index(index), term: Term(1) };
        let mut history = vec![
            event(1, 0, "c0-1", HistoryKind::Invoke { node }),
            event(2, 0, "c0-1", ok(1)),
            event(3, 0, "c0-2", HistoryKind::Invoke { node }),
            event(4, 0, "c0-2", ok(2)),
            event(5, 1, "", HistoryKind::InvokeRead { node, mode: "lease" }),
            event(6, 1, "c0-1", HistoryKind::ReadOk { index: Index(1) }),
        ];
        assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
        // The same read returning the newer write is fine; so is a timed-out write that a read
        // observes later (it took effect), and a timed-out read (dropped).
        history[5] = event(6, 1, "c0-2", HistoryKind::ReadOk { index: Index(2) });
        history.push(event(7, 0, "c0-3", HistoryKind::Invoke { node }));
        history.push(event(8, 0, "c0-3", HistoryKind::Timeout));
        history.push(event(9, 1, "", HistoryKind::InvokeRead { node, mode: "read-index" }));
        history.push(event(10, 1, "", HistoryKind::Timeout));
        history.push(event(11, 1, "", HistoryKind::InvokeRead { node, mode: "read-index" }));
        history.push(event(12, 1, "c0-3", HistoryKind::ReadOk { index: Index(3) }));
        assert_eq!(verdict(&history), Verdict::Linearizable);
        let events = to_check_events(&history, 2);
        assert_eq!(events[7].kind, conclave_check::EventKind::Info);
        assert_eq!(events[9].kind, conclave_check::EventKind::Fail);
    }
}
