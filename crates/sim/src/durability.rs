//! Two checks that a protocol's durable state backs what it does: votes are on disk before they
//! are relied on, and a committed entry cannot be lost to any election that could still happen.
//!
//! Both look at what is *durable* on the simulated disks (writes that completed, not writes in
//! flight), because a crash can always send a node back to exactly that. A durable log whose
//! prefix was compacted into a snapshot ends at the snapshot's `(index, term)` when nothing
//! follows it, and holds every entry the snapshot covers.

use conclave_core::{Index, LogView, Membership, NodeId, Protocol, Term};

use crate::disk::SimDisk;
use crate::simulation::Simulation;
use crate::violation::{Breach, Invariant};

/// The end of a log, as an election compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LogEnd {
    index: Index,
    term: Term,
}

impl LogEnd {
    /// Raft's up-to-date rule (§5.4.1): would a voter whose log ends at `voter` grant a
    /// candidate whose log ends at `self`?
    fn at_least_as_up_to_date_as(self, voter: LogEnd) -> bool {
        self.term > voter.term || (self.term == voter.term && self.index >= voter.index)
    }
}

impl<P: Protocol> Simulation<P> {
    /// Durable promises: `id` is about to send votes or acknowledgements, made when it reported
    /// `term` and `vote` (as it handed over the `Ready` holding them); once that `Ready`'s writes
    /// (and every earlier one's) are durable, that term and vote must be on its disk.
    pub(crate) fn check_promises_durable(
        &self,
        id: NodeId,
        term: Term,
        vote: Option<NodeId>,
    ) -> Result<(), Breach> {
        if vote.is_none() {
            return Ok(());
        }
        let durable = self.slot(id).disk.state().hard_state;
        if durable.term != term || durable.vote != vote {
            return Err(Breach::new(
                Invariant::DurablePromises,
                format!(
                    "node {id} sends promises in term {term} having voted for {vote:?}, but its disk holds term {} and vote {:?}",
                    durable.term, durable.vote
                ),
            ));
        }
        Ok(())
    }

    /// Commit durability: `id` reports commit index `commit`. If that is the highest commit seen
    /// so far, no node lacking the entry there may be able to collect a quorum of votes (of the
    /// membership its log gives it; both majorities while joint), each voter judged by its durable
    /// log (the log a crash would leave it), each candidate by its durable log and by its log in
    /// memory.
    pub(crate) fn check_commit_durable(&mut self, id: NodeId, commit: Index) -> Result<(), Breach> {
        if commit <= self.commit_durability_checked || commit.0 == 0 {
            return Ok(());
        }
        let Some(term) = self
            .slot(id)
            .protocol
            .as_ref()
            .and_then(|p| p.log_view())
            .and_then(|log| log.entry(commit))
            .map(|e| e.term)
        else {
            return Ok(()); // Compacted away here; another node's report will be checked.
        };
        self.commit_durability_checked = commit;
        let ends: Vec<LogEnd> = self.nodes.iter().map(|slot| durable_end(&slot.disk)).collect();
        let bootstrap = Membership::new(self.voters_initial.iter().copied());
        for slot in &self.nodes {
            let candidate = slot.id;
            // Each way the candidate's log could look in an election, with the membership that
            // log would give it: what its disk holds (after a crash), and what it holds now.
            let mut attempts = Vec::with_capacity(2);
            if !slot.disk.holds(commit, term) {
                attempts.push((durable_end(&slot.disk), slot.disk.membership(&bootstrap)));
            }
            if let Some(protocol) = &slot.protocol {
                if let Some(log) = protocol.log_view().filter(|log| lacks(*log, commit, term)) {
                    let membership =
                        protocol.membership().cloned().unwrap_or_else(|| bootstrap.clone());
                    attempts.push((memory_end(log), membership));
                }
            }
            for (end, membership) in attempts {
                if !membership.is_voter(candidate) {
                    continue; // It would not campaign.
                }
                let supports = |id: NodeId| {
                    ends.get((id.0 - 1) as usize)
                        .is_some_and(|voter| end.at_least_as_up_to_date_as(*voter))
                };
                if membership.is_quorum(supports) {
                    let supporters: Vec<NodeId> =
                        membership.all_voters().into_iter().filter(|id| supports(*id)).collect();
                    return Err(Breach::new(
                        Invariant::CommitDurability,
                        format!(
                            "entry {commit} (term {term}) was committed, yet node {candidate}, whose log ends at index {} term {} without it, could be elected by nodes {supporters:?} ({membership})",
                            end.index, end.term
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn durable_end<T>(disk: &SimDisk<T>) -> LogEnd {
    let (index, term) = disk.log_end();
    LogEnd { index, term }
}

fn memory_end(log: &dyn LogView) -> LogEnd {
    let index = log.last_index();
    let term = log.entry(index).map_or_else(|| log.term_before_first(), |e| e.term);
    LogEnd { index, term }
}

/// True if `log` does not hold the entry (`index`, `term`). An index compacted away counts as held:
/// only applied, hence committed, entries are compacted.
fn lacks(log: &dyn LogView, index: Index, term: Term) -> bool {
    if index < log.first_index() {
        return false;
    }
    log.entry(index).is_none_or(|e| e.term != term)
}
