//! The simulation: the clock, the event loop, and the manual control API scenario tests drive.
//!
//! Everything runs on one thread. An event is taken from the queue, the virtual clock jumps to its
//! time, the event is handled (a tick, a delivery, a client wake-up, a nemesis step), and every
//! call into a node is followed by draining its `Ready`s and checking the safety invariants.
//! Nothing iterates a hash map where order matters and every random choice comes from a stream
//! forked off the seed, so the same options always produce the same run, byte for byte.
//!
//! Reading order: this file (state, manual API, event loop), then `drive.rs` (how a node's `Ready`
//! is carried out and observed), then `workload.rs` (random runs: clients and the nemesis).

use std::collections::BTreeSet;
use std::io::{self, Write};

use bytes::Bytes;
use conclave_core::{
    DurableState, Entry, EntryKind, Envelope, Index, NodeId, Proposal, ProposeError, Protocol,
    RandomSource, Role, SeededRng, Status, Term,
};

use crate::disk::SimDisk;
use crate::event_queue::EventQueue;
use crate::history::HistoryEvent;
use crate::nemesis::NemesisEvent;
use crate::network::{DropReason, Network, NetworkStats};
use crate::node::NodeSlot;
use crate::observer::{ActionSlot, NemesisAction, Observer, SimulationBuilder};
use crate::options::{Options, OptionsError};
use crate::raft_invariants::raft_observers;
use crate::reads::Reads;
use crate::trace::{Trace, TraceEvent};
use crate::violation::{Breach, Violation};
use crate::workload::Workload;

/// Builds a node's protocol object: at the start of the run from an empty [`DurableState`], and
/// after every crash from whatever its disk holds. Arguments: the node's id, the cluster's
/// initial voters (`1..=options.nodes`; spare nodes are not among them, and join only through
/// membership changes), the recovered durable state, and a random stream for the protocol.
pub type Factory<P> = Box<dyn FnMut(NodeId, &[NodeId], DurableState, SeededRng) -> P>;

/// Things that happen at a moment of virtual time.
pub(crate) enum Event<M> {
    /// A node's periodic tick, valid only for the incarnation that scheduled it.
    Tick { node: NodeId, incarnation: u64 },
    /// A message arrives.
    Deliver(Envelope<M>),
    /// A client's timer fires, valid only if `generation` is still the client's current one.
    ClientWake { client: usize, generation: u64 },
    /// A nemesis step or undo.
    Nemesis(NemesisEvent),
    /// A node's disk write `seq` completes, valid only for the incarnation that issued it.
    DiskDone { node: NodeId, incarnation: u64, seq: u64 },
    /// A protocol's own nemesis action (by registration index) is due.
    Action { index: usize },
}

/// Running totals over the whole simulation, for summaries and scenario assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events taken off the event queue.
    pub events_processed: u64,
    /// Transitions into `Candidate`, including a candidate moving to a new term.
    pub elections_started: u64,
    /// Terms in which some node became leader.
    pub leaders_elected: u64,
    /// Elections won by a different node than the previous winner.
    pub leader_changes: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Node restarts.
    pub restarts: u64,
    /// Partitions and one-way cut episodes started.
    pub partitions: u64,
    /// Disk writes lost because their node crashed before they completed.
    pub writes_lost: u64,
    /// Of those, writes whose first record was left torn (and cut at restart).
    pub torn_writes: u64,
    /// Disk syncs that failed, each stopping its node.
    pub sync_failures: u64,
    /// State machine images taken on `Ready::snapshot_due`.
    pub snapshots_taken: u64,
    /// State machines restored from a snapshot (installed, or found on disk at restart).
    pub snapshots_restored: u64,
    /// Nemesis timer events among `events_processed`: the random nemesis's steps (many start
    /// nothing) or a schedule's fault starts. They change nothing by themselves, so a random run
    /// and its scripted replay differ in `events_processed` by exactly the difference here.
    pub nemesis_steps: u64,
}

