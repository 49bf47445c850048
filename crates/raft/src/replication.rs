//! Log replication (§5.3): the leader's side (batched, pipelined AppendEntries with fast
//! backtracking) and the follower's side, plus heartbeats and the commit rule (§5.4.2).

use conclave_core::{Entry, Index, NodeId, Role};

use crate::log::AppendOutcome;
use crate::message::{AppendResult, Message};
use crate::progress::ReplicationState;
use crate::quorum::quorum_value;
use crate::raft::Raft;

impl Raft {
    /// Sends every follower what it is missing, as far as its flow control allows.
    pub(crate) fn broadcast_append(&mut self) {
        for peer in self.replication_peers() {
            self.send_appends(peer);
        }
    }

    /// Sends `peer` as many batches as its state allows: one probe, or in replicate state batches
    /// until the in-flight window is full or nothing is left.
    pub(crate) fn send_appends(&mut self, peer: NodeId) {
        while self.maybe_send_append(peer, false) {
            if self.progress[&peer].state == ReplicationState::Probe {
                break;
            }
        }
    }

    /// Sends one AppendEntries to `peer` if flow control allows and there is something to say;
    /// `even_if_empty` forces an empty one (to provoke a rejection that resynchronises a follower
    /// whose in-flight messages were lost). Returns true if a message was sent.
    pub(crate) fn maybe_send_append(&mut self, peer: NodeId, even_if_empty: bool) -> bool {
        let inflight_max = self.config.inflight_messages_max;
        let (count_max, bytes_max) = (self.config.append_entries_max, self.config.append_bytes_max);
        let Some(pr) = self.progress.get(&peer) else { return false };
        if pr.is_paused(inflight_max) {
            return false;
        }
        let prev_index = pr.next.prev();
        // Entries before the first one held were compacted away; index 0's "term 0" only stands
        // for the empty prefix when nothing was compacted.
        let compacted = pr.next < self.log.first_index();
        let Some(prev_term) = self.log.term(prev_index).filter(|_| !compacted) else {
            // The follower needs entries compacted away: only a snapshot can catch it up.
            return self.start_snapshot_transfer(peer);
        };
        let entries = self.log.slice(pr.next, count_max, bytes_max);
        if entries.is_empty() && pr.state == ReplicationState::Replicate && !even_if_empty {
            return false;
        }
        let last = entries.last().map_or(prev_index, |e| e.index);
        let count = entries.len();
        let msg = Message::AppendEntries {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.log.committed(),
        };
        self.send(peer, msg);
        let pr = self.progress.get_mut(&peer).expect("checked above");
        pr.on_sent(last, count);
        debug_assert!(
            pr.inflight.len() <= inflight_max,
            "{} appends in flight to {peer}, over the limit of {inflight_max}: a paused follower \
             was sent more, and a slow one could make the leader queue without end",
            pr.inflight.len()
        );
        true
    }

