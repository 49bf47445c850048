//! A tiny test-only protocol for driving the simulator end to end while the Raft core is being
//! written: a fixed primary (node 1, always leader of term 1) copies its durable log to backups and
//! commits what a majority has made durable. It is deliberately simple, but it keeps the `Ready`
//! contract, so every safety invariant holds for it under every fault; `Bugs` switches in
//! deliberate mistakes so tests can show the simulator catches them.
#![allow(dead_code)] // Each test file uses a different part of the support code.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, Envelope, HardState, Index, LogView, MessageMeta, NodeId, Proposal,
    ProposeError, Protocol, Ready, Role, SeededRng, Status, Term,
};
use conclave_sim::{Options, Simulation};

/// The one term this protocol ever has.
const TERM: Term = Term(1);
/// The fixed primary.
pub const PRIMARY: NodeId = NodeId(1);
/// Most entries in one Append, so a lagging backup catches up in bounded steps.
const APPEND_ENTRIES_MAX: usize = 64;

/// Deliberate mistakes, to check that the simulator notices them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bugs {
    /// Node 2 also claims to lead term 1.
    pub two_leaders: bool,
    /// The primary ignores its disk when it restarts, and so reuses log positions.
    pub amnesia: bool,
    /// The primary refuses every proposal: nothing ever commits.
    pub refuse_proposals: bool,
}

/// The protocol's messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// Primary to backup: entries after `prev_index`, and the primary's commit index.
    Append { prev_index: Index, entries: Vec<Entry>, commit: Index },
    /// Backup to primary: its durable log matches the primary's up to `match_index`; `rejected`
    /// means an Append did not connect and the primary should resend from `match_index + 1`.
    Ack { match_index: Index, rejected: bool },
}

impl MessageMeta for Message {
    fn kind(&self) -> &'static str {
        match self {
            Message::Append { .. } => "Append",
            Message::Ack { .. } => "Ack",
        }
    }
    fn term(&self) -> Term {
        TERM
    }
}

/// One node of the primary-backup protocol.
pub struct PrimaryBackup {
    id: NodeId,
    peers: Vec<NodeId>,
    bugs: Bugs,
    log: Vec<Entry>,
    durable: Index,
    commit: Index,
    applied: Index,
    // Primary only.
    match_index: BTreeMap<NodeId, Index>,
    next_index: BTreeMap<NodeId, Index>,
    // Pending output.
    unsaved: Vec<Entry>,
    hard_state_dirty: bool,
    messages: Vec<Envelope<Message>>,
    persisted_messages: Vec<Envelope<Message>>,
}

impl PrimaryBackup {
    /// A node recovering from `durable`.
    pub fn new(id: NodeId, all: &[NodeId], durable: DurableState, bugs: Bugs) -> PrimaryBackup {
        let forget = bugs.amnesia && id == PRIMARY;
        let log = if forget { Vec::new() } else { durable.entries };
        let last = Index(log.len() as u64);
        let commit = if forget { Index(0) } else { durable.hard_state.commit };
        let peers: Vec<NodeId> = all.iter().copied().filter(|peer| *peer != id).collect();
        PrimaryBackup {
            id,
            bugs,
            match_index: peers.iter().map(|peer| (*peer, Index(0))).collect(),
            next_index: peers.iter().map(|peer| (*peer, last.next())).collect(),
            peers,
            log,
            durable: last,
            commit,
            applied: Index(0),
            unsaved: Vec::new(),
            hard_state_dirty: false,
            messages: Vec::new(),
            persisted_messages: Vec::new(),
        }
    }

    fn is_primary(&self) -> bool {
        self.id == PRIMARY
    }

    fn last_index(&self) -> Index {
        Index(self.log.len() as u64)
    }

    /// Sends each backup the durable entries it may lack, with the commit index.
    fn broadcast(&mut self) {
        for peer in self.peers.clone() {
            let next = self.next_index[&peer];
            let prev_index = next.prev();
            let end = (self.durable.0 as usize).min(prev_index.0 as usize + APPEND_ENTRIES_MAX);
            let entries = self.log[(prev_index.0 as usize).min(end)..end].to_vec();
            self.next_index.insert(peer, Index(prev_index.0 + entries.len() as u64 + 1));
            let msg = Message::Append { prev_index, entries, commit: self.commit };
            self.messages.push(Envelope { from: self.id, to: peer, msg });
        }
    }

    fn maybe_commit(&mut self) {
        let mut durable: Vec<Index> = self.match_index.values().copied().collect();
        durable.push(self.durable);
        durable.sort_unstable_by(|a, b| b.cmp(a));
        let nodes = self.peers.len() + 1;
        let majority = nodes / 2 + 1;
        let quorum = durable[majority - 1];
        if quorum > self.commit {
            self.commit = quorum;
            self.hard_state_dirty = true;
        }
    }

