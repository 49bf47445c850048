//! A tiny test-only protocol for driving the simulator end to end, independently of the Raft core:
//! a fixed primary (node 1, always leader of term 1) copies its durable log to backups and commits
//! what a majority has made durable. With `Settings::snapshot_every`, every node asks for a
//! snapshot of its state machine every N applied entries and compacts its log behind it; a backup
//! that needs compacted entries gets the primary's whole snapshot in one `Install` message. It is
//! deliberately simple, but it keeps the `Ready` contract, so every safety invariant holds for it
//! under every fault; `Bugs` switches in deliberate mistakes so tests can show the simulator
//! catches them.
#![allow(dead_code)] // Each test file uses a different part of the support code.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, Envelope, HardState, Index, LogView, Membership, MessageMeta, NodeId,
    Proposal, ProposeError, Protocol, Ready, Role, SeededRng, Snapshot, Status, Term,
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
    /// Every node counts its entries durable as soon as it has them, not when the driver says
    /// they are: the primary commits (and applies) entries its disk may still lose.
    pub early_durable: bool,
    /// The primary damages the state machine image it sends a lagging backup.
    pub corrupt_install: bool,
}

/// How a node behaves: its deliberate bugs and how often it snapshots.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// Deliberate mistakes.
    pub bugs: Bugs,
    /// Ask for a snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
}

/// The protocol's messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// Primary to backup: entries after `prev_index`, and the primary's commit index.
    Append { prev_index: Index, entries: Vec<Entry>, commit: Index },
    /// Backup to primary: its durable log matches the primary's up to `match_index`; `rejected`
    /// means an Append did not connect and the primary should resend from `match_index + 1`.
    Ack { match_index: Index, rejected: bool },
    /// Primary to a backup that needs entries the primary compacted: its whole state.
    Install { snapshot: Snapshot },
}

impl MessageMeta for Message {
    fn kind(&self) -> &'static str {
        match self {
            Message::Append { .. } => "Append",
            Message::Ack { .. } => "Ack",
            Message::Install { .. } => "Install",
        }
    }
    fn term(&self) -> Term {
        TERM
    }
}

/// One node of the primary-backup protocol.
pub struct PrimaryBackup {
    id: NodeId,
    all: Vec<NodeId>,
    peers: Vec<NodeId>,
    bugs: Bugs,
    snapshot_every: u64,
    /// The entries from `first` on.
    log: Vec<Entry>,
    /// The first index in `log`; everything before it is in `snapshot`.
    first: Index,
    durable: Index,
    commit: Index,
    applied: Index,
    /// The newest state machine image: taken here, or installed from the primary.
    snapshot: Option<Snapshot>,
    snapshot_requested: bool,
    // Primary only.
    match_index: BTreeMap<NodeId, Index>,
    next_index: BTreeMap<NodeId, Index>,
    // Pending output.
    unsaved: Vec<Entry>,
    hard_state_dirty: bool,
    messages: Vec<Envelope<Message>>,
    persisted_messages: Vec<Envelope<Message>>,
    snapshot_write: Option<Snapshot>,
    compact_to: Option<Index>,
    snapshot_due: Option<Index>,
}

impl PrimaryBackup {
    /// A node recovering from `durable`, without snapshots.
    pub fn new(id: NodeId, all: &[NodeId], durable: DurableState, bugs: Bugs) -> PrimaryBackup {
        PrimaryBackup::with_settings(id, all, durable, Settings { bugs, snapshot_every: 0 })
    }

    /// A node recovering from `durable`: the log after its snapshot (the driver restores the
    /// state machine from the snapshot itself).
    pub fn with_settings(
        id: NodeId,
        all: &[NodeId],
        durable: DurableState,
        settings: Settings,
    ) -> PrimaryBackup {
        let bugs = settings.bugs;
        let forget = bugs.amnesia && id == PRIMARY;
        let (snapshot, entries, commit) = if forget {
            (None, Vec::new(), Index(0))
        } else {
            (durable.snapshot, durable.entries, durable.hard_state.commit)
        };
        let base = snapshot.as_ref().map_or(Index(0), |s| s.index);
        let log: Vec<Entry> = entries.into_iter().filter(|entry| entry.index > base).collect();
        let last = Index(base.0 + log.len() as u64);
        let peers: Vec<NodeId> = all.iter().copied().filter(|peer| *peer != id).collect();
        PrimaryBackup {
            id,
            all: all.to_vec(),
            bugs,
            snapshot_every: settings.snapshot_every,
            match_index: peers.iter().map(|peer| (*peer, Index(0))).collect(),
            next_index: peers.iter().map(|peer| (*peer, last.next())).collect(),
            peers,
            log,
            first: base.next(),
            durable: last,
            commit: commit.max(base),
            applied: base,
            snapshot,
            snapshot_requested: false,
            unsaved: Vec::new(),
            hard_state_dirty: false,
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            snapshot_write: None,
            compact_to: None,
            snapshot_due: None,
        }
    }

    fn is_primary(&self) -> bool {
        self.id == PRIMARY
    }

    fn last_index(&self) -> Index {
        Index(self.first.0 - 1 + self.log.len() as u64)
    }

    /// The entries with `from <= index <= to`, all held.
    fn slice(&self, from: Index, to: Index) -> Vec<Entry> {
        if from > to {
            return Vec::new();
        }
        self.log[(from.0 - self.first.0) as usize..=(to.0 - self.first.0) as usize].to_vec()
    }

