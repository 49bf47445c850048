//! What a simulation run is made of: cluster size, seed, workload, faults and timings.
//!
//! Everything that changes a run's outcome lives here, so that `(Options, protocol)` is a complete
//! description of a run and a failing seed replays exactly.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::schedule::ScheduledFault;

/// One kind of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Network partitions: random groupings, leader isolation and one-way cuts, healed later.
    Partition,
    /// Node crashes (losing everything not durable on the sim disk), restarted later.
    Crash,
    /// Episodes of random message loss.
    Drop,
    /// Episodes of long-tail message delay (10–200 ms for some messages).
    Delay,
    /// Episodes of message duplication.
    Duplicate,
    /// Episodes of reordering: links stop being FIFO and some messages are held back.
    Reorder,
    /// Power cuts in the middle of a disk write: the write's first record is left torn on disk
    /// and recovery cuts it on restart. Any crash that finds a write in flight may also tear it.
    TornWrite,
    /// A disk sync fails: the write is not durable and the node stops (crashes), restarting
    /// later from what was durable.
    FsyncError,
    /// Episodes of slow disks: writes of one node (or of every node) sometimes take 10–100 ms.
    SlowDisk,
    /// Membership changes at random moments: add a learner (a spare node, or one removed
    /// earlier), promote a learner, remove a voter or learner (the leader too), or swap a voter
    /// for a learner through a joint membership.
    Membership,
    /// Leadership transfers to a random voter at random moments.
    Transfer,
}

impl Fault {
    /// Every fault, in the canonical order used for parsing, printing and `all`.
    pub const ALL: [Fault; 11] = [
        Fault::Partition,
        Fault::Crash,
        Fault::Drop,
        Fault::Delay,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::TornWrite,
        Fault::FsyncError,
        Fault::SlowDisk,
        Fault::Membership,
        Fault::Transfer,
    ];

    /// The disk faults, which the list item `disk` stands for.
    pub const DISK: [Fault; 3] = [Fault::TornWrite, Fault::FsyncError, Fault::SlowDisk];

    /// The name used on the command line, in traces and in replay files. This list is the one
    /// definition of the fault names: the CLI's help and errors, and the chaos runner's names for
    /// the faults it shares with the simulator (`crash`, `partition`, ...), all derive from it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Crash => "crash",
            Fault::Drop => "drop",
            Fault::Delay => "delay",
            Fault::Duplicate => "duplicate",
            Fault::Reorder => "reorder",
            Fault::TornWrite => "torn-write",
            Fault::FsyncError => "fsync-error",
            Fault::SlowDisk => "slow-disk",
            Fault::Membership => "membership",
            Fault::Transfer => "transfer",
        }
    }

    /// What the fault does, in a few words, for the command line's help (empty when the name says
    /// it all).
    pub fn summary(self) -> &'static str {
        match self {
            Fault::Membership => "add, promote and remove members, joint changes",
            Fault::Transfer => "leadership transfers",
            _ => "",
        }
    }

    /// The bit this fault occupies in a [`FaultSet`].
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of faults the nemesis may inject, parsed from a comma list such as
/// `partition,crash,drop` (or `disk` for the three disk faults, `none`, or `all`). A bit set, so it
/// is `Copy` and iterates in a fixed order, which keeps fault schedules deterministic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultSet {
    bits: u16,
}

impl FaultSet {
    /// No faults: a calm network and no crashes.
    pub fn none() -> FaultSet {
        FaultSet { bits: 0 }
    }

    /// Every fault the nemesis knows.
    pub fn all() -> FaultSet {
        FaultSet::ALL_SET
    }

    const ALL_SET: FaultSet = FaultSet { bits: (1 << Fault::ALL.len()) - 1 };

    /// The three disk faults: torn writes, fsync errors and slow disks.
    pub fn disk() -> FaultSet {
        FaultSet::of(&Fault::DISK)
    }

    /// A set holding exactly `faults`.
    pub fn of(faults: &[Fault]) -> FaultSet {
        let mut set = FaultSet::none();
        for fault in faults {
            set.insert(*fault);
        }
        set
    }

    /// Adds one fault.
    pub fn insert(&mut self, fault: Fault) {
        self.bits |= fault.bit();
    }

    /// True when `fault` may be injected.
    pub fn contains(self, fault: Fault) -> bool {
        self.bits & fault.bit() != 0
    }

