//! Linearizable reads without log entries (thesis §6.4): ReadIndex, lease reads, and follower
//! reads through the leader.
//!
//! ReadIndex: the leader notes its commit index and numbers the next heartbeat round; once a
//! quorum has answered that round (or a later one), nothing newer than the noted index can have
//! been committed by another leader, so the read is served once that index is applied. A leader
//! that has not yet committed an entry of its own term does not know the latest commit index, so
//! reads wait for that first. The same rounds give the lease: a quorum that answered a round sent
//! at tick `t` will not elect anyone else before `t + election_ticks` on its own clocks, so until
//! then (minus a margin for clock drift) the leader may answer at once.

use std::collections::VecDeque;

use conclave_core::{Index, NodeId, ReadError, ReadId, ReadMode, ReadState, Role};

use crate::message::Message;
use crate::quorum::quorum_value;
use crate::raft::Raft;

/// Most heartbeat rounds remembered for the lease; older ones only give older lease starts.
const ROUNDS_REMEMBERED: usize = 64;

/// Who asked for a read the leader is confirming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// This node's driver.
    Local(ReadId),
    /// A follower, on behalf of its driver.
    Remote { from: NodeId, id: ReadId },
}

#[derive(Clone, Copy, Debug)]
struct PendingRead {
    origin: ReadOrigin,
    /// The commit index when the read arrived (unset while waiting for the term's first commit).
    index: Index,
    /// The heartbeat round whose quorum confirms it.
    seq: u64,
    /// Ticks since it arrived.
    elapsed: u32,
}

/// Every read in flight on one node, and the heartbeat rounds that confirm them.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Leader: reads waiting for their round, in arrival order (so `seq` never decreases).
    confirming: VecDeque<PendingRead>,
    /// Leader: reads waiting for the first commit of this term.
    awaiting_commit: Vec<PendingRead>,
    /// Follower: reads forwarded to the leader, with ticks since.
    forwarded: Vec<(ReadId, u32)>,
    /// The number of the newest heartbeat round sent.
    pub(crate) seq: u64,
    /// A round must go out with the next `ready` (a read is waiting for one).
    pub(crate) round_pending: bool,
    /// Leader: recent rounds and the tick each went out at.
    rounds_sent: VecDeque<(u64, u64)>,
    /// Leader: the send tick of the newest round a quorum answered.
    lease_start: Option<u64>,
    /// Leader: a TimeoutNow went out this term; the target's election passes the voters' lease,
    /// so this leader's lease means nothing any more.
    pub(crate) handed_over: bool,
    /// Ticks since this node started.
    pub(crate) ticks: u64,
    /// Outcomes for the next `ready`.
    pub(crate) outcomes: Vec<ReadState>,
}

impl Reads {
    fn in_flight(&self) -> usize {
        self.confirming.len() + self.awaiting_commit.len() + self.forwarded.len()
    }
}

impl Raft {
    /// Asks for a linearizable read; see [`conclave_core::Protocol::read`].
    pub fn read(&mut self, id: ReadId, mode: ReadMode) -> Result<(), ReadError> {
        if self.reads.in_flight() >= self.config.reads_in_flight_max {
            return Err(ReadError::Busy);
        }
        match self.role {
            Role::Leader => {
                self.leader_read(ReadOrigin::Local(id), mode);
                Ok(())
            }
            _ => match self.leader {
                Some(leader) if leader != self.config.id => {
                    self.reads.forwarded.push((id, 0));
                    let term = self.term;
                    self.send(leader, Message::ReadIndexRequest { term, id, mode });
                    Ok(())
                }
                _ => Err(ReadError::NotLeader { leader_hint: None }),
            },
        }
    }

    /// True once this leader committed an entry of its own term: its commit index is then the
    /// cluster's latest.
    fn committed_in_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    /// True while this leader's lease holds: a quorum answered a heartbeat round sent less than
    /// `election_ticks - lease_margin_ticks` ticks ago, no handover began, and check-quorum (which
    /// makes voters honour the lease) is on.
    pub fn lease_valid(&self) -> bool {
        let span = u64::from(self.config.election_ticks - self.config.lease_margin_ticks);
        self.role == Role::Leader
            && self.config.check_quorum
            && self.transfer.is_none()
            && !self.reads.handed_over
            && self.committed_in_term()
            && self.reads.lease_start.is_some_and(|start| self.reads.ticks < start + span)
    }

    fn leader_read(&mut self, origin: ReadOrigin, mode: ReadMode) {
        if mode == ReadMode::Lease && self.lease_valid() {
            let index = self.log.committed();
            self.answer_read(origin, Ok(index));
            return;
        }
        let read = PendingRead { origin, index: Index(0), seq: 0, elapsed: 0 };
        if self.committed_in_term() {
            self.confirm_read(read);
        } else {
            self.reads.awaiting_commit.push(read);
        }
    }

