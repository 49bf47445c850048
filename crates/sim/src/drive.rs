//! Carrying out a node's `Ready` in the order the persistence contract demands, and watching what
//! the node says about itself afterwards.
//!
//! Per `Ready`: send `messages` at once; issue the writes (`snapshot`, `entries`, `hard_state`,
//! `compact_log_to`) to the node's disk as one write. When that write completes (at once on an
//! instant disk, later on a slow one; always after every earlier write of the node): send
//! `persisted_messages`, report the durable prefix with `on_persisted`, restore the state machine
//! from the snapshot if it is ahead of it, apply `committed_entries`, and take the image
//! `snapshot_due` asks for. Then, once the node has nothing more to do, its status is compared with
//! the previous one to trace role, term and commit changes.
//!
//! The driver checks nothing itself beyond the contract: at each of these points it tells the
//! registered observers (`observer.rs`), which hold the protocol's invariants.

use conclave_core::{Entry, Envelope, Index, MessageMeta, NodeId, Protocol, Ready, Role, Snapshot};

use crate::disk::{Completion, DiskWrite};
use crate::image;
use crate::nemesis::NemesisEvent;
use crate::network::Route;
use crate::node::Job;
use crate::observer::DurableWrite;
use crate::options::Fault;
use crate::simulation::{Event, Simulation};
use crate::trace::TraceEvent;
use crate::violation::{Breach, Invariant};

/// With `torn-write`, the chance that a crash finding a write in flight leaves its record torn.
const TEAR_PROBABILITY: f64 = 0.5;

/// How many `Ready`s one call may produce before the driver calls it a livelock. Each `Ready`
/// normally leads to at most one more (after `on_persisted`); thousands mean `has_ready` never
/// turns false.
const READY_ROUNDS_MAX: usize = 10_000;

impl<P: Protocol> Simulation<P> {
    /// Everything that follows a call into `id`: drain its work, then observe its status.
    pub(crate) fn after_call(&mut self, id: NodeId) -> Result<(), Breach> {
        self.drain(id)?;
        self.observe(id)
    }

    /// Takes and carries out `Ready`s while the node has any.
    fn drain(&mut self, id: NodeId) -> Result<(), Breach> {
        let slot_index = (id.0 - 1) as usize;
        for _ in 0..READY_ROUNDS_MAX {
            let Some(protocol) = self.world.nodes[slot_index].protocol.as_mut() else {
                return Ok(());
            };
            if !protocol.has_ready() {
                return Ok(());
            }
            let ready = protocol.ready();
            if ready.is_empty() {
                return Ok(()); // Claimed work but had none; nothing to do, and no reason to spin.
            }
            let has_log = protocol.log_view().is_some();
            // What the promises in this Ready rest on: the term and vote as it was handed over.
            let promised = (!ready.persisted_messages.is_empty()).then(|| {
                let status = protocol.status();
                (status.term, status.vote)
            });
            let Ready {
                hard_state,
                entries,
                messages,
                persisted_messages,
                committed_entries,
                snapshot,
                compact_log_to,
                snapshot_due,
                reads,
            } = ready;

            for envelope in messages {
                self.send(id, envelope)?;
            }

            let write = DiskWrite { hard_state, entries, snapshot, compact_to: compact_log_to };
            let job = Job {
                persisted_messages,
                committed_entries,
                snapshot_due,
                promised,
                has_log,
                reads,
            };
            if self.issue(id, write, job) && !self.complete(id)? {
                return Ok(()); // Crashed while completing the write.
            }
        }
        Err(Breach::new(
            Invariant::DriverContract,
            format!("node {id} still has work after {READY_ROUNDS_MAX} Ready rounds"),
        ))
    }

