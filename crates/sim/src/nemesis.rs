//! The nemesis: decides which fault to inject when, and when to undo it, either at random from
//! its own stream or by following a schedule given in the options.
//!
//! It only plans; the simulation carries the plan out (it owns the nodes and the network) and
//! records every fault started, so a random run can be replayed as a schedule. Every fault with a
//! duration is paired with an undo event (heal, restart, calm, disarm), scheduled when it starts,
//! so no fault outlives its episode even if later faults pile up. When the op phase ends the
//! simulation stops the nemesis and undoes everything still in force.
//!
//! A scripted nemesis draws nothing from its stream. Each subsystem has its own stream forked
//! off the seed, so a scripted replay of a recorded random run sees the same network, clients,
//! nodes and disks: the same run.

use conclave_core::{Membership, MembershipChange, NodeId, RandomSource, SeededRng};

use crate::options::{Fault, FaultSet};
use crate::schedule::{FaultAction, ScheduledFault};

/// Time between the starts of two fault episodes: short, so that even a run of a few hundred
/// operations (a fraction of a virtual second on a healthy cluster) sees several faults, and
/// episodes overlap.
const STEP_MIN_US: u64 = 10_000;
const STEP_MAX_US: u64 = 200_000;
/// How long a partition lasts: from a blip to several election timeouts.
const PARTITION_MIN_US: u64 = 100_000;
const PARTITION_MAX_US: u64 = 3_000_000;
/// How long a crashed node stays down, usually: long enough for the others to notice.
const CRASH_MIN_US: u64 = 50_000;
const CRASH_MAX_US: u64 = 3_000_000;
/// Some crashes are quick bounces (a process restart by a supervisor), back within a few
/// milliseconds: while an election or a replication round is still under way, which is when
/// state that should have been persisted but was not (a vote, an acknowledged entry) matters.
const BOUNCE_PROBABILITY: f64 = 0.3;
const BOUNCE_MIN_US: u64 = 1_000;
const BOUNCE_MAX_US: u64 = 20_000;
/// Crash points: the chance that a node crashes right after it sent messages that promise
/// durable state (a vote, an acknowledgement), per such batch. This is the moment where a
/// protocol that forgot to persist something is caught out, and a crash at a random time almost
/// never lands on it (FoundationDB and TigerBeetle inject crashes at such points for the same
/// reason). The node bounces back like any quick crash.
const CRASH_POINT_PROBABILITY: f64 = 0.002;

/// How long a loss, duplication, delay or reorder episode lasts.
const WEATHER_MIN_US: u64 = 100_000;
const WEATHER_MAX_US: u64 = 2_000_000;
/// Loss or duplication rate during an episode, in percent: up to heavy but not total.
const WEATHER_PERCENT_MIN: u64 = 1;
const WEATHER_PERCENT_MAX: u64 = 20;
/// Probability of crashing a node even though that leaves no live majority: rare, so most of the
/// run can make progress, but it happens, because a protocol must stay safe (if not live) then.
const CRASH_MAJORITY_RISK: f64 = 0.1;
/// Probability that a crash or an isolating partition targets the leader when one is known. The
/// leader is where the interesting bugs live, so it is picked far more often than chance would.
const TARGET_LEADER_PROBABILITY: f64 = 0.5;
/// How long an armed sync failure waits for the node's next write before it is taken back.
const SYNC_FAILURE_MIN_US: u64 = 100_000;
const SYNC_FAILURE_MAX_US: u64 = 2_000_000;
/// Probability that a slow-disk episode slows every disk rather than one node's.
const SLOW_EVERY_DISK_PROBABILITY: f64 = 0.25;

/// The nemesis's scheduled events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NemesisEvent {
    /// Time to consider starting another fault (the random nemesis).
    Step,
    /// Time to start fault `index` of the schedule (the scripted nemesis).
    Scripted { index: usize },
    /// End partition episode `episode`.
    Heal { episode: u64 },
    /// Restart a node the nemesis crashed (if it is still down).
    Restart { node: NodeId },
    /// End weather episode `episode` of `fault` (slow disks included), unless a newer episode of
    /// it replaced it.
    Calm { fault: Fault, episode: u64 },
    /// Take back the sync failure armed on `node` in `episode`, if it has not fired.
    Disarm { node: NodeId, episode: u64 },
}

/// A fault the random nemesis decided to start now, and how long it lasts (`None`: no undo, for
/// membership changes and transfers: the cluster carries on in its new shape).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub(crate) action: FaultAction,
    pub(crate) duration_us: Option<u64>,
}