    /// Sends each backup the durable entries it may lack, with the commit index, or the whole
    /// snapshot if it needs entries compacted away.
    fn broadcast(&mut self) {
        for peer in self.peers.clone() {
            let next = self.next_index[&peer];
            if next < self.first {
                let Some(mut snapshot) = self.snapshot.clone() else { continue };
                if self.bugs.corrupt_install {
                    let mut data = snapshot.data.to_vec();
                    if let Some(last) = data.last_mut() {
                        *last ^= 0x01;
                    }
                    snapshot.data = Bytes::from(data);
                }
                self.next_index.insert(peer, snapshot.index.next());
                let msg = Message::Install { snapshot };
                self.messages.push(Envelope { from: self.id, to: peer, msg });
                continue;
            }
            let prev_index = next.prev();
            let end = self.durable.min(Index(prev_index.0 + APPEND_ENTRIES_MAX as u64));
            let entries = self.slice(next, end);
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
            // Every log is a prefix of the primary's durable log, so entries already held (or
            // covered by the snapshot) are identical and only the new tail needs writing.
            let new: Vec<Entry> =
                entries.iter().filter(|entry| entry.index > self.last_index()).cloned().collect();
            self.log.extend(new.iter().cloned());
            self.unsaved.extend(new);
            if self.bugs.early_durable {
                self.durable = self.last_index();
            }
            Message::Ack {
                match_index: Index(prev_index.0 + entries.len() as u64),
                rejected: false,
            }
        };
        self.learn_commit(commit);
        // After the write: the ack promises durability.
        self.persisted_messages.push(Envelope { from: self.id, to: from, msg: reply });
    }

    fn learn_commit(&mut self, commit: Index) {
        let commit = commit.min(self.last_index());
        if commit > self.commit {
            self.commit = commit;
            self.hard_state_dirty = true;
        }
    }

    /// A backup gets the primary's state: if it is ahead of what this node applied, the log
    /// keeps only what follows it, and the state machine is replaced (by the driver, from the
    /// `Ready`'s snapshot).
    fn on_install(&mut self, from: NodeId, snapshot: Snapshot) {
        if snapshot.index > self.applied {
            // Every log is a prefix of the primary's, so holding the index means holding the entry.
            if self.last_index() >= snapshot.index {
                self.log.drain(..(snapshot.index.0 + 1 - self.first.0) as usize);
            } else {
                self.log.clear();
            }
            self.first = snapshot.index.next();
            self.unsaved.retain(|entry| entry.index > snapshot.index);
            self.durable = self.durable.max(snapshot.index);
            self.applied = snapshot.index;
            if snapshot.index > self.commit {
                self.commit = snapshot.index;
                self.hard_state_dirty = true;
            }
            self.snapshot = Some(snapshot.clone());
            self.snapshot_write = Some(snapshot);
        }
        let reply = Message::Ack { match_index: self.last_index(), rejected: false };
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

    fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(Index(0), |s| s.index)
    }
}

impl LogView for PrimaryBackup {
    fn first_index(&self) -> Index {
        self.first
    }
    fn last_index(&self) -> Index {
        PrimaryBackup::last_index(self)
    }
    fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.get((index.0.checked_sub(self.first.0)?) as usize)
    }
    fn term_before_first(&self) -> Term {
        if self.first.0 > 1 {
            TERM
        } else {
            Term(0)
        }
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
            Message::Install { snapshot } if !self.is_primary() => {
                self.on_install(envelope.from, snapshot)
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
        if self.bugs.early_durable {
            self.durable = self.last_index();
            self.maybe_commit();
        }
        Ok(proposal)
    }

    fn has_ready(&self) -> bool {
        !self.unsaved.is_empty()
            || self.hard_state_dirty
            || !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.applied < self.apply_to()
            || self.snapshot_write.is_some()
            || self.compact_to.is_some()
    }

    fn ready(&mut self) -> Ready<Message> {
        let apply_to = self.apply_to().max(self.applied);
        let committed_entries = self.slice(self.applied.next(), apply_to);
        self.applied = apply_to;
        let mut snapshot_due = None;
        if self.snapshot_every > 0
            && !self.snapshot_requested
            && self.applied.0 >= self.snapshot_index().0 + self.snapshot_every
        {
            // Asked in the Ready that releases the entries: the driver applies them first.
            self.snapshot_requested = true;
            snapshot_due = Some(self.applied);
        }
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
            snapshot: self.snapshot_write.take(),
            compact_log_to: self.compact_to.take(),
            snapshot_due,
            reads: Vec::new(),
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

    fn on_snapshot_taken(&mut self, index: Index, data: Bytes) {
        self.snapshot_requested = false;
        // Stale if an installed snapshot overtook it.
        if index <= self.snapshot_index() || index < self.first.prev() {
            return;
        }
        let snapshot =
            Snapshot { index, term: TERM, membership: Membership::new(self.all.clone()), data };
        self.snapshot = Some(snapshot.clone());
        self.snapshot_write = Some(snapshot);
        // Compact behind it: a backup that needs these entries now gets the snapshot.
        self.log.drain(..(index.0 + 1 - self.first.0) as usize);
        self.first = index.next();
        self.compact_to = Some(index);
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
            snapshot_index: self.snapshot_index(),
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
    simulation_with(options, Settings { bugs, snapshot_every: 0 })
}

/// A simulation of the primary-backup protocol with the given settings.
pub fn simulation_with(options: Options, settings: Settings) -> Simulation<PrimaryBackup> {
    // A fixed primary holds no elections, so "could a node without this entry be elected?" does
    // not apply.
    let options = Options { check_commit_durability: false, ..options };
    Simulation::new(options, move |id, all, durable, _rng: SeededRng| {
        PrimaryBackup::with_settings(id, all, durable, settings)
    })
    .expect("valid options")
}

/// Node ids `1..=n`.
pub fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}
