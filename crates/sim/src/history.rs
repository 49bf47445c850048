//! The client history: what each simulated client asked for and what it was told, with virtual
//! times. It is the input a linearizability checker needs (a later issue exports it), so it
//! records every attempt, including the ones whose outcome is unknown.

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
