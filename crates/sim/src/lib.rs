//! A deterministic, single-threaded simulator that runs any Conclave protocol under seeded faults
//! and checks safety after every step.
//!
//! The simulator is the protocol's whole world: a virtual clock, a simulated network (latency,
//! loss, duplication, reordering, partitions), a simulated disk per node, simulated clients and a
//! nemesis that schedules faults, all driven by one seeded random stream. The same [`Options`]
//! (seed included) always produce the same run, byte for byte, so any failure replays exactly.
//!
//! Start at [`Simulation`]: [`Simulation::run`] for a random workload, or the manual API
//! ([`Simulation::run_until`], [`Simulation::crash`], [`Simulation::partition`], ...) for
//! scenario tests.
//!
//! Three layers: the world (clock, event queue, network, disks, nodes), the driver that carries
//! out each node's `Ready`, and the [`Observer`]s that watch it and hold the invariants. A protocol
//! plugs in through a factory and a list of observers ([`Simulation::new`] registers
//! [`raft_observers`]; [`Simulation::builder`] takes any list) and may bring its own faults as
//! [`NemesisAction`]s; the driver does not change. Module map, one concept each:
//!
//! - `simulation` — the world's state, the event loop, the manual API;
//! - `drive` — the driver: carrying out a node's `Ready` in contract order, telling the
//!   observers at each step;
//! - `observer` — [`Observer`], [`NemesisAction`] and [`SimulationBuilder`]: the plug-in points;
//! - `raft_invariants` — [`raft_observers`], the list of Raft's checks: `invariants`
//!   ([`LogSafety`]: election safety, log matching, leader completeness, state machine safety,
//!   monotonic commit), `durability` ([`Durability`]) and `configuration`
//!   ([`ConfigurationSafety`]), all written in core types;
//! - `workload` — random runs: clients, nemesis, convergence, final checks;
//! - `event_queue`, `network`, `disk`, `nemesis`, `client` — the simulated world (`disk`: writes
//!   durable only when they complete, FIFO; lost, torn and failed writes, torn records built with
//!   `conclave-log-format`; slow disks; snapshots);
//! - `image` — the state machine's snapshot image;
//! - `reads` — reads outside the log, served at their read index and checked against the writes;
//! - `trace` — JSON-lines traces; `history` — the client history;
//! - `schedule` — a run's faults as data ([`ScheduledFault`], serde for replay files); `faults` —
//!   carrying out the nemesis's faults, random or scripted, and recording them
//!   ([`Simulation::fault_schedule`]);
//! - `shrink` — reducing a failing run to a small reproducer ([`shrink`]).
//!
//! Every random run records the faults its nemesis injected; put back into
//! [`Options::fault_schedule`] with the same seed they replay the run byte for byte, and
//! [`shrink`] reduces a failing run to the fewest nodes, clients, operations and faults that still
//! break the same invariant.
//!
//! A scenario test on the Raft core, and a random run:
//!
//! ```
//! use conclave_core::NodeId;
//! use conclave_raft::{Config, Raft};
//! use conclave_sim::{FaultSet, Options, Simulation};
//!
//! let build = |id: NodeId, all: &[NodeId], durable, rng| {
//!     Raft::new(Config::new(id, all.to_vec()), durable, Box::new(rng)).unwrap()
//! };
//! let options = Options { nodes: 3, seed: 7, ..Options::default() };
//! let mut sim = Simulation::new(options, build).unwrap();
//! // Scenario: elect a leader, cut it off, and a new one takes over.
//! assert!(sim.run_until(|s| s.leader().is_some(), 5_000_000).unwrap());
//! let old = sim.leader().unwrap();
//! let rest: Vec<NodeId> = sim.node_ids().iter().copied().filter(|id| *id != old).collect();
//! sim.partition(&[&[old], &rest]);
//! assert!(sim.run_until(|s| s.leader().is_some_and(|l| l != old), 5_000_000).unwrap());
//!
//! // A random run: clients write while the nemesis injects every fault; then the cluster must
//! // converge. Any safety violation comes back as an `Err` naming the invariant and the seed.
//! let options = Options { seed: 7, ops: 200, faults: FaultSet::all(), ..Options::default() };
//! let summary = Simulation::new(options, build).unwrap().run().unwrap();
//! assert!(summary.ops_acknowledged >= 200);
//! ```
#![deny(missing_docs)]

mod client;
mod configuration;
mod disk;
mod drive;
mod durability;
mod event_queue;
mod faults;
mod history;
mod image;
mod invariants;
mod nemesis;
mod network;
mod node;
mod observer;
mod options;
mod raft_invariants;
mod reads;
mod schedule;
mod shrink;
mod simulation;
mod summary;
mod trace;
mod violation;
mod workload;

pub use configuration::ConfigurationSafety;
pub use durability::Durability;
pub use history::{to_check_events, HistoryEvent, HistoryKind};
pub use invariants::LogSafety;
pub use network::NetworkStats;
pub use observer::{DurableWrite, NemesisAction, Observer, SimulationBuilder};
pub use options::{
    Fault, FaultSet, Options, OptionsError, ParseFaultSetError, DISK_LATENCY_DEFAULT_US, NODES_MAX,
    SPARE_NODES_MAX, TOTAL_NODES_MAX,
};
pub use raft_invariants::raft_observers;
pub use reads::{ReadFailure, ReadOutcome, ServedRead};
pub use schedule::{FaultAction, ScheduleFormatError, ScheduledFault, FAIL_SYNC_DOWN_DEFAULT_US};
pub use shrink::{shrink, RunSize, ShrinkError, ShrinkProgress, ShrinkStep, Shrunk};
pub use simulation::{Counters, Factory, Simulation};
pub use summary::Summary;
pub use violation::{Breach, Invariant, Violation};
