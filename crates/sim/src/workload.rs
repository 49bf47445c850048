//! The random workload of [`Simulation::run`]: clients proposing operations while the nemesis
//! injects faults, then a calm phase in which the cluster must converge, then the final checks.

use bytes::Bytes;
use conclave_core::{
    Entry, EntryKind, NodeId, ProposeError, Protocol, RandomSource, ReadError, ReadMode,
};

use crate::client::{Client, ClientState, Op, RETRY_HINTED_US};
use crate::history::{HistoryEvent, HistoryKind};
use crate::invariants::check_acknowledged;
use crate::nemesis::Nemesis;
use crate::reads::{mode_name, ReadFailure, ReadOrigin, ReadOutcome};
use crate::schedule::ScheduledFault;
use crate::simulation::{Event, Simulation};
use crate::summary::{percentile, Summary};
use crate::trace::{ClientAction, ClientTrace, TraceEvent};
use crate::violation::{Breach, Invariant, Violation};

/// Spread of the clients' first wake-ups, so they do not all start in the same microsecond.
const CLIENT_START_SPREAD_US: u64 = 1_000;

/// State of a random run: the clients, the nemesis and what they have recorded.
pub(crate) struct Workload {
    pub(crate) clients: Vec<Client>,
    pub(crate) nemesis: Nemesis,
    /// Set when the op phase ends: clients finish what is in flight and start nothing new.
    pub(crate) ops_phase_over: bool,
    pub(crate) acknowledged: u64,
    /// Of those, reads.
    pub(crate) reads_acknowledged: u64,
    /// Membership changes and transfers asked of the leader, and accepted.
    pub(crate) admin_requests: (u64, u64),
    pub(crate) latencies_us: Vec<u64>,
    pub(crate) history: Vec<HistoryEvent>,
    /// Every fault the nemesis started, in order: drawn at random, or taken from the schedule.
    /// An episode number is an index into this list.
    pub(crate) schedule: Vec<ScheduledFault>,
    /// For each node (by `id - 1`): the microsecond of its latest crash point, and how many of
    /// its crash points came before it in that microsecond, so a replay can name the same one.
    pub(crate) crash_points_seen: Vec<(u64, u32)>,
}

impl<P: Protocol> Simulation<P> {
    /// Runs the random workload: clients propose until `options.ops` operations are acknowledged
    /// (or the op-phase time cap passes) while the nemesis injects `options.faults`; then the
    /// nemesis stops, the network heals, every node restarts, and the cluster must converge (all
    /// nodes applying up to one commit index) within `options.converge_time_max_us`. Finally every
    /// acknowledged write must be in the applied sequence.
    ///
    /// Returns the run's [`Summary`], or the first [`Violation`] (safety, or liveness: no progress
    /// in a fault-free run, or no convergence). May be called once per simulation; it may follow
    /// manual steps.
    pub fn run(&mut self) -> Result<Summary, Violation> {
        self.check_stopped()?;
        assert!(self.workload.is_none(), "Simulation::run may be called only once");
        self.start_workload();
        let mut warnings = Vec::new();

        let ops_deadline_us = self.world.now_us.saturating_add(self.options.ops_time_max_us);
        let mut ops_phase_completed = true;
        while self.workload().acknowledged < self.options.ops {
            if !self.step_event(ops_deadline_us)? {
                ops_phase_completed = false;
                break;
            }
        }
        let ops_phase_us = self.world.now_us;
        if !ops_phase_completed {
            let message = format!(
                "op phase reached its cap of {}us with {}/{} ops acknowledged",
                self.options.ops_time_max_us,
                self.workload().acknowledged,
                self.options.ops
            );
            // Without faults (nemesis or base loss) nothing excuses a stall.
            if self.options.is_fault_free() {
                return Err(self.fail(Breach::new(Invariant::Liveness, message)));
            }
            warnings.push(message);
        }

        self.end_ops_phase()?;
        let converge_deadline_us =
            self.world.now_us.saturating_add(self.options.converge_time_max_us);
        while !self.converged() {
            if !self.step_event(converge_deadline_us)? {
                let detail = format!(
                    "cluster did not converge within {}us after faults stopped: {}",
                    self.options.converge_time_max_us,
                    self.describe_progress()
                );
                return Err(self.fail(Breach::new(Invariant::Liveness, detail)));
            }
        }
        let converge_us = self.world.now_us - ops_phase_us;

        self.finish_clients();
        self.check_invariants()?;
        if let Err(breach) = self.notify(|observer, sim| observer.at_end(sim)) {
            return Err(self.fail(breach));
        }
        self.check_acknowledged()?;
        let linearizability = self.check_history(&mut warnings)?;
        self.trace.record(self.world.now_us, TraceEvent::Phase { name: "done" });
        self.trace.flush();
        let mut summary = self.summary(ops_phase_completed, ops_phase_us, converge_us, warnings);
        summary.linearizability = linearizability;
        Ok(summary)
    }

