//! Cluster membership: who votes, who only listens, and how a change is asked for.
//!
//! A membership is part of the replicated log (an entry of kind
//! [`EntryKind::Config`](crate::EntryKind::Config) carries one, encoded with
//! [`Membership::encode`]), so every node learns of a change in log order and a snapshot records
//! the membership as of its index. While a change moves the voters from one set to another in
//! more than a single step, the membership is *joint*: decisions need a majority of the incoming
//! voters and, separately, a majority of the outgoing ones (Raft §6, joint consensus).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::ids::NodeId;

/// The members of a cluster as of some log index.
///
/// Invariant (checked by [`Membership::validate`], asserted where a membership is used or
/// written): each list is sorted without duplicates (a node listed twice would count twice
/// towards a majority); `learners` is disjoint from `voters` (a node either votes in the incoming
/// set or only listens); a membership in use has at least one voter. The fields are public so
/// that memberships can be built and compared directly; whoever builds one keeps these rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership {
    /// The voters (in a joint membership: the incoming voters, C_new). Sorted, no duplicates.
    pub voters: Vec<NodeId>,
    /// In a joint membership, the outgoing voters (C_old); empty otherwise. Sorted.
    pub outgoing: Vec<NodeId>,
    /// Members that receive the log but neither vote nor count towards commitment. Sorted, and
    /// disjoint from `voters`; during a joint change a voter being demoted is both an outgoing
    /// voter and a learner.
    pub learners: Vec<NodeId>,
}

/// A membership that cannot be decoded from a configuration entry or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipDecodeError(pub &'static str);

impl fmt::Display for MembershipDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed membership: {}", self.0)
    }
}

impl std::error::Error for MembershipDecodeError {}

/// The version byte that starts every encoded membership, so the format can grow.
const ENCODING_VERSION: u8 = 1;
/// More members than any real cluster has; a count beyond it is corruption, not a cluster.
const MEMBERS_MAX: u32 = 1 << 16;

