//! A fault schedule: the faults of a run written down as data, so that a run can be replayed
//! without the random nemesis, edited, and shrunk.
//!
//! The random nemesis records every fault it starts as a [`ScheduledFault`] (see
//! [`Simulation::fault_schedule`](crate::Simulation::fault_schedule)). Given back through
//! [`Options::fault_schedule`](crate::Options::fault_schedule), the same list makes the nemesis
//! inject exactly those faults at those times, drawing nothing; with the same seed, every other
//! random stream (network, clients, nodes, disks) is untouched, so the run is the same run.
//!
//! The transforms here ([`FaultAction::without_node`], [`ScheduledFault::validate`]) are what the
//! shrinker needs to take a node out of a schedule without leaving it meaningless.
//!
//! A [`ScheduledFault`] is serialized (serde) as one flat JSON object, the form replay files have
//! always used: `{"at_us": .., "fault": "crash", "node": 2, "for_us": ..}`, the fault's own
//! fields between its kind and its length (docs/TESTING.md, "Replay files"). Reading is strict:
//! an unknown key, or a key the fault does not take, is an error, since a misspelt one would
//! otherwise silently fall back to a default and replay some other run.

use conclave_core::{MembershipChange, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::options::Fault;

/// How long a node stopped by a scripted sync failure stays down when the recording never saw
/// that failure fire (so no delay was drawn): a quick bounce, like most restarts after a failure.
pub const FAIL_SYNC_DOWN_DEFAULT_US: u64 = 10_000;

/// One fault of a schedule: what happens, when, and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FaultRecord", into = "FaultRecord")]
pub struct ScheduledFault {
    /// When the fault starts, in virtual µs since the start of the run. A crash point starts at
    /// the node's first crash point at or after this time.
    pub at_us: u64,
    /// The fault.
    pub action: FaultAction,
    /// How long until it is undone (the network heals, the node restarts, the weather calms, the
    /// armed sync failure is taken back). `None` for faults that are not undone: membership
    /// changes and leadership transfers, after which the cluster carries on in its new shape.
    pub duration_us: Option<u64>,
}

/// A fault the nemesis can inject, with every choice it made (which nodes, which rate) spelled
/// out, so that injecting it needs no randomness.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Split the network into these groups (nodes named in no group are alone). Undone by a
    /// heal, which also removes one-way cuts.
    Partition {
        /// The groups, each non-empty.
        groups: Vec<Vec<NodeId>>,
    },
    /// Block these links in one direction. Undone by a heal.
    Cut {
        /// `(from, to)` pairs.
        links: Vec<(NodeId, NodeId)>,
    },
    /// Crash the node (losing everything its disk has not made durable); undone by a restart.
    Crash {
        /// The node.
        node: NodeId,
    },
    /// Crash the node at a crash point: right after it sent messages promising durable state
    /// (votes, acknowledgements), the moment a protocol that forgot to persist something is
    /// caught. Undone by a restart.
    CrashPoint {
        /// The node.
        node: NodeId,
        /// Crash points of this node at exactly `at_us` to let pass first (almost always 0): a
        /// node can reach several in one microsecond, and a replay must hit the same one.
        ordinal: u32,
    },
    /// Cut the node's power in the middle of its disk write, leaving the write torn; undone by a
    /// restart.
    PowerCut {
        /// The node.
        node: NodeId,
    },
    /// Make the node's next disk sync fail, which stops the node; undone (if it has not fired) by
    /// taking the failure back.
    FailSync {
        /// The node.
        node: NodeId,
        /// How long the node stays down once the sync fails. The random nemesis draws it when
        /// the failure fires; `None` when it never fired (a replay that fires it uses
        /// [`FAIL_SYNC_DOWN_DEFAULT_US`]).
        down_us: Option<u64>,
    },
    /// Lose each message with this probability; undone by calm weather.
    Drop {
        /// The loss rate.
        probability: f64,
    },
    /// Deliver each message twice with this probability; undone by calm weather.
    Duplicate {
        /// The duplication rate.
        probability: f64,
    },
    /// Add the long latency tail (some messages take 10–200 ms).
    Delay,
    /// Stop links being FIFO and hold some messages back.
    Reorder,
    /// Make exactly these nodes' disks slow (some writes take 10–100 ms).
    SlowDisk {
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// Ask the leader of the moment (if there is one) for this membership change.
    ChangeMembership {
        /// The change.
        change: MembershipChange,
    },
    /// Ask the leader of the moment (if there is one) to hand leadership to this voter.
    TransferLeader {
        /// The voter to hand over to.
        target: NodeId,
    },
}

impl FaultAction {
    /// The kind of fault this is, as enabled in a [`FaultSet`](crate::FaultSet).
    pub fn fault(&self) -> Fault {
        match self {
            FaultAction::Partition { .. } | FaultAction::Cut { .. } => Fault::Partition,
            FaultAction::Crash { .. } | FaultAction::CrashPoint { .. } => Fault::Crash,
            FaultAction::PowerCut { .. } => Fault::TornWrite,
            FaultAction::FailSync { .. } => Fault::FsyncError,
            FaultAction::Drop { .. } => Fault::Drop,
            FaultAction::Duplicate { .. } => Fault::Duplicate,
            FaultAction::Delay => Fault::Delay,
            FaultAction::Reorder => Fault::Reorder,
            FaultAction::SlowDisk { .. } => Fault::SlowDisk,
            FaultAction::ChangeMembership { .. } => Fault::Membership,
            FaultAction::TransferLeader { .. } => Fault::Transfer,
        }
    }

    /// The name used in replay files and reports; stable.
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::Partition { .. } => "partition",
            FaultAction::Cut { .. } => "cut",
            FaultAction::Crash { .. } => "crash",
            FaultAction::CrashPoint { .. } => "crash-point",
            FaultAction::PowerCut { .. } => "power-cut",
            FaultAction::FailSync { .. } => "fail-sync",
            FaultAction::Drop { .. } => "drop",
            FaultAction::Duplicate { .. } => "duplicate",
            FaultAction::Delay => "delay",
            FaultAction::Reorder => "reorder",
            FaultAction::SlowDisk { .. } => "slow-disk",
            FaultAction::ChangeMembership { .. } => "membership",
            FaultAction::TransferLeader { .. } => "transfer",
        }
    }

    /// Every node the fault names, in the order it names them.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            FaultAction::Partition { groups } => groups.concat(),
            FaultAction::Cut { links } => links.iter().flat_map(|(a, b)| [*a, *b]).collect(),
            FaultAction::Crash { node }
            | FaultAction::CrashPoint { node, .. }
            | FaultAction::PowerCut { node }
            | FaultAction::FailSync { node, .. } => vec![*node],
            FaultAction::SlowDisk { nodes } => nodes.clone(),
            FaultAction::ChangeMembership { change } => change_nodes(change),
            FaultAction::TransferLeader { target } => vec![*target],
            FaultAction::Drop { .. }
            | FaultAction::Duplicate { .. }
            | FaultAction::Delay
            | FaultAction::Reorder => Vec::new(),
        }
    }

    /// The same fault in a cluster without node `removed`, whose higher ids each moved down by
    /// one (as they do when a simulation has one node fewer). `None` when the fault no longer
    /// means anything: it targeted the node, or a partition is left with a single group.
    pub fn without_node(&self, removed: NodeId) -> Option<FaultAction> {
        let renumber = |id: NodeId| -> Option<NodeId> {
            match id.cmp(&removed) {
                std::cmp::Ordering::Less => Some(id),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(NodeId(id.0 - 1)),
            }
        };
        let renumber_all =
            |ids: &[NodeId]| -> Vec<NodeId> { ids.iter().filter_map(|id| renumber(*id)).collect() };
        Some(match self {
            FaultAction::Partition { groups } => {
                let groups: Vec<Vec<NodeId>> = groups
                    .iter()
                    .map(|group| renumber_all(group))
                    .filter(|group| !group.is_empty())
                    .collect();
                if groups.len() < 2 {
                    return None;
                }
                FaultAction::Partition { groups }
            }
            FaultAction::Cut { links } => {
                let links: Vec<(NodeId, NodeId)> = links
                    .iter()
                    .filter_map(|(from, to)| Some((renumber(*from)?, renumber(*to)?)))
                    .collect();
                if links.is_empty() {
                    return None;
                }
                FaultAction::Cut { links }
            }
            FaultAction::Crash { node } => FaultAction::Crash { node: renumber(*node)? },
            FaultAction::CrashPoint { node, ordinal } => {
                FaultAction::CrashPoint { node: renumber(*node)?, ordinal: *ordinal }
            }
            FaultAction::PowerCut { node } => FaultAction::PowerCut { node: renumber(*node)? },
            FaultAction::FailSync { node, down_us } => {
                FaultAction::FailSync { node: renumber(*node)?, down_us: *down_us }
            }
            FaultAction::SlowDisk { nodes } => {
                let nodes = renumber_all(nodes);
                if nodes.is_empty() {
                    return None;
                }
                FaultAction::SlowDisk { nodes }
            }
            FaultAction::ChangeMembership { change } => {
                // A change naming the node would be a different change; it goes.
                if change_nodes(change).contains(&removed) {
                    return None;
                }
                let change = match change {
                    MembershipChange::AddLearner(id) => {
                        MembershipChange::AddLearner(renumber(*id)?)
                    }
                    MembershipChange::Promote(id) => MembershipChange::Promote(renumber(*id)?),
                    MembershipChange::Remove(id) => MembershipChange::Remove(renumber(*id)?),
                    MembershipChange::Replace { voters, learners } => MembershipChange::Replace {
                        voters: renumber_all(voters),
                        learners: renumber_all(learners),
                    },
                };
                FaultAction::ChangeMembership { change }
            }
            FaultAction::TransferLeader { target } => {
                FaultAction::TransferLeader { target: renumber(*target)? }
            }
            FaultAction::Drop { .. }
            | FaultAction::Duplicate { .. }
            | FaultAction::Delay
            | FaultAction::Reorder => self.clone(),
        })
    }
}