/// The simulated world: the virtual clock, the events waiting for their time, the network, and
/// the nodes (each a protocol object while up, a disk, a state machine, a clock speed). It holds
/// no policy: the driver (`drive.rs`) and the workload act on it, and observers read it.
pub(crate) struct World<P: Protocol> {
    /// Every node: the initial voters, then the spares.
    pub(crate) ids: Vec<NodeId>,
    /// The voters the cluster starts with.
    pub(crate) voters_initial: Vec<NodeId>,
    /// The nodes, by `id - 1`.
    pub(crate) nodes: Vec<NodeSlot<P>>,
    /// Events by virtual time (ties in insertion order).
    pub(crate) queue: EventQueue<Event<P::Message>>,
    /// The virtual clock, in µs since the start.
    pub(crate) now_us: u64,
    pub(crate) network: Network,
}

/// A deterministic simulation of a cluster running protocol `P`.
///
/// Two ways to use it:
/// - [`run`](Simulation::run): the random workload. Clients propose operations while the nemesis
///   injects the configured faults; then faults stop and the cluster must converge.
/// - The manual API, for scenario tests: [`run_for`](Simulation::run_for),
///   [`run_until`](Simulation::run_until), [`crash`](Simulation::crash),
///   [`partition`](Simulation::partition), [`propose`](Simulation::propose), and the accessors.
///   Only ticks and messages move on their own; no clients, no nemesis.
///
/// Safety invariants are checked after every event in both modes, by the [`Observer`]s the
/// simulation was built with ([`new`](Simulation::new) registers
/// [`raft_observers`](crate::raft_observers); [`builder`](Simulation::builder) lets a protocol
/// bring its own). The first violation stops the simulation: it is returned by the `run*` call
/// that hit it (or by the next one, when a manual call such as [`restart`](Simulation::restart)
/// hit it) and kept in [`violation`](Simulation::violation).
///
/// The struct holds three things: the [`World`] (clock, event queue, network, nodes with their
/// disks and state machines), what the driver needs to carry out `Ready`s (the options, the
/// factory, counters, the trace, the random streams, the workload), and the observers, which only
/// watch.
pub struct Simulation<P: Protocol> {
    /// What is simulated; everything else here drives or watches it.
    pub(crate) world: World<P>,

    // The driver's state.
    pub(crate) options: Options,
    pub(crate) factory: Factory<P>,
    /// The global applied sequence: the longest any node applied, entry `i` at position `i - 1`.
    /// Every node's is a prefix of it when State Machine Safety holds (an observer's business);
    /// the driver keeps it for reads, clients and the final acknowledged-write check.
    pub(crate) applied_global: Vec<Entry>,
    /// The highest index any node (showing its log) has reported committed: what convergence
    /// must reach.
    pub(crate) committed_last: Index,

    // The driver's records.
    pub(crate) trace: Trace,
    pub(crate) counters: Counters,
    /// The node that won the latest election, for counting leader changes.
    pub(crate) leader_elected_last: Option<NodeId>,
    /// The terms some node was seen leading, for counting elections won.
    pub(crate) terms_led: BTreeSet<Term>,
    /// Streams reserved for the workload, forked at construction so that starting a workload
    /// late does not shift anything else.
    pub(crate) rng_clients: SeededRng,
    pub(crate) rng_nemesis: SeededRng,
    /// Clients and nemesis, present once [`run`](Simulation::run) started.
    pub(crate) workload: Option<Workload>,
    pub(crate) violation: Option<Violation>,
    /// Reads in flight and their outcomes.
    pub(crate) reads: Reads,

    // The watchers.
    /// The checks, in registration order; taken out while they are called (see `notify`).
    pub(crate) observers: Vec<Box<dyn Observer<P>>>,
    /// Whether any observer watches every event (`Observer::watches_events`).
    pub(crate) observers_watch_events: bool,
    /// The protocol's own nemesis actions, with their random streams.
    pub(crate) actions: Vec<ActionSlot<P>>,
}

