//! What a leader knows about each follower's log, and how much it may send before hearing back.

use std::collections::VecDeque;

use conclave_core::Index;

/// How the leader is currently replicating to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    /// The follower's match point is unknown: send one message at a time and wait for the answer,
    /// walking `next` back with the follower's conflict hints.
    Probe,
    /// The follower is known to match up to `matched`: stream entries optimistically, up to the
    /// in-flight limit, without waiting for each acknowledgement (pipelining).
    Replicate,
    /// The follower needs entries that were compacted away: the leader streams it a snapshot in
    /// chunks and sends no entries until it is installed.
    Snapshot,
}

/// A snapshot transfer to one follower: which snapshot, and how far it got.
///
/// Invariant: `acked <= sent`: the follower cannot confirm bytes that were never sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotTransfer {
    /// The snapshot being sent.
    pub index: Index,
    /// Bytes the follower confirmed holding.
    pub acked: u64,
    /// Bytes sent so far (acked plus those in flight).
    pub sent: u64,
    /// The final chunk went out (and is not known lost).
    pub done_sent: bool,
    /// Chunks sent and not yet answered, for the in-flight limit.
    pub chunks_outstanding: u32,
    /// Whether the transfer stalled across heartbeats.
    pub stall: StallDetector,
    /// Rewound since the last progress: further answers without progress are the echoes of
    /// chunks sent before the rewind, not new losses, and must not rewind again (each rewind
    /// resends a window, whose own echoes would otherwise multiply the traffic).
    pub rewound: bool,
}

impl SnapshotTransfer {
    /// Forgets what is in flight and resumes from the last byte the follower confirmed.
    pub fn rewind(&mut self) {
        debug_assert!(
            self.acked <= self.sent,
            "snapshot transfer: acked {} beyond sent {}: rewinding would resend bytes never sent",
            self.acked,
            self.sent
        );
        self.sent = self.acked;
        self.done_sent = false;
        self.chunks_outstanding = 0;
        self.rewound = true;
    }

    /// Notes a heartbeat answer; true once two answers in a row saw the transfer make no
    /// progress, the sign that chunks or their answers were lost.
    pub fn is_stalled(&mut self) -> bool {
        self.stall.observe(self.acked, true)
    }
}

/// Tells a slow stream from a lost one by looking at its progress on each heartbeat answer:
/// only a stream that made none across two answers in a row counts as stalled (anything in
/// flight has had a full heartbeat interval to arrive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallDetector {
    /// Progress as of the previous heartbeat answer.
    progress_at_heartbeat: u64,
    /// Answers in a row that saw no progress.
    stalled_heartbeats: u32,
}

impl StallDetector {
    /// Notes a heartbeat answer with the stream at `progress`; `lagging` says whether anything is
    /// still owed. True when the stream is stalled; then the count starts over.
    pub fn observe(&mut self, progress: u64, lagging: bool) -> bool {
        if !lagging || progress > self.progress_at_heartbeat {
            self.progress_at_heartbeat = progress;
            self.stalled_heartbeats = 0;
            return false;
        }
        self.stalled_heartbeats += 1;
        if self.stalled_heartbeats < 2 {
            return false;
        }
        self.stalled_heartbeats = 0;
        true
    }
}

/// The leader's bookkeeping for one follower.
///
/// Invariant: `matched < next` (the leader never sends what the follower is known to hold);
/// `inflight` is strictly increasing, each index in `matched + 1..next` (an append in flight ends
/// after what was acknowledged and no later than what was sent), and empty unless replicating
/// (only pipelining keeps more than one append in flight).
#[derive(Debug)]
pub struct Progress {
    /// Highest index known to be replicated (and durable) on the follower.
    pub matched: Index,
    /// Next index to send.
    pub next: Index,
    /// Probe or replicate.
    pub state: ReplicationState,
    /// In probe state: a message is outstanding, wait for its answer (or the next heartbeat).
    pub probe_sent: bool,
    /// The last index of each append message in flight, oldest first. Bounded by the in-flight
    /// limit so a slow follower cannot make the leader queue without end.
    pub inflight: VecDeque<Index>,
    /// Leader ticks since this follower last answered; check-quorum counts the followers heard
    /// within one election timeout.
    pub ticks_since_heard: u32,
    /// Whether replication to the follower stalled across heartbeats: only a stall means
    /// messages were lost, not merely still in flight.
    pub stall: StallDetector,
    /// The snapshot transfer, in snapshot state.
    pub transfer: SnapshotTransfer,
    /// The newest heartbeat round the follower answered, for read confirmation and the lease.
    pub read_round_acked: u64,
}

