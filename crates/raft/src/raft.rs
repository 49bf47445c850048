//! The Raft node: its state, role transitions, message dispatch and the [`Protocol`] impl.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, EntryKind, Envelope, HardState, Index, LogView, Membership,
    MembershipChange, MembershipError, MessageMeta, NodeId, Proposal, ProposeError, Protocol,
    RandomSource, ReadError, ReadId, ReadMode, Ready, Role, Snapshot, Status, Term, TransferError,
};

use crate::config::{Config, ConfigError};
use crate::log::RaftLog;
use crate::membership::MembershipLog;
use crate::message::Message;
use crate::progress::Progress;
use crate::read::Reads;
use crate::snapshot::IncomingSnapshot;
use crate::transfer::LeaderTransfer;

/// The one term no message may carry: a node at it could never campaign, because there is no
/// next term. Messages with it are dropped, and a node never campaigns into it, so that
/// `term.next()` never overflows. Invariant: `term < TERM_INVALID`.
pub(crate) const TERM_INVALID: Term = Term(u64::MAX);

/// One Raft node as a pure state machine. See the crate docs for the life cycle.
///
/// Invariant (asserted after every input in debug builds): the log cursors keep
/// `applied <= committed <= last_index` and `applied <= persisted` (only committed, durable
/// entries are released); a leader believes it leads, holds its own vote, and tracks exactly the
/// other members of its current membership, none beyond its last index; a node that does not lead
/// tracks no follower and transfers nothing; a candidate voted for itself; the hard state handed
/// to the driver never goes back (term, commit) and holds at most one vote per term.
pub struct Raft {
    pub(crate) config: Config,
    rng: Box<dyn RandomSource + Send>,

    // Persistent state (Figure 2): written through `Ready::hard_state` and `Ready::entries`.
    pub(crate) term: Term,
    /// The candidate voted for in `term`. Invariant: once set it changes only with the term:
    /// one vote per term is what keeps two leaders out of one term.
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: RaftLog,
    /// The membership as of each index of the log (configuration entries are part of it).
    pub(crate) members: MembershipLog,

    // Volatile state.
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    /// Ticks since the last election timer reset (for a leader: since the last quorum check).
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    /// This term's election timeout, drawn from `election_ticks..2*election_ticks`.
    pub(crate) election_timeout: u32,
    /// Ticks since this node last heard from a leader of its term (0 at the start of a node that
    /// may have voted before: it may have answered a leader it no longer remembers). While below
    /// `election_ticks`, with check-quorum, it refuses to help elect anyone else: that is the
    /// lease that lease reads rely on.
    pub(crate) ticks_since_leader: u32,
    /// Votes received in the current (pre-)campaign: (voter, granted).
    pub(crate) votes: Vec<(NodeId, bool)>,
    /// Leader only: each follower's replication progress.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Leader only: a leadership transfer under way.
    pub(crate) transfer: Option<LeaderTransfer>,
    /// Leader only: new entries wait to be sent in the next `ready`, so proposals made between two
    /// `ready` calls travel together (batching).
    pub(crate) broadcast_pending: bool,

    // Snapshots.
    /// The newest snapshot, kept whole so it can be streamed to followers.
    pub(crate) snapshot: Option<Snapshot>,
    /// A snapshot waiting to be handed to the driver for persistence.
    pub(crate) snapshot_write: Option<Snapshot>,
    /// A durable-log compaction waiting to be handed to the driver.
    pub(crate) compact_log_to: Option<Index>,
    /// The applied index a snapshot was asked for and has not arrived yet.
    pub(crate) snapshot_requested: Option<Index>,
    /// Command entries and payload bytes released for application since the newest snapshot
    /// (the byte count drives the size policy; it restarts when a snapshot arrives).
    pub(crate) applied_since_snapshot: (u64, u64),
    /// A snapshot being received from the leader.
    pub(crate) incoming: Option<IncomingSnapshot>,
    /// Reads in flight.
    pub(crate) reads: Reads,

