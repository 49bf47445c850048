//! Raft snapshots through the simulator's driver: images taken on `snapshot_due`, compaction,
//! InstallSnapshot to a lagging follower, restarts from a disk snapshot, and installs interrupted
//! by a crash while their write is in flight.

mod raft_support;

use conclave_core::{Index, NodeId, Protocol};
use conclave_raft::Config;
use conclave_raft::Raft;
use conclave_sim::{Options, Simulation};
use raft_support::*;

/// Snapshots every 5 commands, nothing kept behind them, sent in 64-byte chunks (so a transfer
/// takes several), on three nodes whose disk writes take `disk_latency_us`.
fn snapshotting_cluster(seed: u64, disk_latency_us: u64) -> Simulation<Raft> {
    let options = Options {
        nodes: 3,
        seed,
        disk_latency_min_us: disk_latency_us,
        disk_latency_max_us: disk_latency_us,
        ..Options::default()
    };
    raft_sim(options, |c: &mut Config| {
        c.snapshot_entries = 5;
        c.snapshot_trailing_entries = 0;
        c.snapshot_chunk_bytes = 64;
    })
}

fn snapshot_index(sim: &Simulation<Raft>, id: NodeId) -> u64 {
    sim.node(id).map_or(0, |n| n.status().snapshot_index.0)
}

fn disk_snapshot_index(sim: &Simulation<Raft>, id: NodeId) -> u64 {
    sim.disk(id).snapshot.as_ref().map_or(0, |s| s.index.0)
}

#[test]
fn a_restarted_node_restores_its_state_machine_from_its_disk_snapshot() {
    let mut sim = snapshotting_cluster(1, 0);
    let leader = elect(&mut sim);
    let data = payloads("r", 12);
    propose_all(&mut sim, leader, &data);
    run_until(&mut sim, "every node applied", |s| all_applied(s, &data));
    let follower = others(&sim, &[leader])[0];
    let durable = disk_snapshot_index(&sim, follower);
    assert!(durable >= 5, "no snapshot on disk: {durable}");
    let before = sim.applied(follower).to_vec();
    sim.crash(follower);
    sim.restart(follower);
    assert!(sim.applied(follower).len() as u64 >= durable);
    assert_eq!(sim.applied(follower), &before[..sim.applied(follower).len()]);
    run_until(&mut sim, "the restarted node re-applied", |s| all_applied(s, &data));
    sim.check_invariants().unwrap();
}

/// Raft bug (fixed in the Raft core's `maybe_send_append`): a follower whose log is empty is
/// probed at `next = 1`, and `RaftLog::term(0)` answers `Some(0)` even when the leader's log was
/// compacted, so the leader never switches to a snapshot and sends empty appends for ever.
#[test]
fn a_follower_with_an_empty_log_is_caught_up_with_a_snapshot() {
    let mut sim = snapshotting_cluster(2, 0);
    sim.crash(NodeId(3)); // Before it holds a single entry.
    let leader = elect(&mut sim);
    let data = payloads("e", 12);
    propose_all(&mut sim, leader, &data);
    run_until(&mut sim, "the leader compacted", |s| {
        s.node(leader).is_some_and(|n| n.log().first_index().0 > 1)
    });
    sim.restart(NodeId(3));
    run_until(&mut sim, "node 3 caught up", |s| all_applied(s, &data));
    assert!(sim.stats().sent_by_kind.get("InstallSnapshot").is_some_and(|n| *n > 0));
    sim.check_invariants().unwrap();
}

/// Raft bug (fixed in `on_install_snapshot_response`): a follower that crashes after receiving
/// every chunk but before its install is durable restarts holding none of the snapshot and
/// answers the leader's resent chunks with `received = 0`; the leader, whose `acked` is near the
/// end, takes that answer for a stale echo, and the transfer never completes.
#[test]
fn an_install_lost_in_a_crash_is_sent_again_from_the_start() {
    let mut sim = snapshotting_cluster(3, 2_000);
    let leader = elect(&mut sim);
    let lagging = others(&sim, &[leader])[0];
    let first = payloads("h", 3);
    propose_all(&mut sim, leader, &first);
    run_until(&mut sim, "every node applied", |s| all_applied(s, &first));
    sim.crash(lagging);
    let data = payloads("i", 40);
    for payload in &data {
        propose_all(&mut sim, leader, std::slice::from_ref(payload));
        run_for(&mut sim, 3_000);
    }
    run_until(&mut sim, "the leader compacted", |s| snapshot_index(s, leader) >= 30);
    sim.restart(lagging);
    // Installed in memory, its write still in flight: cut the power now.
    run_until(&mut sim, "the install is under way", |s| {
        snapshot_index(s, lagging) > disk_snapshot_index(s, lagging)
    });
    sim.crash(lagging);
    run_for(&mut sim, 20_000);
    sim.restart(lagging);
    run_until(&mut sim, "the lagging node caught up", |s| all_applied(s, &data));
    sim.check_invariants().unwrap();
}

/// Snapshots every 50 commands, 10 entries kept behind them, 256-byte chunks, 2 in flight.
fn snapshot_every_fifty(config: &mut Config) {
    config.snapshot_entries = 50;
    config.snapshot_trailing_entries = 10;
    config.snapshot_chunk_bytes = 256;
    config.snapshot_chunks_inflight_max = 2;
}

