//! A conformance check of the [`Ready`] contract, for tests of drivers and protocols alike.
//!
//! [`Checked`] wraps any [`Protocol`] and passes every call through, watching the traffic on
//! both sides of the contract described in the crate documentation:
//!
//! - the protocol's side: the entries of a `Ready` are contiguous and leave no gap after what
//!   it handed out before; committed entries are released in order, without gaps, and only once
//!   the driver reported them durable (applying never runs ahead of the disk); the hard state's
//!   term and commit never go back; a log compaction is offered only behind a snapshot;
//! - the driver's side: [`Protocol::on_persisted`] reports only entries it was handed;
//!   [`Protocol::on_snapshot_taken`] answers an outstanding [`Ready::snapshot_due`] with an index
//!   the state machine was given; and, for a driver that calls
//!   [`Checked::assert_persisted_messages_may_go`] just before it sends a `Ready`'s
//!   [`Ready::persisted_messages`], no entry handed out with that `Ready` or before it is still
//!   unreported (entries of later `Ready`s may be: a pipelined driver keeps several writes in
//!   flight and releases each `Ready`'s messages as its own write completes).
//!
//! A broken rule panics with a message that names it. The checks run in debug builds (tests and
//! the simulator); in release builds the wrapper only passes calls through, so a driver used for
//! benchmarks can keep it. It tracks only what a `Ready` hands out through it: calls made on the
//! wrapped protocol directly (through [`Checked::inner_mut`]) are not seen, so a driver should
//! make `ready`, `on_persisted` and `on_snapshot_taken` through the wrapper.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Deref, DerefMut};

use bytes::Bytes;

use crate::entry::HardState;
use crate::ids::{Index, NodeId, Term};
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::protocol::{LogView, Proposal, ProposeError, Protocol, Status, TransferError};
use crate::read::{ReadError, ReadId, ReadMode};
use crate::ready::{Envelope, Ready};

/// A protocol wrapped so that every `Ready` it hands out, and every report the driver makes back,
/// is checked against the persistence contract. See the module documentation.
pub struct Checked<P: Protocol> {
    inner: P,
    /// Entries handed out for persistence and not yet reported durable: index to term.
    unreported: BTreeMap<Index, Term>,
    /// The durable log prefix as the driver reported it (what the node started with counts).
    durable: Index,
    /// The last index handed out or durable: a `Ready`'s entries may not start beyond the next.
    handed_to: Index,
    /// The last committed entry released for application.
    released: Index,
    /// The newest hard state handed out.
    hard_state: Option<HardState>,
    /// The newest snapshot index handed out: compaction may not go beyond it.
    snapshot_index: Index,
    /// The applied index a snapshot was asked for, not yet answered.
    snapshot_due: Option<Index>,
    /// For each `Ready` handed out with persisted messages, not yet sent, in order: the last
    /// entry index handed out up to and including it. Its messages vouch for everything up to
    /// there being durable.
    persisted_messages_vouch_for: VecDeque<Index>,
}

impl<P: Protocol> Checked<P> {
    /// Wraps `inner`, taking what it holds now as durable and applied: wrap a protocol as it is
    /// built from its durable state, before its first `Ready`.
    pub fn new(inner: P) -> Checked<P> {
        let status = inner.status();
        Checked {
            inner,
            unreported: BTreeMap::new(),
            durable: status.last_index,
            handed_to: status.last_index,
            released: status.applied,
            hard_state: None,
            snapshot_index: status.snapshot_index,
            snapshot_due: None,
            persisted_messages_vouch_for: VecDeque::new(),
        }
    }

    /// The wrapped protocol. Calls made on it directly are not checked (see the module docs).
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// Unwraps the protocol.
    pub fn into_inner(self) -> P {
        self.inner
    }