    /// Notes the commit index and waits for the next heartbeat round to be answered.
    fn confirm_read(&mut self, mut read: PendingRead) {
        read.index = self.log.committed();
        read.seq = self.reads.seq + 1;
        self.reads.confirming.push_back(read);
        self.reads.round_pending = true;
        self.advance_reads();
    }

    /// The leader committed: reads waiting for the term's first commit can be confirmed now.
    pub(crate) fn reads_after_commit(&mut self) {
        if self.reads.awaiting_commit.is_empty() || !self.committed_in_term() {
            return;
        }
        for read in std::mem::take(&mut self.reads.awaiting_commit) {
            self.confirm_read(read);
        }
    }

    /// Numbers a heartbeat round about to go out, remembering when.
    pub(crate) fn next_read_round(&mut self) -> u64 {
        self.reads.seq += 1;
        self.reads.round_pending = false;
        self.reads.rounds_sent.push_back((self.reads.seq, self.reads.ticks));
        if self.reads.rounds_sent.len() > ROUNDS_REMEMBERED {
            self.reads.rounds_sent.pop_front();
        }
        self.reads.seq
    }

    /// Serves every read whose round a quorum answered, and extends the lease.
    pub(crate) fn advance_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = self.config.id;
        let answered = quorum_value(self.members.current(), |id| {
            if id == own {
                u64::MAX
            } else {
                self.progress.get(&id).map_or(0, |pr| pr.read_round_acked)
            }
        });
        while let Some((seq, tick)) = self.reads.rounds_sent.front().copied() {
            if seq > answered {
                break;
            }
            self.reads.lease_start = Some(tick);
            self.reads.rounds_sent.pop_front();
        }
        while self.reads.confirming.front().is_some_and(|r| r.seq <= answered) {
            let read = self.reads.confirming.pop_front().expect("checked");
            self.answer_read(read.origin, Ok(read.index));
        }
    }

    fn answer_read(&mut self, origin: ReadOrigin, outcome: Result<Index, ReadError>) {
        match origin {
            ReadOrigin::Local(id) => self.reads.outcomes.push(ReadState { id, outcome }),
            ReadOrigin::Remote { from, id } => {
                let term = self.term;
                let msg = Message::ReadIndexResponse { term, id, index: outcome.ok() };
                self.send(from, msg);
            }
        }
    }

    pub(crate) fn on_read_index_request(&mut self, from: NodeId, id: ReadId, mode: ReadMode) {
        if self.role == Role::Leader {
            self.leader_read(ReadOrigin::Remote { from, id }, mode);
        } else {
            let term = self.term;
            self.send(from, Message::ReadIndexResponse { term, id, index: None });
        }
    }

    pub(crate) fn on_read_index_response(&mut self, id: ReadId, index: Option<Index>) {
        let Some(position) = self.reads.forwarded.iter().position(|(r, _)| *r == id) else {
            return; // Timed out or failed already.
        };
        self.reads.forwarded.remove(position);
        let outcome = index.ok_or(ReadError::NotLeader { leader_hint: self.leader });
        self.reads.outcomes.push(ReadState { id, outcome });
    }

    /// Ages every read; those older than an election timeout fail.
    pub(crate) fn tick_reads(&mut self) {
        self.reads.ticks += 1;
        let limit = self.config.election_ticks;
        let mut expired = Vec::new();
        for read in self.reads.confirming.iter_mut().chain(&mut self.reads.awaiting_commit) {
            read.elapsed += 1;
            if read.elapsed >= limit {
                expired.push(read.origin);
            }
        }
        if !expired.is_empty() {
            self.reads.confirming.retain(|r| r.elapsed < limit);
            self.reads.awaiting_commit.retain(|r| r.elapsed < limit);
            for origin in expired {
                self.answer_read(origin, Err(ReadError::Timeout));
            }
        }
        for (id, elapsed) in &mut self.reads.forwarded {
            *elapsed += 1;
            if *elapsed >= limit {
                self.reads.outcomes.push(ReadState { id: *id, outcome: Err(ReadError::Timeout) });
            }
        }
        self.reads.forwarded.retain(|(_, elapsed)| *elapsed < limit);
    }

    /// Leadership ended, or the leader this node forwarded to is gone: fail what cannot be
    /// confirmed any more, naming the new leader if known.
    pub(crate) fn fail_reads(&mut self, leader_hint: Option<NodeId>) {
        let error = ReadError::NotLeader { leader_hint };
        let leader_reads: Vec<PendingRead> =
            self.reads.confirming.drain(..).chain(self.reads.awaiting_commit.drain(..)).collect();
        for read in leader_reads {
            self.answer_read(read.origin, Err(error.clone()));
        }
        for (id, _) in std::mem::take(&mut self.reads.forwarded) {
            self.reads.outcomes.push(ReadState { id, outcome: Err(error.clone()) });
        }
        self.reads.rounds_sent.clear();
        self.reads.lease_start = None;
        self.reads.handed_over = false;
    }
}