impl Progress {
    /// Progress for a follower whose log is unknown: probe from the leader's last index + 1.
    pub fn new(next: Index) -> Progress {
        Progress {
            matched: Index(0),
            next,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            ticks_since_heard: 0,
            stall: StallDetector::default(),
            transfer: SnapshotTransfer::default(),
            read_round_acked: 0,
        }
    }

    /// Records an acknowledgement up to `index`. Returns true if it was news.
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        if self.next <= index {
            self.next = index.next();
        }
        while self.inflight.front().is_some_and(|last| *last <= index) {
            self.inflight.pop_front();
        }
        self.assert_invariants();
        updated
    }

    /// Notes a heartbeat answer from a follower that lags behind `last`; true once its match has
    /// not moved for two answers in a row, the sign that appends to it were lost.
    pub fn is_stalled(&mut self, last: Index) -> bool {
        self.stall.observe(self.matched.0, self.matched < last)
    }

    /// Switches to pipelined replication after a successful probe.
    pub fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next = self.matched.next();
        self.inflight.clear();
        self.probe_sent = false;
        self.assert_invariants();
    }

    /// Falls back to probing from `next`.
    pub fn become_probe(&mut self, next: Index) {
        self.state = ReplicationState::Probe;
        self.next = next.max(self.matched.next());
        self.inflight.clear();
        self.probe_sent = false;
        self.assert_invariants();
    }

    /// True if the leader may not send this follower another append now.
    pub fn is_paused(&self, inflight_max: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() >= inflight_max,
            ReplicationState::Snapshot => true,
        }
    }

    /// Starts streaming the snapshot ending at `index` from its first byte.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ReplicationState::Snapshot;
        self.inflight.clear();
        self.probe_sent = false;
        self.transfer = SnapshotTransfer { index, ..SnapshotTransfer::default() };
        self.assert_invariants();
    }

    /// Notes that an append ending at `last` was sent, advancing `next` optimistically when
    /// pipelining.
    pub fn on_sent(&mut self, last: Index, entry_count: usize) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                if entry_count > 0 {
                    self.next = last.next();
                    self.inflight.push_back(last);
                }
            }
            ReplicationState::Snapshot => {}
        }
        self.assert_invariants();
    }

    /// Checks the invariants in the type's documentation (in debug builds: the tests and the
    /// simulator run with them on). A broken one means the leader's view of the follower is
    /// corrupt: it would resend what the follower holds, skip what it lacks, or let the
    /// in-flight window grow without bound.
    pub(crate) fn assert_invariants(&self) {
        debug_assert!(
            self.matched < self.next,
            "progress: match {} not below next {}: the leader would skip or resend entries",
            self.matched,
            self.next
        );
        debug_assert!(
            self.state == ReplicationState::Replicate || self.inflight.is_empty(),
            "progress: {} appends in flight in {:?} state: only pipelining keeps a window",
            self.inflight.len(),
            self.state
        );
        debug_assert!(
            self.inflight.iter().all(|last| self.matched < *last && *last < self.next),
            "progress: in-flight appends {:?} outside match {}..next {}: an acknowledgement \
             would be missed or an append counted that was never sent",
            self.inflight,
            self.matched,
            self.next
        );
        debug_assert!(
            self.inflight.iter().zip(self.inflight.iter().skip(1)).all(|(a, b)| a < b),
            "progress: in-flight appends {:?} out of order: acknowledgements free them in order",
            self.inflight
        );
        debug_assert!(
            self.transfer.acked <= self.transfer.sent,
            "progress: snapshot bytes acked {} beyond sent {}",
            self.transfer.acked,
            self.transfer.sent
        );
    }
}