    /// For a driver to call just before it sends a `Ready`'s non-empty `persisted_messages`,
    /// once per such `Ready` and in the order the `Ready`s were handed out: every entry handed
    /// out with that `Ready` or before it must have been reported durable, or a vote or an
    /// acknowledgement could leave before what it promises is on disk.
    pub fn assert_persisted_messages_may_go(&mut self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let id = self.inner.id();
        let Some(through) = self.persisted_messages_vouch_for.pop_front() else {
            panic!(
                "contract: node {id} is about to send persisted messages but no Ready handed any \
                 out that were not sent already"
            );
        };
        let unreported: Vec<_> = self.unreported.range(..=through).collect();
        assert!(
            unreported.is_empty(),
            "contract: node {id} is about to send persisted messages while entries {unreported:?} \
             (index, term) were never reported durable with on_persisted"
        );
    }

    /// Checks one `Ready` on its way to the driver and records what it hands out.
    fn observe(&mut self, ready: &Ready<P::Message>) {
        let id = self.inner.id();
        if let Some(next) = ready.hard_state {
            if let Some(previous) = self.hard_state {
                assert!(
                    next.term >= previous.term && next.commit >= previous.commit,
                    "contract: node {id} hands out hard state {next:?} after {previous:?}: term \
                     and commit never go back"
                );
            }
            self.hard_state = Some(next);
        }
        if let Some(snapshot) = &ready.snapshot {
            self.snapshot_index = self.snapshot_index.max(snapshot.index);
            // A snapshot beyond what the state machine holds restores it, and stands for the
            // log up to its index (persisted with this Ready's writes).
            self.released = self.released.max(snapshot.index);
            self.durable = self.durable.max(snapshot.index);
            self.handed_to = self.handed_to.max(snapshot.index);
            self.unreported.retain(|index, _| *index > snapshot.index);
        }
        if let Some(upto) = ready.compact_log_to {
            assert!(
                upto <= self.snapshot_index,
                "contract: node {id} offers to compact the durable log to {upto} but its newest \
                 snapshot ends at {}: the entries would be lost",
                self.snapshot_index
            );
        }
        self.observe_entries(ready);
        if !ready.persisted_messages.is_empty() {
            self.persisted_messages_vouch_for.push_back(self.handed_to);
        }
        for entry in &ready.committed_entries {
            assert_eq!(
                entry.index,
                self.released.next(),
                "contract: node {id} releases entry {} for application after {}: committed \
                 entries are applied in order, each once",
                entry.index,
                self.released
            );
            assert!(
                entry.index <= self.durable,
                "contract: node {id} releases entry {} for application, but only {} was reported \
                 durable: applying may never run ahead of the disk",
                entry.index,
                self.durable
            );
            self.released = entry.index;
        }
        if let Some(index) = ready.snapshot_due {
            self.snapshot_due = Some(index);
        }
    }

    /// The entries to persist: contiguous, with no gap after what was handed out before; the
    /// first may go back (a conflicting suffix replaced), which takes the durable prefix back too.
    fn observe_entries(&mut self, ready: &Ready<P::Message>) {
        let id = self.inner.id();
        let Some(first) = ready.entries.first() else { return };
        assert!(
            first.index <= self.handed_to.next(),
            "contract: node {id} hands out entries from {} but only up to {} were handed out: \
             the durable log would have a gap",
            first.index,
            self.handed_to
        );
        for pair in ready.entries.windows(2) {
            assert_eq!(
                pair[1].index,
                pair[0].index.next(),
                "contract: node {id} hands out entries that are not contiguous"
            );
        }
        self.unreported.split_off(&first.index);
        self.durable = self.durable.min(first.index.prev());
        for entry in &ready.entries {
            self.unreported.insert(entry.index, entry.term);
        }
        self.handed_to = ready.entries.last().map_or(self.handed_to, |e| e.index);
    }
}

impl<P: Protocol> Deref for Checked<P> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.inner
    }
}