impl<P: Protocol> Simulation<P> {
    /// A cluster of `options.nodes` fresh nodes built by `factory`, all up, with their first ticks
    /// scheduled at random phases within one tick, checked by
    /// [`raft_observers`](crate::raft_observers). No trace sink.
    pub fn new(
        options: Options,
        factory: impl FnMut(NodeId, &[NodeId], DurableState, SeededRng) -> P + 'static,
    ) -> Result<Simulation<P>, OptionsError> {
        Simulation::builder(options, factory).observers(raft_observers()).build()
    }

    /// A builder for a simulation checked by the observers it is given (none by default), for
    /// protocols that bring their own invariants.
    pub fn builder(
        options: Options,
        factory: impl FnMut(NodeId, &[NodeId], DurableState, SeededRng) -> P + 'static,
    ) -> SimulationBuilder<P> {
        SimulationBuilder::new(options, factory)
    }

    /// Like [`new`](Simulation::new), writing every trace event as a JSON line to `sink` (buffered
    /// here; flushed when a run ends, on [`flush_trace`](Simulation::flush_trace) and on drop).
    /// Taking the sink at construction means the trace includes the nodes' first steps.
    pub fn with_trace(
        options: Options,
        factory: impl FnMut(NodeId, &[NodeId], DurableState, SeededRng) -> P + 'static,
        sink: Box<dyn Write>,
    ) -> Result<Simulation<P>, OptionsError> {
        Simulation::builder(options, factory).observers(raft_observers()).trace(sink).build()
    }

    pub(crate) fn build(
        options: Options,
        factory: Factory<P>,
        observers: Vec<Box<dyn Observer<P>>>,
        actions: Vec<Box<dyn NemesisAction<P>>>,
        sink: Option<Box<dyn Write>>,
    ) -> Result<Simulation<P>, OptionsError> {
        options.validate()?;
        // One master stream forks every sub-stream in a fixed order; each subsystem then draws
        // only from its own, so extra draws in one never perturb another.
        let mut master = SeededRng::new(options.seed);
        let total = options.total_nodes();
        let mut network =
            Network::new(total, options.latency_min_us, options.latency_max_us, master.fork());
        network.set_drop_probability(options.drop_probability);
        network.set_duplicate_probability(options.duplicate_probability);
        let rng_clients = master.fork();
        let rng_nemesis = master.fork();
        let ids: Vec<NodeId> = (1..=total as u64).map(NodeId).collect();
        let voters_initial: Vec<NodeId> = ids[..options.nodes].to_vec();
        let node_rngs: Vec<SeededRng> = ids.iter().map(|_| master.fork()).collect();
        // Forked after every older stream, so that adding disks shifted none of them.
        let mut disk_master = master.fork();
        // And clocks after disks.
        let mut clock_rng = master.fork();
        // And the protocol's own nemesis actions last, so that registering one shifts nothing.
        let mut actions_master = master.fork();
        let actions: Vec<ActionSlot<P>> = actions
            .into_iter()
            .map(|action| ActionSlot { action, rng: actions_master.fork() })
            .collect();
        let (disk_latency_min_us, disk_latency_max_us) = options.disk_latency_us();
        let nodes = ids
            .iter()
            .zip(node_rngs)
            .map(|(id, rng)| {
                let disk =
                    SimDisk::new(disk_master.fork(), disk_latency_min_us, disk_latency_max_us);
                let skew =
                    (clock_rng.between(0, 2_000_001) as f64 / 1e6 - 1.0) * options.clock_drift;
                let tick_us = ((options.tick_us as f64 * (1.0 + skew)).round() as u64).max(1);
                NodeSlot::new(*id, rng, disk, tick_us)
            })
            .collect();
        let mut trace = Trace::new(options.recent_trace_len);
        if let Some(sink) = sink {
            trace.set_sink(sink);
        }
        let world =
            World { ids, voters_initial, nodes, queue: EventQueue::new(), now_us: 0, network };
        let mut simulation = Simulation {
            world,
            options,
            factory,
            applied_global: Vec::new(),
            committed_last: Index(0),
            trace,
            counters: Counters::default(),
            leader_elected_last: None,
            terms_led: BTreeSet::new(),
            rng_clients,
            rng_nemesis,
            workload: None,
            violation: None,
            reads: Reads::default(),
            observers_watch_events: observers.iter().any(|observer| observer.watches_events()),
            observers,
            actions,
        };
        for id in simulation.world.ids.clone() {
            if let Err(breach) = simulation.start_node(id) {
                // Kept for the first `run*` call to return, like any breach outside the loop.
                simulation.fail(breach);
                break;
            }
        }
        Ok(simulation)
    }

