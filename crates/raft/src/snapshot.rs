//! Snapshots (§7): when to ask the state machine for one, compacting the log behind it, and
//! streaming it in chunks to a follower that needs compacted entries, which installs it and
//! replaces its log and state machine in one durable step.

use bytes::{Bytes, BytesMut};
use conclave_core::{Index, Membership, NodeId, Role, Snapshot, Term};

use crate::message::Message;
use crate::progress::ReplicationState;
use crate::raft::Raft;

/// A snapshot a follower is receiving, chunk by chunk.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    index: Index,
    term: Term,
    data: BytesMut,
}

impl Raft {
    /// The snapshot policy, checked when entries are released for application: ask for a
    /// snapshot once enough entries or bytes were applied since the last one.
    pub(crate) fn maybe_request_snapshot(&mut self) -> Option<Index> {
        if self.snapshot_requested.is_some() {
            return None;
        }
        let (entries_max, bytes_max) = (self.config.snapshot_entries, self.config.snapshot_bytes);
        // Counted by index, so entries applied while an earlier request was being served still
        // count towards the next snapshot.
        let newest = self.snapshot.as_ref().map_or(Index(0), |s| s.index);
        let applied_since = self.log.applied().0.saturating_sub(newest.0);
        let due = (entries_max > 0 && applied_since >= entries_max)
            || (bytes_max > 0 && self.applied_since_snapshot.1 >= bytes_max);
        if !due {
            return None;
        }
        let index = self.log.applied();
        self.snapshot_requested = Some(index);
        Some(index)
    }

    /// The state machine's image at applied `index` arrived: keep it (to send to followers),
    /// persist it, and compact the log behind it, keeping `snapshot_trailing_entries`.
    pub(crate) fn take_snapshot(&mut self, index: Index, data: Bytes) {
        if self.snapshot_requested.is_some_and(|r| r <= index) {
            self.snapshot_requested = None;
        }
        let newest = self.snapshot.as_ref().map_or(Index(0), |s| s.index);
        // A stale image (an older request, or one overtaken by an installed snapshot) is useless.
        if index <= newest || index > self.log.applied() {
            return;
        }
        let Some(term) = self.log.term(index) else { return };
        let membership = self.members.at(index).clone();
        let snapshot = Snapshot { index, term, membership, data };
        self.snapshot = Some(snapshot.clone());
        self.snapshot_write = Some(snapshot);
        self.applied_since_snapshot = (0, 0);
        let upto = Index(index.0.saturating_sub(self.config.snapshot_trailing_entries));
        if upto >= self.log.first_index() {
            self.log.compact_to(upto);
            self.members.compact(upto);
            self.compact_log_to = Some(upto);
        }
    }

    /// Switches `peer` to a snapshot transfer; false if there is no snapshot to send.
    pub(crate) fn start_snapshot_transfer(&mut self, peer: NodeId) -> bool {
        let Some(index) = self.snapshot.as_ref().map(|s| s.index) else { return false };
        self.progress.get_mut(&peer).expect("a follower").become_snapshot(index);
        self.send_snapshot_chunks(peer)
    }

    /// Sends `peer` the next chunks of the snapshot, up to the in-flight limit. A newer snapshot
    /// than the one in transfer restarts the transfer with it. Returns true if anything was sent.
    pub(crate) fn send_snapshot_chunks(&mut self, peer: NodeId) -> bool {
        let Some(snapshot) = self.snapshot.clone() else { return false };
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let window = self.config.snapshot_chunks_inflight_max as u32;
        let term = self.term;
        let mut sent_any = false;
        loop {
            let pr = self.progress.get_mut(&peer).expect("a follower");
            if pr.state != ReplicationState::Snapshot {
                return sent_any;
            }
            if pr.transfer.index != snapshot.index {
                pr.become_snapshot(snapshot.index);
            }
            let transfer = &mut pr.transfer;
            let len = snapshot.data.len() as u64;
            if transfer.done_sent || transfer.chunks_outstanding >= window {
                return sent_any;
            }
            let start = transfer.sent;
            let end = (start + chunk_bytes).min(len);
            let done = end == len;
            transfer.sent = end;
            transfer.done_sent = done;
            transfer.chunks_outstanding += 1;
            let msg = Message::InstallSnapshot {
                term,
                snapshot_index: snapshot.index,
                snapshot_term: snapshot.term,
                membership: snapshot.membership.clone(),
                offset: start,
                data: snapshot.data.slice(start as usize..end as usize),
                done,
            };
            self.send(peer, msg);
            sent_any = true;
        }
    }