    /// Operations acknowledged to clients so far in [`run`](Simulation::run) (0 before it
    /// starts). After a violation, how far the workload got: a run with an op target just above
    /// it is the same run, cut short after the violation.
    pub fn ops_acknowledged(&self) -> u64 {
        self.workload.as_ref().map_or(0, |workload| workload.acknowledged)
    }

    pub(crate) fn workload(&self) -> &Workload {
        self.workload.as_ref().expect("workload started")
    }

    pub(crate) fn workload_mut(&mut self) -> &mut Workload {
        self.workload.as_mut().expect("workload started")
    }

    /// Creates the clients and the nemesis and schedules their first steps.
    fn start_workload(&mut self) {
        let nodes = self.world.ids.len();
        let mut clients = Vec::with_capacity(self.options.clients);
        for id in 0..self.options.clients {
            let mut client = Client::new(id as u32, self.rng_clients.fork(), nodes);
            let generation = client.rearm();
            let at_us = self.world.now_us + client.rng.between(0, CLIENT_START_SPREAD_US);
            self.world.queue.push(at_us, Event::ClientWake { client: id, generation });
            clients.push(client);
        }
        // Forked even when a schedule is followed, so the fork order (and every later stream)
        // stays the same.
        let rng_nemesis = self.rng_nemesis.fork();
        let mut nemesis = match &self.options.fault_schedule {
            Some(schedule) => Nemesis::scripted(schedule.clone(), nodes),
            None => Nemesis::new(rng_nemesis, self.options.faults, nodes, self.options.nodes),
        };
        if let Some((at_us, event)) = nemesis.first_event(self.world.now_us) {
            self.world.queue.push(at_us, Event::Nemesis(event));
        }
        self.workload = Some(Workload {
            clients,
            nemesis,
            ops_phase_over: false,
            acknowledged: 0,
            reads_acknowledged: 0,
            admin_requests: (0, 0),
            latencies_us: Vec::new(),
            history: Vec::new(),
            schedule: Vec::new(),
            crash_points_seen: vec![(u64::MAX, 0); nodes],
        });
        self.trace.record(self.world.now_us, TraceEvent::Phase { name: "ops" });
        self.start_actions();
    }

    /// Stops the nemesis and undoes every fault: heal, calm weather (slow disks included), take
    /// back armed sync failures, restart every crashed node. Writes in flight complete as usual.
    fn end_ops_phase(&mut self) -> Result<(), Violation> {
        self.trace.record(self.world.now_us, TraceEvent::Phase { name: "converge" });
        let workload = self.workload_mut();
        workload.ops_phase_over = true;
        workload.nemesis.stop();
        self.heal();
        // "Everything heals" includes base loss and duplication, so that convergence measures the
        // protocol, not the weather.
        self.set_drop_probability(0.0);
        self.set_duplicate_probability(0.0);
        self.set_delay_spike(false);
        self.set_reorder(false);
        if self.world.nodes.iter().any(|slot| slot.disk.is_slow()) {
            self.set_slow_disks(&[]);
        }
        for id in self.world.ids.clone() {
            self.fail_next_sync(id, false);
        }
        for id in self.world.ids.clone() {
            if let Err(breach) = self.restart_node(id) {
                return Err(self.fail(breach));
            }
        }
        Ok(())
    }