/// Gives the wrapped protocol's own methods (beyond [`Protocol`]) to the driver; `ready`,
/// `on_persisted` and `on_snapshot_taken` must still go through the wrapper to be checked.
impl<P: Protocol> DerefMut for Checked<P> {
    fn deref_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl<P: Protocol> Protocol for Checked<P> {
    type Message = P::Message;

    fn id(&self) -> NodeId {
        self.inner.id()
    }

    fn tick(&mut self) {
        self.inner.tick();
    }

    fn step(&mut self, envelope: Envelope<P::Message>) {
        self.inner.step(envelope);
    }

    fn propose(&mut self, data: Bytes) -> Result<Proposal, ProposeError> {
        self.inner.propose(data)
    }

    fn has_ready(&self) -> bool {
        self.inner.has_ready()
    }

    fn ready(&mut self) -> Ready<P::Message> {
        let ready = self.inner.ready();
        if cfg!(debug_assertions) {
            self.observe(&ready);
        }
        ready
    }

    fn on_persisted(&mut self, index: Index, term: Term) {
        if cfg!(debug_assertions) {
            assert!(
                index <= self.handed_to,
                "contract: on_persisted({index}, {term}) on node {} but entries were handed out \
                 only up to {}: the driver reports what it was never given",
                self.inner.id(),
                self.handed_to
            );
            // A report for an entry overwritten since is stale, and the protocol ignores it.
            if self.unreported.get(&index) == Some(&term) {
                self.durable = self.durable.max(index);
                self.unreported = self.unreported.split_off(&index.next());
            }
        }
        self.inner.on_persisted(index, term);
    }

    fn on_snapshot_taken(&mut self, index: Index, data: Bytes) {
        if cfg!(debug_assertions) {
            assert!(
                self.snapshot_due.is_some(),
                "contract: node {} was handed a snapshot at {index} it never asked for",
                self.inner.id()
            );
            assert!(
                index <= self.released,
                "contract: node {} was handed a snapshot at {index} but released entries only up \
                 to {}: the state machine cannot have applied it",
                self.inner.id(),
                self.released
            );
            self.snapshot_due = None;
        }
        self.inner.on_snapshot_taken(index, data);
    }

    fn status(&self) -> Status {
        self.inner.status()
    }

    fn log_view(&self) -> Option<&dyn LogView> {
        self.inner.log_view()
    }

    fn membership(&self) -> Option<&Membership> {
        self.inner.membership()
    }

    fn change_membership(&mut self, change: MembershipChange) -> Result<Proposal, MembershipError> {
        self.inner.change_membership(change)
    }

    fn replication_progress(&self) -> Vec<(NodeId, Index)> {
        self.inner.replication_progress()
    }

    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        self.inner.transfer_leadership(target)
    }

    fn read(&mut self, id: ReadId, mode: ReadMode) -> Result<(), ReadError> {
        self.inner.read(id, mode)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::entry::Entry;
    use crate::protocol::{MessageMeta, Role};

    #[derive(Clone, Debug)]
    struct Ping;

    impl MessageMeta for Ping {
        fn kind(&self) -> &'static str {
            "Ping"
        }

        fn term(&self) -> Term {
            Term(1)
        }
    }

    /// A protocol that hands out scripted `Ready`s, so each rule can be broken on purpose.
    struct Scripted(VecDeque<Ready<Ping>>);

    impl Protocol for Scripted {
        type Message = Ping;

        fn id(&self) -> NodeId {
            NodeId(1)
        }

        fn tick(&mut self) {}

        fn step(&mut self, _: Envelope<Ping>) {}

        fn propose(&mut self, _: Bytes) -> Result<Proposal, ProposeError> {
            Err(ProposeError::NotLeader { leader_hint: None })
        }

        fn has_ready(&self) -> bool {
            !self.0.is_empty()
        }

        fn ready(&mut self) -> Ready<Ping> {
            self.0.pop_front().unwrap_or_default()
        }

        fn on_persisted(&mut self, _: Index, _: Term) {}

        fn status(&self) -> Status {
            Status {
                id: NodeId(1),
                role: Role::Follower,
                term: Term(1),
                leader: None,
                vote: None,
                commit: Index(0),
                applied: Index(0),
                last_index: Index(0),
                snapshot_index: Index(0),
            }
        }
    }

    fn entries(from: u64, to: u64) -> Vec<Entry> {
        (from..=to).map(|i| Entry::noop(Index(i), Term(1))).collect()
    }

    fn checked(readies: Vec<Ready<Ping>>) -> Checked<Scripted> {
        Checked::new(Scripted(readies.into()))
    }