fn sent(sim: &Simulation<Raft>, kind: &str) -> u64 {
    sim.stats().sent_by_kind.get(kind).copied().unwrap_or(0)
}

/// Three nodes; one follower is cut off while the others commit `count` commands and compact
/// far past it. Returns the simulation, the leader, the follower and the commands.
fn leave_a_follower_behind(
    seed: u64,
    count: usize,
) -> (Simulation<Raft>, NodeId, NodeId, Vec<bytes::Bytes>) {
    let mut sim = raft_sim(Options { nodes: 3, seed, ..Options::default() }, snapshot_every_fifty);
    let leader = elect(&mut sim);
    let follower = others(&sim, &[leader])[0];
    let rest = others(&sim, &[follower]);
    sim.partition(&[&[follower], &rest]);
    let data = payloads("snap", count);
    for chunk in data.chunks(20) {
        propose_all(&mut sim, leader, chunk);
        run_until(&mut sim, "the batch to commit", |s| {
            chunk.iter().all(|d| applied_commands(s, leader).contains(d))
        });
    }
    let leader_log = sim.node(leader).unwrap().log();
    let behind = sim.node(follower).unwrap().log().last_index();
    assert!(
        leader_log.first_index() > behind.next(),
        "the leader must have compacted past the follower"
    );
    (sim, leader, follower, data)
}

#[test]
fn a_follower_partitioned_past_the_compacted_log_rejoins_through_install_snapshot() {
    let (mut sim, leader, follower, data) = leave_a_follower_behind(201, 300);
    sim.heal();
    run_until(&mut sim, "the follower to catch up", |s| applied_commands(s, follower) == data);
    assert!(sent(&sim, "InstallSnapshot") > 0, "caught up without a snapshot?");
    assert!(sim.status(follower).unwrap().snapshot_index > Index(0));
    assert_eq!(sim.status(follower).unwrap().commit, sim.status(leader).unwrap().commit);
    // And it takes part in replication afterwards.
    let more = payloads("after", 5);
    propose_all(&mut sim, leader, &more);
    run_until(&mut sim, "new writes everywhere", |s| all_applied(s, &more));
}

#[test]
fn a_snapshot_chunk_lost_in_transit_is_retried() {
    let (mut sim, _leader, follower, data) = leave_a_follower_behind(202, 300);
    // Heal into a lossy network: chunks (and their answers) get lost and must be resent.
    sim.set_drop_probability(0.3);
    sim.heal();
    run_until(&mut sim, "the snapshot to land", |s| {
        s.status(follower).unwrap().snapshot_index > Index(0)
    });
    sim.set_drop_probability(0.0);
    run_until(&mut sim, "the follower to catch up", |s| applied_commands(s, follower) == data);
    let image = sim.node(follower).unwrap();
    let chunks_needed = 1 + (data.len() * 20) as u64 / 256; // a lower bound on the image's chunks
    assert!(image.status().snapshot_index > Index(0));
    assert!(
        sent(&sim, "InstallSnapshot") > chunks_needed,
        "{} chunks sent for an image of at least {chunks_needed}: were losses retried?",
        sent(&sim, "InstallSnapshot")
    );
}

#[test]
fn a_crash_during_installation_leaves_the_old_or_the_new_state() {
    let (mut old_states, mut new_states) = (0, 0);
    for seed in 203..215 {
        let (mut sim, leader, follower, data) = leave_a_follower_behind(seed, 300);
        let old_snapshot = sim.disk(follower).snapshot.as_ref().map(|s| s.index);
        sim.heal();
        // Let some chunks arrive, then crash the follower at a different moment for each seed.
        run_until(&mut sim, "the transfer to start", |s| sent(s, "InstallSnapshot") >= 2);
        sim.run_for(4_000 * (seed - 200)).unwrap_or_else(|v| panic!("{}", show(&v)));
        sim.crash(follower);
        let disk = sim.disk(follower);
        match disk.snapshot.as_ref().map(|s| s.index) {
            index if index == old_snapshot => old_states += 1,
            Some(index) => {
                // The new state, whole: the leader's image, and a log that continues it exactly.
                assert_eq!(index, sim.node(leader).unwrap().status().snapshot_index, "seed {seed}");
                let after: Vec<Index> =
                    disk.entries.iter().map(|e| e.index).filter(|i| *i > index).collect();
                assert!(
                    after.first().is_none_or(|i| *i == index.next()),
                    "seed {seed}: log resumes at {after:?}"
                );
                new_states += 1;
            }
            None => panic!("seed {seed}: the snapshot vanished"),
        }
        sim.restart(follower);
        // Either way it converges, and every invariant held throughout.
        run_until(&mut sim, "the follower to catch up", |s| applied_commands(s, follower) == data);
    }
    assert!(old_states > 0, "no crash landed before the install: the test did not interrupt one");
    assert!(new_states > 0, "no crash landed after the install");
}

#[test]
fn snapshots_under_every_fault_keep_every_acknowledged_write() {
    for seed in 0..20 {
        let options = Options {
            nodes: 5,
            seed: 7_000 + seed,
            ops: 1_000,
            faults: conclave_sim::FaultSet::all(),
            ..Options::default()
        };
        let summary = raft_sim(options, snapshot_every_fifty)
            .run()
            .unwrap_or_else(|v| panic!("seed {}: {}", 7_000 + seed, show(&v)));
        assert!(summary.ops_acknowledged >= 1_000, "{summary}");
    }
}