    // Outputs accumulated until the next `ready`.
    messages: Vec<Envelope<Message>>,
    persisted_messages: Vec<Envelope<Message>>,
    /// The hard state last handed to the driver, to emit only changes.
    hard_state_emitted: HardState,
}

impl Raft {
    /// Builds a node from its configuration and what it recovered from disk (empty on first
    /// start). `rng` is the node's only source of randomness.
    pub fn new(
        config: Config,
        durable: DurableState,
        rng: Box<dyn RandomSource + Send>,
    ) -> Result<Raft, ConfigError> {
        config.validate()?;
        let DurableState { hard_state, entries, snapshot } = durable;
        if hard_state.term >= TERM_INVALID {
            // Written by a version that adopted any term a peer sent: such a node could never
            // campaign again, so it is refused loudly instead of started wedged.
            return Err(ConfigError::CorruptState(format!(
                "term {} is the invalid maximal term: a forged message raised it; this node's \
                 state cannot be used to elect",
                hard_state.term
            )));
        }
        let snapshot_end = snapshot.as_ref().map_or((Index(0), Term(0)), |s| (s.index, s.term));
        let after_snapshot: Vec<&Entry> =
            entries.iter().filter(|e| e.index > snapshot_end.0).collect();
        if let Some(first) = after_snapshot.first() {
            if first.index != snapshot_end.0.next() {
                return Err(ConfigError::CorruptState(format!(
                    "log resumes at {} but the snapshot ends at {}",
                    first.index, snapshot_end.0
                )));
            }
        }
        for pair in after_snapshot.windows(2) {
            if pair[1].index != pair[0].index.next() || pair[1].term < pair[0].term {
                return Err(ConfigError::CorruptState(format!(
                    "log broken at index {}",
                    pair[1].index
                )));
            }
        }
        let last = after_snapshot.last().map_or(snapshot_end.0, |e| e.index);
        let last_term = after_snapshot.last().map_or(snapshot_end.1, |e| e.term);
        if hard_state.commit > last {
            return Err(ConfigError::CorruptState(format!(
                "commit {} beyond the last durable index {last}",
                hard_state.commit
            )));
        }
        if last_term > hard_state.term {
            return Err(ConfigError::CorruptState(
                "log holds a term later than the hard state".into(),
            ));
        }
        let base = match &snapshot {
            Some(s) => s.membership.clone(),
            None => Membership::new(config.voters.iter().copied()),
        };
        // The snapshot's membership stands for every configuration entry it covers: entries at
        // or below it that the driver kept (it may discard them, not must) are history.
        let held: Vec<Entry> = after_snapshot.iter().map(|e| (*e).clone()).collect();
        let members = MembershipLog::new(base, &held);
        let log = RaftLog::from_snapshot_and_entries(
            snapshot_end.0,
            snapshot_end.1,
            entries,
            hard_state.commit,
        );
        let ticks_since_leader = if hard_state.term == Term(0) { config.election_ticks } else { 0 };
        let mut raft = Raft {
            config,
            rng,
            term: hard_state.term,
            vote: hard_state.vote,
            log,
            members,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout: 0,
            ticks_since_leader,
            votes: Vec::new(),
            progress: BTreeMap::new(),
            broadcast_pending: false,
            transfer: None,
            snapshot,
            snapshot_write: None,
            compact_log_to: None,
            snapshot_requested: None,
            applied_since_snapshot: (0, 0),
            incoming: None,
            reads: Reads::default(),
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            hard_state_emitted: hard_state,
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The node's log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// Starts an election now, as if the election timer had fired (etcd's `MsgHup`): with
    /// pre-vote, a pre-vote first. Does nothing on a leader. Operators and tests use it to choose
    /// who runs. (A leadership transfer does not come through here: its target campaigns on a
    /// `TimeoutNow`, without the pre-vote, so that the voters' lease lets it through.)
    pub fn campaign(&mut self) {
        if self.role != Role::Leader && self.may_campaign() {
            self.start_campaign();
        }
    }

    /// Drops in-memory log entries up to `upto` (clamped to the applied index) without taking a
    /// snapshot: the state machine holds their effect. The core-only benchmark uses it to bound
    /// memory; the durable log is untouched (no `Ready::compact_log_to`). The normal path is the
    /// snapshot policy ([`Config::snapshot_entries`], [`Config::snapshot_bytes`]), which compacts
    /// behind a snapshot that followers can be sent. A follower whose match is below `upto` can
    /// only be caught up by such a snapshot, and none exists unless one was taken, so callers
    /// compact no further than the slowest follower.
    pub fn compact_log(&mut self, upto: Index) -> usize {
        let upto = upto.min(self.log.applied());
        let dropped = self.log.compact_to(upto);
        self.members.compact(self.log.first_index().prev());
        dropped
    }

    /// The lowest match index over all followers (a leader's own persisted index when alone);
    /// `None` when not leader.
    pub fn slowest_follower_match(&self) -> Option<Index> {
        if self.role != Role::Leader {
            return None;
        }
        Some(self.progress.values().map(|p| p.matched).min().unwrap_or(self.log.persisted()))
    }

    /// Voters of the current membership (both sets while joint) other than this node, in id
    /// order: the nodes to ask for votes.
    pub(crate) fn voter_peers(&self) -> Vec<NodeId> {
        let own = self.config.id;
        self.members.current().all_voters().into_iter().filter(|v| *v != own).collect()
    }

    /// Every node the leader replicates to (voters and learners), in id order.
    pub(crate) fn replication_peers(&self) -> Vec<NodeId> {
        self.progress.keys().copied().collect()
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = u64::from(self.config.election_ticks);
        self.election_timeout = self.rng.between(base, 2 * base) as u32;
    }

    /// Queues a message. Only a leader's replication traffic and pre-vote requests may leave
    /// before the next write is durable: they promise nothing that a crash could take back. Every
    /// vote, acknowledgement or answer waits for the disk.
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        let immediate = matches!(
            msg,
            Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::RequestVote { pre_vote: true, .. }
        );
        let envelope = Envelope { from: self.config.id, to, msg };
        if immediate {
            self.messages.push(envelope);
        } else {
            self.persisted_messages.push(envelope);
        }
    }

