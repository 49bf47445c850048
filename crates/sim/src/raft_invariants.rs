//! Raft's invariants, registered as observers: the one place that knows which checks make up
//! "Raft is safe".
//!
//! Each check is written in `conclave_core` types (`Status`, `LogView`, `Membership`, the durable
//! state on the simulated disks), never in `conclave_raft`'s, so the simulator keeps depending on
//! the core alone, and any protocol that replicates a log the same way may register the same
//! list (the test-only primary-backup protocol does, beside its own check).

use conclave_core::Protocol;

use crate::configuration::ConfigurationSafety;
use crate::durability::Durability;
use crate::invariants::LogSafety;
use crate::observer::Observer;

/// Raft's safety properties as observers, in the order they are checked at each point:
/// - [`LogSafety`]: Election Safety, Log Matching, Leader Completeness, State Machine Safety and
///   monotonic commit (Raft §5);
/// - [`Durability`]: durable promises (a vote is on disk before messages relying on it leave)
///   and commit durability (no node lacking a committed entry could still be elected);
/// - [`ConfigurationSafety`]: membership changes never let two disjoint quorums decide.
///
/// Reads and acknowledged writes are checked by the workload, which issues them; every run's
/// client history is checked for linearizability at its end.
pub fn raft_observers<P: Protocol>() -> Vec<Box<dyn Observer<P>>> {
    vec![
        Box::new(LogSafety::new()),
        Box::new(Durability::new()),
        Box::new(ConfigurationSafety::new()),
    ]
}