impl Membership {
    /// A simple (non-joint) membership of `voters`, without learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership { voters: sorted(voters), outgoing: Vec::new(), learners: Vec::new() }
    }

    /// True while a joint-consensus change is under way (decisions need both voter sets).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// True if `id` votes in either voter set.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// True if `id` is a learner and not (still) an outgoing voter.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id) && !self.is_voter(id)
    }

    /// True if `id` is a voter or a learner: the leader replicates to it.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every voter of either set, sorted, each once.
    pub fn all_voters(&self) -> Vec<NodeId> {
        sorted(self.voters.iter().chain(&self.outgoing).copied())
    }

    /// Every member (voters of both sets and learners), sorted, each once.
    pub fn all_members(&self) -> Vec<NodeId> {
        sorted(self.voters.iter().chain(&self.outgoing).chain(&self.learners).copied())
    }

    /// True if the nodes `granted` form a quorum: a majority of `voters` and, when joint, also a
    /// majority of `outgoing`. An empty voter set never has a quorum.
    pub fn is_quorum(&self, granted: impl Fn(NodeId) -> bool) -> bool {
        debug_assert!(
            [&self.voters, &self.outgoing].iter().all(|set| is_sorted_unique(set)),
            "membership {self} has a voter list that is not sorted and unique: a voter listed \
             twice would count twice towards a majority"
        );
        let majority_of = |set: &[NodeId]| {
            !set.is_empty() && set.iter().filter(|id| granted(**id)).count() > set.len() / 2
        };
        majority_of(&self.voters) && (self.outgoing.is_empty() || majority_of(&self.outgoing))
    }

    /// Checks the shape rules: sorted and unique lists, learners disjoint from voters, at least
    /// one voter.
    pub fn validate(&self) -> Result<(), MembershipDecodeError> {
        for list in [&self.voters, &self.outgoing, &self.learners] {
            if !is_sorted_unique(list) {
                return Err(MembershipDecodeError("a member list is not sorted and unique"));
            }
        }
        if self.voters.is_empty() {
            return Err(MembershipDecodeError("no voters"));
        }
        if self.learners.iter().any(|l| self.voters.contains(l)) {
            return Err(MembershipDecodeError("a node is both a voter and a learner"));
        }
        Ok(())
    }

    /// The bytes of a configuration entry: a version byte, then each list as a 32-bit count and
    /// 64-bit ids, all little-endian.
    pub fn encode(&self) -> Bytes {
        // A malformed membership written to the log would be refused by every decoder, and a
        // node would then silently act on the previous one: only a bug builds one.
        debug_assert!(
            self.validate().is_ok(),
            "encoding a malformed membership {self}: {:?}",
            self.validate()
        );
        self.encode_unchecked()
    }

    /// [`Membership::encode`] without the shape check, so tests can build the bytes of a
    /// malformed membership and see the decoder refuse them.
    fn encode_unchecked(&self) -> Bytes {
        let len = 1 + 12 + 8 * (self.voters.len() + self.outgoing.len() + self.learners.len());
        let mut out = BytesMut::with_capacity(len);
        out.put_u8(ENCODING_VERSION);
        for list in [&self.voters, &self.outgoing, &self.learners] {
            out.put_u32_le(list.len() as u32);
            for id in list {
                out.put_u64_le(id.0);
            }
        }
        out.freeze()
    }

    /// Decodes what [`encode`](Membership::encode) wrote, refusing anything else (wrong version,
    /// short or trailing bytes, a list that breaks the shape rules).
    pub fn decode(bytes: &[u8]) -> Result<Membership, MembershipDecodeError> {
        let mut rest = bytes;
        let (&version, tail) =
            rest.split_first().ok_or(MembershipDecodeError("empty configuration entry"))?;
        if version != ENCODING_VERSION {
            return Err(MembershipDecodeError("unknown encoding version"));
        }
        rest = tail;
        let mut lists = [Vec::new(), Vec::new(), Vec::new()];
        for list in &mut lists {
            let count = take_u32(&mut rest)?;
            if count > MEMBERS_MAX {
                return Err(MembershipDecodeError("member count out of range"));
            }
            for _ in 0..count {
                list.push(NodeId(take_u64(&mut rest)?));
            }
        }
        if !rest.is_empty() {
            return Err(MembershipDecodeError("trailing bytes"));
        }
        let [voters, outgoing, learners] = lists;
        let membership = Membership { voters, outgoing, learners };
        membership.validate()?;
        Ok(membership)
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ids: &[NodeId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>();
        write!(f, "voters [{}]", list(&self.voters).join(", "))?;
        if self.is_joint() {
            write!(f, " joint with [{}]", list(&self.outgoing).join(", "))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners [{}]", list(&self.learners).join(", "))?;
        }
        Ok(())
    }
}

fn is_sorted_unique(ids: &[NodeId]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

fn sorted(ids: impl IntoIterator<Item = NodeId>) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, MembershipDecodeError> {
    let (head, tail) = rest.split_at_checked(4).ok_or(MembershipDecodeError("truncated"))?;
    *rest = tail;
    Ok(u32::from_le_bytes(head.try_into().expect("4 bytes")))
}

fn take_u64(rest: &mut &[u8]) -> Result<u64, MembershipDecodeError> {
    let (head, tail) = rest.split_at_checked(8).ok_or(MembershipDecodeError("truncated"))?;
    *rest = tail;
    Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
}

/// A membership change a leader is asked to make. Each is one step in the log; the leader refuses
/// a change while an earlier one is not yet committed (or a joint membership not yet left).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Adds a learner: it receives the log (and snapshots) but does not vote.
    AddLearner(NodeId),
    /// Makes a learner a voter, in one step (it changes the voters by one node). Refused while
    /// the learner lags the leader's log by more than the configured bound.
    Promote(NodeId),
    /// Removes a voter (one step) or a learner. Removing the leader itself is allowed: it keeps
    /// leading until the change commits, then steps down.
    Remove(NodeId),
    /// Sets the voters and learners at once. When the voters change by more than one node, the
    /// leader goes through the joint membership (old and new voters together) and leaves it on
    /// its own once that commits. New voters must be caught-up learners or already voters.
    Replace {
        /// The voters afterwards.
        voters: Vec<NodeId>,
        /// The learners afterwards.
        learners: Vec<NodeId>,
    },
}