    /// True when no fault is enabled; a run without faults must always make progress.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// True when some disk fault is enabled; the simulated disk then has latency, so that writes
    /// are in flight for a crash, a failed sync or a slow disk to hit.
    pub fn has_disk_faults(self) -> bool {
        self.bits & FaultSet::disk().bits != 0
    }

    /// The enabled faults in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Fault> {
        Fault::ALL.into_iter().filter(move |fault| self.contains(*fault))
    }
}

/// A fault list that names something the nemesis does not know.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown fault `{item}` (expected a comma list of {names}, disk, or none / all)", names = fault_names())]
pub struct ParseFaultSetError {
    /// The offending item, trimmed, exactly as given.
    pub item: String,
}

/// Every fault's name, comma-separated in the canonical order: what parse errors list.
fn fault_names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

impl FaultSet {
    /// The help text of a `--faults` flag, written from [`Fault::ALL`] so that a new fault shows
    /// up in the help without anyone editing it.
    pub fn help() -> String {
        let mut items = Vec::new();
        for fault in Fault::ALL {
            let item = match fault.summary() {
                "" => fault.name().to_string(),
                summary => format!("{} ({summary})", fault.name()),
            };
            items.push(item);
            if fault == Fault::DISK[Fault::DISK.len() - 1] {
                items.push("disk (the three disk faults)".to_string());
            }
        }
        format!(
            "Faults the nemesis injects: a comma list of {}; or `all`, or `none`",
            items.join(", ")
        )
    }
}

impl FromStr for FaultSet {
    type Err = ParseFaultSetError;

    /// Parses `partition,crash,...`, `disk` (the three disk faults), `none` or `all`. Items are
    /// trimmed and case-insensitive;
    /// an empty item (as in `crash,,drop` or an empty string) is an error rather than silently
    /// meaning "no faults", because a typo should never turn a fault run into a calm one.
    fn from_str(text: &str) -> Result<FaultSet, ParseFaultSetError> {
        let mut set = FaultSet::none();
        for raw in text.split(',') {
            let item = raw.trim();
            match item.to_ascii_lowercase().as_str() {
                "none" => {}
                "all" => set = FaultSet::all(),
                "disk" => Fault::DISK.into_iter().for_each(|fault| set.insert(fault)),
                name => match Fault::ALL.into_iter().find(|fault| fault.name() == name) {
                    Some(fault) => set.insert(fault),
                    None => return Err(ParseFaultSetError { item: item.to_string() }),
                },
            }
        }
        Ok(set)
    }
}

impl fmt::Display for FaultSet {
    /// The canonical comma list (`none` when empty), which parses back to the same set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (position, fault) in self.iter().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            f.write_str(fault.name())?;
        }
        Ok(())
    }
}

