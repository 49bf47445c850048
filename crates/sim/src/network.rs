//! The simulated network: who can reach whom, how long a message takes, and whether it is lost or
//! duplicated.
//!
//! The network decides a message's fate when it is sent (drop, or the times of one or two
//! deliveries) and is consulted again when it arrives, so a partition that forms while a message
//! is in flight still stops it, as a firewall rule would. It owns its own random stream so that
//! network decisions never shift node or nemesis randomness.

use std::collections::BTreeMap;

use conclave_core::{NodeId, RandomSource, SeededRng};

/// Probability that a message is held in the long tail while a delay episode is on.
const DELAY_TAIL_PROBABILITY: f64 = 0.1;
/// The long tail of a delay episode: 10–200 ms, like a GC pause or a congested switch.
const DELAY_TAIL_MIN_US: u64 = 10_000;
const DELAY_TAIL_MAX_US: u64 = 200_000;
/// Probability that a message is held back while a reorder episode is on.
const REORDER_PROBABILITY: f64 = 0.25;
/// How long a held-back message waits: enough for several later messages to overtake it.
const REORDER_EXTRA_MIN_US: u64 = 1_000;
const REORDER_EXTRA_MAX_US: u64 = 10_000;

/// Message counts, for the run summary and for tests that assert on traffic.
///
/// Invariant: `sent + duplicated == delivered + dropped + (messages still in flight)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network by protocols.
    pub sent: u64,
    /// Copies that reached a live recipient (duplicates count again).
    pub delivered: u64,
    /// Copies lost: to random loss, a partition or cut, or a crashed or unknown recipient.
    pub dropped: u64,
    /// Extra copies the network created.
    pub duplicated: u64,
    /// Of `dropped`: lost to random loss.
    pub dropped_random: u64,
    /// Of `dropped`: blocked by a partition or one-way cut (at send or at arrival).
    pub dropped_partition: u64,
    /// Of `dropped`: addressed to a node that was down when the message arrived, or to an id
    /// outside the cluster.
    pub dropped_unreachable: u64,
    /// Messages sent, by [`MessageMeta::kind`](conclave_core::MessageMeta::kind). A `BTreeMap` so
    /// that printing it is deterministic.
    pub sent_by_kind: BTreeMap<&'static str, u64>,
}

/// Why a message copy was lost; named in traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Random loss.
    Random,
    /// A partition or one-way cut stands between sender and recipient.
    Partition,
    /// The recipient is down.
    Crashed,
    /// The recipient id is not in the cluster (a protocol bug, but not the simulator's to judge).
    UnknownNode,
}

impl DropReason {
    /// The name used in traces.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DropReason::Random => "random",
            DropReason::Partition => "partition",
            DropReason::Crashed => "crashed",
            DropReason::UnknownNode => "unknown-node",
        }
    }
}

/// The network's verdict on one sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The message is lost at once.
    Drop(DropReason),
    /// The message arrives at `at_us`, and a second copy at `duplicate_at_us` if duplicated.
    Deliver {
        /// Arrival time of the message.
        at_us: u64,
        /// Arrival time of the duplicate, if the network made one.
        duplicate_at_us: Option<u64>,
    },
}

/// Connectivity, loss, duplication and latency of the links between `nodes` nodes.
pub(crate) struct Network {
    nodes: usize,
    // Connectivity.
    /// The partition group of each node (by `id - 1`); nodes reach each other only within a group.
    group: Vec<u32>,
    /// One-way cuts, row-major by `(from - 1, to - 1)`: true means `from -> to` is blocked.
    cut: Vec<bool>,
    // Weather.
    drop_probability: f64,
    duplicate_probability: f64,
    delay_spike: bool,
    reorder: bool,
    latency_min_us: u64,
    latency_max_us: u64,
    /// Latest scheduled arrival per link, row-major like `cut`. While reordering is off, a link
    /// never delivers a message before one sent earlier on it (TCP-like FIFO), so a slow message
    /// holds back the ones behind it.
    link_arrival_last_us: Vec<u64>,
    rng: SeededRng,
    stats: NetworkStats,
}

