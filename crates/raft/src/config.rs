//! Tunables of one Raft node, validated up front so a bad value fails at start, by name.

use conclave_core::NodeId;
use thiserror::Error;

/// The configuration of one Raft node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The voters the cluster was started with (the membership before the first log entry).
    /// Membership changes go through the log; this list only seeds it.
    pub voters: Vec<NodeId>,
    /// Base election timeout in ticks; each timeout is drawn from
    /// `election_ticks..2*election_ticks` so that candidates rarely collide (Raft §5.2).
    pub election_ticks: u32,
    /// Ticks between leader heartbeats; must be well below `election_ticks`.
    pub heartbeat_ticks: u32,
    /// Ask "could I win?" before starting a real election, so a node cut off from the cluster
    /// does not inflate its term and depose a healthy leader when it returns (Raft thesis §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a majority for an election timeout steps down, and
    /// followers that hear from a live leader ignore vote requests (the leader's lease).
    pub check_quorum: bool,
    /// Most entries in one AppendEntries message.
    pub append_entries_max: usize,
    /// About the most payload bytes in one AppendEntries message (at least one entry is sent).
    pub append_bytes_max: usize,
    /// Most AppendEntries messages in flight to one follower while pipelining.
    pub inflight_messages_max: usize,
    /// Largest command accepted by `propose`.
    pub command_bytes_max: usize,
    /// Ask for a state machine snapshot once this many entries were applied since the last one
    /// (0: never by count).
    pub snapshot_entries: u64,
    /// Ask for a snapshot once this many payload bytes were applied since the last one
    /// (0: never by size).
    pub snapshot_bytes: u64,
    /// Entries kept in the log behind a new snapshot, so a follower that lags a little is caught
    /// up with entries rather than a whole snapshot.
    pub snapshot_trailing_entries: u64,
    /// Bytes of snapshot data per InstallSnapshot message.
    pub snapshot_chunk_bytes: usize,
    /// InstallSnapshot chunks in flight to one follower (flow control for the transfer).
    pub snapshot_chunks_inflight_max: usize,
    /// A learner may be promoted to voter only if it lags the leader's last index by at most
    /// this many entries, so a promotion never leaves the cluster waiting on a slow new voter.
    pub learner_lag_max: u64,
    /// Lease reads: the leader trusts its lease for `election_ticks - lease_margin_ticks` ticks
    /// after a quorum answered a heartbeat round, leaving this margin for clocks that drift
    /// (followers whose ticks run faster than the leader's). Must be below `election_ticks`.
    pub lease_margin_ticks: u32,
    /// Most reads in flight on one node; more are refused as busy.
    pub reads_in_flight_max: usize,
    /// Test-only switches that break the protocol on purpose (see [`Bugs`]).
    #[cfg(feature = "bug-injection")]
    pub bugs: Bugs,
}

/// Deliberate protocol bugs, compiled in only with the `bug-injection` feature, so the simulator
/// can prove that it catches each one.
#[cfg(feature = "bug-injection")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Commit entries of earlier terms by counting replicas (the Figure-8 mistake).
    pub commit_old_terms_by_counting: bool,
    /// Leave the vote out of the persisted hard state.
    pub forget_to_persist_vote: bool,
    /// Grant a vote even when already voted for someone else in this term.
    pub grant_two_votes_per_term: bool,
    /// Keep a conflicting suffix instead of truncating it.
    pub skip_truncating_conflicts: bool,
    /// Release entries for application before they are committed.
    pub apply_before_commit: bool,
}

