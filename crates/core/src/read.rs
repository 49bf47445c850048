//! Linearizable reads that do not go through the log.
//!
//! A driver asks a node for a read with [`Protocol::read`](crate::Protocol::read), naming it with
//! its own [`ReadId`]. The answer comes back later in [`Ready::reads`](crate::Ready::reads): either
//! a *read index* — the driver serves the read from its state machine once it has applied up to
//! that index, and the result is linearizable — or an error, after which the driver must not
//! serve the read from local state (it may retry elsewhere). A read never silently returns stale
//! data.

use std::fmt;
use std::str::FromStr;

use crate::ids::{Index, NodeId};

/// The driver's name for one read, echoed in its [`ReadState`]. Unique among the reads in flight
/// on one node.
pub type ReadId = u64;

/// How a read is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// ReadIndex: the leader notes its commit index and confirms that it still leads with one
    /// round of heartbeats to a quorum. Costs a round trip, relies on no clock. On a follower the
    /// read is forwarded to the leader, and served locally once the follower has applied the
    /// leader's index.
    ReadIndex,
    /// Lease: the leader serves at its commit index without a round trip while its lease holds
    /// (a quorum acknowledged a heartbeat within the election timeout, minus a clock-drift
    /// margin). Safe only if clocks drift by less than that margin; without a valid lease the
    /// read falls back to a ReadIndex round.
    Lease,
}

impl ReadMode {
    /// Every mode, in the order help texts list them.
    pub const ALL: &'static [ReadMode] = &[ReadMode::ReadIndex, ReadMode::Lease];

    /// The mode's name in traces, histories and replay files.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReadMode {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        let names = ReadMode::ALL.iter().map(|m| m.as_str());
        ReadMode::ALL
            .iter()
            .copied()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownName::new("read mode", name, names))
    }
}

/// The guarantee a client chooses for its reads, by the names clients use: the server's
/// `READMODE` command, and `--read-mode` of `conclave chaos` and `conclave bench kv`. Defined
/// here, beside [`ReadMode`], so every seam parses and prints the same three names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReadConsistency {
    /// Linearizable: confirmed with a [`ReadMode::ReadIndex`] round. The default.
    #[default]
    Linearizable,
    /// Linearizable while clocks drift less than the lease margin ([`ReadMode::Lease`]).
    Lease,
    /// Whatever the serving node has applied, at once: may be stale, never confirmed.
    Stale,
}

impl ReadConsistency {
    /// Every choice, in the order help texts list them.
    pub const ALL: &'static [ReadConsistency] =
        &[ReadConsistency::Linearizable, ReadConsistency::Lease, ReadConsistency::Stale];

    /// The name clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => "linearizable",
            ReadConsistency::Lease => "lease",
            ReadConsistency::Stale => "stale",
        }
    }

    /// What the choice costs and guarantees, in one line, for help texts.
    pub fn description(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => {
                "confirmed by a quorum round (ReadIndex); never stale, relies on no clock"
            }
            ReadConsistency::Lease => {
                "served under the leader's lease without a round; never stale while clocks \
                 drift less than the lease margin"
            }
            ReadConsistency::Stale => "whatever the node has applied, at once; may be stale",
        }
    }

    /// How the protocol confirms such a read; `None` for stale reads, which are not confirmed.
    pub fn protocol_mode(self) -> Option<ReadMode> {
        match self {
            ReadConsistency::Linearizable => Some(ReadMode::ReadIndex),
            ReadConsistency::Lease => Some(ReadMode::Lease),
            ReadConsistency::Stale => None,
        }
    }
}

impl fmt::Display for ReadConsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReadConsistency {
    type Err = UnknownName;

    /// Case-insensitive, as Redis command arguments are.
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        let names = ReadConsistency::ALL.iter().map(|c| c.as_str());
        ReadConsistency::ALL
            .iter()
            .copied()
            .find(|choice| choice.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownName::new("read mode", name, names))
    }
}

/// A name that is not on a list, with the list, so the message tells the user what to type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being named ("read mode").
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names accepted, in list order.
    pub expected: Vec<&'static str>,
}

impl UnknownName {
    fn new(
        what: &'static str,
        name: &str,
        expected: impl Iterator<Item = &'static str>,
    ) -> UnknownName {
        UnknownName { what, name: name.to_string(), expected: expected.collect() }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, name) = (self.what, &self.name);
        write!(f, "unknown {what} {name:?} (expected {})", self.expected.join(", "))
    }
}

impl std::error::Error for UnknownName {}

/// Why a read cannot be served linearizably. The driver must answer the client with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// This node does not lead and knows no leader to ask, or lost leadership before the read was
    /// confirmed.
    NotLeader {
        /// The leader this node knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The read was not confirmed within an election timeout (the leader could not reach a
    /// quorum, or a forwarded request or its answer was lost).
    Timeout,
    /// Too many reads are waiting already.
    Busy,
    /// The protocol does not offer reads outside the log.
    Unsupported,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotLeader { leader_hint: Some(l) } => {
                write!(f, "not the leader; try node {l}")
            }
            ReadError::NotLeader { leader_hint: None } => write!(f, "no leader known"),
            ReadError::Timeout => write!(f, "read not confirmed by a quorum in time"),
            ReadError::Busy => write!(f, "too many reads in flight"),
            ReadError::Unsupported => write!(f, "this protocol offers no linearizable reads"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The outcome of one read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The driver's id for the read.
    pub id: ReadId,
    /// `Ok(index)`: serve the read once the state machine has applied `index`. `Err`: do not
    /// serve it.
    pub outcome: Result<Index, ReadError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_value() {
        for &mode in ReadMode::ALL {
            assert_eq!(mode.to_string().parse::<ReadMode>(), Ok(mode));
        }
        for &choice in ReadConsistency::ALL {
            assert_eq!(choice.to_string().parse::<ReadConsistency>(), Ok(choice));
        }
        assert_eq!("LEASE".parse::<ReadConsistency>(), Ok(ReadConsistency::Lease));
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let error = "fast".parse::<ReadConsistency>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown read mode \"fast\" (expected linearizable, lease, stale)"
        );
        assert!("linearizable".parse::<ReadMode>().is_err());
    }
}