impl Network {
    /// A fully connected network with the given latency range and base loss/duplication rates.
    pub(crate) fn new(
        nodes: usize,
        latency_min_us: u64,
        latency_max_us: u64,
        rng: SeededRng,
    ) -> Network {
        assert!(latency_min_us <= latency_max_us, "empty latency range");
        Network {
            nodes,
            group: vec![0; nodes],
            cut: vec![false; nodes * nodes],
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            delay_spike: false,
            reorder: false,
            latency_min_us,
            latency_max_us,
            link_arrival_last_us: vec![0; nodes * nodes],
            rng,
            stats: NetworkStats::default(),
        }
    }

    /// The position of `id` in the per-node tables, or `None` outside the cluster.
    fn slot(&self, id: NodeId) -> Option<usize> {
        let slot = usize::try_from(id.0).ok()?.checked_sub(1)?;
        (slot < self.nodes).then_some(slot)
    }

    /// The position of the link `from -> to` in the per-link tables.
    fn link(&self, from: NodeId, to: NodeId) -> Option<usize> {
        Some(self.slot(from)? * self.nodes + self.slot(to)?)
    }

    /// True when a message from `from` would currently reach `to` (ignoring random loss).
    pub(crate) fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        match (self.slot(from), self.slot(to), self.link(from, to)) {
            (Some(a), Some(b), Some(link)) => self.group[a] == self.group[b] && !self.cut[link],
            _ => false,
        }
    }

    /// Splits the cluster: nodes reach each other only within their group. Nodes named in no group
    /// are each isolated on their own. One-way cuts are left as they are.
    pub(crate) fn partition(&mut self, groups: &[&[NodeId]]) {
        let mut group_next = 0u32;
        let mut assigned = vec![None; self.nodes];
        for members in groups {
            for id in *members {
                let slot =
                    self.slot(*id).unwrap_or_else(|| panic!("node {id} is not in the cluster"));
                assigned[slot] = Some(group_next);
            }
            group_next += 1;
        }
        for (slot, group) in assigned.into_iter().enumerate() {
            self.group[slot] = group.unwrap_or_else(|| {
                group_next += 1;
                group_next
            });
        }
    }

    /// Blocks `from -> to` while leaving `to -> from` as it was.
    pub(crate) fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        let link = self
            .link(from, to)
            .unwrap_or_else(|| panic!("link {from}->{to} is not in the cluster"));
        self.cut[link] = true;
    }

    /// Removes every partition and cut. Weather (loss, duplication, delay) is left as it is.
    pub(crate) fn heal(&mut self) {
        self.group.fill(0);
        self.cut.fill(false);
    }

    /// The current groups, in order of their lowest member, for traces.
    pub(crate) fn groups(&self) -> Vec<Vec<NodeId>> {
        let mut groups: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
        for (slot, group) in self.group.iter().enumerate() {
            groups.entry(*group).or_default().push(NodeId(slot as u64 + 1));
        }
        let mut groups: Vec<Vec<NodeId>> = groups.into_values().collect();
        groups.sort();
        groups
    }

    /// Sets the probability of losing any one message.
    pub(crate) fn set_drop_probability(&mut self, probability: f64) {
        assert!((0.0..=1.0).contains(&probability), "drop probability {probability}");
        self.drop_probability = probability;
    }

    /// Sets the probability of delivering any one message twice.
    pub(crate) fn set_duplicate_probability(&mut self, probability: f64) {
        assert!((0.0..=1.0).contains(&probability), "duplicate probability {probability}");
        self.duplicate_probability = probability;
    }

    /// Turns the long latency tail on or off.
    pub(crate) fn set_delay_spike(&mut self, on: bool) {
        self.delay_spike = on;
    }

    /// Turns reordering on (links stop being FIFO) or off.
    pub(crate) fn set_reorder(&mut self, on: bool) {
        self.reorder = on;
    }

    /// Current loss probability.
    pub(crate) fn drop_probability(&self) -> f64 {
        self.drop_probability
    }

    /// Current duplication probability.
    pub(crate) fn duplicate_probability(&self) -> f64 {
        self.duplicate_probability
    }

    /// Whether the long latency tail is on.
    pub(crate) fn delay_spike(&self) -> bool {
        self.delay_spike
    }

    /// Whether reordering is on.
    pub(crate) fn reorder(&self) -> bool {
        self.reorder
    }

    /// Decides the fate of one message sent at `now_us`, and counts it.
    pub(crate) fn route(
        &mut self,
        from: NodeId,
        to: NodeId,
        kind: &'static str,
        now_us: u64,
    ) -> Route {
        self.stats.sent += 1;
        *self.stats.sent_by_kind.entry(kind).or_insert(0) += 1;
        let Some(link) = self.link(from, to) else {
            return self.drop(DropReason::UnknownNode);
        };
        if !self.can_reach(from, to) {
            return self.drop(DropReason::Partition);
        }
        if self.rng.chance(self.drop_probability) {
            return self.drop(DropReason::Random);
        }
        let mut at_us = now_us + self.latency_us();
        if !self.reorder {
            at_us = at_us.max(self.link_arrival_last_us[link]);
        }
        self.link_arrival_last_us[link] = self.link_arrival_last_us[link].max(at_us);
        let duplicate_at_us = if self.rng.chance(self.duplicate_probability) {
            self.stats.duplicated += 1;
            // The copy travels independently, as a retransmitted packet would.
            Some(now_us + self.latency_us())
        } else {
            None
        };
        Route::Deliver { at_us, duplicate_at_us }
    }

    /// Counts a copy lost for `reason` and returns the verdict.
    fn drop(&mut self, reason: DropReason) -> Route {
        self.record_dropped(reason);
        Route::Drop(reason)
    }

    /// Counts a copy lost on arrival (or at send).
    pub(crate) fn record_dropped(&mut self, reason: DropReason) {
        self.stats.dropped += 1;
        match reason {
            DropReason::Random => self.stats.dropped_random += 1,
            DropReason::Partition => self.stats.dropped_partition += 1,
            DropReason::Crashed | DropReason::UnknownNode => self.stats.dropped_unreachable += 1,
        }
    }

    /// Counts a copy handed to its recipient.
    pub(crate) fn record_delivered(&mut self) {
        self.stats.delivered += 1;
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> &NetworkStats {
        &self.stats
    }

    /// One message's one-way latency under the current weather.
    fn latency_us(&mut self) -> u64 {
        let mut latency = self.rng.between(self.latency_min_us, self.latency_max_us + 1);
        if self.delay_spike && self.rng.chance(DELAY_TAIL_PROBABILITY) {
            latency += self.rng.between(DELAY_TAIL_MIN_US, DELAY_TAIL_MAX_US + 1);
        }
        if self.reorder && self.rng.chance(REORDER_PROBABILITY) {
            latency += self.rng.between(REORDER_EXTRA_MIN_US, REORDER_EXTRA_MAX_US + 1);
        }
        latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(nodes: usize) -> Network {
        Network::new(nodes, 200, 2_000, SeededRng::new(42))
    }

    fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<NodeId> {
        range.map(NodeId).collect()
    }

    #[test]
    fn fully_connected_by_default_and_latency_in_range() {
        let mut net = network(3);
        for from in ids(1..=3) {
            for to in ids(1..=3) {
                assert!(net.can_reach(from, to));
                match net.route(from, to, "Ping", 1_000) {
                    Route::Deliver { at_us, duplicate_at_us: None } => {
                        assert!((1_200..=3_000).contains(&at_us), "{at_us}");
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(net.stats().sent, 9);
        assert_eq!(net.stats().sent_by_kind.get("Ping"), Some(&9));
    }

    #[test]
    fn partitions_block_across_groups_and_heal_restores() {
        let mut net = network(5);
        let (a, b) = (ids(1..=2), ids(3..=4));
        net.partition(&[&a, &b]);
        assert!(net.can_reach(NodeId(1), NodeId(2)));
        assert!(net.can_reach(NodeId(4), NodeId(3)));
        assert!(!net.can_reach(NodeId(1), NodeId(3)));
        assert!(!net.can_reach(NodeId(3), NodeId(1)));
        // Node 5 was in no group, so it is alone.
        assert!(!net.can_reach(NodeId(5), NodeId(1)) && !net.can_reach(NodeId(4), NodeId(5)));
        assert_eq!(net.groups(), vec![ids(1..=2), ids(3..=4), ids(5..=5)]);
        assert_eq!(net.route(NodeId(1), NodeId(3), "Ping", 0), Route::Drop(DropReason::Partition));
        assert_eq!(net.stats().dropped_partition, 1);
        net.heal();
        assert!(net.can_reach(NodeId(1), NodeId(3)) && net.can_reach(NodeId(5), NodeId(1)));
        assert_eq!(net.groups(), vec![ids(1..=5)]);
    }

    #[test]
    fn one_way_cut_blocks_one_direction_only() {
        let mut net = network(3);
        net.cut_one_way(NodeId(1), NodeId(2));
        assert!(!net.can_reach(NodeId(1), NodeId(2)));
        assert!(net.can_reach(NodeId(2), NodeId(1)));
        assert!(net.can_reach(NodeId(1), NodeId(3)));
        net.heal();
        assert!(net.can_reach(NodeId(1), NodeId(2)));
    }

    #[test]
    fn unknown_recipient_is_dropped() {
        let mut net = network(3);
        assert_eq!(
            net.route(NodeId(1), NodeId(4), "Ping", 0),
            Route::Drop(DropReason::UnknownNode)
        );
        assert_eq!(
            net.route(NodeId(1), NodeId(0), "Ping", 0),
            Route::Drop(DropReason::UnknownNode)
        );
        assert_eq!(net.stats().dropped_unreachable, 2);
    }

    #[test]
    fn drop_and_duplicate_rates_are_roughly_right() {
        let mut net = network(2);
        net.set_drop_probability(0.2);
        net.set_duplicate_probability(0.1);
        let (mut dropped, mut duplicated) = (0, 0);
        for i in 0..10_000 {
            match net.route(NodeId(1), NodeId(2), "Ping", i) {
                Route::Drop(DropReason::Random) => dropped += 1,
                Route::Deliver { duplicate_at_us: Some(_), .. } => duplicated += 1,
                Route::Deliver { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((1_800..2_200).contains(&dropped), "{dropped}");
        // Duplication applies to the ~8,000 messages that survived loss.
        assert!((650..950).contains(&duplicated), "{duplicated}");
        assert_eq!(net.stats().dropped, dropped);
        assert_eq!(net.stats().duplicated, duplicated);
    }

    #[test]
    fn links_are_fifo_unless_reordering() {
        let mut net = network(2);
        net.set_delay_spike(true);
        let arrivals: Vec<u64> = (0..2_000)
            .map(|i| match net.route(NodeId(1), NodeId(2), "Ping", i * 10) {
                Route::Deliver { at_us, .. } => at_us,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(arrivals.windows(2).all(|pair| pair[0] <= pair[1]), "FIFO link reordered");

        net.set_reorder(true);
        let arrivals: Vec<u64> = (0..2_000)
            .map(|i| match net.route(NodeId(2), NodeId(1), "Ping", i * 10) {
                Route::Deliver { at_us, .. } => at_us,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let overtaken = arrivals.windows(2).filter(|pair| pair[0] > pair[1]).count();
        assert!(overtaken > 100, "reordering produced only {overtaken} overtakes");
    }

    #[test]
    fn delay_spike_adds_a_long_tail() {
        let mut net = network(2);
        net.set_delay_spike(true);
        net.set_reorder(true); // So one slow message does not delay the rest through FIFO.
        let slow = (0..5_000)
            .filter(|i| match net.route(NodeId(1), NodeId(2), "Ping", *i) {
                // Beyond what base latency plus reordering can reach on their own.
                Route::Deliver { at_us, .. } => at_us - i > 2_000 + REORDER_EXTRA_MAX_US,
                other => panic!("unexpected {other:?}"),
            })
            .count();
        assert!((350..650).contains(&slow), "{slow}");
    }
}
