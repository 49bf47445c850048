//! Leadership transfer (Raft thesis §3.10): the leader stops taking proposals, brings the target
//! up to date, and tells it to start an election at once (TimeoutNow). If that has not happened
//! within an election timeout, the transfer is abandoned and the leader carries on.

use conclave_core::{NodeId, Role, TransferError};

use crate::message::Message;
use crate::raft::Raft;

/// A transfer under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaderTransfer {
    /// The node that should become leader.
    pub(crate) target: NodeId,
    /// Leader ticks since the transfer began.
    pub(crate) elapsed: u32,
}

impl Raft {
    /// Starts handing leadership to `target`. Proposals are refused with
    /// `ProposeError::LeadershipTransfer` until the target wins an election (this node then
    /// steps down on seeing its term) or an election timeout passes (the transfer is abandoned).
    /// Asking for a transfer to this leader itself is a no-op; a new target replaces an earlier
    /// one.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader { leader_hint: self.leader });
        }
        if !self.members.current().voters.contains(&target) {
            return Err(TransferError::NotAVoter(target));
        }
        if target == self.config.id {
            self.transfer = None;
            return Ok(());
        }
        self.transfer = Some(LeaderTransfer { target, elapsed: 0 });
        if self.progress.get(&target).is_some_and(|pr| pr.matched == self.log.last_index()) {
            self.send_timeout_now(target);
        } else {
            // Catch it up first; the TimeoutNow follows the acknowledgement of the last entry.
            // Restart its stream from what it confirmed, so appends lost earlier (a window that
            // looks full, a probe that looks outstanding) do not hold the transfer up until the
            // heartbeats notice; at worst a few entries travel twice.
            let pr = self.progress.get_mut(&target).expect("every voter but the leader is tracked");
            if pr.state != crate::progress::ReplicationState::Snapshot {
                let next = pr.matched.next();
                pr.become_probe(next);
            }
            self.send_appends(target);
        }
        Ok(())
    }

    /// The transfer's target, while one is under way.
    pub fn leader_transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.target)
    }

    /// After an acknowledgement from `from`: if it is the transfer's target and now holds the
    /// whole log, tell it to take over.
    pub(crate) fn maybe_finish_transfer(&mut self, from: NodeId) {
        if self.transfer.is_some_and(|t| t.target == from)
            && self.progress.get(&from).is_some_and(|pr| pr.matched == self.log.last_index())
        {
            self.send_timeout_now(from);
        }
    }

    fn send_timeout_now(&mut self, target: NodeId) {
        let term = self.term;
        self.reads.handed_over = true;
        self.send(target, Message::TimeoutNow { term });
    }

    /// Counts a leader tick against the transfer; abandons it after an election timeout.
    pub(crate) fn tick_transfer(&mut self) {
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed += 1;
            if transfer.elapsed >= self.config.election_ticks {
                self.transfer = None;
            }
        }
    }
}