/// The fault scheduler.
pub(crate) struct Nemesis {
    rng: SeededRng,
    faults: FaultSet,
    nodes: usize,
    /// How many voters the cluster started with: membership changes keep the voter count
    /// between `min(voters_initial, 3)` and `voters_initial + 2`.
    voters_initial: usize,
    /// `Some`: inject exactly this schedule and draw nothing.
    script: Option<Script>,
    stopped: bool,
    /// The partition episode in force, if any. The random nemesis starts only one at a time, so
    /// that a heal always restores full connectivity.
    partition_episode: Option<u64>,
    /// The latest episode of each weather fault (by `Fault as usize`).
    weather_episode: [Option<u64>; Fault::ALL.len()],
    /// The episode of the sync failure armed on each node (by `id - 1`), if any.
    sync_failure_episode: Vec<Option<u64>>,
}

/// A schedule being followed.
struct Script {
    /// The faults, in order of start time.
    faults: Vec<ScheduledFault>,
    /// Crash points not yet taken (indexes into `faults`, in order): they fire inside a node's
    /// work, at its first crash point at or after their time, not from the event queue.
    crash_points: Vec<usize>,
}

impl Nemesis {
    /// A random nemesis for a cluster of `nodes` nodes (the first `voters_initial` of them
    /// voters) that may inject `faults`.
    pub(crate) fn new(
        rng: SeededRng,
        faults: FaultSet,
        nodes: usize,
        voters_initial: usize,
    ) -> Nemesis {
        Nemesis {
            rng,
            faults,
            nodes,
            voters_initial,
            script: None,
            stopped: false,
            partition_episode: None,
            weather_episode: [None; Fault::ALL.len()],
            sync_failure_episode: vec![None; nodes],
        }
    }

    /// A nemesis that injects exactly `schedule` (sorted by start time here, stably) in a cluster
    /// of `nodes` nodes.
    pub(crate) fn scripted(mut schedule: Vec<ScheduledFault>, nodes: usize) -> Nemesis {
        schedule.sort_by_key(|fault| fault.at_us);
        let crash_points = (0..schedule.len())
            .filter(|index| matches!(schedule[*index].action, FaultAction::CrashPoint { .. }))
            .collect();
        let mut nemesis = Nemesis::new(SeededRng::new(0), FaultSet::none(), nodes, nodes);
        nemesis.script = Some(Script { faults: schedule, crash_points });
        nemesis
    }

    /// True when following a schedule rather than drawing faults.
    pub(crate) fn is_scripted(&self) -> bool {
        self.script.is_some()
    }

    /// The first event to schedule when the workload starts (at `now_us`), with its time: the
    /// random nemesis's first step, or the schedule's first fault. `None` when idle.
    pub(crate) fn first_event(&mut self, now_us: u64) -> Option<(u64, NemesisEvent)> {
        if self.is_idle() {
            return None;
        }
        match self.script {
            Some(_) => self.scripted_after(None, now_us),
            None => Some((now_us + self.step_delay_us(), NemesisEvent::Step)),
        }
    }

    /// The scripted fault to start after fault `index` (the first one for `None`), skipping
    /// crash points, with its start time (never before `now_us`). Scheduled one at a time, as
    /// the random nemesis schedules its steps, so that events of the same microsecond keep the
    /// order they had in the recorded run.
    pub(crate) fn scripted_after(
        &self,
        index: Option<usize>,
        now_us: u64,
    ) -> Option<(u64, NemesisEvent)> {
        let script = self.script.as_ref()?;
        let from = index.map_or(0, |index| index + 1);
        let next = (from..script.faults.len())
            .find(|i| !matches!(script.faults[*i].action, FaultAction::CrashPoint { .. }))?;
        let at_us = script.faults[next].at_us.max(now_us);
        Some((at_us, NemesisEvent::Scripted { index: next }))
    }

    /// Fault `index` of the schedule.
    pub(crate) fn scripted_fault(&self, index: usize) -> &ScheduledFault {
        &self.script.as_ref().expect("a scripted nemesis").faults[index]
    }

    /// True when there is nothing for the nemesis to do: no faults (none enabled, or an empty
    /// schedule), or it was stopped.
    pub(crate) fn is_idle(&self) -> bool {
        match &self.script {
            _ if self.stopped => true,
            Some(script) => script.faults.is_empty(),
            None => self.faults.is_empty(),
        }
    }