/// Why a membership change was refused. Nothing was appended to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// Only the leader changes the membership.
    NotLeader {
        /// The leader this node knows of.
        leader_hint: Option<NodeId>,
    },
    /// An earlier change is not committed yet, the membership is still joint, or the leader has
    /// not committed an entry of its own term (so it does not know the latest committed
    /// membership yet). Retry shortly.
    ChangeInProgress,
    /// The leader is handing leadership over.
    LeadershipTransfer,
    /// The change names a node in a way that makes no sense for the current membership.
    Invalid(String),
    /// The learner to promote lags the leader's log by more than the configured bound.
    LearnerLagging {
        /// The learner.
        id: NodeId,
        /// How many entries it is behind.
        lag: u64,
        /// The bound.
        max: u64,
    },
    /// The protocol has no membership changes.
    Unsupported,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NotLeader { leader_hint: Some(l) } => {
                write!(f, "not the leader; try node {l}")
            }
            MembershipError::NotLeader { leader_hint: None } => {
                write!(f, "not the leader; no leader known")
            }
            MembershipError::ChangeInProgress => {
                write!(f, "a membership change is still in progress; retry once it commits")
            }
            MembershipError::LeadershipTransfer => write!(f, "leadership transfer in progress"),
            MembershipError::Invalid(why) => write!(f, "invalid membership change: {why}"),
            MembershipError::LearnerLagging { id, lag, max } => write!(
                f,
                "learner {id} has not caught up: {lag} entries behind, or no acknowledgement within an election timeout (a promotion needs at most {max} behind and a recent acknowledgement); retry in a moment"
            ),
            MembershipError::Unsupported => write!(f, "this protocol has no membership changes"),
        }
    }
}

impl std::error::Error for MembershipError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|i| NodeId(*i)).collect()
    }

    #[test]
    fn encoding_round_trips_and_rejects_damage() {
        let m =
            Membership { voters: ids(&[1, 2, 4]), outgoing: ids(&[1, 2, 3]), learners: ids(&[7]) };
        let bytes = m.encode();
        assert_eq!(Membership::decode(&bytes).unwrap(), m);
        assert!(Membership::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Membership::decode(&longer).is_err());
        let mut wrong_version = bytes.to_vec();
        wrong_version[0] = 9;
        assert!(Membership::decode(&wrong_version).is_err());
        let both = Membership { voters: ids(&[1]), outgoing: vec![], learners: ids(&[1]) };
        assert!(Membership::decode(&both.encode_unchecked()).is_err());
        assert!(Membership::decode(&Membership::default().encode_unchecked()).is_err());
    }

    #[test]
    fn joint_quorum_needs_both_majorities() {
        let joint =
            Membership { voters: ids(&[3, 4, 5]), outgoing: ids(&[1, 2, 3]), learners: vec![] };
        let has = |set: &'static [u64]| move |id: NodeId| set.contains(&id.0);
        assert!(!joint.is_quorum(has(&[1, 2, 3])));
        assert!(!joint.is_quorum(has(&[3, 4, 5])));
        assert!(joint.is_quorum(has(&[1, 3, 4])));
        assert!(joint.is_quorum(has(&[1, 2, 4, 5])));
        let simple = Membership::new(ids(&[1, 2, 3, 4]));
        assert!(!simple.is_quorum(has(&[1, 2])));
        assert!(simple.is_quorum(has(&[1, 2, 3])));
        assert!(!Membership::default().is_quorum(|_| true));
    }
}