    /// Issues a `Ready`'s write to `id`'s disk. Returns true if it completes right now (an
    /// instant disk with nothing else in flight); otherwise its completion is scheduled.
    fn issue(&mut self, id: NodeId, write: DiskWrite, job: Job<P::Message>) -> bool {
        let now_us = self.world.now_us;
        let slot = &mut self.world.nodes[(id.0 - 1) as usize];
        let issued = slot.disk.issue(now_us, write, job);
        if issued.done_at_us <= now_us && slot.disk.pending_len() == 1 {
            return true;
        }
        let event = Event::DiskDone { node: id, incarnation: slot.incarnation, seq: issued.seq };
        self.world.queue.push(issued.done_at_us, event);
        false
    }

    /// A scheduled write completion of `id` came due.
    pub(crate) fn on_disk_done(
        &mut self,
        id: NodeId,
        incarnation: u64,
        seq: u64,
    ) -> Result<(), Breach> {
        let slot = self.slot(id);
        if slot.incarnation != incarnation || slot.disk.next_seq() != Some(seq) {
            return Ok(()); // A write of a previous life, lost in its crash.
        }
        if self.complete(id)? {
            self.after_call(id)?;
        }
        Ok(())
    }

    /// Completes `id`'s oldest write and carries out what waited for it. Returns false if the
    /// node went down doing so (a failed sync, or a crash point).
    fn complete(&mut self, id: NodeId) -> Result<bool, Breach> {
        let slot_index = (id.0 - 1) as usize;
        let Some(completion) = self.world.nodes[slot_index].disk.complete_next() else {
            return Ok(true);
        };
        let (result, write, job) = match completion {
            Completion::SyncFailed => {
                self.on_sync_failed(id);
                return Ok(false);
            }
            Completion::Done { result, write, payload } => (result, write, payload),
        };
        let applied = result.map_err(|error| {
            Breach::new(Invariant::DriverContract, format!("node {id}: {error}"))
        })?;
        let durable = DurableWrite {
            hard_state: write.hard_state.as_ref(),
            entries: &write.entries,
            snapshot: write.snapshot.as_ref(),
            compact_to: write.compact_to,
            term_prev: applied.term_prev,
            has_log: job.has_log,
        };
        self.notify(|observer, sim| observer.on_durable(sim, id, &durable))?;
        if let Some(upto) = write.compact_to {
            self.trace.record(self.world.now_us, TraceEvent::Compact { node: id, upto });
        }

        if let Some((term, vote)) = job.promised {
            self.notify(|observer, sim| observer.on_promises(sim, id, term, vote))?;
            for envelope in job.persisted_messages {
                self.send(id, envelope)?;
            }
            if self.maybe_crash_at_point(id) {
                // The process died right after its promises left: nothing more of this Ready
                // happens (no on_persisted, no apply).
                return Ok(false);
            }
        }
        if let Some(last) = write.entries.last() {
            let protocol = self.world.nodes[slot_index].protocol.as_mut().expect("still up");
            protocol.on_persisted(last.index, last.term);
        }
        if let Some(snapshot) = &write.snapshot {
            if snapshot.index.0 > self.world.nodes[slot_index].applied.len() as u64 {
                self.restore(id, snapshot)?;
            }
        }
        for entry in job.committed_entries {
            self.apply(id, entry)?;
        }
        for read in job.reads {
            self.on_read_state(id, read)?;
        }
        if let Some(index) = job.snapshot_due {
            self.take_snapshot(id, index)?;
        }
        Ok(true)
    }

    /// A sync of `id` failed: the node stops at once (its write, and every later one, is lost),
    /// and in a random run the nemesis brings it back later.
    fn on_sync_failed(&mut self, id: NodeId) {
        self.trace.record(self.world.now_us, TraceEvent::FsyncError { node: id });
        self.counters.sync_failures += 1;
        // The failed write is simply gone; no other write was being written.
        self.crash_node(id, 0.0);
        let Some(down_us) = self.sync_failure_down_us(id) else { return };
        self.world
            .queue
            .push(self.world.now_us + down_us, Event::Nemesis(NemesisEvent::Restart { node: id }));
    }