    /// Becomes a follower in `term` (a new term clears the vote).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "terms never go back");
        let was_leader = self.role == Role::Leader;
        let new_term = term > self.term;
        if new_term {
            self.term = term;
            self.vote = None;
        }
        if was_leader {
            // It answered for the cluster until now: no voting for others for a lease's length.
            self.ticks_since_leader = 0;
        }
        if was_leader || new_term || self.leader != leader {
            self.fail_reads(leader);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.broadcast_pending = false;
        self.transfer = None;
        if self.leader.is_none() {
            self.incoming = None;
        }
        self.reset_election_timer();
    }

    /// Becomes leader: sets up progress for every follower and appends the term's no-op entry,
    /// whose commitment commits everything before it (§5.4.2).
    pub(crate) fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate, "only a candidate that won becomes leader");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.progress.clear();
        self.sync_progress();
        let next = self.log.last_index().next();
        self.log.append_new(Entry::noop(next, self.term));
        self.broadcast_pending = true;
        self.fail_reads(Some(self.config.id));
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.tick_transfer();
        for pr in self.progress.values_mut() {
            pr.ticks_since_heard = pr.ticks_since_heard.saturating_add(1);
        }
        if self.config.check_quorum && !self.quorum_recently_active() {
            let term = self.term;
            self.become_follower(term, None);
            return;
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Check-quorum: true if a majority (this leader included) answered within the last
    /// election timeout.
    fn quorum_recently_active(&self) -> bool {
        let timeout = self.config.election_ticks;
        let own = self.config.id;
        self.members.current().is_quorum(|id| {
            id == own || self.progress.get(&id).is_some_and(|pr| pr.ticks_since_heard < timeout)
        })
    }

    /// True while this node leads, or heard from a leader within the minimum election timeout:
    /// it then ignores vote requests (but those of a leadership transfer), so a partitioned node
    /// rejoining cannot depose a healthy leader, and a leader's lease holds.
    pub(crate) fn in_leader_lease(&self) -> bool {
        self.config.check_quorum
            && (self.role == Role::Leader || self.ticks_since_leader < self.config.election_ticks)
    }

    fn hard_state(&self) -> HardState {
        #[allow(unused_mut)]
        let mut vote = self.vote;
        #[cfg(feature = "bug-injection")]
        if self.config.bugs.forget_to_persist_vote {
            vote = None;
        }
        HardState { term: self.term, vote, commit: self.log.committed() }
    }

    fn applicable_to(&self) -> Index {
        #[cfg(feature = "bug-injection")]
        if self.config.bugs.apply_before_commit {
            return self.log.persisted();
        }
        self.log.applicable_to()
    }
}