/// The nodes a membership change names.
fn change_nodes(change: &MembershipChange) -> Vec<NodeId> {
    match change {
        MembershipChange::AddLearner(id)
        | MembershipChange::Promote(id)
        | MembershipChange::Remove(id) => vec![*id],
        MembershipChange::Replace { voters, learners } => [voters.as_slice(), learners].concat(),
    }
}

impl ScheduledFault {
    /// Checks that the fault can be injected into a simulation of `nodes_total` nodes (voters
    /// and spares): every node it names exists, rates are probabilities, groups are non-empty.
    /// Returns a sentence saying what is wrong.
    pub fn validate(&self, nodes_total: usize) -> Result<(), String> {
        for node in self.action.nodes() {
            if node.0 == 0 || node.0 > nodes_total as u64 {
                return Err(format!(
                    "{} names node {node}, outside the cluster of {nodes_total}",
                    self.action.name()
                ));
            }
        }
        match &self.action {
            FaultAction::Drop { probability } | FaultAction::Duplicate { probability }
                if !(0.0..=1.0).contains(probability) =>
            {
                Err(format!("{} rate {probability} is not a probability", self.action.name()))
            }
            FaultAction::Partition { groups } if groups.iter().any(Vec::is_empty) => {
                Err("a partition group is empty".to_string())
            }
            FaultAction::Cut { links } if links.iter().any(|(from, to)| from == to) => {
                Err("a cut links a node to itself".to_string())
            }
            _ => Ok(()),
        }
    }
}

