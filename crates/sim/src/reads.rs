//! Reads outside the log: asking a node, serving the read once its state machine reached the read
//! index, and checking the value against the writes.
//!
//! The state machine is a register: its value is the newest command it applied. A read is served
//! from the node that was asked, once the protocol named a read index and the node applied that
//! far. The check is the register case of linearizability, made exact by the unique writes: a
//! read must return a write at least as new as every write applied anywhere before the read began
//! (an applied write is committed, so its client may already have been told). The comparison is
//! by log index, since the log orders the writes.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::{EntryKind, Index, NodeId, Protocol, ReadError, ReadId, ReadMode, ReadState};

use crate::simulation::Simulation;
use crate::trace::TraceEvent;
use crate::violation::{Breach, Invariant};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// A test, through [`Simulation::read`].
    Manual,
    /// The simulated client with this position.
    Client(usize),
}

/// A read in flight.
#[derive(Clone, Debug)]
pub(crate) struct ReadRequest {
    pub(crate) node: NodeId,
    pub(crate) mode: ReadMode,
    pub(crate) origin: ReadOrigin,
    pub(crate) invoked_us: u64,
    /// The newest write applied anywhere when the read began: the oldest value it may return.
    pub(crate) floor: Index,
}

/// What a served read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRead {
    /// The read index the protocol named.
    pub read_index: Index,
    /// How far the node had applied when it served the read.
    pub applied: Index,
    /// The register's value: the newest command applied (its index and bytes), if any.
    pub value: Option<(Index, Bytes)>,
}

/// Why a read was not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// The protocol refused or failed it.
    Protocol(ReadError),
    /// The node crashed before serving it.
    NodeCrashed,
}

/// The outcome of one read asked through [`Simulation::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The read's id.
    pub id: ReadId,
    /// The node asked.
    pub node: NodeId,
    /// How it was asked.
    pub mode: ReadMode,
    /// Virtual time it was asked at.
    pub invoked_us: u64,
    /// Virtual time it was served or failed at.
    pub completed_us: u64,
    /// The value, or why there is none.
    pub result: Result<ServedRead, ReadFailure>,
}

/// Every read of the run.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    next_id: ReadId,
    pub(crate) requests: BTreeMap<ReadId, ReadRequest>,
    /// Outcomes of manual reads, for the test to inspect.
    pub(crate) manual: Vec<ReadOutcome>,
    /// Reads served and reads failed, over the run.
    pub(crate) served: u64,
    pub(crate) failed: u64,
}

impl<P: Protocol> Simulation<P> {
    /// Asks `node` for a read in `mode`. The outcome arrives in
    /// [`read_outcomes`](Simulation::read_outcomes) once the node serves or fails it (an
    /// immediate refusal is returned here instead). Every served read is checked against the
    /// writes; a stale one stops the simulation with a `linearizable-read` violation. Panics if
    /// `node` is crashed.
    pub fn read(&mut self, node: NodeId, mode: ReadMode) -> Result<ReadId, ReadError> {
        assert!(self.is_up(node), "read from crashed node {node}");
        let result = self.start_read(node, mode, ReadOrigin::Manual);
        self.settle(node);
        result
    }

    /// The outcomes of reads asked with [`read`](Simulation::read), in completion order.
    pub fn read_outcomes(&self) -> &[ReadOutcome] {
        &self.reads.manual
    }

    /// Registers a read and asks the node. The node's work is not drained here.
    pub(crate) fn start_read(
        &mut self,
        node: NodeId,
        mode: ReadMode,
        origin: ReadOrigin,
    ) -> Result<ReadId, ReadError> {
        let id = self.reads.next_id;
        self.reads.next_id += 1;
        let floor = self.last_command_applied();
        let request = ReadRequest { node, mode, origin, invoked_us: self.world.now_us, floor };
        self.trace.record(self.world.now_us, TraceEvent::Read { node, id, mode: mode_name(mode) });
        let protocol = self.slot_mut(node).protocol.as_mut().expect("reads go to live nodes");
        match protocol.read(id, mode) {
            Ok(()) => {
                self.reads.requests.insert(id, request);
                Ok(id)
            }
            Err(error) => {
                let event =
                    TraceEvent::ReadDone { node, id, served: None, error: Some(error.to_string()) };
                self.trace.record(self.world.now_us, event);
                self.reads.failed += 1;
                Err(error)
            }
        }
    }