    /// Stops the nemesis for good; the simulation undoes what is in force.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    /// At a crash point (a node just sent promises, `ordinal` earlier crash points of the node
    /// having passed in this same microsecond): decides whether it crashes there, and if so,
    /// after how long it restarts. Random crash points come with the `crash` fault and respect
    /// the same majority rule as scheduled crashes; scripted ones fire at the node's first crash
    /// point at or after their time.
    pub(crate) fn crash_point(
        &mut self,
        node: NodeId,
        live: &[bool],
        now_us: u64,
        ordinal: u32,
    ) -> Option<u64> {
        if self.is_idle() {
            return None;
        }
        if let Some(script) = &mut self.script {
            let due = |fault: &ScheduledFault| match fault.action {
                FaultAction::CrashPoint { node: target, ordinal: skip } => {
                    target == node
                        && (fault.at_us < now_us || (fault.at_us == now_us && skip <= ordinal))
                }
                _ => false,
            };
            let position = script.crash_points.iter().position(|i| due(&script.faults[*i]))?;
            let index = script.crash_points.remove(position);
            return Some(script.faults[index].duration_us.unwrap_or(0));
        }
        if !self.faults.contains(Fault::Crash) || !self.rng.chance(CRASH_POINT_PROBABILITY) {
            return None;
        }
        let up = live.iter().filter(|l| **l).count();
        let keeps_majority = up - 1 > self.nodes / 2;
        if !live[(node.0 - 1) as usize]
            || (!keeps_majority && !self.rng.chance(CRASH_MAJORITY_RISK))
        {
            return None;
        }
        Some(self.rng.between(BOUNCE_MIN_US, BOUNCE_MAX_US + 1))
    }

    /// Starts episode `episode` of `action`: notes what is in force, and returns the event that
    /// undoes it (`None` for faults without one). Stale undos (of an episode a newer one of the
    /// same kind replaced) are ignored when they fire.
    pub(crate) fn begin(&mut self, action: &FaultAction, episode: u64) -> Option<NemesisEvent> {
        Some(match action {
            FaultAction::Partition { .. } | FaultAction::Cut { .. } => {
                self.partition_episode = Some(episode);
                NemesisEvent::Heal { episode }
            }
            FaultAction::Crash { node }
            | FaultAction::CrashPoint { node, .. }
            | FaultAction::PowerCut { node } => NemesisEvent::Restart { node: *node },
            FaultAction::FailSync { node, .. } => {
                self.sync_failure_episode[(node.0 - 1) as usize] = Some(episode);
                NemesisEvent::Disarm { node: *node, episode }
            }
            FaultAction::Drop { .. }
            | FaultAction::Duplicate { .. }
            | FaultAction::Delay
            | FaultAction::Reorder
            | FaultAction::SlowDisk { .. } => {
                let fault = action.fault();
                self.weather_episode[fault as usize] = Some(episode);
                NemesisEvent::Calm { fault, episode }
            }
            FaultAction::ChangeMembership { .. } | FaultAction::TransferLeader { .. } => {
                return None
            }
        })
    }

    /// The episode of the sync failure armed on `node`, if any.
    pub(crate) fn sync_failure_armed(&self, node: NodeId) -> Option<u64> {
        self.sync_failure_episode[(node.0 - 1) as usize]
    }

    /// The wait before the next step.
    pub(crate) fn step_delay_us(&mut self) -> u64 {
        self.rng.between(STEP_MIN_US, STEP_MAX_US + 1)
    }

    /// How long a node stopped by a failed sync stays down: like a crash, often a quick bounce.
    pub(crate) fn restart_delay_us(&mut self) -> u64 {
        self.crash_duration_us()
    }

    fn crash_duration_us(&mut self) -> u64 {
        if self.rng.chance(BOUNCE_PROBABILITY) {
            self.rng.between(BOUNCE_MIN_US, BOUNCE_MAX_US + 1)
        } else {
            self.rng.between(CRASH_MIN_US, CRASH_MAX_US + 1)
        }
    }