/// A scheduled fault as its JSON object: every field any fault takes, present only when the fault
/// takes it, in the order a person reads them (when, what, on whom, how long).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRecord {
    at_us: u64,
    fault: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<Vec<u64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    links: Option<Vec<(u64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ordinal: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    down_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    voters: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learners: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    for_us: Option<u64>,
}

/// A fault object that names no known fault, or leaves out or adds a field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ScheduleFormatError {
    /// The `fault` names nothing the nemesis knows.
    #[error("unknown fault `{0}` ({names})", names = ACTION_NAMES.join(", "))]
    UnknownFault(String),
    /// A membership `change` names nothing the nemesis knows.
    #[error("unknown membership change `{0}` (add-learner, promote, remove, replace)")]
    UnknownChange(String),
    /// The fault needs a field the object lacks.
    #[error("{fault}: `{field}` is missing")]
    Missing {
        /// The fault's name.
        fault: String,
        /// The missing field.
        field: &'static str,
    },
    /// The object has a field this fault does not take.
    #[error("{fault}: `{field}` does not belong to this fault")]
    Unexpected {
        /// The fault's name.
        fault: String,
        /// The field it does not take.
        field: &'static str,
    },
}

/// Every fault's name in a schedule, for errors.
const ACTION_NAMES: [&str; 13] = [
    "partition",
    "cut",
    "crash",
    "crash-point",
    "power-cut",
    "fail-sync",
    "drop",
    "duplicate",
    "delay",
    "reorder",
    "slow-disk",
    "membership",
    "transfer",
];

