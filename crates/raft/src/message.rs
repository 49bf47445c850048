//! The Raft messages, with the paper's names. Each has one `on_*` handler in the core.

use bytes::Bytes;
use conclave_core::{Entry, Index, Membership, MessageMeta, ReadId, ReadMode, Term};

/// A message between Raft nodes. Sender and recipient travel in the
/// [`Envelope`](conclave_core::Envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A candidate asks for a vote (§5.2), or with `pre_vote` asks whether it would get one.
    /// For a pre-vote, `term` is the term the candidate *would* campaign in.
    RequestVote {
        /// The candidate's (prospective) term.
        term: Term,
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
        /// True for a pre-vote.
        pre_vote: bool,
        /// True when the leader handed leadership to this candidate (TimeoutNow): voters then
        /// answer even while they still hear from that leader (the lease would refuse).
        leader_transfer: bool,
    },
    /// The answer to a `RequestVote`.
    RequestVoteResponse {
        /// The voter's term; for a granted pre-vote, the term that was asked about.
        term: Term,
        /// Whether the vote was granted.
        granted: bool,
        /// True when answering a pre-vote.
        pre_vote: bool,
    },
    /// The leader replicates entries after (`prev_index`, `prev_term`) (§5.3).
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Term of that entry.
        prev_term: Term,
        /// The entries to store, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// The answer to an `AppendEntries`.
    AppendEntriesResponse {
        /// The follower's term.
        term: Term,
        /// What happened.
        result: AppendResult,
    },
    /// The leader asserts its leadership and shares how far the follower may commit. Kept apart
    /// from `AppendEntries` so heartbeats never disturb the pipelined replication stream.
    Heartbeat {
        /// The leader's term.
        term: Term,
        /// The commit index, capped at what the follower is known to hold.
        commit: Index,
        /// The heartbeat round, echoed in the answer: a quorum answering round `n` confirms the
        /// reads waiting for it and starts the leader's lease from when `n` was sent.
        read_round: u64,
    },
    /// The answer to a `Heartbeat`.
    HeartbeatResponse {
        /// The follower's term.
        term: Term,
        /// The round being answered (0 when answering a stale leader).
        read_round: u64,
    },
    /// A follower asks the leader to confirm a read for it (follower ReadIndex).
    ReadIndexRequest {
        /// The follower's term.
        term: Term,
        /// The follower's id for the read.
        id: ReadId,
        /// How the leader should confirm it.
        mode: ReadMode,
    },
    /// The leader's answer: the index to serve the read at once applied, or `None` if it could
    /// not confirm it (it is no longer leader).
    ReadIndexResponse {
        /// The leader's term.
        term: Term,
        /// The follower's id for the read.
        id: ReadId,
        /// The read index.
        index: Option<Index>,
    },
    /// One chunk of the leader's snapshot, for a follower that needs entries the leader has
    /// compacted away (§7). Chunks arrive in order; `offset` lets the follower drop a chunk that
    /// does not continue what it has, and the leader resume from what the follower reports.
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// The last index the snapshot covers.
        snapshot_index: Index,
        /// The term of that entry.
        snapshot_term: Term,
        /// The membership as of the snapshot.
        membership: Membership,
        /// Where in the snapshot data this chunk starts.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// True on the last chunk.
        done: bool,
    },
    /// The leader hands leadership over (thesis §3.10): the recipient, whose log is up to date,
    /// starts an election at once, skipping pre-vote.
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
    /// The answer to an `InstallSnapshot` chunk.
    InstallSnapshotResponse {
        /// The follower's term.
        term: Term,
        /// The snapshot the answer is about.
        snapshot_index: Index,
        /// Bytes of it the follower holds, contiguous from the start.
        received: u64,
        /// True once the snapshot is installed and durable (or the follower already had
        /// everything it covers).
        done: bool,
    },
}

/// The result of an `AppendEntries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log matches the leader's, durably, up to `match_index`.
    Success {
        /// The last index verified and persisted.
        match_index: Index,
    },
    /// The follower's log did not contain (`prev_index`, `prev_term`).
    Reject {
        /// The `prev_index` of the rejected message, so the leader can ignore stale rejections.
        prev_index: Index,
        /// Where the leader should retry from.
        hint_index: Index,
        /// The follower's term at `prev_index`, if it has that entry.
        hint_term: Option<Term>,
    },
}

impl MessageMeta for Message {
    fn kind(&self) -> &'static str {
        match self {
            Message::RequestVote { pre_vote: true, .. } => "PreVote",
            Message::RequestVote { .. } => "RequestVote",
            Message::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            Message::RequestVoteResponse { .. } => "RequestVoteResponse",
            Message::AppendEntries { .. } => "AppendEntries",
            Message::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Message::Heartbeat { .. } => "Heartbeat",
            Message::HeartbeatResponse { .. } => "HeartbeatResponse",
            Message::InstallSnapshot { .. } => "InstallSnapshot",
            Message::TimeoutNow { .. } => "TimeoutNow",
            Message::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            Message::ReadIndexRequest { .. } => "ReadIndexRequest",
            Message::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }

    fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::ReadIndexRequest { term, .. }
            | Message::ReadIndexResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::TimeoutNow { term }
            | Message::InstallSnapshotResponse { term, .. } => *term,
        }
    }
}
