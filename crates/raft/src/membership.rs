//! Membership changes (Raft §6 and thesis §4): the membership lives in the log as configuration
//! entries and takes effect on each node as soon as the entry is in its log, committed or not.
//! One change at a time; a change of more than one voter goes through the joint membership, which
//! the leader leaves on its own once it commits. A leader removed by a change keeps leading until
//! the change commits (without counting itself), then steps down and hands over at once.

use conclave_core::{
    Entry, EntryKind, Index, Membership, MembershipChange, MembershipError, NodeId, Proposal, Role,
    Term,
};

use crate::log::RaftLog;
use crate::message::Message;
use crate::progress::Progress;
use crate::raft::Raft;

/// The membership as of every index the log still holds: a base (as of the log's start, from the
/// snapshot or the bootstrap voters) and the configuration entries after it.
///
/// Invariant: every membership is well formed ([`Membership::validate`]: a learner is never a
/// voter of the incoming set too); the changes are in strictly increasing index order; and each
/// change follows the one before it as joint consensus requires: a joint membership is entered
/// only from a simple one, whose voters become its outgoing set, and is left only for its own
/// incoming voters and learners (anything else would let two disjoint majorities decide).
#[derive(Clone, Debug)]
pub(crate) struct MembershipLog {
    base: Membership,
    /// Configuration entries in the log, in index order: (index, term, membership).
    changes: Vec<(Index, Term, Membership)>,
}

impl MembershipLog {
    /// Starts from `base` (the membership before the first entry held) and the configuration
    /// entries among `entries`. An entry that does not decode is skipped: storage checksums
    /// every record, so only a bug writes one.
    pub(crate) fn new(base: Membership, entries: &[Entry]) -> MembershipLog {
        let mut log = MembershipLog { base, changes: Vec::new() };
        log.track(entries);
        log
    }

    /// The membership in force: the newest in the log.
    pub(crate) fn current(&self) -> &Membership {
        self.changes.last().map_or(&self.base, |(_, _, m)| m)
    }

    /// The index of the entry that set the current membership (0 if it is the base).
    pub(crate) fn current_index(&self) -> Index {
        self.changes.last().map_or(Index(0), |(i, _, _)| *i)
    }

    /// The membership as of `index`.
    pub(crate) fn at(&self, index: Index) -> &Membership {
        self.changes.iter().rev().find(|(i, _, _)| *i <= index).map_or(&self.base, |(_, _, m)| m)
    }

    /// Notes the configuration entries among `entries`, which were just added to `log`, after
    /// forgetting changes whose entries a conflicting append replaced.
    pub(crate) fn after_append(&mut self, log: &RaftLog, entries: &[Entry]) {
        self.changes.retain(|(index, term, _)| log.term(*index) == Some(*term));
        let present: Vec<Entry> =
            entries.iter().filter(|e| log.term(e.index) == Some(e.term)).cloned().collect();
        self.track(&present);
    }

    fn track(&mut self, entries: &[Entry]) {
        for entry in entries.iter().filter(|e| e.kind == EntryKind::Config) {
            if self.changes.last().is_some_and(|(i, _, _)| *i >= entry.index) {
                continue;
            }
            if let Ok(membership) = Membership::decode(&entry.data) {
                assert_follows(self.current(), &membership);
                self.changes.push((entry.index, entry.term, membership));
            }
        }
    }

    /// The log was compacted up to `upto`: changes at or below it become the base.
    pub(crate) fn compact(&mut self, upto: Index) {
        let folded = self.changes.iter().take_while(|(i, _, _)| *i <= upto).count();
        if folded > 0 {
            self.base = self.changes[folded - 1].2.clone();
            self.changes.drain(..folded);
        }
    }

    /// Checks that the membership in force is well formed (in debug builds); the order of the
    /// changes is checked as each is tracked.
    pub(crate) fn assert_invariants(&self) {
        let current = self.current();
        debug_assert!(
            current.validate().is_ok(),
            "membership {current} is malformed ({:?}): quorums over it mean nothing",
            current.validate()
        );
        debug_assert!(
            self.changes.windows(2).last().is_none_or(|w| w[0].0 < w[1].0),
            "configuration entries out of index order"
        );
    }

