//! What a failed run reports: which property broke, where, and the events that led there.

use std::fmt;

/// A property the simulator checks. Safety properties are checked after every event; liveness
/// ones at the end of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// At most one leader per term, over the whole run (Raft §5.2).
    ElectionSafety,
    /// Two logs holding an entry with the same index and term hold the same entry and the same
    /// term just before it, and so (inductively) identical prefixes (Raft §5.3).
    LogMatching,
    /// A leader's log holds every entry committed in an earlier term (Raft §5.4).
    LeaderCompleteness,
    /// Every node applies a prefix of one global sequence, with consecutive indexes (Raft §5.4.3).
    StateMachineSafety,
    /// A node's commit index never decreases within one incarnation, and an entry once committed
    /// never changes.
    MonotonicCommit,
    /// A write the client saw acknowledged is in the final applied sequence, at its index, with
    /// its data.
    AcknowledgedWrite,
    /// A node acted on a term and vote that were not durable: after its promises (votes,
    /// acknowledgements) left, its durable hard state must hold the term and vote it reports. A
    /// crash would otherwise let it vote twice in one term.
    DurablePromises,
    /// An entry was committed while some node lacking it could still be elected by a majority
    /// under the up-to-date rule, so a later leader could lose it (the Figure-8 mistake).
    CommitDurability,
    /// A read returned a value older than a write applied before the read began (the register
    /// case of linearizability).
    LinearizableRead,
    /// A membership change could let two disjoint quorums decide: consecutive configurations
    /// whose quorums need not intersect, a change appended before the previous one committed,
    /// or a node acting on a membership its log does not hold.
    ConfigurationSafety,
    /// The protocol broke the driver contract (for example a `Ready` whose entries leave a hole in
    /// the log, or a message claiming another sender).
    DriverContract,
    /// The client history (every write and read, with real-time order and unknown outcomes) has
    /// no linearization as a register: checked by `conclave-check` at the end of a run.
    Linearizability,
    /// The cluster did not make progress in time: the op phase of a fault-free run did not finish,
    /// or the cluster did not converge after faults stopped.
    Liveness,
    /// A property a protocol brings along with its own [`Observer`](crate::Observer), by its
    /// name (a short, stable, kebab-case name like the ones above): the simulator knows nothing
    /// of it beyond that it broke.
    Protocol(&'static str),
}

impl Invariant {
    /// A short, stable name for reports and scripts.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election-safety",
            Invariant::LogMatching => "log-matching",
            Invariant::LeaderCompleteness => "leader-completeness",
            Invariant::StateMachineSafety => "state-machine-safety",
            Invariant::MonotonicCommit => "monotonic-commit",
            Invariant::AcknowledgedWrite => "acknowledged-write",
            Invariant::DurablePromises => "durable-promises",
            Invariant::CommitDurability => "commit-durability",
            Invariant::LinearizableRead => "linearizable-read",
            Invariant::ConfigurationSafety => "configuration-safety",
            Invariant::DriverContract => "driver-contract",
            Invariant::Linearizability => "linearizability",
            Invariant::Liveness => "liveness",
            Invariant::Protocol(name) => name,
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken property, with everything needed to replay and understand it: the seed (rerun with
/// the same options to reproduce it exactly), the virtual time, and the last trace lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The run's seed.
    pub seed: u64,
    /// The property that broke.
    pub invariant: Invariant,
    /// What exactly was seen, in a sentence.
    pub detail: String,
    /// Virtual time of the event after which the check failed.
    pub time_us: u64,
    /// The last trace lines (JSON) before the failure, oldest first.
    pub recent_trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at t={}us (seed {}): {}",
            self.invariant, self.time_us, self.seed, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// A broken property as an [`Observer`](crate::Observer) sees it, before the simulation adds
/// seed, time and trace: what every observer hook returns, so that a protocol's own checks stop a
/// run exactly like the built-in ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The property.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
}

impl Breach {
    /// A breach of `invariant`, described by `detail`.
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Breach {
        Breach { invariant, detail: detail.into() }
    }
}
