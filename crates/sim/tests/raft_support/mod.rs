//! Helpers for the Raft scenario tests: building a simulated Raft cluster and reading its state.
#![allow(dead_code)] // Each test file uses its own subset.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use bytes::Bytes;
use conclave_core::{DurableState, EntryKind, NodeId, Protocol, Role, SeededRng};
use conclave_raft::{Config, Raft};
use conclave_sim::{raft_observers, Options, OptionsError, Simulation, Violation};

/// Five seconds of virtual time: far more than any healthy election or commit needs.
pub const PATIENCE_US: u64 = 5_000_000;

/// A simulated Raft cluster; `configure` adjusts every node's configuration.
pub fn raft_sim(options: Options, configure: impl Fn(&mut Config) + 'static) -> Simulation<Raft> {
    // Raft's invariants, registered as observers like any protocol's.
    Simulation::builder(
        options,
        move |id: NodeId, all: &[NodeId], durable: DurableState, rng: SeededRng| {
            let mut config = Config::new(id, all.to_vec());
            configure(&mut config);
            Raft::new(config, durable, Box::new(rng)).expect("a valid configuration and disk")
        },
    )
    .observers(raft_observers())
    .build()
    .expect("valid options")
}

/// Builds a simulated Raft cluster for any options, as [`conclave_sim::shrink`] needs: each
/// candidate run may have another node count or seed.
pub fn raft_builder(
    configure: impl Fn(&mut Config) + Clone + 'static,
) -> impl FnMut(Options) -> Result<Simulation<Raft>, OptionsError> {
    move |options| {
        let configure = configure.clone();
        Simulation::new(options, move |id: NodeId, all: &[NodeId], durable, rng| {
            let mut config = Config::new(id, all.to_vec());
            configure(&mut config);
            Raft::new(config, durable, Box::new(rng)).expect("a valid configuration and disk")
        })
    }
}

/// `n` nodes with default Raft settings.
pub fn cluster(n: usize, seed: u64) -> Simulation<Raft> {
    raft_sim(Options { nodes: n, seed, ..Options::default() }, |_| {})
}

/// A violation with its trace tail, for assertion messages.
pub fn show(violation: &Violation) -> String {
    format!("{violation}\n{}", violation.recent_trace.join("\n"))
}

/// Runs until `done` holds, failing the test on a violation or after `PATIENCE_US`.
pub fn run_until(
    sim: &mut Simulation<Raft>,
    what: &str,
    done: impl FnMut(&Simulation<Raft>) -> bool,
) {
    match sim.run_until(done, PATIENCE_US) {
        Ok(true) => {}
        Ok(false) => panic!("timed out waiting for {what} at t={}us", sim.now_us()),
        Err(violation) => panic!("while waiting for {what}: {}", show(&violation)),
    }
}

/// Runs for `us` of virtual time, failing the test on a violation.
pub fn run_for(sim: &mut Simulation<Raft>, us: u64) {
    if let Err(violation) = sim.run_for(us) {
        panic!("{}", show(&violation));
    }
}

/// Waits for a leader and returns it.
pub fn elect(sim: &mut Simulation<Raft>) -> NodeId {
    run_until(sim, "a leader", |s| s.leader().is_some());
    sim.leader().unwrap()
}

/// Every node id but `except`.
pub fn others(sim: &Simulation<Raft>, except: &[NodeId]) -> Vec<NodeId> {
    sim.node_ids().iter().copied().filter(|id| !except.contains(id)).collect()
}

/// The command payloads `id` applied, in order.
pub fn applied_commands(sim: &Simulation<Raft>, id: NodeId) -> Vec<Bytes> {
    sim.applied(id)
        .iter()
        .filter(|e| e.kind == EntryKind::Command)
        .map(|e| e.data.clone())
        .collect()
}

/// `count` distinct payloads with a prefix.
pub fn payloads(prefix: &str, count: usize) -> Vec<Bytes> {
    (0..count).map(|i| Bytes::from(format!("{prefix}-{i}"))).collect()
}

/// True if every live node has applied every payload in `data`.
pub fn all_applied(sim: &Simulation<Raft>, data: &[Bytes]) -> bool {
    sim.node_ids().iter().filter(|id| sim.is_up(**id)).all(|id| {
        let applied = applied_commands(sim, *id);
        data.iter().all(|d| applied.contains(d))
    })
}

/// The roles of the live nodes.
pub fn leaders(sim: &Simulation<Raft>) -> Vec<NodeId> {
    sim.node_ids()
        .iter()
        .copied()
        .filter(|id| sim.node(*id).is_some_and(|n| n.role() == Role::Leader))
        .collect()
}

/// A `Write` sink that keeps what it is given, shared with the test.
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A simulated Raft cluster whose trace goes into the returned buffer.
pub fn traced_raft_sim(
    options: Options,
    configure: impl Fn(&mut Config) + 'static,
) -> (Simulation<Raft>, SharedBuffer) {
    let buffer = SharedBuffer::default();
    let sim = Simulation::with_trace(
        options,
        move |id: NodeId, all: &[NodeId], durable: DurableState, rng: SeededRng| {
            let mut config = Config::new(id, all.to_vec());
            configure(&mut config);
            Raft::new(config, durable, Box::new(rng)).expect("a valid configuration and disk")
        },
        Box::new(buffer.clone()),
    )
    .expect("valid options");
    (sim, buffer)
}

/// Proposes each payload on `leader`, failing the test if it refuses.
pub fn propose_all(sim: &mut Simulation<Raft>, leader: NodeId, data: &[Bytes]) {
    for d in data {
        sim.propose(leader, d.clone()).unwrap_or_else(|e| panic!("leader {leader} refused: {e}"));
    }
}

/// The status' role of `id`.
pub fn role(sim: &Simulation<Raft>, id: NodeId) -> Option<Role> {
    sim.node(id).map(|n| n.role())
}

/// Silences the unused warning for `Protocol` in files that only need the helpers.
pub fn term_of(sim: &Simulation<Raft>, id: NodeId) -> u64 {
    sim.node(id).map_or(0, |n| n.status().term.0)
}
