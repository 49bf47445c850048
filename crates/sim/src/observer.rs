//! Observers: the checks that watch a run, plugged into the driver rather than written into it.
//!
//! The driver (`drive.rs`) carries out each node's `Ready` and calls every registered
//! [`Observer`] at fixed points of that work: a status looked at, a write made durable, promises
//! about to leave, an entry applied, a state machine restored, a node started or crashed, an event
//! handled, the run's end. An observer reads the world through the [`Simulation`] it is handed and
//! returns a [`Breach`] when a property it guards broke; the first one stops the run like any
//! other violation. So a protocol brings its own invariants by registering observers (see
//! [`SimulationBuilder`]) without a line of the driver changing; Raft's invariants arrive the
//! same way, through [`raft_observers`](crate::raft_observers).
//!
//! Observers are called in registration order, and a hook's breach skips the observers after it,
//! so a run's first violation depends only on the seed and the list.

use std::io::Write;

use conclave_core::{DurableState, Status, Term};
use conclave_core::{Entry, HardState, Index, Membership, NodeId, Protocol, RandomSource};
use conclave_core::{SeededRng, Snapshot};

use crate::options::{Options, OptionsError};
use crate::simulation::{Event, Factory, Simulation};
use crate::trace::TraceEvent;
use crate::violation::Breach;

/// A check (or any other watcher) of a simulated run, called by the driver at fixed points.
///
/// Every hook has a default that does nothing, so an observer implements only the moments it
/// cares about. Hooks get the simulation read-only: an observer cannot change the run, which is
/// what keeps a run with more observers the same run, byte for byte, as long as none breaks.
/// The node a hook names is up, except in [`on_crash`](Observer::on_crash).
pub trait Observer<P: Protocol> {
    /// A short name for reports and debugging (`"log-safety"`).
    fn name(&self) -> &'static str;

    /// `node` was started (at the beginning of the run, or restarted from its disk): forget what
    /// belonged to its previous incarnation.
    fn on_start(&mut self, _sim: &Simulation<P>, _node: NodeId) {}

    /// `node` crashed; its protocol object is gone.
    fn on_crash(&mut self, _sim: &Simulation<P>, _node: NodeId) {}