    /// A snapshot with `membership` as of `index` was installed: it becomes the base; changes
    /// after it survive only if the log kept their entries.
    pub(crate) fn install(&mut self, membership: Membership, index: Index, log: &RaftLog) {
        self.base = membership;
        self.changes.retain(|(i, term, _)| *i > index && log.term(*i) == Some(*term));
    }
}

impl Raft {
    /// The membership this node acts on.
    pub fn membership(&self) -> &Membership {
        self.members.current()
    }

    /// True if this node votes in the current membership.
    pub(crate) fn is_voter(&self) -> bool {
        self.members.current().is_voter(self.config.id)
    }

    /// True if this node may start an election: it votes in the current membership, or in the
    /// latest membership it knows committed. The second case is a node holding its own removal
    /// (or demotion) uncommitted, typically a leader deposed before the change spread: it may be
    /// the only node whose log lets a leader be elected to commit it (Raft thesis §4.2.2). It
    /// campaigns under its current membership, where its own vote does not count. Never when the
    /// next term would be the invalid one (`TERM_INVALID`).
    pub(crate) fn may_campaign(&self) -> bool {
        // A campaign asks about the next term, which must not be the invalid one.
        let next_term_valid = self.term.next() < crate::raft::TERM_INVALID;
        next_term_valid
            && (self.is_voter() || self.members.at(self.log.committed()).is_voter(self.config.id))
    }