    /// Sends a heartbeat round to every member; the round's number confirms reads waiting for
    /// it and renews the lease once a quorum answers.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        let read_round = self.next_read_round();
        for peer in self.replication_peers() {
            // Never tell a follower to commit past what it is known to hold.
            let commit = self.progress[&peer].matched.min(self.log.committed());
            self.send(peer, Message::Heartbeat { term: self.term, commit, read_round });
        }
        // A leader that is the only voter confirms its rounds by itself.
        self.advance_reads();
    }

    /// Advances the commit index to the highest index stored on a majority, but only if that
    /// entry is from the current term: counting replicas of an older term's entry is unsafe
    /// (the Figure-8 scenario, §5.4.2).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let own = self.config.id;
        let persisted = self.log.persisted();
        // A leader that a pending change removes still leads, but no longer counts itself.
        let index = Index(quorum_value(self.members.current(), |id| {
            if id == own {
                persisted.0
            } else {
                self.progress.get(&id).map_or(0, |pr| pr.matched.0)
            }
        }));
        #[allow(unused_mut)]
        let mut current_term_only = true;
        #[cfg(feature = "bug-injection")]
        if self.config.bugs.commit_old_terms_by_counting {
            current_term_only = false;
        }
        if index <= self.log.committed()
            || (current_term_only && self.log.term(index) != Some(self.term))
        {
            return false;
        }
        if !self.log.commit_to(index) {
            return false;
        }
        self.reads_after_commit();
        self.after_commit_membership();
        true
    }

    /// A message from `from`, the leader of our term: follow it and restart the election timer.
    /// False if we lead this term ourselves (two leaders in one term cannot happen unless
    /// Election Safety is broken; the message is ignored and the simulator's checker reports the
    /// real cause).
    pub(crate) fn accept_leader(&mut self, from: NodeId) -> bool {
        if self.role == Role::Leader {
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            let term = self.term;
            self.become_follower(term, Some(from));
        }
        self.election_elapsed = 0;
        self.ticks_since_leader = 0;
        true
    }

    pub(crate) fn on_append_entries(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: conclave_core::Term,
        entries: &[Entry],
        commit: Index,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        let term = self.term;
        if prev_index < self.log.committed() {
            // Everything up to our commit index is known to match the leader's log.
            let match_index = self.log.committed();
            self.send(
                from,
                Message::AppendEntriesResponse {
                    term,
                    result: AppendResult::Success { match_index },
                },
            );
            return;
        }
        #[allow(unused_mut)]
        let mut truncate = true;
        #[cfg(feature = "bug-injection")]
        if self.config.bugs.skip_truncating_conflicts {
            truncate = false;
        }
        let result = match self.log.try_append_with(prev_index, prev_term, entries, truncate) {
            AppendOutcome::Matched { last_new_index } => {
                self.members.after_append(&self.log, entries);
                self.log.commit_to(commit.min(last_new_index));
                AppendResult::Success { match_index: last_new_index }
            }
            AppendOutcome::Conflict { hint_index, hint_term } => {
                AppendResult::Reject { prev_index, hint_index, hint_term }
            }
        };
        self.send(from, Message::AppendEntriesResponse { term, result });
    }

    pub(crate) fn on_append_entries_response(&mut self, from: NodeId, result: AppendResult) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.ticks_since_heard = 0;
        match result {
            AppendResult::Success { match_index } => {
                if match_index > self.log.last_index() {
                    return; // Cannot be: the follower acknowledged more than we ever sent.
                }
                let advanced = pr.maybe_update(match_index);
                if pr.state == ReplicationState::Probe && (advanced || pr.matched.next() == pr.next)
                {
                    pr.become_replicate();
                }
                if advanced {
                    self.maybe_commit();
                    self.maybe_finish_transfer(from);
                }
                self.send_appends(from);
            }
            AppendResult::Reject { prev_index, hint_index, hint_term } => {
                let stale = match pr.state {
                    ReplicationState::Replicate => prev_index <= pr.matched,
                    ReplicationState::Probe => prev_index != pr.next.prev(),
                    ReplicationState::Snapshot => true,
                };
                if stale {
                    return;
                }
                // Skip the follower's whole conflicting term at once: if we hold entries of that
                // term, resume after our last one; otherwise from the follower's first index of it.
                let next = match hint_term.and_then(|t| self.log.last_index_of_term(t)) {
                    Some(last_of_term) => last_of_term.next(),
                    None => hint_index,
                };
                let next = next.min(prev_index).max(pr.matched.next());
                pr.become_probe(next);
                self.send_appends(from);
            }
        }
    }

    pub(crate) fn on_heartbeat(&mut self, from: NodeId, commit: Index, read_round: u64) {
        if !self.accept_leader(from) {
            return;
        }
        self.log.commit_to(commit.min(self.log.last_index()));
        let term = self.term;
        self.send(from, Message::HeartbeatResponse { term, read_round });
    }

    pub(crate) fn on_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.ticks_since_heard = 0;
        if read_round > pr.read_round_acked {
            pr.read_round_acked = read_round;
            self.advance_reads();
        }
        let Some(pr) = self.progress.get_mut(&from) else { return };
        if pr.state == ReplicationState::Snapshot {
            // Chunks or their answers were lost: resume from what the follower confirmed.
            if pr.transfer.is_stalled() {
                pr.transfer.rewind();
                self.send_snapshot_chunks(from);
            }
            return;
        }
        if !pr.is_stalled(last) {
            return;
        }
        // The follower lags and its match has not moved across heartbeats: appends to it were
        // lost. Reopen the window; in replicate state send even an empty append, whose rejection
        // (if the gap is real) puts the follower back into probing from its real match.
        match pr.state {
            ReplicationState::Probe => pr.probe_sent = false,
            ReplicationState::Replicate => {
                pr.inflight.pop_front();
            }
            ReplicationState::Snapshot => unreachable!("handled above"),
        }
        let force = pr.state == ReplicationState::Replicate;
        if self.maybe_send_append(from, force) {
            self.send_appends(from);
        }
    }
}