fn ids(ids: &[NodeId]) -> Vec<u64> {
    ids.iter().map(|id| id.0).collect()
}

fn node_ids(ids: Vec<u64>) -> Vec<NodeId> {
    ids.into_iter().map(NodeId).collect()
}

impl From<ScheduledFault> for FaultRecord {
    fn from(fault: ScheduledFault) -> FaultRecord {
        let mut record = FaultRecord {
            at_us: fault.at_us,
            fault: fault.action.name().to_string(),
            for_us: fault.duration_us,
            ..FaultRecord::default()
        };
        match fault.action {
            FaultAction::Partition { groups } => {
                record.groups = Some(groups.iter().map(|group| ids(group)).collect());
            }
            FaultAction::Cut { links } => {
                record.links = Some(links.iter().map(|(from, to)| (from.0, to.0)).collect());
            }
            FaultAction::Crash { node } | FaultAction::PowerCut { node } => {
                record.node = Some(node.0);
            }
            FaultAction::CrashPoint { node, ordinal } => {
                record.node = Some(node.0);
                record.ordinal = (ordinal > 0).then_some(ordinal);
            }
            FaultAction::FailSync { node, down_us } => {
                record.node = Some(node.0);
                record.down_us = down_us;
            }
            FaultAction::Drop { probability } | FaultAction::Duplicate { probability } => {
                record.probability = Some(probability);
            }
            FaultAction::Delay | FaultAction::Reorder => {}
            FaultAction::SlowDisk { nodes } => record.nodes = Some(ids(&nodes)),
            FaultAction::ChangeMembership { change } => {
                let (name, node) = match change {
                    MembershipChange::AddLearner(id) => ("add-learner", Some(id)),
                    MembershipChange::Promote(id) => ("promote", Some(id)),
                    MembershipChange::Remove(id) => ("remove", Some(id)),
                    MembershipChange::Replace { voters, learners } => {
                        record.voters = Some(ids(&voters));
                        record.learners = Some(ids(&learners));
                        ("replace", None)
                    }
                };
                record.change = Some(name.to_string());
                record.node = node.map(|id| id.0);
            }
            FaultAction::TransferLeader { target } => record.to = Some(target.0),
        }
        record
    }
}

impl TryFrom<FaultRecord> for ScheduledFault {
    type Error = ScheduleFormatError;

