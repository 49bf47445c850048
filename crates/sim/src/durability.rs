//! Two checks that a protocol's durable state backs what it does: votes are on disk before they
//! are relied on, and a committed entry cannot be lost to any election that could still happen.
//!
//! Both look at what is *durable* on the simulated disks (writes that completed, not writes in
//! flight), because a crash can always send a node back to exactly that. A durable log whose
//! prefix was compacted into a snapshot ends at the snapshot's `(index, term)` when nothing
//! follows it, and holds every entry the snapshot covers.

use conclave_core::{Index, LogView, Membership, NodeId, Protocol, Status, Term};

use crate::disk::SimDisk;
use crate::observer::Observer;
use crate::simulation::Simulation;
use crate::violation::{Breach, Invariant};

/// The durability checks as an [`Observer`]: durable promises before `persisted_messages` leave,
/// and commit durability whenever a node's commit index moves (unless the options turn it off).
#[derive(Debug, Default)]
pub struct Durability {
    /// The highest commit index the commit-durability check has examined.
    commit_durability_checked: Index,
}

impl Durability {
    /// A checker that has examined nothing yet.
    pub fn new() -> Durability {
        Durability::default()
    }
}

impl<P: Protocol> Observer<P> for Durability {
    fn name(&self) -> &'static str {
        "durability"
    }

    fn on_status(
        &mut self,
        sim: &Simulation<P>,
        node: NodeId,
        previous: Option<Status>,
        status: Status,
    ) -> Result<(), Breach> {
        if sim.options.check_commit_durability && previous.is_none_or(|b| b.commit != status.commit)
        {
            self.check_commit_durable(sim, node, status.commit)?;
        }
        Ok(())
    }

    fn on_promises(
        &mut self,
        sim: &Simulation<P>,
        node: NodeId,
        term: Term,
        vote: Option<NodeId>,
    ) -> Result<(), Breach> {
        check_promises_durable(sim, node, term, vote)
    }
}

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

/// Durable promises: `id` is about to send votes or acknowledgements, made when it reported
/// `term` and `vote` (as it handed over the `Ready` holding them); once that `Ready`'s writes
/// (and every earlier one's) are durable, that term and vote must be on its disk.
fn check_promises_durable<P: Protocol>(
    sim: &Simulation<P>,
    id: NodeId,
    term: Term,
    vote: Option<NodeId>,
) -> Result<(), Breach> {
    if vote.is_none() {
        return Ok(());
    }
    let durable = sim.slot(id).disk.state().hard_state;
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
impl Durability {
    fn check_commit_durable<P: Protocol>(
        &mut self,
        sim: &Simulation<P>,
        id: NodeId,
        commit: Index,
    ) -> Result<(), Breach> {
        if commit <= self.commit_durability_checked || commit.0 == 0 {
            return Ok(());
        }
        let Some(term) = sim
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
        let ends: Vec<LogEnd> =
            sim.world.nodes.iter().map(|slot| durable_end(&slot.disk)).collect();
        let bootstrap = Membership::new(sim.world.voters_initial.iter().copied());
        for slot in &sim.world.nodes {
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