    /// Restores `id`'s state machine from `snapshot` (its applied sequence jumps to the snapshot's
    /// index), checking the restored entries against the global applied sequence. Clients waiting
    /// on an index the restore covers learn their fate as if the entry had been applied.
    pub(crate) fn restore(&mut self, id: NodeId, snapshot: &Snapshot) -> Result<(), Breach> {
        let restored = image::decode(&snapshot.data).map_err(|reason| {
            Breach::new(
                Invariant::StateMachineSafety,
                format!(
                    "node {id} cannot restore the snapshot at index {}: {reason}",
                    snapshot.index
                ),
            )
        })?;
        self.notify(|observer, sim| observer.on_restore(sim, id, snapshot, &restored))?;
        for entry in restored.iter().skip(self.applied_global.len()) {
            self.applied_global.push(entry.clone());
        }
        let event = TraceEvent::Restore { node: id, index: snapshot.index, term: snapshot.term };
        self.trace.record(self.world.now_us, event);
        self.counters.snapshots_restored += 1;
        let before = self.world.nodes[(id.0 - 1) as usize].applied.len();
        for entry in &restored[before.min(restored.len())..] {
            self.clients_on_apply(id, entry)?;
        }
        self.world.nodes[(id.0 - 1) as usize].applied = restored;
        self.serve_waiting_reads(id)
    }

    /// Takes the image of `id`'s state machine at `index` that `Ready::snapshot_due` asked for and
    /// hands it back.
    fn take_snapshot(&mut self, id: NodeId, index: Index) -> Result<(), Breach> {
        let slot = &mut self.world.nodes[(id.0 - 1) as usize];
        let Some(applied) = slot.applied.get(..index.0 as usize) else {
            return Err(Breach::new(
                Invariant::DriverContract,
                format!(
                    "node {id} asked for a snapshot at index {index}, but its state machine applied only {}",
                    slot.applied.len()
                ),
            ));
        };
        let term = applied.last().map_or(conclave_core::Term(0), |entry| entry.term);
        let data = image::encode(applied);
        let event = TraceEvent::Snapshot { node: id, index, term, bytes: data.len() };
        self.trace.record(self.world.now_us, event);
        self.counters.snapshots_taken += 1;
        slot.protocol.as_mut().expect("still up").on_snapshot_taken(index, data);
        Ok(())
    }

    /// The chance that a crash tears a write in flight, by the faults enabled.
    pub(crate) fn tear_probability(&self) -> f64 {
        if self.options.faults.contains(Fault::TornWrite) {
            TEAR_PROBABILITY
        } else {
            0.0
        }
    }

    /// Hands one message to the network and queues its arrival (or arrivals).
    fn send(&mut self, id: NodeId, envelope: Envelope<P::Message>) -> Result<(), Breach> {
        let (from, to) = (envelope.from, envelope.to);
        if from != id {
            return Err(Breach::new(
                Invariant::DriverContract,
                format!("node {id} sent a message claiming to be from node {from}"),
            ));
        }
        let kind = envelope.msg.kind();
        let term = envelope.msg.term();
        self.trace.record(self.world.now_us, TraceEvent::Send { from, to, kind, term });
        match self.world.network.route(from, to, kind, self.world.now_us) {
            Route::Drop(reason) => {
                self.trace.record(
                    self.world.now_us,
                    TraceEvent::Drop { from, to, kind, reason: reason.name() },
                );
            }
            Route::Deliver { at_us, duplicate_at_us } => {
                if let Some(duplicate_at_us) = duplicate_at_us {
                    self.trace.record(self.world.now_us, TraceEvent::Duplicate { from, to, kind });
                    self.world.queue.push(duplicate_at_us, Event::Deliver(envelope.clone()));
                }
                self.world.queue.push(at_us, Event::Deliver(envelope));
            }
        }
        Ok(())
    }