impl Raft {
    /// One tick: see [`Protocol::tick`].
    fn tick_one(&mut self) {
        self.tick_reads();
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => {
                self.ticks_since_leader = self.ticks_since_leader.saturating_add(1);
                self.election_elapsed += 1;
                if self.election_elapsed >= self.election_timeout {
                    if self.may_campaign() {
                        self.start_campaign();
                    } else {
                        // Learners and nodes outside the membership never campaign (but a node
                        // whose own removal is not yet committed may: see `may_campaign`).
                        self.reset_election_timer();
                    }
                }
            }
        }
    }

    /// One message: see [`Protocol::step`].
    fn step_one(&mut self, envelope: Envelope<Message>) {
        let Envelope { from, to, msg } = envelope;
        // Messages from nodes outside this node's membership are accepted at this node's term:
        // their votes never count (quorums are taken over the membership), and the leader tracks
        // only members. A newer term is another matter: see `may_adopt_term`.
        if to != self.config.id || from == self.config.id {
            return;
        }
        let msg_term = msg.term();
        if msg_term == TERM_INVALID {
            // Adopting it would leave no next term to campaign in: one such message would stop
            // every election for good. No node of a sane cluster ever reaches it.
            return;
        }
        if msg_term > self.term {
            if !self.may_adopt_term(from, &msg) {
                return;
            }
            match msg {
                Message::RequestVote { pre_vote, leader_transfer, .. } => {
                    if self.in_leader_lease() && !leader_transfer {
                        return;
                    }
                    if !pre_vote {
                        self.become_follower(msg_term, None);
                    }
                }
                // A granted pre-vote carries the term asked about, not the voter's term.
                Message::RequestVoteResponse { pre_vote: true, granted: true, .. } => {}
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => {
                    self.become_follower(msg_term, Some(from));
                }
                _ => self.become_follower(msg_term, None),
            }
        } else if msg_term < self.term {
            match msg {
                // Tell a stale leader about the newer term so it steps down; without this a
                // leader cut off by pre-vote/check-quorum could linger.
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => {
                    let term = self.term;
                    self.send(from, Message::HeartbeatResponse { term, read_round: 0 });
                }
                Message::RequestVote { pre_vote: true, .. } => {
                    let term = self.term;
                    self.send(
                        from,
                        Message::RequestVoteResponse { term, granted: false, pre_vote: true },
                    );
                }
                _ => {}
            }
            return;
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
                leader_transfer,
            } => self.on_request_vote(
                from,
                term,
                last_log_index,
                last_log_term,
                pre_vote,
                leader_transfer,
            ),
            Message::RequestVoteResponse { term, granted, pre_vote } => {
                self.on_request_vote_response(from, term, granted, pre_vote)
            }
            Message::AppendEntries { prev_index, prev_term, entries, commit, .. } => {
                self.on_append_entries(from, prev_index, prev_term, &entries, commit)
            }
            Message::AppendEntriesResponse { result, .. } => {
                self.on_append_entries_response(from, result)
            }
            Message::Heartbeat { commit, read_round, .. } => {
                self.on_heartbeat(from, commit, read_round)
            }
            Message::TimeoutNow { .. } => self.on_timeout_now(from),
            Message::HeartbeatResponse { read_round, .. } => {
                self.on_heartbeat_response(from, read_round)
            }
            Message::ReadIndexRequest { id, mode, .. } => {
                self.on_read_index_request(from, id, mode)
            }
            Message::ReadIndexResponse { id, index, .. } => self.on_read_index_response(id, index),
            Message::InstallSnapshot {
                snapshot_index,
                snapshot_term,
                membership,
                offset,
                data,
                done,
                ..
            } => self.on_install_snapshot(
                from,
                snapshot_index,
                snapshot_term,
                membership,
                offset,
                data,
                done,
            ),
            Message::InstallSnapshotResponse { snapshot_index, received, done, .. } => {
                self.on_install_snapshot_response(from, snapshot_index, received, done)
            }
        }
    }

    /// Whether a message from `from` that carries a newer term may move this node to it.
    ///
    /// Always from a member (voter or learner) of this node's membership. From anyone else only
    /// when this node could not tell a stranger from a newer member:
    /// - it is outside its own membership (a spare waiting to be added, or a removed node): it
    ///   learns the membership that adds it from a leader it may not know yet, so it takes the
    ///   leader's messages (AppendEntries, InstallSnapshot, Heartbeat); a removed node's term
    ///   concerns no one else;
    /// - or it has heard from no leader for a whole election timeout (and leads nothing): a
    ///   member that missed the configuration entries adding today's voters must still be able to
    ///   follow a leader, or vote for a candidate, that it does not know yet.
    ///
    /// So while a node follows a live leader (or leads), a newer term from outside its membership
    /// is ignored: a stranger cannot depose a working leader. The window left, a cluster without
    /// a leader, is closed at the transport, where peers prove they hold the cluster secret.
    fn may_adopt_term(&self, from: NodeId, msg: &Message) -> bool {
        let membership = self.members.current();
        if membership.is_member(from) {
            return true;
        }
        let leader_message = matches!(
            msg,
            Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. }
        );
        if leader_message && !membership.is_member(self.config.id) {
            return true;
        }
        self.role != Role::Leader && self.ticks_since_leader >= self.config.election_ticks
    }

    /// One proposal: see [`Protocol::propose`].
    fn propose_one(&mut self, data: Bytes) -> Result<Proposal, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader_hint: self.leader });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::LeadershipTransfer);
        }
        if data.len() > self.config.command_bytes_max {
            return Err(ProposeError::TooLarge {
                size: data.len(),
                limit: self.config.command_bytes_max,
            });
        }
        let index = self.log.last_index().next();
        self.log.append_new(Entry::command(index, self.term, data));
        self.broadcast_pending = true;
        Ok(Proposal { index, term: self.term })
    }

    /// The work for the driver: see [`Protocol::ready`].
    fn ready_one(&mut self) -> Ready<Message> {
        if self.broadcast_pending {
            self.broadcast_pending = false;
            if self.role == Role::Leader {
                self.broadcast_append();
            }
        }
        if self.reads.round_pending {
            self.reads.round_pending = false;
            if self.role == Role::Leader {
                self.broadcast_heartbeat();
            }
        }
        let hard_state = self.hard_state();
        let hard_state = (hard_state != self.hard_state_emitted).then(|| {
            self.hard_state_emitted = hard_state;
            hard_state
        });
        let upto = self.applicable_to();
        let committed_entries = self.log.take_applicable(upto);
        for entry in &committed_entries {
            if entry.kind == EntryKind::Command {
                self.applied_since_snapshot.0 += 1;
                self.applied_since_snapshot.1 += entry.data.len() as u64;
            }
        }
        let snapshot_due =
            if committed_entries.is_empty() { None } else { self.maybe_request_snapshot() };
        Ready {
            hard_state,
            entries: self.log.take_unstable(),
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            committed_entries,
            snapshot: self.snapshot_write.take(),
            compact_log_to: self.compact_log_to.take(),
            snapshot_due,
            reads: std::mem::take(&mut self.reads.outcomes),
        }
    }
}