    fn try_from(mut record: FaultRecord) -> Result<ScheduledFault, ScheduleFormatError> {
        let name = record.fault.clone();
        let missing = |field| ScheduleFormatError::Missing { fault: name.clone(), field };
        let node = |record: &mut FaultRecord| record.node.take().map(NodeId).ok_or(missing("node"));
        let action = match name.as_str() {
            "partition" => {
                let groups = record.groups.take().ok_or(missing("groups"))?;
                FaultAction::Partition { groups: groups.into_iter().map(node_ids).collect() }
            }
            "cut" => {
                let links = record.links.take().ok_or(missing("links"))?;
                let links = links.into_iter().map(|(from, to)| (NodeId(from), NodeId(to)));
                FaultAction::Cut { links: links.collect() }
            }
            "crash" => FaultAction::Crash { node: node(&mut record)? },
            "crash-point" => {
                let ordinal = record.ordinal.take().unwrap_or(0);
                FaultAction::CrashPoint { node: node(&mut record)?, ordinal }
            }
            "power-cut" => FaultAction::PowerCut { node: node(&mut record)? },
            "fail-sync" => {
                let down_us = record.down_us.take();
                FaultAction::FailSync { node: node(&mut record)?, down_us }
            }
            "drop" | "duplicate" => {
                let probability = record.probability.take().ok_or(missing("probability"))?;
                if name == "drop" {
                    FaultAction::Drop { probability }
                } else {
                    FaultAction::Duplicate { probability }
                }
            }
            "delay" => FaultAction::Delay,
            "reorder" => FaultAction::Reorder,
            "slow-disk" => {
                FaultAction::SlowDisk { nodes: node_ids(record.nodes.take().unwrap_or_default()) }
            }
            "membership" => {
                let change = record.change.take().ok_or(missing("change"))?;
                let change = match change.as_str() {
                    "add-learner" => MembershipChange::AddLearner(node(&mut record)?),
                    "promote" => MembershipChange::Promote(node(&mut record)?),
                    "remove" => MembershipChange::Remove(node(&mut record)?),
                    "replace" => MembershipChange::Replace {
                        voters: node_ids(record.voters.take().unwrap_or_default()),
                        learners: node_ids(record.learners.take().unwrap_or_default()),
                    },
                    _ => return Err(ScheduleFormatError::UnknownChange(change)),
                };
                FaultAction::ChangeMembership { change }
            }
            "transfer" => FaultAction::TransferLeader {
                target: record.to.take().map(NodeId).ok_or(missing("to"))?,
            },
            _ => return Err(ScheduleFormatError::UnknownFault(name)),
        };
        // Whatever the fault did not take is a mistake in the file.
        let unexpected =
            |field| Err(ScheduleFormatError::Unexpected { fault: name.clone(), field });
        let leftovers = [
            ("groups", record.groups.is_some()),
            ("links", record.links.is_some()),
            ("change", record.change.is_some()),
            ("node", record.node.is_some()),
            ("ordinal", record.ordinal.is_some()),
            ("down_us", record.down_us.is_some()),
            ("probability", record.probability.is_some()),
            ("nodes", record.nodes.is_some()),
            ("voters", record.voters.is_some()),
            ("learners", record.learners.is_some()),
            ("to", record.to.is_some()),
        ];
        if let Some((field, _)) = leftovers.into_iter().find(|(_, present)| *present) {
            return unexpected(field);
        }
        Ok(ScheduledFault { at_us: record.at_us, action, duration_us: record.for_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of fault once, with every optional field both ways.
    fn every_action() -> Vec<ScheduledFault> {
        let n = NodeId;
        let actions = [
            FaultAction::Partition { groups: vec![vec![n(1)], vec![n(2), n(3)]] },
            FaultAction::Cut { links: vec![(n(1), n(2))] },
            FaultAction::Crash { node: n(2) },
            FaultAction::CrashPoint { node: n(1), ordinal: 0 },
            FaultAction::CrashPoint { node: n(1), ordinal: 2 },
            FaultAction::PowerCut { node: n(3) },
            FaultAction::FailSync { node: n(2), down_us: None },
            FaultAction::FailSync { node: n(2), down_us: Some(5) },
            FaultAction::Drop { probability: 0.25 },
            FaultAction::Duplicate { probability: 1.0 },
            FaultAction::Delay,
            FaultAction::Reorder,
            FaultAction::SlowDisk { nodes: vec![n(1), n(3)] },
            FaultAction::ChangeMembership { change: MembershipChange::AddLearner(n(4)) },
            FaultAction::ChangeMembership { change: MembershipChange::Promote(n(4)) },
            FaultAction::ChangeMembership { change: MembershipChange::Remove(n(1)) },
            FaultAction::ChangeMembership {
                change: MembershipChange::Replace { voters: vec![n(2)], learners: vec![n(3)] },
            },
            FaultAction::TransferLeader { target: n(2) },
        ];
        let mut faults = Vec::new();
        for (position, action) in actions.into_iter().enumerate() {
            let duration_us = (position % 2 == 0).then_some(position as u64 * 10);
            faults.push(ScheduledFault { at_us: position as u64, action, duration_us });
        }
        faults
    }

    #[test]
    fn every_fault_survives_the_json_round_trip_and_names_its_kind() {
        for fault in every_action() {
            let text = serde_json::to_string(&fault).unwrap();
            let prefix =
                format!("{{\"at_us\":{},\"fault\":\"{}\"", fault.at_us, fault.action.name());
            assert!(text.starts_with(&prefix), "{text}");
            assert_eq!(text.contains("for_us"), fault.duration_us.is_some(), "{text}");
            assert_eq!(serde_json::from_str::<ScheduledFault>(&text).unwrap(), fault, "{text}");
        }
    }

    #[test]
    fn files_written_by_hand_with_spaces_still_read() {
        let text =
            r#"{"at_us": 805651, "fault": "partition", "groups": [[2], [1, 3]], "for_us": 283141}"#;
        let fault: ScheduledFault = serde_json::from_str(text).unwrap();
        let groups = vec![vec![NodeId(2)], vec![NodeId(1), NodeId(3)]];
        assert_eq!(fault.action, FaultAction::Partition { groups });
        let text = r#"{"at_us": 1, "fault": "membership", "change": "add-learner", "node": 6}"#;
        let fault: ScheduledFault = serde_json::from_str(text).unwrap();
        let change = MembershipChange::AddLearner(NodeId(6));
        assert_eq!(
            fault,
            ScheduledFault {
                at_us: 1,
                action: FaultAction::ChangeMembership { change },
                duration_us: None
            }
        );
    }

    #[test]
    fn mistakes_in_a_fault_are_refused_by_name() {
        let error =
            |text: &str| serde_json::from_str::<ScheduledFault>(text).unwrap_err().to_string();
        let message = error(r#"{"at_us": 1, "fault": "meteor"}"#);
        assert!(
            message.contains("unknown fault `meteor`") && message.contains("crash-point"),
            "{message}"
        );
        assert!(error(r#"{"at_us": 1, "fault": "crash"}"#).contains("crash: `node` is missing"));
        let message = error(r#"{"at_us": 1, "fault": "delay", "node": 2}"#);
        assert!(message.contains("delay: `node` does not belong"), "{message}");
        assert!(error(r#"{"at_us": 1, "fault": "crash", "node": 2, "nod": 2}"#).contains("`nod`"));
        let message = error(r#"{"at_us": 1, "fault": "membership", "change": "merge", "node": 2}"#);
        assert!(message.contains("unknown membership change `merge`"), "{message}");
        assert!(error(r#"{"fault": "crash", "node": 2}"#).contains("at_us"));
    }

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|id| NodeId(*id)).collect()
    }

    #[test]
    fn removing_a_node_renumbers_the_ones_above_it() {
        let partition = FaultAction::Partition { groups: vec![ids(&[1, 4]), ids(&[2, 3, 5])] };
        assert_eq!(
            partition.without_node(NodeId(3)),
            Some(FaultAction::Partition { groups: vec![ids(&[1, 3]), ids(&[2, 4])] })
        );
        let lonely = FaultAction::Partition { groups: vec![ids(&[3]), ids(&[1, 2])] };
        assert_eq!(lonely.without_node(NodeId(3)), None, "one group left is no partition");
        let cut = FaultAction::Cut { links: vec![(NodeId(1), NodeId(2)), (NodeId(3), NodeId(2))] };
        assert_eq!(
            cut.without_node(NodeId(1)),
            Some(FaultAction::Cut { links: vec![(NodeId(2), NodeId(1))] })
        );
        let crash = FaultAction::Crash { node: NodeId(2) };
        assert_eq!(crash.without_node(NodeId(2)), None);
        assert_eq!(crash.without_node(NodeId(5)), Some(crash.clone()));
        assert_eq!(crash.without_node(NodeId(1)), Some(FaultAction::Crash { node: NodeId(1) }));
        let change = FaultAction::ChangeMembership { change: MembershipChange::Promote(NodeId(6)) };
        assert_eq!(change.without_node(NodeId(6)), None);
        assert_eq!(
            change.without_node(NodeId(2)),
            Some(FaultAction::ChangeMembership { change: MembershipChange::Promote(NodeId(5)) })
        );
        assert_eq!(FaultAction::Delay.without_node(NodeId(1)), Some(FaultAction::Delay));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let fault = |action| ScheduledFault { at_us: 0, action, duration_us: Some(1) };
        assert_eq!(fault(FaultAction::Crash { node: NodeId(3) }).validate(3), Ok(()));
        let error = fault(FaultAction::Crash { node: NodeId(4) }).validate(3).unwrap_err();
        assert!(error.contains("node 4"), "{error}");
        assert!(fault(FaultAction::Drop { probability: 1.5 }).validate(3).is_err());
        assert!(fault(FaultAction::Partition { groups: vec![vec![]] }).validate(3).is_err());
        let cut = FaultAction::Cut { links: vec![(NodeId(2), NodeId(2))] };
        assert!(fault(cut).validate(3).is_err());
    }

    #[test]
    fn every_action_names_its_fault_kind() {
        assert_eq!(FaultAction::Cut { links: vec![] }.fault(), Fault::Partition);
        assert_eq!(FaultAction::CrashPoint { node: NodeId(1), ordinal: 0 }.fault(), Fault::Crash);
        assert_eq!(FaultAction::PowerCut { node: NodeId(1) }.fault(), Fault::TornWrite);
        assert_eq!(FaultAction::TransferLeader { target: NodeId(1) }.name(), "transfer");
    }
}