    /// `node`'s role, term or commit index changed (or this is its first look in this
    /// incarnation, `previous` being `None`): the driver looked at its status after a call into
    /// it. Only changes are reported because the driver looks after every call, and most calls
    /// change none of the three; `previous` is the status of the driver's last look (with the
    /// role, term and commit index of the last report).
    fn on_status(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _previous: Option<Status>,
        _status: Status,
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// `node` now acts on a different membership than at its last look.
    fn on_membership(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _membership: &Membership,
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// One of `node`'s writes became durable (its disk already holds it).
    fn on_durable(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _write: &DurableWrite<'_>,
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// `node` is about to send messages that rest on its having durably stored `term` and
    /// `vote` (the `Ready`'s `persisted_messages`).
    fn on_promises(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _term: Term,
        _vote: Option<NodeId>,
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// `node` is about to apply `entry`; [`Simulation::applied`] still shows what it applied
    /// before.
    fn on_apply(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _entry: &Entry,
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// `node`'s state machine is about to be restored from `snapshot`, whose image decoded to
    /// `restored` (the entries `1..=snapshot.index`).
    fn on_restore(
        &mut self,
        _sim: &Simulation<P>,
        _node: NodeId,
        _snapshot: &Snapshot,
        _restored: &[Entry],
    ) -> Result<(), Breach> {
        Ok(())
    }

    /// Whether [`after_event`](Observer::after_event) should be called. Opt-in, because a call
    /// after every one of a run's hundreds of thousands of events costs even when it does
    /// nothing; asked once, when the simulation is built.
    fn watches_events(&self) -> bool {
        false
    }

    /// An event was handled and everything it caused was carried out. Called only for observers
    /// whose [`watches_events`](Observer::watches_events) is true.
    fn after_event(&mut self, _sim: &Simulation<P>) -> Result<(), Breach> {
        Ok(())
    }

    /// A full re-check of `node` asked for by [`Simulation::check_invariants`] (and at the end
    /// of a random run), beyond the incremental checks of the other hooks.
    fn recheck(&mut self, _sim: &Simulation<P>, _node: NodeId) -> Result<(), Breach> {
        Ok(())
    }

    /// The random run converged and its clients finished: the last look.
    fn at_end(&mut self, _sim: &Simulation<P>) -> Result<(), Breach> {
        Ok(())
    }
}

/// A write that became durable, as [`Observer::on_durable`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct DurableWrite<'a> {
    /// The hard state written, if any.
    pub hard_state: Option<&'a HardState>,
    /// The log entries written, contiguous.
    pub entries: &'a [Entry],
    /// The snapshot written, if any.
    pub snapshot: Option<&'a Snapshot>,
    /// The index the log was compacted to, if it was.
    pub compact_to: Option<Index>,
    /// The term of the durable entry just before `entries` (after any snapshot in the same
    /// write); `None` when it is not known (compacted away) or nothing was written.
    pub term_prev: Option<Term>,
    /// Whether the node offered a log view when it handed the write over: log checks apply only
    /// to protocols that show their log.
    pub has_log: bool,
}

/// A fault a protocol brings along for the random nemesis, beyond the built-in ones (`crash`,
/// `partition`, ...): say, bouncing a primary, or asking a node for a protocol-specific step.
///
/// During [`Simulation::run`]'s op phase, each registered action is injected again and again,
/// at gaps drawn from [`gap_us`](NemesisAction::gap_us) by a random stream of its own (forked after
/// every built-in stream, so registering one changes nothing else in the run), and stops when the
/// op phase ends (faults are then undone and every node restarted). It acts through the manual
/// API ([`Simulation::crash`], [`Simulation::partition`], [`Simulation::with_node`], ...), so
/// whatever it causes is carried out and checked like any other event.
pub trait NemesisAction<P: Protocol> {
    /// A short, stable name, traced at each injection.
    fn name(&self) -> &'static str;

    /// The range the gap before each injection is drawn from, in virtual µs (inclusive).
    fn gap_us(&self) -> (u64, u64) {
        (100_000, 1_000_000)
    }

    /// Injects the fault now. Any violation it causes stops the run at the next event.
    fn inject(&mut self, sim: &mut Simulation<P>, rng: &mut SeededRng);
}

/// A registered nemesis action and its random stream.
pub(crate) struct ActionSlot<P: Protocol> {
    pub(crate) action: Box<dyn NemesisAction<P>>,
    pub(crate) rng: SeededRng,
}

/// How a simulation is put together: options, the protocol's factory, the observers that check
/// it, the protocol's own nemesis actions, and an optional trace sink. [`Simulation::new`] is this with
/// [`raft_observers`](crate::raft_observers) registered.
pub struct SimulationBuilder<P: Protocol> {
    options: Options,
    factory: Factory<P>,
    observers: Vec<Box<dyn Observer<P>>>,
    actions: Vec<Box<dyn NemesisAction<P>>>,
    sink: Option<Box<dyn Write>>,
}

impl<P: Protocol> SimulationBuilder<P> {
    /// A builder with no observers and no trace sink.
    pub fn new(
        options: Options,
        factory: impl FnMut(NodeId, &[NodeId], DurableState, SeededRng) -> P + 'static,
    ) -> SimulationBuilder<P> {
        SimulationBuilder {
            options,
            factory: Box::new(factory),
            observers: Vec::new(),
            actions: Vec::new(),
            sink: None,
        }
    }

    /// Registers `observer`, after those registered before it.
    pub fn observer(mut self, observer: Box<dyn Observer<P>>) -> SimulationBuilder<P> {
        self.observers.push(observer);
        self
    }

    /// Registers `observers`, in order.
    pub fn observers(
        mut self,
        observers: impl IntoIterator<Item = Box<dyn Observer<P>>>,
    ) -> SimulationBuilder<P> {
        self.observers.extend(observers);
        self
    }

    /// Registers a nemesis action of the protocol's own, injected during random runs.
    pub fn nemesis_action(mut self, action: Box<dyn NemesisAction<P>>) -> SimulationBuilder<P> {
        self.actions.push(action);
        self
    }

    /// Writes every trace event as a JSON line to `sink` (see [`Simulation::with_trace`]).
    pub fn trace(mut self, sink: Box<dyn Write>) -> SimulationBuilder<P> {
        self.sink = Some(sink);
        self
    }

    /// The simulation, its nodes started.
    pub fn build(self) -> Result<Simulation<P>, OptionsError> {
        Simulation::build(self.options, self.factory, self.observers, self.actions, self.sink)
    }
}

impl<P: Protocol> Simulation<P> {
    /// Schedules every registered nemesis action's first injection (the op phase starts).
    pub(crate) fn start_actions(&mut self) {
        for index in 0..self.actions.len() {
            self.schedule_action(index);
        }
    }

    fn schedule_action(&mut self, index: usize) {
        let slot = &mut self.actions[index];
        let (gap_min_us, gap_max_us) = slot.action.gap_us();
        let at_us =
            self.world.now_us + slot.rng.between(gap_min_us, gap_max_us.max(gap_min_us) + 1);
        self.world.queue.push(at_us, Event::Action { index });
    }

    /// Injects action `index` and schedules its next injection, unless the op phase is over.
    pub(crate) fn on_action(&mut self, index: usize) {
        if self.workload.as_ref().is_none_or(|workload| workload.ops_phase_over) {
            return;
        }
        let mut actions = std::mem::take(&mut self.actions);
        let slot = &mut actions[index];
        self.trace.record(self.world.now_us, TraceEvent::Action { name: slot.action.name() });
        slot.action.inject(self, &mut slot.rng);
        self.actions = actions;
        self.schedule_action(index);
    }

    /// Calls `after_event` on the observers that watch events, if any do.
    pub(crate) fn notify_after_event(&mut self) -> Result<(), Breach> {
        if !self.observers_watch_events {
            return Ok(());
        }
        self.notify(
            |observer, sim| {
                if observer.watches_events() {
                    observer.after_event(sim)
                } else {
                    Ok(())
                }
            },
        )
    }

    /// Calls `hook`, which cannot fail, on every observer in order.
    pub(crate) fn tell(&mut self, mut hook: impl FnMut(&mut dyn Observer<P>, &Simulation<P>)) {
        let result = self.notify(|observer, sim| {
            hook(observer, sim);
            Ok(())
        });
        debug_assert!(result.is_ok(), "a hook that cannot fail failed");
    }

    /// Calls `hook` on every observer in order, stopping at the first breach. The observers are
    /// taken out of the simulation for the call so that each can read all of it.
    pub(crate) fn notify(
        &mut self,
        mut hook: impl FnMut(&mut dyn Observer<P>, &Simulation<P>) -> Result<(), Breach>,
    ) -> Result<(), Breach> {
        if self.observers.is_empty() {
            return Ok(());
        }
        let mut observers = std::mem::take(&mut self.observers);
        // A plain loop rather than `try_for_each`: this runs several times per event, and debug
        // builds (where the driver is instantiated unoptimised) pay for every adapter layer.
        let mut result = Ok(());
        for observer in &mut observers {
            result = hook(observer.as_mut(), self);
            if result.is_err() {
                break;
            }
        }
        self.observers = observers;
        result
    }
}