/// Defines [`BugVariant`] from one table: each deliberately broken variant's name (as
/// `conclave sim --bug` and replay files spell it), what it breaks, and the [`Bugs`] switch it
/// turns on. The command line's choices, its help and replay files all read this table.
#[cfg(feature = "bug-injection")]
macro_rules! bug_variants {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $switch:ident, $description:literal;)*) => {
        /// One deliberately broken Raft variant, by name: see [`Bugs`] for the switches.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BugVariant {
            $($(#[doc = $doc])* $variant,)*
        }

        impl BugVariant {
            /// Every variant, in the order help texts list them.
            pub const ALL: &'static [BugVariant] = &[$(BugVariant::$variant),*];

            /// The variant's name on the command line and in replay files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(BugVariant::$variant => $name,)*
                }
            }

            /// What the variant gets wrong, in one line, for help texts.
            pub fn description(self) -> &'static str {
                match self {
                    $(BugVariant::$variant => $description,)*
                }
            }

            /// Turns this variant's switch on in `bugs`.
            pub fn enable(self, bugs: &mut Bugs) {
                match self {
                    $(BugVariant::$variant => bugs.$switch = true,)*
                }
            }

            /// True if this variant's switch is on in `bugs`.
            pub fn is_enabled(self, bugs: &Bugs) -> bool {
                match self {
                    $(BugVariant::$variant => bugs.$switch,)*
                }
            }
        }
    };
}

#[cfg(feature = "bug-injection")]
bug_variants! {
    /// Figure 8 of the Raft paper, done wrong.
    Figure8Commit => "figure8-commit", commit_old_terms_by_counting,
        "commit entries of older terms by counting replicas (Figure 8)";
    /// A restarted node may vote again in the same term.
    ForgetVote => "forget-vote", forget_to_persist_vote,
        "leave the vote out of the persisted hard state";
    /// Two leaders in one term.
    DoubleVote => "double-vote", grant_two_votes_per_term,
        "grant a second vote in the same term";
    /// Followers keep entries the leader overwrote.
    NoTruncate => "no-truncate", skip_truncating_conflicts,
        "keep a conflicting suffix instead of truncating it";
    /// State machines apply entries that may yet be lost.
    ApplyBeforeCommit => "apply-before-commit", apply_before_commit,
        "apply entries once durable, before they are committed";
}

#[cfg(feature = "bug-injection")]
impl std::str::FromStr for BugVariant {
    type Err = UnknownBug;

    fn from_str(name: &str) -> Result<Self, UnknownBug> {
        BugVariant::ALL
            .iter()
            .copied()
            .find(|bug| bug.as_str() == name)
            .ok_or_else(|| UnknownBug(name.to_string()))
    }
}

#[cfg(feature = "bug-injection")]
impl std::fmt::Display for BugVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bug name that is not in [`BugVariant::ALL`]; the message lists the ones that are.
#[cfg(feature = "bug-injection")]
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown bug {0:?} (expected one of {names})", names = bug_names())]
pub struct UnknownBug(pub String);

#[cfg(feature = "bug-injection")]
fn bug_names() -> String {
    BugVariant::ALL.iter().map(|bug| bug.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(feature = "bug-injection")]
impl Bugs {
    /// The variants switched on, in list order.
    pub fn enabled(&self) -> Vec<BugVariant> {
        BugVariant::ALL.iter().copied().filter(|bug| bug.is_enabled(self)).collect()
    }
}

/// A configuration value that cannot work, named so the operator can fix it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The voter list is empty.
    #[error("voters: the cluster needs at least one voter")]
    NoVoters,
    /// The voter list names a node twice.
    #[error("voters: node {0} is listed twice")]
    DuplicateVoter(NodeId),
    /// A timing relation does not hold.
    #[error(
        "heartbeat_ticks ({heartbeat}) must be at least 1 and below election_ticks ({election})"
    )]
    Timing {
        /// The heartbeat interval.
        heartbeat: u32,
        /// The election timeout.
        election: u32,
    },
    /// The lease margin leaves no lease.
    #[error("lease_margin_ticks ({margin}) must be below election_ticks ({election})")]
    LeaseMargin {
        /// The margin.
        margin: u32,
        /// The election timeout.
        election: u32,
    },
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// The durable state contradicts itself.
    #[error("durable state: {0}")]
    CorruptState(String),
}