impl Raft {
    /// Checks the invariants that tie the node's state together, after every input (in debug
    /// builds, which the tests and the simulator use), so a broken one is caught at the step that
    /// broke it rather than as a safety violation much later. See the type's documentation.
    fn assert_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let id = self.config.id;
        self.log.assert_invariants();
        // Deliberately broken variants (the simulator proves it catches them) break some of
        // these on purpose; the simulator's checker, not a panic here, must report them.
        let apply_before_commit_injected = self.apply_before_commit_injected();
        let second_vote_injected = self.two_votes_injected();
        debug_assert!(
            apply_before_commit_injected || self.log.applied() <= self.log.committed(),
            "node {id} released entries up to {} for application but committed only {}: the \
             state machine would apply what a new leader may still overwrite",
            self.log.applied(),
            self.log.committed()
        );
        debug_assert!(
            apply_before_commit_injected || self.log.applied() <= self.log.persisted(),
            "node {id} released entries up to {} for application but only {} is durable: after \
             a crash the state machine would be ahead of the log",
            self.log.applied(),
            self.log.persisted()
        );
        self.members.assert_invariants();
        match self.role {
            Role::Leader => {
                debug_assert_eq!(self.leader, Some(id), "a leader knows it leads");
                debug_assert!(
                    second_vote_injected || self.vote == Some(id),
                    "node {id} leads term {} without its own vote: it won the term as a candidate",
                    self.term
                );
                let last = self.log.last_index();
                let tracked: Vec<NodeId> = self.progress.keys().copied().collect();
                let members: Vec<NodeId> =
                    self.members.current().all_members().into_iter().filter(|m| *m != id).collect();
                debug_assert_eq!(
                    tracked, members,
                    "leader {id} tracks {tracked:?} but its members are {members:?}: a member \
                     would get no entries, or a stranger would count"
                );
                for (peer, pr) in &self.progress {
                    debug_assert!(
                        pr.matched <= last,
                        "leader {id} thinks {peer} matches up to {} beyond its last index {last}",
                        pr.matched
                    );
                }
            }
            role => {
                debug_assert!(self.progress.is_empty(), "node {id} is {role} yet tracks followers");
                debug_assert!(self.transfer.is_none(), "node {id} is {role} yet transfers");
                debug_assert_ne!(self.leader, Some(id), "node {id} is {role} yet thinks it leads");
                debug_assert!(
                    role != Role::Candidate || second_vote_injected || self.vote == Some(id),
                    "candidate {id} did not vote for itself in term {}",
                    self.term
                );
            }
        }
    }

    /// Whether the deliberately broken "two votes in one term" variant is on. The assertions it
    /// breaks on purpose stand aside, so that the simulator's checker, not a panic, reports it.
    #[cfg(feature = "bug-injection")]
    pub(crate) fn two_votes_injected(&self) -> bool {
        self.config.bugs.grant_two_votes_per_term
    }

    /// Always false: no broken variant exists in a normal build.
    #[cfg(not(feature = "bug-injection"))]
    pub(crate) fn two_votes_injected(&self) -> bool {
        false
    }

    /// Whether the deliberately broken "apply before commit" variant is on (see
    /// [`Self::two_votes_injected`] for why the assertions need to know).
    #[cfg(feature = "bug-injection")]
    fn apply_before_commit_injected(&self) -> bool {
        self.config.bugs.apply_before_commit
    }

    /// Always false: no broken variant exists in a normal build.
    #[cfg(not(feature = "bug-injection"))]
    fn apply_before_commit_injected(&self) -> bool {
        false
    }

    /// Checks that the hard state handed to the driver moves only forward: the term never goes
    /// back, the commit index never goes back, and within one term the vote, once cast, never
    /// changes. A node that persisted two votes in one term could help elect two leaders.
    fn assert_hard_state_follows(&self, previous: HardState, next: HardState) {
        let second_vote_injected = self.two_votes_injected();
        debug_assert!(
            next.term >= previous.term,
            "node {} persists term {} after term {}: terms never go back",
            self.config.id,
            next.term,
            previous.term
        );
        debug_assert!(
            second_vote_injected
                || next.term > previous.term
                || previous.vote.is_none()
                || previous.vote == next.vote,
            "node {} persists vote {:?} in term {} after vote {:?}: one vote per term",
            self.config.id,
            next.vote,
            next.term,
            previous.vote
        );
        debug_assert!(
            next.commit >= previous.commit,
            "node {} persists commit {} after commit {}: a commit is never taken back",
            self.config.id,
            next.commit,
            previous.commit
        );
    }
}