/// Everything that decides a simulation run. Build one with
/// `Options { seed, ..Default::default() }` and adjust what the test cares about; the defaults
/// describe a healthy five-node cluster with a LAN-like network.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    // Cluster.
    /// Number of nodes the cluster starts with, 1 to 9; ids are `NodeId(1)..=NodeId(nodes)`, and
    /// they are the initial voters.
    pub nodes: usize,
    /// Nodes outside the initial membership (ids after the voters'), idle until a membership
    /// change adds them. `None`: two when the `membership` fault is on (fewer if the total would
    /// pass 11), none otherwise.
    pub spare_nodes: Option<usize>,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Length of one protocol tick in virtual microseconds.
    pub tick_us: u64,
    /// How far each node's clock may run fast or slow: each node's tick lasts
    /// `tick_us × (1 ± up to clock_drift)`, drawn once per node. 0 keeps every clock exact.
    pub clock_drift: f64,

    // Workload.
    /// Operations to acknowledge before the op phase of [`run`](crate::Simulation::run) ends.
    pub ops: u64,
    /// Number of simulated clients, each with one operation in flight at a time.
    pub clients: usize,
    /// How long a client waits for its proposal to be applied before giving up on it (the
    /// outcome is then unknown) and trying a fresh operation.
    pub client_timeout_us: u64,
    /// The share of client operations that are reads (ReadIndex at the leader, lease reads, and
    /// ReadIndex through followers). Every read is checked against the writes: it must see the
    /// latest write applied anywhere before it began.
    pub read_ratio: f64,

    // Faults.
    /// Faults the nemesis may inject during the op phase. With a
    /// [`fault_schedule`](Options::fault_schedule) they are not drawn from, but still shape the
    /// world: disk faults give the disk its latency, `torn-write` lets crashes tear writes, and
    /// `membership` brings spare nodes.
    pub faults: FaultSet,
    /// `None`: the nemesis draws faults at random from `faults`, from its own random stream.
    /// `Some`: it injects exactly these faults (in order of `at_us`, each undone after its
    /// duration) and draws nothing, which is how a recorded run
    /// ([`Simulation::fault_schedule`](crate::Simulation::fault_schedule)) is replayed and
    /// shrunk. Either way the nemesis stops, and undoes everything, when the op phase ends.
    pub fault_schedule: Option<Vec<ScheduledFault>>,
    /// Probability that any one message is lost, outside nemesis episodes.
    pub drop_probability: f64,
    /// Probability that any one message is delivered twice, outside nemesis episodes.
    pub duplicate_probability: f64,

    // Network latency.
    /// Lowest one-way message latency in virtual microseconds.
    pub latency_min_us: u64,
    /// Highest one-way latency in the common case (delay faults add a long tail on top).
    pub latency_max_us: u64,

    // Disk latency.
    /// Lowest time a disk write takes to become durable, in virtual microseconds. While both
    /// bounds are 0 a write is durable at once, within the call that produced it (no write is
    /// ever in flight), unless a disk fault is enabled: a fault needs writes in flight, so the
    /// disk then takes [`DISK_LATENCY_DEFAULT_US`] instead.
    pub disk_latency_min_us: u64,
    /// Highest time a disk write takes in the common case (`slow-disk` adds a long tail).
    pub disk_latency_max_us: u64,

    // Checks.
    /// Check, at every commit, that no node lacking the newly committed entry could still win an
    /// election under Raft's up-to-date rule (a candidate whose last log term is later, or equal
    /// with a log at least as long, gets the vote). This is the argument behind Raft's Leader
    /// Completeness, checked at the moment of commitment rather than when a later leader loses the
    /// entry, so an unsafe commit (the Figure-8 mistake) is caught even if no later leader happens
    /// to overwrite it. Turn it off for protocols that do not elect leaders that way.
    pub check_commit_durability: bool,

    // Bounds.
    /// Virtual-time budget for the op phase; reaching it is a liveness failure in a fault-free
    /// run and a warning otherwise.
    pub ops_time_max_us: u64,
    /// Virtual-time budget for the cluster to converge once faults stop and every node is up.
    pub converge_time_max_us: u64,
    /// How many recent trace lines a [`Violation`](crate::Violation) carries.
    pub recent_trace_len: usize,
    /// Search steps the linearizability check of the client history may take at the end of a
    /// run (a step budget, not a time one, so the verdict is the same on every machine); 0
    /// skips the check. Running out is a warning, never a violation.
    pub history_check_steps: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: 5,
            spare_nodes: None,
            seed: 0,
            tick_us: 10_000,
            clock_drift: 0.0,
            ops: 1_000,
            clients: 4,
            client_timeout_us: 1_000_000,
            read_ratio: 0.2,
            faults: FaultSet::none(),
            fault_schedule: None,
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            latency_min_us: 200,
            latency_max_us: 2_000,
            disk_latency_min_us: 0,
            disk_latency_max_us: 0,
            check_commit_durability: true,
            ops_time_max_us: 600_000_000,
            converge_time_max_us: 60_000_000,
            recent_trace_len: 50,
            history_check_steps: 5_000_000,
        }
    }
}

/// The disk latency range (µs) used when a disk fault is enabled and the options set none: an
/// fdatasync on a fast SSD.
pub const DISK_LATENCY_DEFAULT_US: (u64, u64) = (50, 150);

/// The largest cluster the simulator accepts. Nine is the largest size deployed in practice, and a
/// bound keeps per-link tables small.
pub const NODES_MAX: usize = 9;

/// The most spare nodes a simulation takes.
pub const SPARE_NODES_MAX: usize = 4;

/// The most nodes (voters and spares) a simulation holds.
pub const TOTAL_NODES_MAX: usize = 11;