    /// Asks the leader to change the membership; see [`MembershipChange`] for each kind. The
    /// change is appended to the log and takes effect at once; it is done when committed.
    pub fn change_membership(
        &mut self,
        change: MembershipChange,
    ) -> Result<Proposal, MembershipError> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader { leader_hint: self.leader });
        }
        if self.transfer.is_some() {
            return Err(MembershipError::LeadershipTransfer);
        }
        let current = self.members.current().clone();
        // One change at a time: the previous one must be committed (and a joint membership left),
        // and this leader must have committed an entry of its own term, so that it knows the
        // latest committed membership (a leader that did not could otherwise stack a change on
        // an uncommitted one of a previous leader).
        if current.is_joint()
            || self.members.current_index() > self.log.committed()
            || self.log.term(self.log.committed()) != Some(self.term)
        {
            return Err(MembershipError::ChangeInProgress);
        }
        let next = self.next_membership(&current, change)?;
        if next == current {
            return Err(MembershipError::Invalid("the membership would not change".into()));
        }
        let index = self.log.last_index().next();
        self.append_membership(&next);
        Ok(Proposal { index, term: self.term })
    }

    /// The membership `change` leads to from `current`: a simple one when the voters change by
    /// at most one node, otherwise the joint membership towards it.
    fn next_membership(
        &self,
        current: &Membership,
        change: MembershipChange,
    ) -> Result<Membership, MembershipError> {
        let invalid = |why: String| Err(MembershipError::Invalid(why));
        let mut voters = current.voters.clone();
        let mut learners = current.learners.clone();
        match change {
            MembershipChange::AddLearner(id) => {
                if current.is_member(id) {
                    return invalid(format!("node {id} is already a member"));
                }
                learners.push(id);
            }
            MembershipChange::Promote(id) => {
                if !current.is_learner(id) {
                    return invalid(format!("node {id} is not a learner"));
                }
                self.check_caught_up(id)?;
                learners.retain(|l| *l != id);
                voters.push(id);
            }
            MembershipChange::Remove(id) => {
                if !current.is_member(id) {
                    return invalid(format!("node {id} is not a member"));
                }
                voters.retain(|v| *v != id);
                learners.retain(|l| *l != id);
            }
            MembershipChange::Replace { voters: new_voters, learners: new_learners } => {
                for id in &new_voters {
                    if !current.voters.contains(id) {
                        if !current.is_learner(*id) {
                            return invalid(format!(
                                "node {id} must join as a learner and catch up before it votes"
                            ));
                        }
                        self.check_caught_up(*id)?;
                    }
                }
                if let Some(both) = new_learners.iter().find(|l| new_voters.contains(l)) {
                    return invalid(format!("node {both} cannot be a voter and a learner"));
                }
                voters = new_voters;
                learners = new_learners;
            }
        }
        let target = Membership {
            voters: sorted_unique(voters),
            outgoing: Vec::new(),
            learners: sorted_unique(learners),
        };
        if target.voters.is_empty() {
            return invalid("the last voter cannot be removed".into());
        }
        let changed = target.voters.iter().filter(|v| !current.voters.contains(v)).count()
            + current.voters.iter().filter(|v| !target.voters.contains(v)).count();
        if changed <= 1 {
            return Ok(target);
        }
        // Joint: old and new voters decide together. A voter demoted to learner stays an
        // outgoing voter until the joint membership is left.
        Ok(Membership { outgoing: current.voters.clone(), ..target })
    }

    /// Refuses to let `id` vote while it lags the leader by more than the configured bound.
    /// A learner that never acknowledged anything, or has not been heard from within an election
    /// timeout, counts as lagging by the whole log, however short: promoting an unreachable node
    /// would leave a change that cannot commit and blocks every later one.
    fn check_caught_up(&self, id: NodeId) -> Result<(), MembershipError> {
        let heard =
            |pr: &&Progress| pr.matched.0 > 0 && pr.ticks_since_heard < self.config.election_ticks;
        let matched = self.progress.get(&id).filter(heard).map_or(Index(0), |pr| pr.matched);
        let lag = self.log.last_index().0.saturating_sub(matched.0);
        let max = self.config.learner_lag_max;
        if lag > max || matched.0 == 0 {
            return Err(MembershipError::LearnerLagging { id, lag, max });
        }
        Ok(())
    }

    /// Appends a configuration entry as leader, puts it in force and updates replication.
    fn append_membership(&mut self, membership: &Membership) {
        let index = self.log.last_index().next();
        let entry = Entry::config(index, self.term, membership);
        self.log.append_new(entry.clone());
        self.members.after_append(&self.log, std::slice::from_ref(&entry));
        self.sync_progress();
        self.broadcast_pending = true;
    }

    /// Leader: tracks every member but itself, and forgets nodes no longer members.
    pub(crate) fn sync_progress(&mut self) {
        let members = self.members.current().all_members();
        let own = self.config.id;
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index().next();
        for id in members.into_iter().filter(|id| *id != own) {
            self.progress.entry(id).or_insert_with(|| Progress::new(next));
        }
    }

    /// After the commit index moved on a leader: leave a committed joint membership, and step
    /// down if a committed change removed this leader from the voters.
    pub(crate) fn after_commit_membership(&mut self) {
        if self.role != Role::Leader || self.members.current_index() > self.log.committed() {
            return;
        }
        let current = self.members.current().clone();
        if current.is_joint() {
            let target = Membership { outgoing: Vec::new(), ..current };
            self.append_membership(&target);
        } else if !current.is_voter(self.config.id) {
            self.step_down_removed();
        }
    }

    /// This leader is no longer a voter and its removal is committed: hand leadership to the most
    /// up-to-date voter at once (rather than let the cluster wait out an election timeout), then
    /// follow.
    fn step_down_removed(&mut self) {
        let last = self.log.last_index();
        let voters = self.members.current().voters.clone();
        let successor = voters
            .iter()
            .filter_map(|v| self.progress.get(v).map(|pr| (*v, pr.matched)))
            .filter(|(_, matched)| *matched == last)
            .map(|(v, _)| v)
            .next();
        if let Some(target) = successor {
            let term = self.term;
            self.send(target, Message::TimeoutNow { term });
        }
        let term = self.term;
        self.become_follower(term, None);
    }
}

/// Checks (in debug builds) that `next` may follow `previous` in a log: joint consensus enters a
/// joint membership only from a simple one, with the old voters as the outgoing set, and leaves
/// it only for the same incoming voters and learners. Any other step could let a majority of the
/// old voters and a disjoint majority of the new ones decide on their own.
fn assert_follows(previous: &Membership, next: &Membership) {
    if previous.is_joint() {
        debug_assert!(
            !next.is_joint()
                && next.voters == previous.voters
                && next.learners == previous.learners,
            "the joint membership {previous} is followed by {next}, not by its own target"
        );
    } else if next.is_joint() {
        debug_assert!(
            next.outgoing == previous.voters,
            "the joint membership {next} does not start from the voters of {previous}"
        );
    }
}

fn sorted_unique(mut ids: Vec<NodeId>) -> Vec<NodeId> {
    ids.sort_unstable();
    ids.dedup();
    ids
}