    fn on_append(&mut self, from: NodeId, prev_index: Index, entries: Vec<Entry>, commit: Index) {
        let reply = if prev_index > self.last_index() {
            Message::Ack { match_index: self.last_index(), rejected: true }
        } else {
            // Every log is a prefix of the primary's durable log, so entries already held are
            // identical and only the new tail needs writing.
            let new: Vec<Entry> =
                entries.iter().filter(|entry| entry.index > self.last_index()).cloned().collect();
            self.log.extend(new.iter().cloned());
            self.unsaved.extend(new);
            Message::Ack {
                match_index: Index(prev_index.0 + entries.len() as u64),
                rejected: false,
            }
        };
        let commit = commit.min(self.last_index());
        if commit > self.commit {
            self.commit = commit;
            self.hard_state_dirty = true;
        }
        // After the write: the ack promises durability.
        self.persisted_messages.push(Envelope { from: self.id, to: from, msg: reply });
    }

    fn on_ack(&mut self, from: NodeId, match_index: Index, rejected: bool) {
        let known = self.match_index.get_mut(&from).expect("a peer");
        *known = (*known).max(match_index);
        if rejected {
            self.next_index.insert(from, match_index.next());
        }
        self.maybe_commit();
    }

    fn apply_to(&self) -> Index {
        self.commit.min(self.durable)
    }
}

impl LogView for PrimaryBackup {
    fn first_index(&self) -> Index {
        Index(1)
    }
    fn last_index(&self) -> Index {
        Index(self.log.len() as u64)
    }
    fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.get((index.0.checked_sub(1)?) as usize)
    }
}

impl Protocol for PrimaryBackup {
    type Message = Message;

    fn id(&self) -> NodeId {
        self.id
    }

    fn tick(&mut self) {
        if self.is_primary() {
            self.broadcast();
        }
    }

    fn step(&mut self, envelope: Envelope<Message>) {
        match envelope.msg {
            Message::Append { prev_index, entries, commit } if !self.is_primary() => {
                self.on_append(envelope.from, prev_index, entries, commit)
            }
            Message::Ack { match_index, rejected } if self.is_primary() => {
                self.on_ack(envelope.from, match_index, rejected)
            }
            _ => {}
        }
    }

    fn propose(&mut self, data: Bytes) -> Result<Proposal, ProposeError> {
        if !self.is_primary() {
            return Err(ProposeError::NotLeader { leader_hint: Some(PRIMARY) });
        }
        if self.bugs.refuse_proposals {
            return Err(ProposeError::LeadershipTransfer);
        }
        let entry = Entry::command(self.last_index().next(), TERM, data);
        let proposal = Proposal { index: entry.index, term: entry.term };
        self.log.push(entry.clone());
        self.unsaved.push(entry);
        Ok(proposal)
    }

    fn has_ready(&self) -> bool {
        !self.unsaved.is_empty()
            || self.hard_state_dirty
            || !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.applied < self.apply_to()
    }

    fn ready(&mut self) -> Ready<Message> {
        let committed_entries =
            self.log[self.applied.0 as usize..self.apply_to().0 as usize].to_vec();
        self.applied = self.apply_to();
        let hard_state = std::mem::take(&mut self.hard_state_dirty).then_some(HardState {
            term: TERM,
            vote: None,
            commit: self.commit,
        });
        Ready {
            hard_state,
            entries: std::mem::take(&mut self.unsaved),
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            committed_entries,
            ..Ready::default()
        }
    }

    fn on_persisted(&mut self, index: Index, term: Term) {
        if self.entry(index).is_some_and(|entry| entry.term == term) {
            self.durable = self.durable.max(index);
        }
        if self.is_primary() {
            self.maybe_commit();
            self.broadcast();
        }
    }

    fn status(&self) -> Status {
        let leads = self.is_primary() || (self.bugs.two_leaders && self.id == NodeId(2));
        Status {
            id: self.id,
            role: if leads { Role::Leader } else { Role::Follower },
            term: TERM,
            leader: Some(PRIMARY),
            vote: None,
            commit: self.commit,
            applied: self.applied,
            last_index: self.last_index(),
            snapshot_index: Index(0),
        }
    }

    fn log_view(&self) -> Option<&dyn LogView> {
        Some(self)
    }
}

/// A simulation of the correct primary-backup protocol.
pub fn simulation(options: Options) -> Simulation<PrimaryBackup> {
    simulation_with_bugs(options, Bugs::default())
}

/// A simulation of the primary-backup protocol with `bugs` switched in.
pub fn simulation_with_bugs(options: Options, bugs: Bugs) -> Simulation<PrimaryBackup> {
    // A fixed primary holds no elections, so "could a node without this entry be elected?" does
    // not apply.
    let options = Options { check_commit_durability: false, ..options };
    Simulation::new(options, move |id, all, durable, _rng: SeededRng| {
        PrimaryBackup::new(id, all, durable, bugs)
    })
    .expect("valid options")
}

/// Node ids `1..=n`.
pub fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}