    /// A follower receives a chunk. Chunks must continue what it holds; anything else is
    /// dropped and the answer tells the leader where to resume. The last chunk installs the
    /// snapshot: the log keeps only a suffix that matches it, the state machine is replaced, and
    /// the answer goes out only once that is durable.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        snapshot_index: Index,
        snapshot_term: Term,
        membership: Membership,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        let term = self.term;
        let answer = |received, done| Message::InstallSnapshotResponse {
            term,
            snapshot_index,
            received,
            done,
        };
        if snapshot_index <= self.log.committed() {
            // Everything it covers is committed here already: nothing to install.
            self.incoming = None;
            self.send(from, answer(offset + data.len() as u64, true));
            return;
        }
        let continues = self
            .incoming
            .as_ref()
            .is_some_and(|i| i.index == snapshot_index && i.term == snapshot_term);
        if !continues {
            if offset != 0 {
                self.send(from, answer(0, false));
                return;
            }
            self.incoming = Some(IncomingSnapshot {
                index: snapshot_index,
                term: snapshot_term,
                data: BytesMut::new(),
            });
        }
        let incoming = self.incoming.as_mut().expect("set above");
        let fits = offset == incoming.data.len() as u64;
        if fits {
            incoming.data.extend_from_slice(&data);
        }
        let received = incoming.data.len() as u64;
        if !(fits && done) {
            self.send(from, answer(received, false));
            return;
        }
        let incoming = self.incoming.take().expect("present");
        let snapshot = Snapshot {
            index: snapshot_index,
            term: snapshot_term,
            membership,
            data: incoming.data.freeze(),
        };
        self.log.install_snapshot(snapshot_index, snapshot_term);
        self.members.install(snapshot.membership.clone(), snapshot_index, &self.log);
        self.snapshot = Some(snapshot.clone());
        self.snapshot_write = Some(snapshot);
        self.snapshot_requested = None;
        self.applied_since_snapshot = (0, 0);
        self.send(from, answer(received, true));
    }

    /// The leader hears how far a transfer got: it moves the window on, resends from where the
    /// follower stands if a chunk went missing, and on completion resumes sending entries after
    /// the snapshot.
    pub(crate) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: Index,
        received: u64,
        done: bool,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.ticks_since_heard = 0;
        if done {
            // The follower holds everything up to the snapshot, whichever transfer this was.
            let advanced = pr.maybe_update(snapshot_index);
            if pr.state == ReplicationState::Snapshot && pr.matched >= pr.transfer.index {
                let next = pr.matched.next();
                pr.become_probe(next);
            }
            if advanced {
                self.maybe_commit();
            }
            self.send_appends(from);
            return;
        }
        if pr.state != ReplicationState::Snapshot || pr.transfer.index != snapshot_index {
            return;
        }
        let transfer = &mut pr.transfer;
        if received == 0 && transfer.acked > 0 {
            // The follower holds nothing of this snapshot any more (it restarted): start over.
            transfer.acked = 0;
            transfer.rewind();
        } else if received > transfer.acked {
            transfer.acked = received.min(transfer.sent);
            transfer.chunks_outstanding =
                (transfer.sent - transfer.acked).div_ceil(chunk_bytes) as u32;
            transfer.rewound = false;
        } else if received == transfer.acked && !transfer.rewound {
            // No progress: the follower is missing the chunk at `received`. Resume from there,
            // once per gap.
            transfer.rewind();
        } else {
            return; // An echo of a chunk sent before the rewind, or an overtaken answer.
        }
        self.send_snapshot_chunks(from);
    }
}
