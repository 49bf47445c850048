//! Carrying out a node's `Ready` in the order the persistence contract demands, and watching what
//! the node says about itself afterwards.
//!
//! Order per `Ready`: send `messages`; persist `hard_state` and `entries`; send
//! `persisted_messages`; report the durable prefix with `on_persisted`; apply `committed_entries`.
//! Then, once the node has nothing more to do, its status is compared with the previous one to
//! trace role, term and commit changes and feed the safety checker.

use conclave_core::{Entry, Envelope, MessageMeta, NodeId, Protocol, Role};

use crate::nemesis::NemesisEvent;
use crate::network::Route;
use crate::simulation::{Event, Simulation};
use crate::trace::TraceEvent;
use crate::violation::{Breach, Invariant};

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
            let Some(protocol) = self.nodes[slot_index].protocol.as_mut() else { return Ok(()) };
            if !protocol.has_ready() {
                return Ok(());
            }
            let ready = protocol.ready();
            if ready.is_empty() {
                return Ok(()); // Claimed work but had none; nothing to do, and no reason to spin.
            }
            let has_log = protocol.log_view().is_some();

            for envelope in ready.messages {
                self.send(id, envelope)?;
            }

            let slot = &mut self.nodes[slot_index];
            // The predecessor's term must be read before the write may truncate it away.
            let term_prev = match ready.entries.first() {
                Some(first) => slot.disk.term_at(first.index.prev()),
                None => None,
            };
            slot.disk.write(ready.hard_state, &ready.entries).map_err(|error| {
                Breach::new(Invariant::DriverContract, format!("node {id}: {error}"))
            })?;
            if has_log {
                if let Some(term_prev) = term_prev {
                    self.checker.observe_written(id, term_prev, &ready.entries)?;
                }
            }

            let promised = !ready.persisted_messages.is_empty();
            if promised {
                self.check_promises_durable(id)?;
            }
            for envelope in ready.persisted_messages {
                self.send(id, envelope)?;
            }
            if promised && self.maybe_crash_at_point(id) {
                // The process died right after its promises left: nothing more of this Ready
                // happens (no on_persisted, no apply).
                return Ok(());
            }
            if let Some(last) = ready.entries.last() {
                let protocol = self.nodes[slot_index].protocol.as_mut().expect("still up");
                protocol.on_persisted(last.index, last.term);
            }
            for entry in ready.committed_entries {
                self.apply(id, entry)?;
            }
        }
        Err(Breach::new(
            Invariant::DriverContract,
            format!("node {id} still has work after {READY_ROUNDS_MAX} Ready rounds"),
        ))
    }

    /// Lets the nemesis crash `id` at this crash point; schedules its restart. True if it crashed.
    fn maybe_crash_at_point(&mut self, id: NodeId) -> bool {
        let live: Vec<bool> = self.nodes.iter().map(|slot| slot.is_up()).collect();
        let Some(workload) = self.workload.as_mut() else { return false };
        let Some(restart_after_us) = workload.nemesis.crash_point(id, &live) else { return false };
        self.crash(id);
        let at_us = self.now_us + restart_after_us;
        self.queue.push(at_us, Event::Nemesis(NemesisEvent::Restart { node: id }));
        true
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
        self.trace.record(self.now_us, TraceEvent::Send { from, to, kind, term });
        match self.network.route(from, to, kind, self.now_us) {
            Route::Drop(reason) => {
                self.trace.record(
                    self.now_us,
                    TraceEvent::Drop { from, to, kind, reason: reason.name() },
                );
            }
            Route::Deliver { at_us, duplicate_at_us } => {
                if let Some(duplicate_at_us) = duplicate_at_us {
                    self.trace.record(self.now_us, TraceEvent::Duplicate { from, to, kind });
                    self.queue.push(duplicate_at_us, Event::Deliver(envelope.clone()));
                }
                self.queue.push(at_us, Event::Deliver(envelope));
            }
        }
        Ok(())
    }

    /// Applies one committed entry to `id`'s state machine: checks it against every other node's,
    /// records it, and tells any client waiting on it.
    fn apply(&mut self, id: NodeId, entry: Entry) -> Result<(), Breach> {
        let slot = &self.nodes[(id.0 - 1) as usize];
        self.checker.observe_applied(id, &slot.applied, &entry)?;
        self.trace.record(
            self.now_us,
            TraceEvent::Apply {
                node: id,
                index: entry.index,
                term: entry.term,
                kind: entry.kind,
                data: entry.data.clone(),
            },
        );
        self.clients_on_apply(id, &entry)?;
        self.nodes[(id.0 - 1) as usize].applied.push(entry);
        Ok(())
    }

    /// Compares `id`'s status with the last one seen: traces role and commit changes, counts
    /// elections, and runs the status-based checks (Election Safety, Leader Completeness,
    /// monotonic commit).
    pub(crate) fn observe(&mut self, id: NodeId) -> Result<(), Breach> {
        let slot_index = (id.0 - 1) as usize;
        let Some(protocol) = self.nodes[slot_index].protocol.as_ref() else { return Ok(()) };
        let status = protocol.status();
        let log = protocol.log_view();
        let before = self.nodes[slot_index].status_last;
        if status.id != id {
            return Err(Breach::new(
                Invariant::DriverContract,
                format!("node {id} reports its id as {}", status.id),
            ));
        }
        let role_changed = before.is_none_or(|b| b.role != status.role || b.term != status.term);
        if role_changed {
            let event = TraceEvent::Role { node: id, role: status.role, term: status.term };
            self.trace.record(self.now_us, event);
            if status.role == Role::Candidate {
                self.counters.elections_started += 1;
            }
        }
        if status.role == Role::Leader {
            let first_in_term = self.checker.observe_leader(id, status.term)?;
            if first_in_term {
                self.counters.leaders_elected += 1;
                if self.leader_elected_last.is_some_and(|last| last != id) {
                    self.counters.leader_changes += 1;
                }
                self.leader_elected_last = Some(id);
            }
            if role_changed {
                if let Some(log) = log {
                    self.checker.check_leader_completeness(id, status.term, log)?;
                }
            }
        }
        if before.is_none_or(|b| b.commit != status.commit) {
            self.checker.observe_commit(id, status.commit, status.term, log)?;
            if self.options.check_commit_durability {
                self.check_commit_durable(id, status.commit)?;
            }
            if before.is_some_and(|b| status.commit > b.commit)
                || (before.is_none() && status.commit.0 > 0)
            {
                self.trace
                    .record(self.now_us, TraceEvent::Commit { node: id, commit: status.commit });
            }
        }
        self.nodes[slot_index].status_last = Some(status);
        Ok(())
    }
}
