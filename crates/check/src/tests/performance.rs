//! The checker must decide a 10,000-operation key-value history over 100 keys and 20 clients in
//! well under a second. Wall time in a shared test run is noisy, so the always-run test bounds
//! the work (steps and memo entries), which is deterministic; the `#[ignore]`d one measures time
//! (`cargo nextest run -p conclave-check --run-ignored only`).

use std::time::{Duration, Instant};

use crate::synth::{generate, Synth};
use crate::{check_history, Budget, CheckOptions, ModelKind, Verdict};

fn big_kv(ops: usize, seed: u64) -> crate::History {
    generate(&Synth {
        keys: 100,
        info_percent: 5,
        fail_percent: 5,
        duration_max: 40,
        ..Synth::new(ModelKind::Kv, 20, ops, seed)
    })
}

fn options() -> CheckOptions {
    CheckOptions { model: Some(ModelKind::Kv), balances: None, budget: Budget::steps(u64::MAX) }
}

#[test]
fn ten_thousand_kv_operations_need_little_work() {
    for seed in 1..=3 {
        let history = big_kv(10_000, seed);
        let (ops, report) = check_history(&history, &options()).unwrap();
        assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.summary(&ops));
        assert_eq!((report.operations, report.keys, report.processes >= 20), (10_000, 100, true));
        // About 2 steps and 1 memo entry per operation when the history is easy; allow 10x.
        assert!(report.steps < 200_000, "{} steps", report.steps);
        assert!(report.visited < 100_000, "{} states", report.visited);
    }
}

#[test]
#[ignore = "timing: run alone, see the module comment"]
fn ten_thousand_kv_operations_in_under_a_second() {
    for (ops, limit) in [(10_000, Duration::from_secs(1)), (100_000, Duration::from_secs(10))] {
        let history = big_kv(ops, 7);
        let started = Instant::now();
        let (_, report) = check_history(&history, &options()).unwrap();
        let elapsed = started.elapsed();
        eprintln!("{ops} ops: {elapsed:?} (search {:?}, {} steps)", report.elapsed, report.steps);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert!(elapsed < limit, "{ops} ops took {elapsed:?}");
    }
}