    /// True when every node is up, all report the same commit index, each has applied exactly up
    /// to it, and it covers everything ever seen committed.
    fn converged(&self) -> bool {
        // With membership changes, only the members (as the leader sees them) must converge:
        // a spare never added, or a node removed, is no longer replicated to.
        let members = match self.leader().and_then(|l| self.node(l)).map(|p| p.membership()) {
            Some(Some(membership)) => membership.all_members(),
            // A protocol without membership changes never adds the spares.
            Some(None) => self.world.voters_initial.clone(),
            None => return false,
        };
        let mut commit = None;
        for slot in &self.world.nodes {
            if !members.contains(&slot.id) {
                continue;
            }
            let Some(protocol) = &slot.protocol else { return false };
            let status = protocol.status();
            if *commit.get_or_insert(status.commit) != status.commit
                || slot.applied.len() as u64 != status.commit.0
            {
                return false;
            }
        }
        commit.is_some_and(|commit| commit >= self.committed_last)
    }

    /// Each node's commit and applied index, for a liveness report.
    fn describe_progress(&self) -> String {
        let parts: Vec<String> = self
            .world
            .nodes
            .iter()
            .map(|slot| match &slot.protocol {
                Some(protocol) => {
                    let status = protocol.status();
                    format!(
                        "node {} {} term {} commit {} applied {}",
                        slot.id,
                        status.role,
                        status.term,
                        status.commit,
                        slot.applied.len()
                    )
                }
                None => format!("node {} down", slot.id),
            })
            .collect();
        parts.join("; ")
    }

    /// At the end of the run, marks every operation still in flight as of unknown outcome.
    fn finish_clients(&mut self) {
        let now_us = self.world.now_us;
        let workload = self.workload_mut();
        for client in &mut workload.clients {
            client.rearm();
            let state = std::mem::replace(&mut client.state, ClientState::Done);
            if let ClientState::Reading { op, .. } = state {
                workload.history.push(HistoryEvent {
                    time_us: now_us,
                    client: client.id,
                    op: op.seq,
                    value: op.value,
                    kind: HistoryKind::Fail { reason: "timeout" },
                });
            } else if let ClientState::Pending { op, .. } = state {
                workload.history.push(HistoryEvent {
                    time_us: now_us,
                    client: client.id,
                    op: op.seq,
                    value: op.value,
                    kind: HistoryKind::Timeout,
                });
            }
        }
    }

    /// The client check: every acknowledged write is in the final applied sequence, at its index,
    /// with its data.
    fn check_acknowledged(&mut self) -> Result<(), Violation> {
        let mut result = Ok(());
        for event in &self.workload().history {
            if let HistoryKind::Ok { index, term } = event.kind {
                result = check_acknowledged(&self.applied_global, index, term, &event.value);
                if result.is_err() {
                    break;
                }
            }
        }
        result.map_err(|breach| self.fail(breach))
    }