    /// The random nemesis: decides the fault to start now, if any, given which nodes are up and
    /// which have a disk write in flight (both by `id - 1`), the current leader and its
    /// membership. The caller starts it with [`begin`](Nemesis::begin).
    pub(crate) fn plan(
        &mut self,
        live: &[bool],
        writing: &[bool],
        leader: Option<NodeId>,
        membership: Option<&Membership>,
    ) -> Option<Plan> {
        if self.is_idle() {
            return None;
        }
        let enabled: Vec<Fault> = self.faults.iter().collect();
        let fault = enabled[self.rng.between(0, enabled.len() as u64) as usize];
        // The draws below, and their order, are the random nemesis's contract with every recorded
        // seed: changing them changes every random run.
        let (action, duration_us) = match fault {
            Fault::Partition => {
                if self.partition_episode.is_some() || self.nodes < 2 {
                    return None;
                }
                let action = self.partition_action(leader);
                (action, self.rng.between(PARTITION_MIN_US, PARTITION_MAX_US + 1))
            }
            Fault::Crash => {
                let node = self.crash_target(live, live, leader)?;
                (FaultAction::Crash { node }, self.crash_duration_us())
            }
            Fault::TornWrite => {
                // Only a node with a write in flight can be cut mid-write.
                let node = self.crash_target(live, writing, leader)?;
                (FaultAction::PowerCut { node }, self.crash_duration_us())
            }
            Fault::FsyncError => {
                let node = self.crash_target(live, live, leader)?;
                let armed_us = self.rng.between(SYNC_FAILURE_MIN_US, SYNC_FAILURE_MAX_US + 1);
                (FaultAction::FailSync { node, down_us: None }, armed_us)
            }
            Fault::SlowDisk => {
                let ids: Vec<NodeId> = (1..=self.nodes as u64).map(NodeId).collect();
                let nodes = if self.rng.chance(SLOW_EVERY_DISK_PROBABILITY) {
                    ids
                } else {
                    vec![self.pick_preferring(&ids, leader)]
                };
                (
                    FaultAction::SlowDisk { nodes },
                    self.rng.between(WEATHER_MIN_US, WEATHER_MAX_US + 1),
                )
            }
            Fault::Drop | Fault::Duplicate | Fault::Delay | Fault::Reorder => {
                let percent = self.rng.between(WEATHER_PERCENT_MIN, WEATHER_PERCENT_MAX + 1);
                let probability = percent as f64 / 100.0;
                let action = match fault {
                    Fault::Drop => FaultAction::Drop { probability },
                    Fault::Duplicate => FaultAction::Duplicate { probability },
                    Fault::Delay => FaultAction::Delay,
                    _ => FaultAction::Reorder,
                };
                (action, self.rng.between(WEATHER_MIN_US, WEATHER_MAX_US + 1))
            }
            Fault::Membership => {
                leader?;
                let change = self.membership_change(membership?)?;
                let action = FaultAction::ChangeMembership { change };
                return Some(Plan { action, duration_us: None });
            }
            Fault::Transfer => {
                let leader = leader?;
                let voters: Vec<NodeId> =
                    membership?.voters.iter().copied().filter(|v| *v != leader).collect();
                if voters.is_empty() {
                    return None;
                }
                let target = voters[self.rng.between(0, voters.len() as u64) as usize];
                return Some(Plan {
                    action: FaultAction::TransferLeader { target },
                    duration_us: None,
                });
            }
        };
        Some(Plan { action, duration_us: Some(duration_us) })
    }

    /// A membership change that keeps the voter count within bounds: add a non-member as a
    /// learner, promote a learner, remove a voter (the leader included) or a learner, or swap a
    /// voter for a learner (two voters change: a joint membership).
    fn membership_change(&mut self, membership: &Membership) -> Option<MembershipChange> {
        let voters = &membership.voters;
        let learners: Vec<NodeId> =
            membership.learners.iter().copied().filter(|l| !membership.is_voter(*l)).collect();
        let outsiders: Vec<NodeId> =
            (1..=self.nodes as u64).map(NodeId).filter(|id| !membership.is_member(*id)).collect();
        let voters_min = self.voters_initial.min(3);
        let voters_max = self.voters_initial + 2;
        let mut options = Vec::new();
        if !outsiders.is_empty() {
            options.push(0);
        }
        if !learners.is_empty() && voters.len() < voters_max {
            options.push(1);
        }
        if voters.len() > voters_min {
            options.push(2);
        }
        if !learners.is_empty() {
            options.push(3);
            if voters.len() >= 2 {
                options.push(4);
            }
        }
        if options.is_empty() {
            return None;
        }
        let pick =
            |rng: &mut SeededRng, from: &[NodeId]| from[rng.between(0, from.len() as u64) as usize];
        Some(match options[self.rng.between(0, options.len() as u64) as usize] {
            0 => MembershipChange::AddLearner(pick(&mut self.rng, &outsiders)),
            1 => MembershipChange::Promote(pick(&mut self.rng, &learners)),
            2 => MembershipChange::Remove(pick(&mut self.rng, voters)),
            3 => MembershipChange::Remove(pick(&mut self.rng, &learners)),
            _ => {
                let out = pick(&mut self.rng, voters);
                let joining = pick(&mut self.rng, &learners);
                let mut new_voters: Vec<NodeId> =
                    voters.iter().copied().filter(|v| *v != out).collect();
                new_voters.push(joining);
                let mut new_learners: Vec<NodeId> =
                    learners.iter().copied().filter(|l| *l != joining).collect();
                if self.rng.chance(0.5) {
                    new_learners.push(out); // Demoted rather than removed.
                }
                MembershipChange::Replace { voters: new_voters, learners: new_learners }
            }
        })
    }