impl Protocol for Raft {
    type Message = Message;

    fn id(&self) -> NodeId {
        self.config.id
    }

    fn tick(&mut self) {
        self.tick_one();
        self.assert_invariants();
    }

    fn step(&mut self, envelope: Envelope<Message>) {
        self.step_one(envelope);
        self.assert_invariants();
    }

    fn propose(&mut self, data: Bytes) -> Result<Proposal, ProposeError> {
        let result = self.propose_one(data);
        self.assert_invariants();
        result
    }

    fn has_ready(&self) -> bool {
        self.broadcast_pending
            || (self.reads.round_pending && self.role == Role::Leader)
            || !self.reads.outcomes.is_empty()
            || !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.log.has_unstable()
            || self.hard_state() != self.hard_state_emitted
            || self.applicable_to() > self.log.applied()
            || self.snapshot_write.is_some()
            || self.compact_log_to.is_some()
    }

    fn ready(&mut self) -> Ready<Message> {
        let previous = self.hard_state_emitted;
        let ready = self.ready_one();
        if let Some(hard_state) = ready.hard_state {
            self.assert_hard_state_follows(previous, hard_state);
        }
        self.assert_invariants();
        ready
    }

    fn on_persisted(&mut self, index: Index, term: Term) {
        if self.log.persisted_to(index, term) && self.role == Role::Leader {
            self.maybe_commit();
        }
        self.assert_invariants();
    }

    fn membership(&self) -> Option<&Membership> {
        Some(self.members.current())
    }

    fn change_membership(&mut self, change: MembershipChange) -> Result<Proposal, MembershipError> {
        Raft::change_membership(self, change)
    }

    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        Raft::transfer_leadership(self, target)
    }

    fn replication_progress(&self) -> Vec<(NodeId, Index)> {
        if self.role != Role::Leader {
            return Vec::new();
        }
        self.progress.iter().map(|(id, p)| (*id, p.matched)).collect()
    }

    fn read(&mut self, id: ReadId, mode: ReadMode) -> Result<(), ReadError> {
        Raft::read(self, id, mode)
    }

    fn on_snapshot_taken(&mut self, index: Index, data: Bytes) {
        self.take_snapshot(index, data);
    }

    fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            vote: self.vote,
            commit: self.log.committed(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.snapshot.as_ref().map_or(Index(0), |s| s.index),
        }
    }

    fn log_view(&self) -> Option<&dyn LogView> {
        Some(&self.log)
    }
}
