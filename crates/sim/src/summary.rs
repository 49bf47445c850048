//! The numbers a run reports when it ends without a violation.

use std::fmt;

use conclave_core::Index;

use crate::network::NetworkStats;

/// What a random-workload run did. All times are virtual; wall time and events per second are the
/// caller's to measure, since they are not deterministic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The run's seed.
    pub seed: u64,
    /// Operations the run asked for.
    pub ops_target: u64,
    /// Operations acknowledged to clients: writes applied in the term they were proposed in, and
    /// reads served.
    pub ops_acknowledged: u64,
    /// Of those, reads (each checked against the writes).
    pub reads_acknowledged: u64,
    /// Reads refused or failed (no leader, timeout, crash); clients retried them.
    pub reads_failed: u64,
    /// Membership changes and leadership transfers the nemesis asked for, and how many the
    /// leader accepted.
    pub admin_requests: (u64, u64),
    /// False when the op phase hit its virtual-time cap before `ops_target` acknowledgements (see
    /// `warnings`; without faults that is a liveness violation instead).
    pub ops_phase_completed: bool,
    /// Transitions into `Candidate`, including a candidate starting a new term.
    pub elections_started: u64,
    /// Terms in which some node became leader.
    pub leaders_elected: u64,
    /// Elections won by a different node than the previous winner.
    pub leader_changes: u64,
    /// Nodes crashed (by the nemesis or by hand).
    pub crashes: u64,
    /// Partitions and one-way cuts started.
    pub partitions: u64,
    /// Disk writes lost because their node crashed before they completed.
    pub writes_lost: u64,
    /// Of those, writes left torn (a half-written record, cut at restart).
    pub torn_writes: u64,
    /// Disk syncs that failed, each stopping its node.
    pub sync_failures: u64,
    /// State machine images taken on `Ready::snapshot_due`.
    pub snapshots_taken: u64,
    /// State machines restored from a snapshot (installed, or found on disk at restart).
    pub snapshots_restored: u64,
    /// Message traffic.
    pub network: NetworkStats,
    /// The commit index every node converged to.
    pub commit_index: Index,
    /// Virtual time at the end of the op phase.
    pub ops_phase_us: u64,
    /// Virtual time from the end of the op phase until every node had applied everything.
    pub converge_us: u64,
    /// Virtual time at the end of the run.
    pub virtual_time_us: u64,
    /// Events taken off the event queue.
    pub events_processed: u64,
    /// Median latency of acknowledged operations, first invoke to acknowledgement.
    pub latency_p50_us: u64,
    /// 99th-percentile latency of acknowledged operations.
    pub latency_p99_us: u64,
    /// The verdict of the end-of-run linearizability check of the client history:
    /// `linearizable`, `unknown` (its step budget ran out) or `unchecked`.
    pub linearizability: &'static str,
    /// Things worth knowing that are not failures (such as the op phase timing out under faults).
    pub warnings: Vec<String>,
}

/// The `percent`th percentile of `sorted` (nearest rank); 0 for no samples.
pub(crate) fn percentile(sorted: &[u64], percent: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() as u64 * percent).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let net = &self.network;
        writeln!(
            f,
            "seed {}: {}/{} ops acknowledged ({} reads; {} read attempts failed)",
            self.seed,
            self.ops_acknowledged,
            self.ops_target,
            self.reads_acknowledged,
            self.reads_failed
        )?;
        if self.admin_requests.0 > 0 {
            writeln!(
                f,
                "membership changes and transfers: {} asked, {} accepted",
                self.admin_requests.0, self.admin_requests.1
            )?;
        }
        writeln!(
            f,
            "elections {} (leaders {}, changes {}), crashes {}, partitions {}",
            self.elections_started,
            self.leaders_elected,
            self.leader_changes,
            self.crashes,
            self.partitions
        )?;
        if self.writes_lost + self.sync_failures > 0 {
            writeln!(
                f,
                "disk: {} writes lost in crashes ({} torn), {} failed syncs",
                self.writes_lost, self.torn_writes, self.sync_failures
            )?;
        }
        if self.snapshots_taken + self.snapshots_restored > 0 {
            writeln!(
                f,
                "snapshots: {} taken, {} restored",
                self.snapshots_taken, self.snapshots_restored
            )?;
        }
        writeln!(
            f,
            "messages sent {}, delivered {}, dropped {}, duplicated {}",
            net.sent, net.delivered, net.dropped, net.duplicated
        )?;
        let kinds: Vec<String> =
            net.sent_by_kind.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        writeln!(f, "by kind: {}", kinds.join(", "))?;
        writeln!(
            f,
            "virtual time {:.3}s (ops {:.3}s, converge {:.3}s), {} events, commit index {}",
            self.virtual_time_us as f64 / 1e6,
            self.ops_phase_us as f64 / 1e6,
            self.converge_us as f64 / 1e6,
            self.events_processed,
            self.commit_index
        )?;
        writeln!(f, "client history: {}", self.linearizability)?;
        write!(f, "latency p50 {}us, p99 {}us", self.latency_p50_us, self.latency_p99_us)?;
        for warning in &self.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), 50);
        assert_eq!(percentile(&samples, 99), 99);
        assert_eq!(percentile(&samples, 100), 100);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
