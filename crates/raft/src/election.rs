//! Leader election (§5.2) with pre-vote (thesis §9.6).

use conclave_core::{Index, NodeId, Role, Term};

use crate::message::Message;
use crate::quorum::{tally, VoteResult};
use crate::raft::Raft;

impl Raft {
    /// The election timer fired: start a pre-vote if enabled, else a real election.
    pub(crate) fn start_campaign(&mut self) {
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    /// Asks the voters whether they would vote for us in the next term, without changing ours.
    fn become_pre_candidate(&mut self) {
        self.fail_reads(None);
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = vec![(self.config.id, true)];
        self.reset_election_timer();
        let request = self.vote_request(self.term.next(), true, false);
        self.request_votes(request);
    }

    /// Starts a real election in a new term, voting for ourselves.
    pub(crate) fn become_candidate(&mut self) {
        self.campaign_in_next_term(false);
    }

    /// The leader told us to take over (TimeoutNow): a real election at once, whose vote
    /// requests pass the voters' lease.
    pub(crate) fn on_timeout_now(&mut self, from: NodeId) {
        if self.role == Role::Leader || self.leader != Some(from) || !self.is_voter() {
            return; // Only the leader we follow may hand over; a stale TimeoutNow is ignored.
        }
        if self.term.next() >= crate::raft::TERM_INVALID {
            return; // No valid term left to campaign in (see `TERM_INVALID`).
        }
        self.campaign_in_next_term(true);
    }

    fn campaign_in_next_term(&mut self, leader_transfer: bool) {
        self.fail_reads(None);
        self.term = self.term.next();
        self.vote = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = vec![(self.config.id, true)];
        self.reset_election_timer();
        let request = self.vote_request(self.term, false, leader_transfer);
        self.request_votes(request);
    }

    fn vote_request(&self, term: Term, pre_vote: bool, leader_transfer: bool) -> Message {
        Message::RequestVote {
            term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
            leader_transfer,
        }
    }

    fn request_votes(&mut self, request: Message) {
        for peer in self.voter_peers() {
            self.send(peer, request.clone());
        }
        // A single-node cluster has already won.
        self.count_votes();
    }

    /// Decides whether to grant a (pre-)vote. Reached only when `term >= self.term`.
    pub(crate) fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        pre_vote: bool,
        leader_transfer: bool,
    ) {
        // While a leader's lease holds here, only a leadership transfer may take votes (a term
        // bumped by some stray message does not end the lease).
        if self.in_leader_lease() && !leader_transfer && self.vote != Some(from) {
            let term = self.term;
            self.send(from, Message::RequestVoteResponse { term, granted: false, pre_vote });
            return;
        }
        // We may vote if this is who we voted for already, if we have not voted and follow no
        // leader in this term, or, for a pre-vote, if it asks about a later term.
        #[allow(unused_mut)]
        let mut can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.term);
        #[cfg(feature = "bug-injection")]
        if self.config.bugs.grant_two_votes_per_term && !pre_vote {
            can_vote = true;
        }
        let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
        if granted && !pre_vote {
            // A real vote is only ever cast in the voter's current term: a request for a later
            // term made this node a follower of that term first (see `step`).
            debug_assert_eq!(
                term, self.term,
                "a vote for {from} in term {term} cast in term {}: votes belong to the current term",
                self.term
            );
            debug_assert!(
                self.two_votes_injected() || self.vote.is_none() || self.vote == Some(from),
                "node {} votes for {from} in term {term} after voting for {:?}: one vote per term \
                 is what makes two leaders in one term impossible",
                self.config.id,
                self.vote
            );
            self.vote = Some(from);
            self.reset_election_timer();
        }
        let reply_term = if granted { term } else { self.term };
        self.send(from, Message::RequestVoteResponse { term: reply_term, granted, pre_vote });
    }

    /// Counts a (pre-)vote answer if it belongs to the campaign we are running: a pre-vote
    /// answer must be about `term + 1`, a vote answer about `term`.
    pub(crate) fn on_request_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
    ) {
        let (expected_role, expected_term) = if pre_vote {
            (Role::PreCandidate, self.term.next())
        } else {
            (Role::Candidate, self.term)
        };
        if self.role != expected_role
            || (granted && term != expected_term)
            || self.votes.iter().any(|(voter, _)| *voter == from)
        {
            return;
        }
        self.votes.push((from, granted));
        self.count_votes();
    }

    fn count_votes(&mut self) {
        match tally(self.members.current(), &self.votes) {
            VoteResult::Won if self.role == Role::PreCandidate => self.become_candidate(),
            VoteResult::Won if self.role == Role::Candidate => self.become_leader(),
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None);
            }
            _ => {}
        }
    }
}
