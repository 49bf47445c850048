//! Randomised sweeps of the correct Raft core under every fault. The default run covers 400
//! seeds across cluster sizes and settings; set `CONCLAVE_SWEEP_SEEDS=5000` (or any number) for a
//! longer sweep. A failure names the seed: `conclave sim --seed N ...` replays it exactly.

mod raft_support;

use conclave_raft::Config;
use conclave_sim::{FaultSet, Options};
use raft_support::*;

/// The test harness, unlike the simulator, may read its environment.
#[allow(clippy::disallowed_methods)]
fn seeds() -> u64 {
    std::env::var("CONCLAVE_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400)
}

/// Runs `count` seeds (offset by `base`, so each configuration explores its own) and asserts
/// every run is safe and makes its progress; returns how many leaders were elected in all.
fn sweep(
    base: u64,
    count: u64,
    nodes: usize,
    ops: u64,
    configure: impl Fn(&mut Config) + Copy + 'static,
) -> u64 {
    let mut leaders = 0;
    for seed in base..base + count {
        let options = Options { nodes, seed, ops, faults: FaultSet::all(), ..Options::default() };
        let summary = raft_sim(options, configure).run().unwrap_or_else(|violation| {
            panic!("seed {seed} ({nodes} nodes): {}", show(&violation));
        });
        assert!(summary.ops_acknowledged >= ops, "seed {seed}: {summary}");
        leaders += summary.leaders_elected;
    }
    leaders
}

/// A multi-node sweep must see leadership change hands often, or the faults did not bite.
fn sweep_with_churn(
    base: u64,
    count: u64,
    nodes: usize,
    ops: u64,
    configure: impl Fn(&mut Config) + Copy + 'static,
) {
    let leaders = sweep(base, count, nodes, ops, configure);
    assert!(
        leaders > 2 * count,
        "faults barely disturbed leadership: {leaders} leaders in {count} runs"
    );
}

// The seed budget is split so the test runner spreads it over the cores.

#[test]
fn sweep_five_nodes_defaults() {
    sweep_with_churn(0, seeds() * 2 / 5, 5, 500, |_| {});
}

#[test]
fn sweep_three_nodes_defaults() {
    sweep_with_churn(1_000_000, seeds() / 5, 3, 500, |_| {});
}

#[test]
fn sweep_seven_nodes_defaults() {
    sweep_with_churn(2_000_000, seeds() / 10, 7, 500, |_| {});
}

#[test]
fn sweep_without_pre_vote_or_check_quorum() {
    sweep_with_churn(3_000_000, seeds() / 10, 5, 500, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
}

#[test]
fn sweep_one_entry_per_message_without_pipelining() {
    sweep_with_churn(4_000_000, seeds() / 10, 5, 300, |c| {
        c.append_entries_max = 1;
        c.inflight_messages_max = 1;
    });
}

#[test]
fn sweep_single_node_and_two_nodes() {
    let count = seeds() / 20;
    assert!(sweep(5_000_000, count, 1, 200, |_| {}) >= count);
    assert!(sweep(6_000_000, count, 2, 200, |_| {}) >= count);
}

#[test]
fn a_fault_free_run_elects_once_and_acknowledges_every_op() {
    for seed in 0..3 {
        let options = Options { seed, ops: 500, ..Options::default() };
        let summary =
            raft_sim(options, |_| {}).run().unwrap_or_else(|v| panic!("seed {seed}: {}", show(&v)));
        assert_eq!(summary.leaders_elected, 1, "seed {seed}: {summary}");
        assert_eq!(summary.network.dropped, 0, "seed {seed}: {summary}");
    }
}
