//! `ACL LOG`: the node's recent refusals (commands, keys, AUTH), newest first, as Redis keeps
//! them. Local to the node, not replicated: it records what this node refused.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use conclave_resp::Frame;

/// How many entries the log keeps (Redis's `acllog-max-len` default).
const ENTRIES_MAX: usize = 128;
/// Within this many ms, a refusal equal to a logged one counts on it instead of a new entry.
const GROUPING_MS: u64 = 60_000;

/// Why a refusal was logged (Redis's `reason` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A command the user may not run.
    Command,
    /// A key outside the user's patterns.
    Key,
    /// A failed AUTH.
    Auth,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Auth => "auth",
        }
    }
}

/// One entry, with Redis's fields.
#[derive(Clone, Debug)]
struct Entry {
    count: u64,
    reason: Reason,
    /// The command, the key, or `AUTH`.
    object: String,
    username: String,
    client_info: String,
    entry_id: u64,
    created_ms: u64,
    updated_ms: u64,
}

/// The node's log of refusals.
#[derive(Debug, Default)]
pub struct AclLog {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// What a refusal was, for [`AclLog::record`].
pub(crate) struct Refusal<'a> {
    /// Why.
    pub(crate) reason: Reason,
    /// The command, the key, or `AUTH`.
    pub(crate) object: &'a [u8],
    /// The user refused (or the name AUTH tried).
    pub(crate) username: &'a str,
    /// The connection, as `CLIENT INFO` describes it.
    pub(crate) client_info: String,
}

impl AclLog {
    /// Records a refusal at `now_ms`: counted on an equal entry from the last minute, or added
    /// (dropping the oldest beyond [`ENTRIES_MAX`]).
    pub(crate) fn record(&self, refusal: Refusal<'_>, now_ms: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let object = String::from_utf8_lossy(refusal.object).into_owned();
        let same = |e: &Entry| {
            e.reason == refusal.reason
                && e.object == object
                && e.username == refusal.username
                && now_ms.saturating_sub(e.updated_ms) < GROUPING_MS
        };
        if let Some(entry) = state.entries.iter_mut().find(|e| same(e)) {
            entry.count += 1;
            entry.updated_ms = now_ms;
            entry.client_info = refusal.client_info;
            return;
        }
        let entry_id = state.next_id;
        state.next_id += 1;
        state.entries.push_front(Entry {
            count: 1,
            reason: refusal.reason,
            object,
            username: refusal.username.to_owned(),
            client_info: refusal.client_info,
            entry_id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        state.entries.truncate(ENTRIES_MAX);
    }

    /// `ACL LOG RESET`.
    pub(crate) fn reset(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).entries.clear();
    }

    /// `ACL LOG [count]`: the newest `count` entries, each a map of Redis's fields.
    pub(crate) fn reply(&self, count: usize, now_ms: u64) -> Frame {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let text = |s: &str| Frame::Bulk(Bytes::from(s.to_owned()));
        let entries = state.entries.iter().take(count).map(|e| {
            let age = now_ms.saturating_sub(e.created_ms) as f64 / 1000.0;
            Frame::Map(vec![
                (text("count"), Frame::Integer(e.count as i64)),
                (text("reason"), text(e.reason.as_str())),
                (text("context"), text("toplevel")),
                (text("object"), text(&e.object)),
                (text("username"), text(&e.username)),
                (text("age-seconds"), text(&format!("{age:.3}"))),
                (text("client-info"), text(&e.client_info)),
                (text("entry-id"), Frame::Integer(e.entry_id as i64)),
                (text("timestamp-created"), Frame::Integer(e.created_ms as i64)),
                (text("timestamp-last-updated"), Frame::Integer(e.updated_ms as i64)),
            ])
        });
        Frame::Array(entries.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reason: Reason, object: &'static str) -> Refusal<'static> {
        Refusal { reason, object: object.as_bytes(), username: "alice", client_info: "id=1".into() }
    }

    fn count(log: &AclLog) -> usize {
        match log.reply(usize::MAX, 0) {
            Frame::Array(entries) => entries.len(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_refusals_within_a_minute_share_an_entry() {
        let log = AclLog::default();
        log.record(refusal(Reason::Key, "secret"), 1_000);
        log.record(refusal(Reason::Key, "secret"), 2_000);
        log.record(refusal(Reason::Command, "flushall"), 3_000);
        assert_eq!(count(&log), 2);
        let Frame::Array(entries) = log.reply(1, 4_000) else { panic!() };
        let Frame::Map(fields) = &entries[0] else { panic!() };
        assert_eq!(fields[1].1, Frame::Bulk(Bytes::from("command")), "newest first");
        log.record(refusal(Reason::Key, "secret"), 2_000 + GROUPING_MS);
        assert_eq!(count(&log), 3);
        for n in 0..200 {
            log.record(
                refusal(Reason::Auth, if n % 2 == 0 { "AUTH" } else { "x" }),
                10_000_000 * (n + 1),
            );
        }
        assert_eq!(count(&log), ENTRIES_MAX);
        log.reset();
        assert_eq!(count(&log), 0);
    }
}