    /// `node` answered a read (from its `Ready`, after applying that `Ready`'s entries).
    pub(crate) fn on_read_state(&mut self, node: NodeId, state: ReadState) -> Result<(), Breach> {
        let asked = self.reads.requests.get(&state.id).map(|r| r.node);
        if asked != Some(node) {
            return Err(Breach::new(
                Invariant::DriverContract,
                format!("node {node} answered read {} it was not asked", state.id),
            ));
        }
        match state.outcome {
            Err(error) => self.finish_read(state.id, Err(ReadFailure::Protocol(error))),
            Ok(index) => {
                let slot = self.slot_mut(node);
                if slot.applied.len() as u64 >= index.0 {
                    self.serve_read(state.id, index)
                } else {
                    slot.reads_waiting.push((state.id, index));
                    Ok(())
                }
            }
        }
    }

    /// `node` applied more: serve the reads waiting for it.
    pub(crate) fn serve_waiting_reads(&mut self, node: NodeId) -> Result<(), Breach> {
        let slot = self.slot_mut(node);
        if slot.reads_waiting.is_empty() {
            return Ok(());
        }
        let applied = slot.applied.len() as u64;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            slot.reads_waiting.drain(..).partition(|(_, index)| index.0 <= applied);
        slot.reads_waiting = waiting;
        for (id, index) in ready {
            self.serve_read(id, index)?;
        }
        Ok(())
    }

    /// `node` crashed: its reads will never be served.
    pub(crate) fn reads_on_crash(&mut self, node: NodeId) {
        self.slot_mut(node).reads_waiting.clear();
        let lost: Vec<ReadId> =
            self.reads.requests.iter().filter(|(_, r)| r.node == node).map(|(id, _)| *id).collect();
        for id in lost {
            // Failing a read cannot breach anything.
            let _ = self.finish_read(id, Err(ReadFailure::NodeCrashed));
        }
    }

    /// Serves read `id` from its node's state machine and checks the value.
    fn serve_read(&mut self, id: ReadId, read_index: Index) -> Result<(), Breach> {
        let request = self.reads.requests.get(&id).expect("registered").clone();
        let applied = &self.slot(request.node).applied;
        let value = applied
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::Command)
            .map(|e| (e.index, e.data.clone()));
        let seen = value.as_ref().map_or(Index(0), |(index, _)| *index);
        let served = ServedRead { read_index, applied: Index(applied.len() as u64), value };
        if seen < request.floor {
            return Err(Breach::new(
                Invariant::LinearizableRead,
                format!(
                    "node {} served a {} read (index {read_index}) with the write at index {seen}, but the write at index {} was applied before the read began",
                    request.node,
                    mode_name(request.mode),
                    request.floor
                ),
            ));
        }
        self.finish_read(id, Ok(served))
    }

    fn finish_read(
        &mut self,
        id: ReadId,
        result: Result<ServedRead, ReadFailure>,
    ) -> Result<(), Breach> {
        let request = self.reads.requests.remove(&id).expect("registered");
        let (served, error) = match &result {
            Ok(s) => {
                let value = s.value.as_ref().map_or(Index(0), |(index, _)| *index);
                (Some((s.read_index, value)), None)
            }
            Err(ReadFailure::Protocol(e)) => (None, Some(e.to_string())),
            Err(ReadFailure::NodeCrashed) => (None, Some("node crashed".to_string())),
        };
        if result.is_ok() {
            self.reads.served += 1;
        } else {
            self.reads.failed += 1;
        }
        let event = TraceEvent::ReadDone { node: request.node, id, served, error };
        self.trace.record(self.world.now_us, event);
        let outcome = ReadOutcome {
            id,
            node: request.node,
            mode: request.mode,
            invoked_us: request.invoked_us,
            completed_us: self.world.now_us,
            result,
        };
        match request.origin {
            ReadOrigin::Manual => {
                self.reads.manual.push(outcome);
                Ok(())
            }
            ReadOrigin::Client(client) => self.clients_on_read(client, outcome),
        }
    }
}

/// The mode's name in traces.
pub(crate) fn mode_name(mode: ReadMode) -> &'static str {
    match mode {
        ReadMode::ReadIndex => "read-index",
        ReadMode::Lease => "lease",
    }
}