    /// Checks the client history for linearizability (a register: each write's value is unique,
    /// each read returns the last value written or nil), within the options' step budget.
    /// Returns the verdict's name, or the violation naming the operations that could not be
    /// placed.
    fn check_history(&mut self, warnings: &mut Vec<String>) -> Result<&'static str, Violation> {
        if self.options.history_check_steps == 0 {
            return Ok("unchecked");
        }
        let events =
            crate::history::to_check_events(&self.workload().history, self.options.clients);
        let history = conclave_check::History::from_events(events);
        let options = conclave_check::CheckOptions {
            model: Some(conclave_check::ModelKind::Register),
            balances: None,
            budget: conclave_check::Budget::steps(self.options.history_check_steps),
        };
        let (ops, report) = match conclave_check::check_history(&history, &options) {
            Ok(checked) => checked,
            Err(error) => {
                let detail = format!("the client history could not be checked: {error}");
                return Err(self.fail(Breach::new(Invariant::DriverContract, detail)));
            }
        };
        match &report.verdict {
            conclave_check::Verdict::Linearizable => Ok("linearizable"),
            conclave_check::Verdict::Unknown => {
                warnings.push(format!(
                    "the linearizability check ran out of its {} steps",
                    self.options.history_check_steps
                ));
                Ok("unknown")
            }
            conclave_check::Verdict::NotLinearizable(_) => {
                let detail = report.summary(&ops);
                Err(self.fail(Breach::new(Invariant::Linearizability, detail)))
            }
        }
    }

    fn summary(
        &mut self,
        ops_phase_completed: bool,
        ops_phase_us: u64,
        converge_us: u64,
        warnings: Vec<String>,
    ) -> Summary {
        let commit_index =
            self.status(self.world.ids[0]).map(|status| status.commit).unwrap_or_default();
        let workload = self.workload.as_mut().expect("workload started");
        workload.latencies_us.sort_unstable();
        let latencies = &workload.latencies_us;
        Summary {
            seed: self.options.seed,
            ops_target: self.options.ops,
            ops_acknowledged: workload.acknowledged,
            reads_acknowledged: workload.reads_acknowledged,
            reads_failed: self.reads.failed,
            admin_requests: workload.admin_requests,
            ops_phase_completed,
            elections_started: self.counters.elections_started,
            leaders_elected: self.counters.leaders_elected,
            leader_changes: self.counters.leader_changes,
            crashes: self.counters.crashes,
            partitions: self.counters.partitions,
            writes_lost: self.counters.writes_lost,
            torn_writes: self.counters.torn_writes,
            sync_failures: self.counters.sync_failures,
            snapshots_taken: self.counters.snapshots_taken,
            snapshots_restored: self.counters.snapshots_restored,
            network: self.world.network.stats().clone(),
            commit_index,
            ops_phase_us,
            converge_us,
            virtual_time_us: self.world.now_us,
            events_processed: self.counters.events_processed,
            latency_p50_us: percentile(latencies, 50),
            latency_p99_us: percentile(latencies, 99),
            linearizability: "unchecked",
            warnings,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Clients.

    /// A client's timer fired: start an operation, retry one, or give up waiting on one.
    pub(crate) fn on_client_wake(&mut self, client: usize, generation: u64) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let Some(workload) = self.workload.as_mut() else { return Ok(()) };
        let ops_phase_over = workload.ops_phase_over;
        let state = {
            let c = &mut workload.clients[client];
            if c.wake_generation != generation {
                return Ok(()); // Cancelled: the client moved on since this was scheduled.
            }
            std::mem::replace(&mut c.state, ClientState::Idle)
        };
        match state {
            ClientState::Done => workload.clients[client].state = ClientState::Done,
            ClientState::Pending { op, node, proposal } => {
                // No apply at the proposal's index in time: the outcome is unknown, so the client
                // must not reuse the value; it starts a fresh operation elsewhere.
                self.record_client(client, &op, HistoryKind::Timeout);
                let event = self.client_event(client, ClientAction::Timeout, &op, Some(node));
                let event = ClientTrace { index: Some(proposal.index), ..event };
                self.trace.record(now_us, TraceEvent::Client(event));
                let nodes = self.world.ids.len();
                let c = &mut self.workload_mut().clients[client];
                c.retarget_random(nodes);
                let generation = c.rearm();
                self.world.queue.push(now_us, Event::ClientWake { client, generation });
            }
            ClientState::Reading { op, node, .. } => {
                // A read that never came back has no effect: it simply failed.
                self.record_client(client, &op, HistoryKind::Fail { reason: "timeout" });
                let event = self.client_event(client, ClientAction::Timeout, &op, Some(node));
                self.trace.record(now_us, TraceEvent::Client(event));
                let nodes = self.world.ids.len();
                let c = &mut self.workload_mut().clients[client];
                c.retarget_random(nodes);
                let generation = c.rearm();
                self.world.queue.push(now_us, Event::ClientWake { client, generation });
            }
            ClientState::Idle | ClientState::Retrying(_) if ops_phase_over => {
                workload.clients[client].state = ClientState::Done;
            }
            ClientState::Idle => {
                let read_ratio = self.options.read_ratio;
                let op = workload.clients[client].op_new(now_us, read_ratio);
                self.client_attempt(client, op)?;
            }
            ClientState::Retrying(op) => self.client_attempt(client, op)?,
        }
        Ok(())
    }

    /// Proposes `op` at the client's target node and reacts to the answer.
    fn client_attempt(&mut self, client: usize, op: Op) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let nodes = self.world.ids.len();
        let mode = op.read.then(|| self.workload_mut().clients[client].read_plan(nodes));
        let target = self.workload().clients[client].target;
        if !self.slot(target).is_up() {
            // Like a refused connection: nothing was sent, so nothing goes in the history.
            let event = self.client_event(client, ClientAction::Retry, &op, Some(target));
            self.trace.record(now_us, TraceEvent::Client(event));
            let c = &mut self.workload_mut().clients[client];
            c.retarget_random(nodes);
            let at_us = now_us + c.blind_retry_delay_us();
            self.client_wait(client, ClientState::Retrying(op), at_us);
            return Ok(());
        }
        if let Some(mode) = mode {
            return self.client_read(client, op, target, mode);
        }
        self.record_client(client, &op, HistoryKind::Invoke { node: target });
        let protocol = self.slot_mut(target).protocol.as_mut().expect("checked up");
        match protocol.propose(op.value.clone()) {
            Ok(proposal) => {
                let event = self.client_event(client, ClientAction::Invoke, &op, Some(target));
                let event =
                    ClientTrace { index: Some(proposal.index), term: Some(proposal.term), ..event };
                self.trace.record(now_us, TraceEvent::Client(event));
                // The client must be waiting before the node's work is drained: a single-node
                // cluster commits and applies the entry within this very drain.
                let deadline_us = now_us + self.options.client_timeout_us;
                let pending = ClientState::Pending { op, node: target, proposal };
                self.client_wait(client, pending, deadline_us);
            }
            Err(error) => {
                let reason = match error {
                    ProposeError::NotLeader { .. } => "not-leader",
                    _ => "refused",
                };
                self.record_client(client, &op, HistoryKind::Fail { reason });
                let event = self.client_event(client, ClientAction::Retry, &op, Some(target));
                self.trace.record(now_us, TraceEvent::Client(event));
                let hint = match error {
                    ProposeError::NotLeader { leader_hint } => leader_hint,
                    _ => None,
                };
                self.client_retry(client, op, target, hint);
            }
        }
        self.after_call(target)
    }

    /// Asks `target` for a read on behalf of `client`.
    fn client_read(
        &mut self,
        client: usize,
        op: Op,
        target: NodeId,
        mode: ReadMode,
    ) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let kind = HistoryKind::InvokeRead { node: target, mode: mode_name(mode) };
        self.record_client(client, &op, kind);
        let event = self.client_event(client, ClientAction::Invoke, &op, Some(target));
        self.trace.record(now_us, TraceEvent::Client(event));
        match self.start_read(target, mode, ReadOrigin::Client(client)) {
            Ok(id) => {
                let deadline_us = now_us + self.options.client_timeout_us;
                self.client_wait(
                    client,
                    ClientState::Reading { op, node: target, id },
                    deadline_us,
                );
            }
            Err(error) => self.client_read_failed(client, op, target, ReadFailure::Protocol(error)),
        }
        self.after_call(target)
    }

    /// A read of `client` was served or failed.
    pub(crate) fn clients_on_read(
        &mut self,
        client: usize,
        outcome: ReadOutcome,
    ) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let Some(workload) = self.workload.as_mut() else { return Ok(()) };
        let waiting = matches!(&workload.clients[client].state,
            ClientState::Reading { id, .. } if *id == outcome.id);
        if !waiting {
            return Ok(()); // The client gave up on this read already.
        }
        let ClientState::Reading { op, node, .. } =
            std::mem::replace(&mut workload.clients[client].state, ClientState::Idle)
        else {
            unreachable!("matched above")
        };
        match outcome.result {
            Ok(served) => {
                let (index, value) =
                    served.value.unwrap_or((conclave_core::Index(0), Bytes::new()));
                let workload = self.workload_mut();
                let id = workload.clients[client].id;
                workload.history.push(HistoryEvent {
                    time_us: now_us,
                    client: id,
                    op: op.seq,
                    value,
                    kind: HistoryKind::ReadOk { index },
                });
                let event = self.client_event(client, ClientAction::Ok, &op, Some(node));
                let event = ClientTrace { index: Some(index), ..event };
                self.trace.record(now_us, TraceEvent::Client(event));
                self.client_done(client, &op);
            }
            Err(failure) => self.client_read_failed(client, op, node, failure),
        }
        Ok(())
    }

    /// A read failed: record it and try again (a read has no effect, so the same op is retried).
    /// A protocol without reads gets writes only from then on.
    fn client_read_failed(&mut self, client: usize, op: Op, node: NodeId, failure: ReadFailure) {
        let now_us = self.world.now_us;
        if failure == ReadFailure::Protocol(ReadError::Unsupported) {
            self.options.read_ratio = 0.0;
            self.record_client(client, &op, HistoryKind::Fail { reason: "unsupported" });
            let op = self.workload_mut().clients[client].op_new(now_us, 0.0);
            self.client_wait(client, ClientState::Retrying(op), now_us);
            return;
        }
        let reason = match &failure {
            ReadFailure::Protocol(ReadError::NotLeader { .. }) => "not-leader",
            ReadFailure::Protocol(ReadError::Timeout) => "timeout",
            ReadFailure::Protocol(_) => "read-failed",
            ReadFailure::NodeCrashed => "crashed",
        };
        self.record_client(client, &op, HistoryKind::Fail { reason });
        let event = self.client_event(client, ClientAction::Retry, &op, Some(node));
        self.trace.record(now_us, TraceEvent::Client(event));
        let hint = match failure {
            ReadFailure::Protocol(ReadError::NotLeader { leader_hint }) => leader_hint,
            _ => None,
        };
        self.client_retry(client, op, node, hint);
    }

    /// Schedules another attempt at `op` after `asked` refused it: soon at the leader it named,
    /// or at a random node after a blind delay when it named none (or itself).
    fn client_retry(&mut self, client: usize, op: Op, asked: NodeId, hint: Option<NodeId>) {
        let (now_us, nodes) = (self.world.now_us, self.world.ids.len());
        let c = &mut self.workload_mut().clients[client];
        let delay_us = match hint {
            Some(hint) if hint != asked => {
                c.target = hint;
                RETRY_HINTED_US
            }
            _ => {
                c.retarget_random(nodes);
                c.blind_retry_delay_us()
            }
        };
        self.client_wait(client, ClientState::Retrying(op), now_us + delay_us);
    }

    /// An operation was acknowledged: count it, and the client starts its next one a network
    /// round trip later (clients sit a hop away, as against a real server).
    fn client_done(&mut self, client: usize, op: &Op) {
        let now_us = self.world.now_us;
        let (low, high) = (self.options.latency_min_us, self.options.latency_max_us);
        let workload = self.workload_mut();
        workload.acknowledged += 1;
        if op.read {
            workload.reads_acknowledged += 1;
        }
        workload.latencies_us.push(now_us - op.started_us);
        let round_trip_us = workload.clients[client].rng.between(2 * low, 2 * high + 1);
        self.client_wait(client, ClientState::Idle, now_us + round_trip_us);
    }

    /// Puts `client` in `state` and schedules its next wake-up at `at_us`, cancelling older ones.
    fn client_wait(&mut self, client: usize, state: ClientState, at_us: u64) {
        let c = &mut self.workload_mut().clients[client];
        c.state = state;
        let generation = c.rearm();
        self.world.queue.push(at_us, Event::ClientWake { client, generation });
    }

    /// `node` applied `entry`: a client waiting on that index learns its fate. The same term means
    /// the proposal took effect; another term means a new leader overwrote it, so it never will,
    /// and the client retries the same operation.
    pub(crate) fn clients_on_apply(&mut self, node: NodeId, entry: &Entry) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let Some(workload) = self.workload.as_ref() else { return Ok(()) };
        let waiting = workload.clients.iter().position(|c| {
            matches!(&c.state, ClientState::Pending { node: n, proposal, .. }
                if *n == node && proposal.index == entry.index)
        });
        let Some(client) = waiting else { return Ok(()) };
        let ClientState::Pending { op, proposal, .. } =
            std::mem::replace(&mut self.workload_mut().clients[client].state, ClientState::Idle)
        else {
            unreachable!("found pending above")
        };
        if entry.term == proposal.term {
            if entry.kind != EntryKind::Command || entry.data != op.value {
                return Err(Breach::new(
                    Invariant::AcknowledgedWrite,
                    format!(
                        "node {node} accepted {:?} at {}@{}, but applied {:?} {:?} there",
                        op.value, proposal.index, proposal.term, entry.kind, entry.data
                    ),
                ));
            }
            let kind = HistoryKind::Ok { index: entry.index, term: entry.term };
            self.record_client(client, &op, kind);
            let event = self.client_event(client, ClientAction::Ok, &op, Some(node));
            let event = ClientTrace { index: Some(entry.index), term: Some(entry.term), ..event };
            self.trace.record(now_us, TraceEvent::Client(event));
            self.client_done(client, &op);
        } else {
            self.record_client(client, &op, HistoryKind::Fail { reason: "overwritten" });
            let event = self.client_event(client, ClientAction::Retry, &op, Some(node));
            let event = ClientTrace { index: Some(entry.index), ..event };
            self.trace.record(now_us, TraceEvent::Client(event));
            let nodes = self.world.ids.len();
            self.workload_mut().clients[client].retarget_random(nodes);
            self.client_wait(client, ClientState::Retrying(op), now_us + RETRY_HINTED_US);
        }
        Ok(())
    }

    /// `node` crashed: clients waiting on it cannot know whether their operation took effect.
    pub(crate) fn clients_on_crash(&mut self, node: NodeId) {
        let now_us = self.world.now_us;
        let nodes = self.world.ids.len();
        let Some(workload) = self.workload.as_ref() else { return };
        let waiting: Vec<usize> = (0..workload.clients.len())
            .filter(|i| {
                let state = &workload.clients[*i].state;
                matches!(state, ClientState::Pending { node: n, .. } if *n == node)
            })
            .collect();
        for client in waiting {
            let state = std::mem::replace(
                &mut self.workload_mut().clients[client].state,
                ClientState::Idle,
            );
            let ClientState::Pending { op, .. } = state else { unreachable!("filtered pending") };
            self.record_client(client, &op, HistoryKind::Timeout);
            let event = self.client_event(client, ClientAction::Timeout, &op, Some(node));
            self.trace.record(now_us, TraceEvent::Client(event));
            let c = &mut self.workload_mut().clients[client];
            c.retarget_random(nodes);
            let at_us = now_us + c.blind_retry_delay_us();
            self.client_wait(client, ClientState::Idle, at_us);
        }
    }

    fn record_client(&mut self, client: usize, op: &Op, kind: HistoryKind) {
        let now_us = self.world.now_us;
        let workload = self.workload_mut();
        let client = workload.clients[client].id;
        let event =
            HistoryEvent { time_us: now_us, client, op: op.seq, value: op.value.clone(), kind };
        workload.history.push(event);
    }

    fn client_event(
        &self,
        client: usize,
        action: ClientAction,
        op: &Op,
        node: Option<NodeId>,
    ) -> ClientTrace {
        let client = self.workload().clients[client].id;
        ClientTrace { client, action, op: op.seq, node, index: None, term: None }
    }
}