    /// Applies one committed entry to `id`'s state machine: checks it against every other node's,
    /// records it, and tells any client waiting on it.
    fn apply(&mut self, id: NodeId, entry: Entry) -> Result<(), Breach> {
        self.notify(|observer, sim| observer.on_apply(sim, id, &entry))?;
        if entry.index.0 == self.applied_global.len() as u64 + 1 {
            self.applied_global.push(entry.clone());
        }
        self.trace.record(
            self.world.now_us,
            TraceEvent::Apply {
                node: id,
                index: entry.index,
                term: entry.term,
                kind: entry.kind,
                data: entry.data.clone(),
            },
        );
        self.clients_on_apply(id, &entry)?;
        self.world.nodes[(id.0 - 1) as usize].applied.push(entry);
        self.serve_waiting_reads(id)
    }

    /// Compares `id`'s status with the last one seen: traces role and commit changes, counts
    /// elections, and shows the status to the observers.
    pub(crate) fn observe(&mut self, id: NodeId) -> Result<(), Breach> {
        let slot_index = (id.0 - 1) as usize;
        let Some(protocol) = self.world.nodes[slot_index].protocol.as_ref() else { return Ok(()) };
        let status = protocol.status();
        let log = protocol.log_view();
        let before = self.world.nodes[slot_index].status_last;
        if status.id != id {
            return Err(Breach::new(
                Invariant::DriverContract,
                format!("node {id} reports its id as {}", status.id),
            ));
        }
        let role_changed = before.is_none_or(|b| b.role != status.role || b.term != status.term);
        if role_changed {
            let event = TraceEvent::Role { node: id, role: status.role, term: status.term };
            self.trace.record(self.world.now_us, event);
            if status.role == Role::Candidate {
                self.counters.elections_started += 1;
            }
        }
        // A leader's term is new to it only when its role or term just changed.
        if role_changed && status.role == Role::Leader && self.terms_led.insert(status.term) {
            self.counters.leaders_elected += 1;
            if self.leader_elected_last.is_some_and(|last| last != id) {
                self.counters.leader_changes += 1;
            }
            self.leader_elected_last = Some(id);
        }
        let commit_changed = before.is_none_or(|b| b.commit != status.commit);
        if let Some(log) = log.filter(|_| commit_changed) {
            // The newest index this report newly commits, as far as the node's log shows it.
            let from = before.map_or(Index(0), |b| b.commit).next().max(log.first_index());
            let to = status.commit.min(log.last_index());
            let newest = (from.0..=to.0).rev().find(|index| log.entry(Index(*index)).is_some());
            if let Some(newest) = newest {
                self.committed_last = self.committed_last.max(Index(newest));
            }
        }
        if role_changed || commit_changed {
            self.notify(|observer, sim| observer.on_status(sim, id, before, status))?;
        }
        if before.is_some_and(|b| status.commit > b.commit)
            || (before.is_none() && status.commit.0 > 0)
        {
            self.trace
                .record(self.world.now_us, TraceEvent::Commit { node: id, commit: status.commit });
        }
        self.world.nodes[slot_index].status_last = Some(status);
        self.observe_membership(id)
    }

    /// Traces a change in the membership `id` acts on and shows it to the observers.
    fn observe_membership(&mut self, id: NodeId) -> Result<(), Breach> {
        let slot = self.slot(id);
        let Some(protocol) = slot.protocol.as_ref() else { return Ok(()) };
        let Some(membership) = protocol.membership() else { return Ok(()) };
        if slot.membership_last.as_ref() == Some(membership) {
            return Ok(());
        }
        let membership = membership.clone();
        let event = TraceEvent::Membership { node: id, membership: membership.to_string() };
        self.trace.record(self.world.now_us, event);
        self.slot_mut(id).membership_last = Some(membership.clone());
        self.notify(|observer, sim| observer.on_membership(sim, id, &membership))
    }
}
