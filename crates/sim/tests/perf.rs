//! A timing check, ignored by default because debug builds are slow: run it with
//! `cargo test -p conclave-sim --release --test perf -- --ignored --nocapture`.

mod support;

use std::time::Instant;

use conclave_sim::{FaultSet, Options};

#[test]
#[ignore = "timing; meaningful only in release mode"]
// Wall time is what this test measures; the simulator itself never reads a clock.
#[allow(clippy::disallowed_methods)]
fn five_nodes_ten_thousand_ops_with_every_fault() {
    for seed in 0..3 {
        let options = Options { seed, ops: 10_000, faults: FaultSet::all(), ..Options::default() };
        let mut sim = support::simulation(options);
        let started = Instant::now();
        let summary = sim.run().unwrap_or_else(|violation| panic!("{violation}"));
        let elapsed = started.elapsed();
        let rate = summary.events_processed as f64 / elapsed.as_secs_f64();
        println!("{summary}\nwall {elapsed:?}, {rate:.0} events/s\n");
        assert!(summary.ops_acknowledged >= 10_000);
    }
}

#[test]
#[ignore = "timing; meaningful only in release mode"]
#[allow(clippy::disallowed_methods)] // As above: the test measures wall time.
fn raft_five_nodes_ten_thousand_ops_with_every_fault() {
    use conclave_raft::{Config, Raft};
    for seed in 0..3 {
        let options = Options { seed, ops: 10_000, faults: FaultSet::all(), ..Options::default() };
        let mut sim = conclave_sim::Simulation::new(options, |id, all, durable, rng| {
            Raft::new(Config::new(id, all.to_vec()), durable, Box::new(rng)).unwrap()
        })
        .unwrap();
        let started = Instant::now();
        let summary = sim.run().unwrap_or_else(|violation| panic!("{violation}"));
        let elapsed = started.elapsed();
        let rate = summary.events_processed as f64 / elapsed.as_secs_f64();
        println!("{summary}\nwall {elapsed:?}, {rate:.0} events/s\n");
        assert!(summary.ops_acknowledged >= 10_000);
    }
}
