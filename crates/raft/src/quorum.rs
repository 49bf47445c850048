//! Majority arithmetic, kept apart so that joint consensus can later replace it in one place.

use conclave_core::{Index, NodeId};

/// The number of votes that make a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest index that a majority has reached, given each voter's match index.
pub fn committed_index(mut matched: Vec<Index>) -> Index {
    if matched.is_empty() {
        return Index(0);
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[majority(matched.len()) - 1]
}

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Still undecided.
    Pending,
}

/// Tallies `votes` (voter, granted) among `voters`.
pub fn tally(voters: &[NodeId], votes: &[(NodeId, bool)]) -> VoteResult {
    let need = majority(voters.len());
    let granted = votes.iter().filter(|(id, g)| *g && voters.contains(id)).count();
    let refused = votes.iter().filter(|(id, g)| !*g && voters.contains(id)).count();
    if granted >= need {
        VoteResult::Won
    } else if refused > voters.len() - need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_is_the_majority_match() {
        assert_eq!(committed_index(vec![Index(5)]), Index(5));
        assert_eq!(committed_index(vec![Index(5), Index(3), Index(1)]), Index(3));
        assert_eq!(committed_index(vec![Index(5), Index(3), Index(1), Index(9)]), Index(3));
        assert_eq!(
            committed_index(vec![Index(2), Index(2), Index(7), Index(7), Index(1)]),
            Index(2)
        );
    }

    #[test]
    fn tally_wins_loses_and_waits() {
        let voters = [NodeId(1), NodeId(2), NodeId(3)];
        assert_eq!(tally(&voters, &[(NodeId(1), true)]), VoteResult::Pending);
        assert_eq!(tally(&voters, &[(NodeId(1), true), (NodeId(3), true)]), VoteResult::Won);
        assert_eq!(tally(&voters, &[(NodeId(2), false), (NodeId(3), false)]), VoteResult::Lost);
        // Votes from non-voters do not count.
        assert_eq!(tally(&voters, &[(NodeId(1), true), (NodeId(9), true)]), VoteResult::Pending);
    }
}