    /// Whether a heal for `episode` should take effect (it is the partition in force), and if so
    /// marks the partition over.
    pub(crate) fn take_heal(&mut self, episode: u64) -> bool {
        if self.partition_episode == Some(episode) {
            self.partition_episode = None;
            return true;
        }
        false
    }

    /// Whether a disarm for the sync failure armed on `node` in `episode` should take effect (no
    /// newer one replaced it), and if so marks it over.
    pub(crate) fn take_disarm(&mut self, node: NodeId, episode: u64) -> bool {
        let armed = &mut self.sync_failure_episode[(node.0 - 1) as usize];
        if *armed == Some(episode) {
            *armed = None;
            return true;
        }
        false
    }

    /// Whether a calm for `fault`'s `episode` should take effect (no newer episode of the same
    /// fault replaced it), and if so marks the fault over.
    pub(crate) fn take_calm(&mut self, fault: Fault, episode: u64) -> bool {
        if self.weather_episode[fault as usize] == Some(episode) {
            self.weather_episode[fault as usize] = None;
            return true;
        }
        false
    }

    /// A partition shape: isolate one node (often the leader), split at random, or cut links one
    /// way (all links into or out of one node, or a few random links).
    fn partition_action(&mut self, leader: Option<NodeId>) -> FaultAction {
        let ids: Vec<NodeId> = (1..=self.nodes as u64).map(NodeId).collect();
        let shape = self.rng.between(0, 10);
        if shape < 4 {
            let isolated = self.pick_preferring(&ids, leader);
            let rest: Vec<NodeId> = ids.iter().copied().filter(|id| *id != isolated).collect();
            FaultAction::Partition { groups: vec![vec![isolated], rest] }
        } else if shape < 8 {
            FaultAction::Partition { groups: self.random_split(ids) }
        } else {
            let center = self.pick_preferring(&ids, leader);
            let others = ids.iter().copied().filter(|id| *id != center);
            let cuts = match self.rng.between(0, 3) {
                // The node hears no one but is heard: it keeps leading (or campaigning) in vain.
                0 => others.map(|other| (other, center)).collect(),
                // The node is not heard but hears everyone.
                1 => others.map(|other| (center, other)).collect(),
                _ => {
                    let count = self.rng.between(1, self.nodes as u64 + 1);
                    (0..count)
                        .map(|_| {
                            let from = ids[self.rng.between(0, ids.len() as u64) as usize];
                            let mut to = ids[self.rng.between(0, ids.len() as u64 - 1) as usize];
                            if to >= from {
                                // Skip `from` itself, keeping the choice uniform over the others.
                                to = NodeId(to.0 + 1);
                            }
                            (from, to)
                        })
                        .collect()
                }
            };
            FaultAction::Cut { links: cuts }
        }
    }

    /// Shuffles the nodes and cuts them into two or three non-empty groups.
    fn random_split(&mut self, mut ids: Vec<NodeId>) -> Vec<Vec<NodeId>> {
        for i in (1..ids.len()).rev() {
            let j = self.rng.between(0, i as u64 + 1) as usize;
            ids.swap(i, j);
        }
        let n = ids.len();
        let first = self.rng.between(1, n as u64) as usize;
        let mut groups = vec![ids[..first].to_vec()];
        let rest = &ids[first..];
        if rest.len() >= 2 && self.rng.chance(0.5) {
            let second = self.rng.between(1, rest.len() as u64) as usize;
            groups.push(rest[..second].to_vec());
            groups.push(rest[second..].to_vec());
        } else {
            groups.push(rest.to_vec());
        }
        for group in &mut groups {
            group.sort();
        }
        groups
    }

    /// The leader with probability [`TARGET_LEADER_PROBABILITY`] when it is among `candidates`,
    /// otherwise a uniformly random candidate.
    fn pick_preferring(&mut self, candidates: &[NodeId], leader: Option<NodeId>) -> NodeId {
        if let Some(leader) = leader.filter(|leader| candidates.contains(leader)) {
            if self.rng.chance(TARGET_LEADER_PROBABILITY) {
                return leader;
            }
        }
        candidates[self.rng.between(0, candidates.len() as u64) as usize]
    }

