//! Newtypes for the three numbers every consensus protocol juggles, so a term can never be passed
//! where an index was meant.

use std::fmt;

/// The identity of a node (a replica) within one consensus group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

/// A logical clock that orders leaderships: Raft's term, Paxos's ballot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

/// A position in the replicated log, starting at 1; 0 means "before the first entry".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Index(pub u64);

impl Term {
    /// The term after this one; a candidate moves to it when it starts an election.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl Index {
    /// The index after this one.
    pub fn next(self) -> Index {
        Index(self.0 + 1)
    }

    /// The index before this one, saturating at 0 (the empty prefix).
    pub fn prev(self) -> Index {
        Index(self.0.saturating_sub(1))
    }
}

macro_rules! display_as_number {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}
display_as_number!(NodeId, Term, Index);