/// Options that describe no runnable simulation.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum OptionsError {
    /// The cluster size is outside 1..=9.
    #[error("nodes must be between 1 and {NODES_MAX}, got {0}")]
    Nodes(usize),
    /// Too many spare nodes.
    #[error("spare_nodes must be at most {SPARE_NODES_MAX}, and nodes plus spares at most {TOTAL_NODES_MAX}; got {0}")]
    Spares(usize),
    /// A clock drift outside 0..0.5.
    #[error("clock_drift must be between 0 and 0.5, got {0}")]
    ClockDrift(f64),
    /// A tick of zero length would never advance virtual time.
    #[error("tick_us must be positive")]
    TickZero,
    /// A workload needs at least one client.
    #[error("clients must be at least 1")]
    ClientsZero,
    /// A probability outside 0..=1 (or NaN).
    #[error("{name} must be a probability between 0 and 1, got {value}")]
    Probability {
        /// Which option.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The latency range is empty.
    #[error("latency_min_us ({min}) must not exceed latency_max_us ({max})")]
    Latency {
        /// The lower bound given.
        min: u64,
        /// The upper bound given.
        max: u64,
    },
    /// A zero client timeout would fail every operation at once.
    #[error("client_timeout_us must be positive")]
    ClientTimeoutZero,
    /// The disk latency range is empty.
    #[error("disk_latency_min_us ({min}) must not exceed disk_latency_max_us ({max})")]
    DiskLatency {
        /// The lower bound given.
        min: u64,
        /// The upper bound given.
        max: u64,
    },
    /// A fault of the schedule that cannot be injected.
    #[error("fault_schedule[{index}]: {reason}")]
    Schedule {
        /// Its position in the schedule.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl Options {
    /// Checks that the options describe a runnable simulation.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.nodes == 0 || self.nodes > NODES_MAX {
            return Err(OptionsError::Nodes(self.nodes));
        }
        if let Some(spares) = self.spare_nodes {
            if spares > SPARE_NODES_MAX || self.nodes + spares > TOTAL_NODES_MAX {
                return Err(OptionsError::Spares(spares));
            }
        }
        if !(0.0..0.5).contains(&self.clock_drift) {
            return Err(OptionsError::ClockDrift(self.clock_drift));
        }
        if self.tick_us == 0 {
            return Err(OptionsError::TickZero);
        }
        if self.clients == 0 {
            return Err(OptionsError::ClientsZero);
        }
        if self.client_timeout_us == 0 {
            return Err(OptionsError::ClientTimeoutZero);
        }
        for (name, value) in [
            ("drop_probability", self.drop_probability),
            ("duplicate_probability", self.duplicate_probability),
            ("read_ratio", self.read_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(OptionsError::Probability { name, value });
            }
        }
        if self.latency_min_us > self.latency_max_us {
            return Err(OptionsError::Latency {
                min: self.latency_min_us,
                max: self.latency_max_us,
            });
        }
        if self.disk_latency_min_us > self.disk_latency_max_us {
            return Err(OptionsError::DiskLatency {
                min: self.disk_latency_min_us,
                max: self.disk_latency_max_us,
            });
        }
        for (index, fault) in self.fault_schedule.iter().flatten().enumerate() {
            fault
                .validate(self.total_nodes())
                .map_err(|reason| OptionsError::Schedule { index, reason })?;
        }
        Ok(())
    }

    /// True when nothing disturbs the run: no nemesis faults (random or scheduled) and no base
    /// loss or duplication. Such a run must make progress, so a stalled op phase is a liveness
    /// failure rather than a warning.
    pub fn is_fault_free(&self) -> bool {
        let scheduled = match &self.fault_schedule {
            Some(schedule) => !schedule.is_empty(),
            None => !self.faults.is_empty(),
        };
        !scheduled && self.drop_probability == 0.0 && self.duplicate_probability == 0.0
    }

    /// The number of spare nodes in force (see [`spare_nodes`](Options::spare_nodes)).
    pub fn spares(&self) -> usize {
        match self.spare_nodes {
            Some(spares) => spares,
            None if self.faults.contains(Fault::Membership) => {
                2.min(TOTAL_NODES_MAX.saturating_sub(self.nodes))
            }
            None => 0,
        }
    }

    /// Every node of the simulation: the initial voters, then the spares.
    pub fn total_nodes(&self) -> usize {
        self.nodes + self.spares()
    }

    /// The disk latency range in force: the options' own, or [`DISK_LATENCY_DEFAULT_US`] when
    /// they set none and a disk fault is enabled.
    pub fn disk_latency_us(&self) -> (u64, u64) {
        if self.disk_latency_max_us == 0 && self.faults.has_disk_faults() {
            DISK_LATENCY_DEFAULT_US
        } else {
            (self.disk_latency_min_us, self.disk_latency_max_us)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_none_and_all() {
        let set: FaultSet = "partition, crash,DROP".parse().unwrap();
        assert!(set.contains(Fault::Partition) && set.contains(Fault::Crash));
        assert!(set.contains(Fault::Drop) && !set.contains(Fault::Delay));
        assert_eq!(set.to_string(), "partition,crash,drop");
        assert!("none".parse::<FaultSet>().unwrap().is_empty());
        assert_eq!("all".parse::<FaultSet>().unwrap(), FaultSet::all());
        assert_eq!(FaultSet::all().iter().count(), 11);
        assert_eq!("disk".parse::<FaultSet>().unwrap(), FaultSet::disk());
        assert_eq!(
            "crash,disk".parse::<FaultSet>().unwrap().to_string(),
            "crash,torn-write,fsync-error,slow-disk"
        );
        assert!(
            FaultSet::all().has_disk_faults() && !FaultSet::of(&[Fault::Crash]).has_disk_faults()
        );
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<FaultSet>().unwrap(), FaultSet::of(&[fault]));
        }
    }

    #[test]
    fn errors_and_help_name_every_fault() {
        let error = "crash,kill".parse::<FaultSet>().unwrap_err();
        assert_eq!(error.item, "kill");
        let (message, help) = (error.to_string(), FaultSet::help());
        for fault in Fault::ALL {
            assert!(message.contains(fault.name()), "{message}");
            assert!(help.contains(fault.name()), "{help}");
        }
        assert!(help.contains("disk (the three disk faults)"), "{help}");
    }

    #[test]
    fn display_round_trips() {
        for text in ["none", "all", "delay,reorder", "crash", "disk", "slow-disk,partition"] {
            let set: FaultSet = text.parse().unwrap();
            assert_eq!(set.to_string().parse::<FaultSet>().unwrap(), set);
        }
    }

    #[test]
    fn unknown_items_are_errors_naming_the_item() {
        let error = "crash,partitoin".parse::<FaultSet>().unwrap_err();
        assert_eq!(error.item, "partitoin");
        assert!(error.to_string().contains("`partitoin`"), "{error}");
        assert_eq!("crash,,drop".parse::<FaultSet>().unwrap_err().item, "");
        assert_eq!("".parse::<FaultSet>().unwrap_err().item, "");
    }

    #[test]
    fn validate_rejects_impossible_options() {
        assert_eq!(Options::default().validate(), Ok(()));
        let bad = Options { nodes: 10, ..Options::default() };
        assert_eq!(bad.validate(), Err(OptionsError::Nodes(10)));
        let bad = Options { nodes: 0, ..Options::default() };
        assert_eq!(bad.validate(), Err(OptionsError::Nodes(0)));
        let bad = Options { drop_probability: 1.5, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::Probability { .. })));
        let bad = Options { duplicate_probability: f64::NAN, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::Probability { .. })));
        let bad = Options { latency_min_us: 5, latency_max_us: 4, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::Latency { .. })));
        let bad = Options { spare_nodes: Some(5), ..Options::default() };
        assert_eq!(bad.validate(), Err(OptionsError::Spares(5)));
        let bad = Options { nodes: 9, spare_nodes: Some(3), ..Options::default() };
        assert_eq!(bad.validate(), Err(OptionsError::Spares(3)));
        let bad = Options { clock_drift: 0.7, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::ClockDrift(_))));
        let bad = Options { read_ratio: -0.1, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::Probability { .. })));
        let membership =
            Options { faults: FaultSet::of(&[Fault::Membership]), ..Options::default() };
        assert_eq!((membership.spares(), membership.total_nodes()), (2, 7));
        assert_eq!(Options::default().spares(), 0);
        let bad = Options { tick_us: 0, ..Options::default() };
        assert_eq!(bad.validate(), Err(OptionsError::TickZero));
        let bad = Options { disk_latency_min_us: 5, disk_latency_max_us: 4, ..Options::default() };
        assert!(matches!(bad.validate(), Err(OptionsError::DiskLatency { .. })));
    }

    #[test]
    fn disk_faults_give_the_disk_latency_unless_the_options_set_one() {
        assert_eq!(Options::default().disk_latency_us(), (0, 0));
        let faulty = Options { faults: FaultSet::of(&[Fault::TornWrite]), ..Options::default() };
        assert_eq!(faulty.disk_latency_us(), DISK_LATENCY_DEFAULT_US);
        let set = Options { disk_latency_min_us: 10, disk_latency_max_us: 20, ..faulty };
        assert_eq!(set.disk_latency_us(), (10, 20));
    }
}
