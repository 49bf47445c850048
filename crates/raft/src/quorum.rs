//! Quorum arithmetic over a [`Membership`]: a simple majority, or during a joint change a
//! majority of the incoming voters *and* a majority of the outgoing ones. Commitment, elections,
//! check-quorum and read confirmation all decide here, so joint consensus lives in one place.

use conclave_core::{Membership, NodeId};

/// The highest value that a quorum has reached, given each voter's value (match indexes for
/// commitment, acknowledged heartbeat rounds for reads). 0 for an empty voter set.
pub fn quorum_value(membership: &Membership, value: impl Fn(NodeId) -> u64) -> u64 {
    let of = |set: &[NodeId]| {
        let mut values: Vec<u64> = set.iter().map(|id| value(*id)).collect();
        if values.is_empty() {
            return 0;
        }
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[values.len() / 2]
    };
    let incoming = of(&membership.voters);
    if membership.is_joint() {
        incoming.min(of(&membership.outgoing))
    } else {
        incoming
    }
}

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// Enough voters refused that no quorum can grant any more.
    Lost,
    /// Still undecided.
    Pending,
}

/// Tallies `votes` (voter, granted) under `membership`; votes of non-voters do not count.
pub fn tally(membership: &Membership, votes: &[(NodeId, bool)]) -> VoteResult {
    let vote = |id: NodeId| votes.iter().find(|(v, _)| *v == id).map(|(_, g)| *g);
    if membership.is_quorum(|id| vote(id) == Some(true)) {
        VoteResult::Won
    } else if !membership.is_quorum(|id| vote(id) != Some(false)) {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|i| NodeId(*i)).collect()
    }

    #[test]
    fn quorum_value_is_the_majority_value_of_each_set() {
        let m = |list: &[u64]| Membership::new(ids(list));
        let values = |list: &'static [u64]| move |id: NodeId| list[(id.0 - 1) as usize];
        assert_eq!(quorum_value(&m(&[1]), values(&[5])), 5);
        assert_eq!(quorum_value(&m(&[1, 2, 3]), values(&[5, 3, 1])), 3);
        assert_eq!(quorum_value(&m(&[1, 2, 3, 4]), values(&[5, 3, 1, 9])), 3);
        assert_eq!(quorum_value(&m(&[1, 2, 3, 4, 5]), values(&[2, 2, 7, 7, 1])), 2);
        // Joint: the new voters {3, 4, 5} reached 7, the old {1, 2, 3} only 2.
        let joint =
            Membership { voters: ids(&[3, 4, 5]), outgoing: ids(&[1, 2, 3]), learners: vec![] };
        assert_eq!(quorum_value(&joint, values(&[2, 1, 7, 7, 7])), 2);
        assert_eq!(quorum_value(&joint, values(&[9, 1, 7, 7, 7])), 7);
    }

    #[test]
    fn tally_wins_loses_and_waits_in_simple_and_joint_memberships() {
        let simple = Membership::new(ids(&[1, 2, 3]));
        let (y, n) = (true, false);
        assert_eq!(tally(&simple, &[(NodeId(1), y)]), VoteResult::Pending);
        assert_eq!(tally(&simple, &[(NodeId(1), y), (NodeId(3), y)]), VoteResult::Won);
        assert_eq!(tally(&simple, &[(NodeId(2), n), (NodeId(3), n)]), VoteResult::Lost);
        // Votes from non-voters do not count.
        assert_eq!(tally(&simple, &[(NodeId(1), y), (NodeId(9), y)]), VoteResult::Pending);
        let joint =
            Membership { voters: ids(&[3, 4, 5]), outgoing: ids(&[1, 2, 3]), learners: vec![] };
        // A majority of the new voters alone is not enough.
        let votes = [(NodeId(3), y), (NodeId(4), y), (NodeId(5), y)];
        assert_eq!(tally(&joint, &votes), VoteResult::Pending);
        let votes = [(NodeId(1), y), (NodeId(3), y), (NodeId(4), y)];
        assert_eq!(tally(&joint, &votes), VoteResult::Won);
        // Losing the old majority loses the election whatever the new voters say.
        let votes = [(NodeId(1), n), (NodeId(2), n), (NodeId(4), y), (NodeId(5), y)];
        assert_eq!(tally(&joint, &votes), VoteResult::Lost);
    }
}