    /// A live node to crash among those `eligible` (both by `id - 1`), or `None` if crashing one
    /// would leave no majority (bar the rare risk) or none is eligible.
    fn crash_target(
        &mut self,
        live: &[bool],
        eligible: &[bool],
        leader: Option<NodeId>,
    ) -> Option<NodeId> {
        let candidates: Vec<NodeId> = (0..live.len())
            .filter(|slot| live[*slot] && eligible[*slot])
            .map(|slot| NodeId(slot as u64 + 1))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let up = live.iter().filter(|l| **l).count();
        let majority = live.len() / 2 + 1;
        if up - 1 < majority && !self.rng.chance(CRASH_MAJORITY_RISK) {
            return None;
        }
        Some(self.pick_preferring(&candidates, leader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(faults: FaultSet, nodes: usize, count: usize) -> Vec<Plan> {
        let mut nemesis = Nemesis::new(SeededRng::new(9), faults, nodes, nodes);
        let live = vec![true; nodes];
        let mut plans = Vec::new();
        while plans.len() < count {
            if let Some(plan) = nemesis.plan(&live, &live, Some(NodeId(1)), None) {
                let undo = nemesis.begin(&plan.action, plans.len() as u64);
                if let Some(NemesisEvent::Heal { episode }) = undo {
                    assert!(nemesis.take_heal(episode));
                }
                plans.push(plan);
            }
        }
        plans
    }

    /// Plans a fault and starts it as episode `episode`, returning it with its undo.
    fn plan_and_begin(
        nemesis: &mut Nemesis,
        live: &[bool],
        writing: &[bool],
        episode: u64,
    ) -> Option<(Plan, Option<NemesisEvent>)> {
        let plan = nemesis.plan(live, writing, Some(NodeId(1)), None)?;
        let undo = nemesis.begin(&plan.action, episode);
        Some((plan, undo))
    }

    #[test]
    fn only_enabled_faults_are_planned() {
        for plan in plans(FaultSet::of(&[Fault::Crash]), 5, 50) {
            assert!(matches!(plan.action, FaultAction::Crash { .. }));
            let after = plan.duration_us.expect("a crash is undone");
            assert!(
                (BOUNCE_MIN_US..=BOUNCE_MAX_US).contains(&after)
                    || (CRASH_MIN_US..=CRASH_MAX_US).contains(&after)
            );
        }
        let mut idle = Nemesis::new(SeededRng::new(1), FaultSet::none(), 5, 5);
        assert!(idle.is_idle() && idle.plan(&[true; 5], &[true; 5], None, None).is_none());
    }

    #[test]
    fn partitions_cover_every_node_once_in_non_empty_groups() {
        let mut shapes = [0usize; 2];
        for plan in plans(FaultSet::of(&[Fault::Partition]), 5, 200) {
            match plan.action {
                FaultAction::Partition { groups } => {
                    shapes[0] += 1;
                    assert!(groups.len() >= 2 && groups.iter().all(|g| !g.is_empty()));
                    let mut all: Vec<NodeId> = groups.concat();
                    all.sort();
                    assert_eq!(all, (1..=5).map(NodeId).collect::<Vec<_>>());
                }
                FaultAction::Cut { links: cuts } => {
                    shapes[1] += 1;
                    assert!(!cuts.is_empty() && cuts.iter().all(|(a, b)| a != b));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(shapes.iter().all(|count| *count > 10), "{shapes:?}");
    }

    #[test]
    fn one_partition_at_a_time_and_stale_heals_are_ignored() {
        let mut nemesis = Nemesis::new(SeededRng::new(3), FaultSet::of(&[Fault::Partition]), 3, 3);
        let (first, undo) = plan_and_begin(&mut nemesis, &[true; 3], &[true; 3], 0).unwrap();
        assert!(nemesis.plan(&[true; 3], &[true; 3], None, None).is_none());
        let Some(NemesisEvent::Heal { episode }) = undo else { panic!("{first:?}") };
        assert!(!nemesis.take_heal(episode + 1));
        assert!(nemesis.take_heal(episode));
        assert!(!nemesis.take_heal(episode));
        assert!(nemesis.plan(&[true; 3], &[true; 3], None, None).is_some());
    }

    #[test]
    fn crashes_mostly_keep_a_majority() {
        let mut nemesis = Nemesis::new(SeededRng::new(5), FaultSet::of(&[Fault::Crash]), 5, 5);
        // Two of five down: crashing a third leaves no majority, allowed only rarely.
        let live = [true, true, true, false, false];
        let crashes =
            (0..1_000).filter(|_| nemesis.plan(&live, &live, None, None).is_some()).count();
        assert!((50..150).contains(&crashes), "{crashes}");
        let crashes =
            (0..100).filter(|_| nemesis.plan(&[true; 5], &[true; 5], None, None).is_some()).count();
        assert_eq!(crashes, 100);
        assert!(nemesis.plan(&[false; 5], &[false; 5], None, None).is_none());
    }

    #[test]
    fn disk_faults_target_the_right_nodes() {
        let faults = FaultSet::disk();
        let mut nemesis = Nemesis::new(SeededRng::new(7), faults, 5, 5);
        let live = [true; 5];
        // Only node 3 is writing: every power cut hits it.
        let writing = [false, false, true, false, false];
        let mut seen = [0usize; 3];
        for episode in 0..300 {
            let Some((plan, undo)) = plan_and_begin(&mut nemesis, &live, &writing, episode) else {
                continue;
            };
            match (plan.action, undo.expect("faults with an undo")) {
                (FaultAction::PowerCut { node }, NemesisEvent::Restart { node: back }) => {
                    assert_eq!((node, back), (NodeId(3), NodeId(3)));
                    seen[0] += 1;
                }
                (
                    FaultAction::FailSync { node, down_us: None },
                    NemesisEvent::Disarm { node: undo, episode },
                ) => {
                    assert_eq!(node, undo);
                    let armed_us = plan.duration_us.unwrap();
                    assert!((SYNC_FAILURE_MIN_US..=SYNC_FAILURE_MAX_US).contains(&armed_us));
                    assert!(nemesis.take_disarm(node, episode));
                    assert!(!nemesis.take_disarm(node, episode), "disarmed once");
                    seen[1] += 1;
                }
                (FaultAction::SlowDisk { nodes }, NemesisEvent::Calm { fault, episode }) => {
                    assert_eq!(fault, Fault::SlowDisk);
                    assert!(nodes.len() == 1 || nodes.len() == 5, "{nodes:?}");
                    assert!(nemesis.take_calm(fault, episode));
                    seen[2] += 1;
                }
                (action, undo) => panic!("unexpected {action:?} / {undo:?}"),
            }
        }
        assert!(seen.iter().all(|count| *count > 30), "{seen:?}");
        // Nobody writing: no power cut is possible.
        let mut nemesis = Nemesis::new(SeededRng::new(7), FaultSet::of(&[Fault::TornWrite]), 5, 5);
        assert!((0..50).all(|_| nemesis.plan(&live, &[false; 5], None, None).is_none()));
    }

    #[test]
    fn a_newer_sync_failure_outlives_an_older_disarm() {
        let mut nemesis = Nemesis::new(SeededRng::new(2), FaultSet::of(&[Fault::FsyncError]), 3, 3);
        let mut armed = Vec::new();
        while armed.len() < 10 {
            let (plan, undo) =
                plan_and_begin(&mut nemesis, &[true; 3], &[true; 3], armed.len() as u64)
                    .expect("a majority stays up");
            let Some(NemesisEvent::Disarm { node, episode }) = undo else { panic!("{plan:?}") };
            armed.push((node, episode));
        }
        // Only the newest arming of each node is disarmed; older disarms are stale.
        for (position, (node, episode)) in armed.iter().enumerate() {
            let newest = armed[position + 1..].iter().all(|(later, _)| later != node);
            assert_eq!(nemesis.take_disarm(*node, *episode), newest, "{armed:?}");
        }
    }

    #[test]
    fn a_newer_weather_episode_outlives_an_older_calm() {
        let mut nemesis = Nemesis::new(SeededRng::new(4), FaultSet::of(&[Fault::Drop]), 3, 3);
        let (first, first_undo) = plan_and_begin(&mut nemesis, &[true; 3], &[true; 3], 0).unwrap();
        let (second, second_undo) =
            plan_and_begin(&mut nemesis, &[true; 3], &[true; 3], 1).unwrap();
        let (
            Some(NemesisEvent::Calm { episode: old, .. }),
            Some(NemesisEvent::Calm { episode: new, .. }),
        ) = (first_undo, second_undo)
        else {
            panic!("{first:?} {second:?}")
        };
        assert!(!nemesis.take_calm(Fault::Drop, old));
        assert!(nemesis.take_calm(Fault::Drop, new));
        match first.action {
            FaultAction::Drop { probability } => assert!((0.01..=0.2).contains(&probability)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn membership_changes_keep_the_voter_count_in_bounds() {
        let ids = |list: &[u64]| list.iter().map(|i| NodeId(*i)).collect::<Vec<_>>();
        let mut nemesis = Nemesis::new(SeededRng::new(6), FaultSet::of(&[Fault::Membership]), 5, 3);
        let mut membership = Membership::new(ids(&[1, 2, 3]));
        let live = [true; 5];
        let mut kinds = [0usize; 4];
        for _ in 0..500 {
            let Some(plan) = nemesis.plan(&live, &live, Some(NodeId(1)), Some(&membership)) else {
                continue;
            };
            assert_eq!(plan.duration_us, None);
            assert_eq!(nemesis.begin(&plan.action, 0), None);
            let FaultAction::ChangeMembership { change } = plan.action else { panic!("{plan:?}") };
            // Apply the change as a leader would (joint memberships left at once).
            let (mut voters, mut learners) =
                (membership.voters.clone(), membership.learners.clone());
            match change {
                MembershipChange::AddLearner(id) => {
                    assert!(!membership.is_member(id));
                    learners.push(id);
                    kinds[0] += 1;
                }
                MembershipChange::Promote(id) => {
                    learners.retain(|l| *l != id);
                    voters.push(id);
                    kinds[1] += 1;
                }
                MembershipChange::Remove(id) => {
                    voters.retain(|v| *v != id);
                    learners.retain(|l| *l != id);
                    kinds[2] += 1;
                }
                MembershipChange::Replace { voters: v, learners: l } => {
                    (voters, learners) = (v, l);
                    kinds[3] += 1;
                }
            }
            voters.sort();
            learners.sort();
            membership = Membership { voters, outgoing: Vec::new(), learners };
            assert!((3..=5).contains(&membership.voters.len()), "{membership}");
        }
        assert!(kinds.iter().all(|k| *k > 10), "every kind of change is planned: {kinds:?}");
    }

    fn scheduled(at_us: u64, action: FaultAction) -> ScheduledFault {
        ScheduledFault { at_us, action, duration_us: Some(1_000) }
    }

    #[test]
    fn a_script_is_followed_in_time_order_and_draws_nothing() {
        let crash = |node| FaultAction::Crash { node: NodeId(node) };
        let schedule = vec![
            scheduled(300, crash(3)),
            scheduled(100, crash(1)),
            scheduled(200, FaultAction::CrashPoint { node: NodeId(2), ordinal: 0 }),
            scheduled(200, crash(2)),
        ];
        let mut nemesis = Nemesis::scripted(schedule, 3);
        assert!(nemesis.is_scripted() && !nemesis.is_idle());
        // Sorted by time, stably; crash points are not queued.
        let (at_us, first) = nemesis.first_event(0).unwrap();
        assert_eq!((at_us, first), (100, NemesisEvent::Scripted { index: 0 }));
        assert_eq!(nemesis.scripted_fault(0).action, crash(1));
        let next = nemesis.scripted_after(Some(0), 100);
        assert_eq!(next, Some((200, NemesisEvent::Scripted { index: 2 })));
        assert_eq!(nemesis.scripted_fault(2).action, crash(2));
        assert_eq!(
            nemesis.scripted_after(Some(2), 200),
            Some((300, NemesisEvent::Scripted { index: 3 }))
        );
        assert_eq!(nemesis.scripted_after(Some(3), 300), None);
        // Never scheduled in the past.
        assert_eq!(
            nemesis.scripted_after(Some(0), 250),
            Some((250, NemesisEvent::Scripted { index: 2 }))
        );
        nemesis.stop();
        assert!(nemesis.is_idle() && nemesis.first_event(0).is_none());
        assert!(Nemesis::scripted(Vec::new(), 3).is_idle(), "an empty schedule has nothing to do");
    }

    #[test]
    fn a_scripted_crash_point_fires_at_the_first_crash_point_due() {
        let point = |at_us, node, ordinal| ScheduledFault {
            at_us,
            action: FaultAction::CrashPoint { node: NodeId(node), ordinal },
            duration_us: Some(at_us + 7),
        };
        let schedule = vec![point(100, 2, 1), point(500, 1, 0)];
        let mut nemesis = Nemesis::scripted(schedule, 3);
        let live = [true; 3];
        assert_eq!(nemesis.crash_point(NodeId(2), &live, 99, 0), None, "too early");
        assert_eq!(nemesis.crash_point(NodeId(2), &live, 100, 0), None, "the first at 100 passes");
        assert_eq!(nemesis.crash_point(NodeId(1), &live, 100, 1), None, "another node");
        assert_eq!(nemesis.crash_point(NodeId(2), &live, 100, 1), Some(107));
        assert_eq!(nemesis.crash_point(NodeId(2), &live, 101, 0), None, "taken once");
        // Later than planned (the run changed): the first one at or after the time takes it.
        assert_eq!(nemesis.crash_point(NodeId(1), &live, 900, 0), Some(507));
    }
}