    fn message() -> Envelope<Ping> {
        Envelope { from: NodeId(1), to: NodeId(2), msg: Ping }
    }

    #[test]
    fn a_driver_that_keeps_the_contract_passes() {
        let mut node = checked(vec![
            Ready {
                entries: entries(1, 2),
                persisted_messages: vec![message()],
                ..Ready::default()
            },
            Ready {
                committed_entries: entries(1, 2),
                snapshot_due: Some(Index(2)),
                ..Ready::default()
            },
            Ready { entries: entries(2, 3), ..Ready::default() },
        ]);
        let ready = node.ready();
        node.on_persisted(Index(2), Term(1));
        node.assert_persisted_messages_may_go();
        assert_eq!(ready.persisted_messages.len(), 1);
        node.ready();
        node.on_snapshot_taken(Index(2), Bytes::new());
        // A conflicting suffix replaced from index 2 takes the durable prefix back to 1.
        node.ready();
        node.on_persisted(Index(3), Term(1));
    }

    /// A node that handed out two `Ready`s, each with entries and persisted messages, whose
    /// writes are both still in flight.
    fn two_writes_in_flight() -> Checked<Scripted> {
        let write = |from, to| Ready {
            entries: entries(from, to),
            persisted_messages: vec![message()],
            ..Ready::default()
        };
        let mut node = checked(vec![write(1, 2), write(3, 4)]);
        node.ready();
        node.ready();
        node
    }

    #[test]
    fn a_pipelined_driver_sends_each_readys_messages_as_its_own_write_completes() {
        let mut node = two_writes_in_flight();
        // The first write completes while the second is still in flight.
        node.on_persisted(Index(2), Term(1));
        node.assert_persisted_messages_may_go();
        node.on_persisted(Index(4), Term(1));
        node.assert_persisted_messages_may_go();
    }

    #[test]
    #[should_panic(expected = "persisted messages while entries [(Index(3), Term(1))")]
    fn sending_a_later_readys_messages_before_its_write_completes_is_caught() {
        let mut node = two_writes_in_flight();
        node.on_persisted(Index(2), Term(1));
        node.assert_persisted_messages_may_go();
        node.assert_persisted_messages_may_go();
    }

    #[test]
    #[should_panic(expected = "persisted messages while entries")]
    fn sending_persisted_messages_before_reporting_the_entries_durable_is_caught() {
        let mut node = checked(vec![Ready {
            entries: entries(1, 2),
            persisted_messages: vec![message()],
            ..Ready::default()
        }]);
        node.ready();
        node.on_persisted(Index(1), Term(1));
        node.assert_persisted_messages_may_go();
    }

    #[test]
    #[should_panic(expected = "reports what it was never given")]
    fn reporting_entries_never_handed_out_is_caught() {
        let mut node = checked(vec![Ready { entries: entries(1, 2), ..Ready::default() }]);
        node.ready();
        node.on_persisted(Index(3), Term(1));
    }

    #[test]
    #[should_panic(expected = "applying may never run ahead of the disk")]
    fn releasing_entries_before_they_are_durable_is_caught() {
        let mut node = checked(vec![Ready {
            entries: entries(1, 2),
            committed_entries: entries(1, 1),
            ..Ready::default()
        }]);
        node.ready();
    }

    #[test]
    #[should_panic(expected = "the durable log would have a gap")]
    fn a_gap_in_the_entries_handed_out_is_caught() {
        let mut node = checked(vec![
            Ready { entries: entries(1, 2), ..Ready::default() },
            Ready { entries: entries(4, 4), ..Ready::default() },
        ]);
        node.ready();
        node.ready();
    }

    #[test]
    #[should_panic(expected = "it never asked for")]
    fn a_snapshot_nobody_asked_for_is_caught() {
        let mut node = checked(vec![]);
        node.on_snapshot_taken(Index(0), Bytes::new());
    }

    #[test]
    #[should_panic(expected = "the entries would be lost")]
    fn compaction_beyond_the_newest_snapshot_is_caught() {
        let mut node = checked(vec![Ready { compact_log_to: Some(Index(1)), ..Ready::default() }]);
        node.ready();
    }
}