    // ---------------------------------------------------------------------------------------
    // Accessors.

    /// The options the simulation was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The virtual clock, in microseconds since the start.
    pub fn now_us(&self) -> u64 {
        self.world.now_us
    }

    /// Every node id, in order: the initial voters, then the spares.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.world.ids
    }

    /// The voters the cluster started with.
    pub fn initial_voters(&self) -> &[NodeId] {
        &self.world.voters_initial
    }

    /// The length of `id`'s tick in virtual microseconds (its clock's speed).
    pub fn tick_us_of(&self, id: NodeId) -> u64 {
        self.slot(id).tick_us
    }

    /// Makes `id`'s clock tick every `tick_us` virtual microseconds from its next tick on: a
    /// clock that runs fast (shorter) or slow (longer) than the others.
    pub fn set_tick_us(&mut self, id: NodeId, tick_us: u64) {
        assert!(tick_us > 0, "a tick of zero length");
        self.slot_mut(id).tick_us = tick_us;
    }

    /// True while `id` is running (not crashed).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slot(id).is_up()
    }

    /// The protocol object of `id`, or `None` while it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&P> {
        self.slot(id).protocol.as_ref()
    }

    /// Mutable access to `id`'s protocol, for tests that poke it directly. Work it produces is not
    /// carried out (nor checked) until the next event that calls into the node; prefer
    /// [`with_node`](Simulation::with_node), which drains it at once.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut P> {
        self.slot_mut(id).protocol.as_mut()
    }

    /// Calls `f` on `id`'s protocol, then carries out and checks the work it produced, as after
    /// any event. `None` if the node is crashed.
    pub fn with_node<R>(&mut self, id: NodeId, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        let result = f(self.slot_mut(id).protocol.as_mut()?);
        self.settle(id);
        Some(result)
    }

    /// `id`'s status, or `None` while it is crashed.
    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.node(id).map(|protocol| protocol.status())
    }

    /// The leader of the highest term among live nodes that consider themselves leader (unique, by
    /// Election Safety), or `None` if no live node leads. A deposed leader that has not yet heard
    /// of a newer term still counts until a newer leader exists.
    pub fn leader(&self) -> Option<NodeId> {
        let mut best: Option<(NodeId, Status)> = None;
        for slot in &self.world.nodes {
            let Some(status) = slot.protocol.as_ref().map(|p| p.status()) else { continue };
            if status.role == Role::Leader && best.is_none_or(|(_, b)| status.term > b.term) {
                best = Some((slot.id, status));
            }
        }
        best.map(|(id, _)| id)
    }

    /// `id`'s state machine: the entries it applied, from index 1 (kept while it is crashed;
    /// on restart, restored from its disk's snapshot, or cleared without one). Entries restored
    /// from a snapshot count as applied.
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.slot(id).applied
    }

    /// The global applied sequence: the longest any node has applied, which every node's applied
    /// sequence is a prefix of (that is State Machine Safety, checked at every apply).
    pub fn applied_sequence(&self) -> &[Entry] {
        &self.applied_global
    }

    /// The index of the newest command in the global applied sequence (0 if none): every read
    /// that begins now must return it or something newer.
    pub(crate) fn last_command_applied(&self) -> Index {
        let newest = self.applied_global.iter().rev().find(|e| e.kind == EntryKind::Command);
        newest.map_or(Index(0), |e| e.index)
    }

    /// `id`'s durable state, exactly as a restart would find it: only writes that completed.
    pub fn disk(&self, id: NodeId) -> &DurableState {
        self.slot(id).disk.state()
    }

    /// How many of `id`'s writes are in flight (issued, not yet durable).
    pub fn pending_writes(&self, id: NodeId) -> usize {
        self.slot(id).disk.pending_len()
    }

    /// Message counts so far, in total and by kind.
    pub fn stats(&self) -> &NetworkStats {
        self.world.network.stats()
    }

    /// Elections, leader changes, crashes and other totals so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The client history of [`run`](Simulation::run) (empty before it starts).
    pub fn history(&self) -> &[HistoryEvent] {
        self.workload.as_ref().map_or(&[], |workload| workload.history.as_slice())
    }

    /// The violation that stopped the simulation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// The most recent trace events as JSON lines, oldest first.
    pub fn recent_trace(&self) -> Vec<String> {
        self.trace.recent_lines()
    }

    /// Flushes the trace sink.
    pub fn flush_trace(&mut self) {
        self.trace.flush();
    }

    /// The error that made the trace sink stop, if writing to it failed. The simulation carries on
    /// without it, so a full disk does not hide the run's outcome.
    pub fn trace_error(&self) -> Option<&io::Error> {
        self.trace.sink_error()
    }

    // ---------------------------------------------------------------------------------------
    // Running.

    /// Processes events for `duration_us` of virtual time.
    pub fn run_for(&mut self, duration_us: u64) -> Result<(), Violation> {
        let limit_us = self.world.now_us.saturating_add(duration_us);
        while self.step_event(limit_us)? {}
        Ok(())
    }

    /// Processes events until `done` holds (checked before the first event and after each one) or
    /// `max_us` of virtual time pass. Returns whether `done` came to hold.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Simulation<P>) -> bool,
        max_us: u64,
    ) -> Result<bool, Violation> {
        self.check_stopped()?;
        let limit_us = self.world.now_us.saturating_add(max_us);
        if done(self) {
            return Ok(true);
        }
        while self.step_event(limit_us)? {
            if done(self) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Re-checks every invariant over the whole current state (every live node's status and log,
    /// every applied sequence), beyond the incremental checks made after each event.
    pub fn check_invariants(&mut self) -> Result<(), Violation> {
        self.check_stopped()?;
        for id in self.world.ids.clone() {
            if let Err(breach) = self.check_node(id) {
                return Err(self.fail(breach));
            }
        }
        Ok(())
    }

    fn check_node(&mut self, id: NodeId) -> Result<(), Breach> {
        self.observe(id)?;
        self.notify(|observer, sim| observer.recheck(sim, id))
    }

    /// Returns the stored violation, if the simulation already stopped on one.
    pub(crate) fn check_stopped(&self) -> Result<(), Violation> {
        match &self.violation {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        }
    }

    /// Handles the next event if it is due by `limit_us`. Otherwise moves the clock to `limit_us`
    /// and returns false.
    pub(crate) fn step_event(&mut self, limit_us: u64) -> Result<bool, Violation> {
        self.check_stopped()?;
        match self.world.queue.peek_time_us() {
            Some(time_us) if time_us <= limit_us => {}
            _ => {
                self.world.now_us = self.world.now_us.max(limit_us);
                return Ok(false);
            }
        }
        let (time_us, event) = self.world.queue.pop().expect("peeked");
        // Invariant: virtual time never runs backwards.
        assert!(
            time_us >= self.world.now_us,
            "event at {time_us} scheduled in the past of {}",
            self.world.now_us
        );
        self.world.now_us = time_us;
        self.counters.events_processed += 1;
        if let Err(breach) = self.handle(event).and_then(|()| self.notify_after_event()) {
            return Err(self.fail(breach));
        }
        Ok(true)
    }

    fn handle(&mut self, event: Event<P::Message>) -> Result<(), Breach> {
        match event {
            Event::Tick { node, incarnation } => {
                let slot = self.slot_mut(node);
                let tick_us = slot.tick_us;
                if slot.incarnation != incarnation {
                    return Ok(()); // A timer from a previous life.
                }
                let Some(protocol) = slot.protocol.as_mut() else { return Ok(()) };
                protocol.tick();
                self.world
                    .queue
                    .push(self.world.now_us + tick_us, Event::Tick { node, incarnation });
                self.after_call(node)
            }
            Event::Deliver(envelope) => self.deliver(envelope),
            Event::ClientWake { client, generation } => self.on_client_wake(client, generation),
            Event::Nemesis(event) => self.on_nemesis(event),
            Event::Action { index } => {
                self.on_action(index);
                Ok(())
            }
            Event::DiskDone { node, incarnation, seq } => self.on_disk_done(node, incarnation, seq),
        }
    }

    fn deliver(&mut self, envelope: Envelope<P::Message>) -> Result<(), Breach> {
        use conclave_core::MessageMeta;
        let (from, to) = (envelope.from, envelope.to);
        let kind = envelope.msg.kind();
        // Checked again on arrival: a partition that formed while the message flew stops it.
        let reason = if !self.world.network.can_reach(from, to) {
            Some(DropReason::Partition)
        } else if !self.slot(to).is_up() {
            Some(DropReason::Crashed)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.world.network.record_dropped(reason);
            self.trace.record(
                self.world.now_us,
                TraceEvent::Drop { from, to, kind, reason: reason.name() },
            );
            return Ok(());
        }
        self.world.network.record_delivered();
        let term = envelope.msg.term();
        self.trace.record(self.world.now_us, TraceEvent::Deliver { from, to, kind, term });
        self.slot_mut(to).protocol.as_mut().expect("checked up").step(envelope);
        self.after_call(to)
    }

    // ---------------------------------------------------------------------------------------
    // Manual control.

    /// Asks `id` to replicate `data`, then carries out the work it produced. Panics if `id` is
    /// crashed: proposing to a dead node is a mistake in the test, not a protocol outcome.
    pub fn propose(&mut self, id: NodeId, data: Bytes) -> Result<Proposal, ProposeError> {
        let protocol = self.slot_mut(id).protocol.as_mut();
        let result =
            protocol.unwrap_or_else(|| panic!("propose to crashed node {id}")).propose(data);
        self.settle(id);
        result
    }

    /// Crashes `id`: its protocol object and everything not durable on its disk (writes in
    /// flight included) are lost, and messages reaching it while it is down are dropped. With the
    /// `torn-write` fault, a write in flight may be left torn. Returns false if it was already
    /// down.
    pub fn crash(&mut self, id: NodeId) -> bool {
        let tear_probability = self.tear_probability();
        self.crash_node(id, tear_probability)
    }

    /// A power cut in the middle of `id`'s disk write: crashes it like
    /// [`crash`](Simulation::crash), and the first record of the write in flight (if it has
    /// entries) is left torn for recovery to cut at restart. Returns false if it was already down.
    pub fn power_cut(&mut self, id: NodeId) -> bool {
        self.crash_node(id, 1.0)
    }

    pub(crate) fn crash_node(&mut self, id: NodeId, tear_probability: f64) -> bool {
        let slot = self.slot_mut(id);
        if slot.protocol.take().is_none() {
            return false;
        }
        slot.incarnation += 1;
        slot.status_last = None;
        let loss = slot.disk.crash(tear_probability);
        self.counters.crashes += 1;
        self.counters.writes_lost += loss.writes;
        self.counters.torn_writes += u64::from(loss.torn_bytes.is_some());
        self.trace.record(self.world.now_us, TraceEvent::Crash { node: id });
        if loss.writes > 0 {
            let event =
                TraceEvent::DiskLost { node: id, writes: loss.writes, entries: loss.entries };
            self.trace.record(self.world.now_us, event);
        }
        self.clients_on_crash(id);
        self.reads_on_crash(id);
        self.tell(|observer, sim| observer.on_crash(sim, id));
        true
    }

    /// Makes the disks of exactly `nodes` slow (some writes take 10–100 ms); `&[]` makes every
    /// disk normal again.
    pub fn set_slow_disks(&mut self, nodes: &[NodeId]) {
        for slot in &mut self.world.nodes {
            slot.disk.set_slow(nodes.contains(&slot.id));
        }
        let nodes: Vec<NodeId> = self
            .world
            .nodes
            .iter()
            .filter(|slot| slot.disk.is_slow())
            .map(|slot| slot.id)
            .collect();
        self.trace.record(self.world.now_us, TraceEvent::SlowDisk { nodes });
    }

    /// Makes `id`'s next disk sync (of a write with something to write) fail: the write is not
    /// durable and the node stops at once, as a real one must after a failed fsync. In a random
    /// run the nemesis restarts it; with the manual API it stays down until
    /// [`restart`](Simulation::restart). `false` takes it back.
    pub fn fail_next_sync(&mut self, id: NodeId, fail: bool) {
        self.slot_mut(id).disk.fail_next_sync(fail);
    }

    /// Restarts a crashed `id` from its disk alone: recovery cuts a torn record, the state
    /// machine is restored from the disk's snapshot (or starts empty), and the protocol is rebuilt
    /// from the durable state. Returns false if it was up.
    pub fn restart(&mut self, id: NodeId) -> bool {
        match self.restart_node(id) {
            Ok(restarted) => restarted,
            Err(breach) => {
                self.fail(breach);
                true
            }
        }
    }

    /// [`restart`](Simulation::restart), returning a breach found in the node's first work.
    pub(crate) fn restart_node(&mut self, id: NodeId) -> Result<bool, Breach> {
        if self.slot(id).is_up() {
            return Ok(false);
        }
        self.counters.restarts += 1;
        self.trace.record(self.world.now_us, TraceEvent::Restart { node: id });
        self.start_node(id)?;
        Ok(true)
    }

    /// Splits the network into `groups`: nodes reach each other only within a group; a node named
    /// in no group is alone. Replaces any earlier grouping; one-way cuts stay.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.world.network.partition(groups);
        self.counters.partitions += 1;
        self.trace.record(
            self.world.now_us,
            TraceEvent::Partition { groups: self.world.network.groups() },
        );
    }

    /// Blocks messages from `from` to `to`, leaving the other direction open.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut_links(&[(from, to)]);
    }

    /// Blocks several links one way, counted as one partition episode.
    pub(crate) fn cut_links(&mut self, cuts: &[(NodeId, NodeId)]) {
        self.counters.partitions += 1;
        for (from, to) in cuts {
            self.world.network.cut_one_way(*from, *to);
            self.trace.record(self.world.now_us, TraceEvent::Cut { from: *from, to: *to });
        }
    }

    /// Removes every partition and one-way cut.
    pub fn heal(&mut self) {
        self.world.network.heal();
        self.trace.record(self.world.now_us, TraceEvent::Heal);
    }

    /// Sets the probability that any one message is lost.
    pub fn set_drop_probability(&mut self, probability: f64) {
        self.world.network.set_drop_probability(probability);
        self.trace_weather();
    }

    /// Sets the probability that any one message is delivered twice.
    pub fn set_duplicate_probability(&mut self, probability: f64) {
        self.world.network.set_duplicate_probability(probability);
        self.trace_weather();
    }

    /// Turns the long latency tail (some messages take 10–200 ms) on or off.
    pub fn set_delay_spike(&mut self, on: bool) {
        self.world.network.set_delay_spike(on);
        self.trace_weather();
    }

    /// Turns reordering on (links stop being FIFO and some messages are held back) or off.
    pub fn set_reorder(&mut self, on: bool) {
        self.world.network.set_reorder(on);
        self.trace_weather();
    }

    fn trace_weather(&mut self) {
        let event = TraceEvent::Weather {
            drop: self.world.network.drop_probability(),
            duplicate: self.world.network.duplicate_probability(),
            delay: self.world.network.delay_spike(),
            reorder: self.world.network.reorder(),
        };
        self.trace.record(self.world.now_us, event);
    }

    // ---------------------------------------------------------------------------------------
    // Internals.

    /// Recovers `id`'s disk, restores its state machine from the disk's snapshot, builds its
    /// protocol from the durable state and schedules its first tick at a random phase, so that
    /// nodes do not tick in lockstep. Then carries out the node's first work (a restarted node
    /// typically re-applies its committed log after the snapshot).
    fn start_node(&mut self, id: NodeId) -> Result<(), Breach> {
        let slot = &mut self.world.nodes[(id.0 - 1) as usize];
        let tick_us = slot.tick_us;
        let torn = slot.disk.recover();
        let durable = slot.disk.state().clone();
        slot.applied.clear();
        if let Some(bytes) = torn {
            self.trace.record(self.world.now_us, TraceEvent::Torn { node: id, bytes });
        }
        if let Some(snapshot) = &durable.snapshot {
            self.restore(id, snapshot)?;
        }
        let slot = &mut self.world.nodes[(id.0 - 1) as usize];
        let rng = slot.rng.fork();
        let phase_us = slot.rng.between(0, tick_us);
        slot.protocol = Some((self.factory)(id, &self.world.voters_initial, durable, rng));
        slot.status_last = None;
        slot.membership_last = None;
        let incarnation = slot.incarnation;
        self.tell(|observer, sim| observer.on_start(sim, id));
        self.world.queue.push(self.world.now_us + phase_us, Event::Tick { node: id, incarnation });
        self.after_call(id)
    }

    /// Carries out and checks `id`'s pending work outside the event loop, keeping a violation for
    /// the next `run*` call to return.
    pub(crate) fn settle(&mut self, id: NodeId) {
        if self.violation.is_some() {
            return;
        }
        if let Err(breach) = self.after_call(id) {
            self.fail(breach);
        }
    }

    /// Turns a breach into the run's violation, with the seed, the time and the recent trace.
    pub(crate) fn fail(&mut self, breach: Breach) -> Violation {
        let violation = Violation {
            seed: self.options.seed,
            invariant: breach.invariant,
            detail: breach.detail,
            time_us: self.world.now_us,
            recent_trace: self.trace.recent_lines(),
        };
        self.trace.flush();
        self.violation = Some(violation.clone());
        violation
    }

    /// The slot of `id`. Panics for an id outside the cluster, which is a mistake in the caller.
    pub(crate) fn slot(&self, id: NodeId) -> &NodeSlot<P> {
        match id.0.checked_sub(1).and_then(|i| self.world.nodes.get(i as usize)) {
            Some(slot) => slot,
            None => panic!("node {id} is not in the cluster of {}", self.world.nodes.len()),
        }
    }

    /// The mutable slot of `id`; panics like [`slot`](Simulation::slot).
    pub(crate) fn slot_mut(&mut self, id: NodeId) -> &mut NodeSlot<P> {
        let nodes = self.world.nodes.len();
        match id.0.checked_sub(1).and_then(|i| self.world.nodes.get_mut(i as usize)) {
            Some(slot) => slot,
            None => panic!("node {id} is not in the cluster of {nodes}"),
        }
    }
}
