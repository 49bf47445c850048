//! Configuration safety: membership changes never let two disjoint quorums decide.
//!
//! Checked whenever a node's membership changes (it appended, lost or installed a configuration):
//! - the membership it acts on is the newest configuration entry in its log, when it holds one
//!   (a node acting on a configuration it has lost, or not on the one it appended, could count
//!   the wrong voters);
//! - that configuration and the one before it in the log have quorums that always intersect
//!   (every quorum of one shares a voter with every quorum of the other), which is what keeps
//!   two leaders out of one term and two commits from diverging across a change; one voter at a
//!   time, or through a joint configuration, passes; two voters at once does not;
//! - a leader appends a configuration only once the previous one is committed (one change at a
//!   time: otherwise two uncommitted steps together could move the quorum too far).

use conclave_core::{EntryKind, Index, LogView, Membership, NodeId, Protocol, Role, Term};

use crate::observer::Observer;
use crate::simulation::Simulation;
use crate::violation::{Breach, Invariant};

/// Configuration safety as an [`Observer`]: checked whenever a node's membership changes.
#[derive(Debug, Default)]
pub struct ConfigurationSafety;

impl ConfigurationSafety {
    /// The check; it keeps no memory between calls.
    pub fn new() -> ConfigurationSafety {
        ConfigurationSafety
    }
}

impl<P: Protocol> Observer<P> for ConfigurationSafety {
    fn name(&self) -> &'static str {
        "configuration-safety"
    }

    fn on_membership(
        &mut self,
        sim: &Simulation<P>,
        id: NodeId,
        membership: &Membership,
    ) -> Result<(), Breach> {
        let Some(protocol) = sim.node(id) else { return Ok(()) };
        let membership = membership.clone();
        let status = protocol.status();
        let configs = protocol.log_view().map(|log| newest_configs(log, 2)).unwrap_or_default();
        let breach = |detail: String| Err(Breach::new(Invariant::ConfigurationSafety, detail));
        let Some((index, term, newest)) = configs.first() else { return Ok(()) };
        let Some(newest) = newest else {
            return breach(format!(
                "node {id} holds a configuration entry at {index} that does not decode"
            ));
        };
        if *newest != membership {
            return breach(format!(
                "node {id} acts on membership {membership}, but the newest configuration in its log (index {index}) is {newest}"
            ));
        }
        let Some((previous_index, _, previous)) = configs.get(1) else { return Ok(()) };
        let Some(previous) = previous else {
            return breach(format!(
                "node {id} holds a configuration entry at {previous_index} that does not decode"
            ));
        };
        if !quorums_intersect(previous, newest) {
            return breach(format!(
                "node {id}'s log changes membership from {previous} (index {previous_index}) to {newest} (index {index}): two disjoint quorums could decide"
            ));
        }
        if status.role == Role::Leader && *term == status.term && status.commit < *previous_index {
            return breach(format!(
                "leader {id} appended membership {newest} at {index} while the previous change at {previous_index} was not committed (commit {})",
                status.commit
            ));
        }
        Ok(())
    }
}

/// The newest `count` configuration entries of `log`, newest first: index, term, and the
/// membership (`None` if it does not decode).
fn newest_configs(log: &dyn LogView, count: usize) -> Vec<(Index, Term, Option<Membership>)> {
    let mut found = Vec::new();
    let mut index = log.last_index();
    while index >= log.first_index() && index.0 > 0 && found.len() < count {
        if let Some(entry) = log.entry(index).filter(|e| e.kind == EntryKind::Config) {
            found.push((index, entry.term, Membership::decode(&entry.data).ok()));
        }
        index = index.prev();
    }
    found
}

/// True if every quorum of `a` shares a voter with every quorum of `b`. Decided by trying every
/// split of the voters into two sides: the memberships have at most a dozen voters together.
pub(crate) fn quorums_intersect(a: &Membership, b: &Membership) -> bool {
    let mut voters = a.all_voters();
    voters.extend(b.all_voters());
    voters.sort_unstable();
    voters.dedup();
    assert!(voters.len() < 24, "too many voters to enumerate");
    (0u32..1 << voters.len()).all(|side| {
        let in_side =
            |id: NodeId| voters.iter().position(|v| *v == id).is_some_and(|p| side & (1 << p) != 0);
        !(a.is_quorum(in_side) && b.is_quorum(|id| !in_side(id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[u64]) -> Membership {
        Membership::new(voters.iter().map(|v| NodeId(*v)))
    }

    #[test]
    fn one_voter_at_a_time_or_joint_keeps_quorums_intersecting() {
        assert!(quorums_intersect(&m(&[1, 2, 3]), &m(&[1, 2, 3, 4])));
        assert!(quorums_intersect(&m(&[1, 2, 3, 4]), &m(&[2, 3, 4])));
        assert!(!quorums_intersect(&m(&[1, 2, 3]), &m(&[1, 2, 3, 4, 5])));
        assert!(!quorums_intersect(&m(&[1, 2, 3]), &m(&[4, 5, 6])));
        let joint = Membership { outgoing: m(&[1, 2, 3]).voters, ..m(&[4, 5, 6]) };
        assert!(quorums_intersect(&m(&[1, 2, 3]), &joint));
        assert!(quorums_intersect(&joint, &m(&[4, 5, 6])));
    }
}