impl Config {
    /// A configuration with the defaults: election timeout 10 ticks, heartbeat every tick,
    /// pre-vote and check-quorum on, 256 entries / 1 MiB per message, 64 messages in flight; a
    /// snapshot every 10,000 entries or 64 MiB applied, keeping 1,000 entries behind it, sent in
    /// 1 MiB chunks, 4 in flight; learners promoted within 1,000 entries of the leader; leases
    /// trusted for 8 of the 10 election ticks (20% clock-drift margin); 10,000 reads in flight.
    ///
    /// `voters` is the membership the cluster starts with (the membership before log index 1).
    /// A node that joins later is built with the same list, without itself in it: it stays a
    /// non-voter until the log or a snapshot says otherwise.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            append_entries_max: 256,
            append_bytes_max: 1 << 20,
            inflight_messages_max: 64,
            command_bytes_max: 8 << 20,
            snapshot_entries: 10_000,
            snapshot_bytes: 64 << 20,
            snapshot_trailing_entries: 1_000,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_chunks_inflight_max: 4,
            learner_lag_max: 1_000,
            lease_margin_ticks: 2,
            reads_in_flight_max: 10_000,
            #[cfg(feature = "bug-injection")]
            bugs: Bugs::default(),
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        for (i, v) in self.voters.iter().enumerate() {
            if self.voters[..i].contains(v) {
                return Err(ConfigError::DuplicateVoter(*v));
            }
        }
        if self.lease_margin_ticks >= self.election_ticks {
            return Err(ConfigError::LeaseMargin {
                margin: self.lease_margin_ticks,
                election: self.election_ticks,
            });
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= self.election_ticks {
            return Err(ConfigError::Timing {
                heartbeat: self.heartbeat_ticks,
                election: self.election_ticks,
            });
        }
        for (name, value) in [
            ("append_entries_max", self.append_entries_max),
            ("append_bytes_max", self.append_bytes_max),
            ("inflight_messages_max", self.inflight_messages_max),
            ("command_bytes_max", self.command_bytes_max),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
            ("snapshot_chunks_inflight_max", self.snapshot_chunks_inflight_max),
            ("reads_in_flight_max", self.reads_in_flight_max),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_field() {
        let ok = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(ok.validate(), Ok(()));
        let mut c = ok.clone();
        c.voters.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoVoters));
        let mut c = ok.clone();
        c.voters.push(NodeId(2));
        assert_eq!(c.validate(), Err(ConfigError::DuplicateVoter(NodeId(2))));
        let mut c = ok.clone();
        c.id = NodeId(7);
        assert_eq!(c.validate(), Ok(()), "a node joining later is not among the first voters");
        let mut c = ok.clone();
        c.lease_margin_ticks = c.election_ticks;
        assert!(c.validate().unwrap_err().to_string().contains("lease_margin_ticks"));
        let mut c = ok.clone();
        c.heartbeat_ticks = 10;
        assert!(c.validate().unwrap_err().to_string().contains("heartbeat_ticks"));
        let mut c = ok;
        c.inflight_messages_max = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroLimit("inflight_messages_max")));
    }
}

#[cfg(all(test, feature = "bug-injection"))]
mod bug_variant_tests {
    use super::*;

    #[test]
    fn each_variant_switches_on_exactly_its_own_bug() {
        let mut seen = Vec::new();
        for &bug in BugVariant::ALL {
            let mut bugs = Bugs::default();
            bug.enable(&mut bugs);
            assert_eq!(bugs.enabled(), vec![bug], "{bug}");
            assert_ne!(bugs, Bugs::default(), "{bug} switches nothing on");
            assert!(!seen.contains(&bugs), "{bug} shares its switch with another variant");
            seen.push(bugs);
            assert_eq!(bug.as_str().parse::<BugVariant>(), Ok(bug));
        }
    }

    #[test]
    fn an_unknown_name_lists_the_variants() {
        let error = "fast-commit".parse::<BugVariant>().unwrap_err().to_string();
        assert!(error.contains("fast-commit") && error.contains("double-vote"), "{error}");
    }
}
