//! `conclave bench core`: committed-and-applied commands per second of an in-memory Raft
//! cluster, every node stepped on one thread, no clock, no network, no disk. It measures the
//! protocol core alone, the ceiling every real deployment sits under.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use clap::Args;
use conclave_core::{NodeId, Protocol};
use conclave_raft::memory_cluster::MemoryCluster;

/// Options of `conclave bench core`.
#[derive(Args, Debug)]
pub struct CoreBenchArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Commands to commit and apply in total.
    #[arg(long, default_value_t = 2_000_000)]
    commands: u64,
    /// Commands proposed between two rounds of message delivery; the leader batches them into
    /// one AppendEntries per follower (bounded by the per-message limits).
    #[arg(long, default_value_t = 256)]
    batch: u64,
    /// Size of each command in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seed for election timeouts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the benchmark and prints one summary line.
pub fn run(args: &CoreBenchArgs) -> Result<()> {
    ensure!((1..=9).contains(&args.nodes), "--nodes must be between 1 and 9");
    ensure!(args.batch > 0, "--batch must be at least 1");
    let batch = args.batch;
    let mut cluster = MemoryCluster::new(args.nodes, args.seed, false, |c| {
        c.append_entries_max = (batch as usize).max(1);
        c.append_bytes_max = usize::MAX / 2;
    });
    let leader = cluster.elect(1_000).context("no leader elected")?;
    cluster.settle();
    let baseline = cluster.applied_commands.clone();
    let payload = vec![0x5a_u8; args.size];
    let start = Instant::now();
    let mut proposed = 0;
    while proposed < args.commands {
        let n = batch.min(args.commands - proposed);
        for _ in 0..n {
            // A fresh buffer per command, as a command read off a socket would be.
            cluster
                .propose(leader, Bytes::from(payload.clone()))
                .context("leader refused a proposal")?;
        }
        proposed += n;
        cluster.settle();
        // A steady-state node compacts its log behind the applied index; without it the
        // benchmark would mostly measure the kernel handing out fresh pages.
        let safe = cluster.node(leader).slowest_follower_match().unwrap_or_default();
        for node in &mut cluster.nodes {
            node.compact_log(safe);
        }
    }
    // Followers learn the final commit index from the next heartbeat.
    let leader_commit = cluster.node(leader).status().commit;
    for _ in 0..3 {
        cluster.tick();
        if cluster.nodes.iter().all(|n| n.status().applied == leader_commit) {
            break;
        }
    }
    let elapsed = start.elapsed();
    for (i, applied) in cluster.applied_commands.iter().enumerate() {
        let done = applied - baseline[i];
        ensure!(
            done == args.commands,
            "node {} applied {done} of {} commands",
            i + 1,
            args.commands
        );
    }
    let per_second = args.commands as f64 / elapsed.as_secs_f64();
    outln!(
        "bench core: nodes={} commands={} size={}B batch={} elapsed={:.3}s throughput={:.0} commands/s \
         (committed and applied on every node) messages={} leader={}",
        args.nodes,
        args.commands,
        args.size,
        args.batch,
        elapsed.as_secs_f64(),
        per_second,
        cluster.messages_delivered,
        NodeId(leader.0)
    );
    Ok(())
}
