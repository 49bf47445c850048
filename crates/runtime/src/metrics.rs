//! Counters and latency histograms of one group, cheap to update from the hot path (relaxed
//! atomics) and rendered in the Prometheus text format for the admin port.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: 25 µs to 2.5 s, roughly ×2.5 apart, which
/// resolves both an fdatasync on a fast disk and a stalled one.
const BUCKETS: [f64; 16] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets (Prometheus `histogram`).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = labels.trim_end_matches(',');
        let _ =
            writeln!(out, "{name}_sum{{{braces}}} {sum}\n{name}_count{{{braces}}} {cumulative}");
    }
}

/// Everything counted about one group on one node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Proposals accepted by the core (this node led).
    pub proposals: AtomicU64,
    /// Proposals refused (not the leader, transfer, too large).
    pub proposals_refused: AtomicU64,
    /// Log entries this node learned were committed (every kind: commands, no-ops, changes).
    pub committed: AtomicU64,
    /// Command entries applied to the state machine.
    pub applied: AtomicU64,
    /// Times the loop stopped taking proposals because too many bytes awaited the disk.
    pub storage_backpressure: AtomicU64,
    /// Elections this node started (it became a candidate).
    pub elections: AtomicU64,
    /// Times this node became leader.
    pub became_leader: AtomicU64,
    /// Reads served after a barrier (ReadIndex or lease).
    pub reads: AtomicU64,
    /// Reads whose barrier failed.
    pub reads_failed: AtomicU64,
    /// Snapshots taken of the local state machine.
    pub snapshots_taken: AtomicU64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: AtomicU64,
    /// Messages that could not be decoded.
    pub messages_malformed: AtomicU64,
    /// Messages the transport refused to queue (peer down and queue full, unknown peer).
    pub messages_dropped: AtomicU64,
    /// Time spent in each storage batch's fdatasync.
    pub fsync: Histogram,
    /// Entries appended per storage batch (how well batching works).
    pub storage_batches: AtomicU64,
    /// Entries written to the log.
    pub entries_written: AtomicU64,
    /// Time of each turn of the group's loop (taking events and carrying out the core's output):
    /// consensus work waits behind a long turn, so its tail is what starves heartbeats.
    pub loop_turn: Histogram,
    /// The longest turn of the group's loop so far, in nanoseconds.
    pub loop_turn_max_nanos: AtomicU64,
    /// The longest a tick waited past its due time so far, in nanoseconds: a long turn, or the
    /// runtime not getting to the loop at all (CPU starvation), both show here.
    pub tick_delay_max_nanos: AtomicU64,
    /// Time the snapshot thread took to build each image (off the loop).
    pub snapshot_build: Histogram,
    /// Messages sent, by message type.
    sent: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages received, by message type.
    received: Mutex<BTreeMap<&'static str, u64>>,
}

/// Adds one to a relaxed counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Raises a high-water mark of nanoseconds to `took` if that is longer.
pub(crate) fn record_max(mark: &AtomicU64, took: Duration) {
    mark.fetch_max(took.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
}

impl Metrics {
    /// Counts messages sent, by type (one lock for a whole batch).
    pub(crate) fn count_sent<'a>(&self, kinds: impl Iterator<Item = &'static str> + 'a) {
        if let Ok(mut sent) = self.sent.lock() {
            for kind in kinds {
                *sent.entry(kind).or_default() += 1;
            }
        }
    }

    /// Messages of `kind` sent so far.
    #[cfg(test)]
    pub(crate) fn sent_count(&self, kind: &str) -> u64 {
        self.sent.lock().map_or(0, |sent| sent.get(kind).copied().unwrap_or(0))
    }

    /// Counts one message received.
    pub(crate) fn count_received(&self, kind: &'static str) {
        if let Ok(mut received) = self.received.lock() {
            *received.entry(kind).or_default() += 1;
        }
    }

    /// Appends this group's metrics in the Prometheus text format, labelled with `group`.
    pub fn render(&self, out: &mut String, group: u64) {
        let labels = format!("group=\"{group}\",");
        let counters: [(&str, &str, &AtomicU64); 15] = [
            (
                "conclave_proposals_total",
                "Proposals accepted by this node as leader.",
                &self.proposals,
            ),
            (
                "conclave_proposals_refused_total",
                "Proposals refused (not the leader, transfer, too large).",
                &self.proposals_refused,
            ),
            (
                "conclave_commits_total",
                "Log entries this node learned were committed.",
                &self.committed,
            ),
            ("conclave_applied_total", "Commands applied to the state machine.", &self.applied),
            (
                "conclave_storage_backpressure_total",
                "Times proposals were held back because too many bytes awaited the disk.",
                &self.storage_backpressure,
            ),
            ("conclave_elections_total", "Elections this node started.", &self.elections),
            ("conclave_became_leader_total", "Times this node became leader.", &self.became_leader),
            (
                "conclave_reads_total",
                "Reads served after a ReadIndex or lease barrier.",
                &self.reads,
            ),
            ("conclave_reads_failed_total", "Reads whose barrier failed.", &self.reads_failed),
            (
                "conclave_snapshots_taken_total",
                "Snapshots taken of the local state machine.",
                &self.snapshots_taken,
            ),
            (
                "conclave_snapshots_installed_total",
                "Snapshots installed from a leader.",
                &self.snapshots_installed,
            ),
            (
                "conclave_messages_malformed_total",
                "Peer messages that could not be decoded.",
                &self.messages_malformed,
            ),
            (
                "conclave_messages_dropped_total",
                "Peer messages dropped before sending (link down and queue full).",
                &self.messages_dropped,
            ),
            (
                "conclave_storage_batches_total",
                "Storage batches, each made durable by one fdatasync.",
                &self.storage_batches,
            ),
            ("conclave_entries_written_total", "Log entries written.", &self.entries_written),
        ];
        let braces = labels.trim_end_matches(',');
        for (name, help, value) in counters {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{braces}}} {value}"
            );
        }
        for (name, help, map) in [
            ("conclave_messages_sent_total", "Peer messages sent, by type.", &self.sent),
            (
                "conclave_messages_received_total",
                "Peer messages received, by type.",
                &self.received,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            if let Ok(map) = map.lock() {
                for (kind, count) in map.iter() {
                    let _ = writeln!(out, "{name}{{{labels}type=\"{kind}\"}} {count}");
                }
            }
        }
        for (name, help, mark) in [
            (
                "conclave_loop_turn_max_seconds",
                "Longest turn of the group loop since start.",
                &self.loop_turn_max_nanos,
            ),
            (
                "conclave_tick_delay_max_seconds",
                "Longest a protocol tick waited past its due time since start.",
                &self.tick_delay_max_nanos,
            ),
        ] {
            let value = mark.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{braces}}} {value}"
            );
        }
        self.fsync.render(
            out,
            "conclave_fsync_seconds",
            "Latency of the fdatasync that makes each storage batch durable.",
            &labels,
        );
        self.loop_turn.render(
            out,
            "conclave_loop_turn_seconds",
            "Time of each turn of the group loop (events in, the core's output carried out).",
            &labels,
        );
        self.snapshot_build.render(
            out,
            "conclave_snapshot_build_seconds",
            "Time to build each state machine image, on the snapshot thread.",
            &labels,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.fsync.observe(Duration::from_micros(10));
        metrics.fsync.observe(Duration::from_micros(300));
        metrics.fsync.observe(Duration::from_secs(10));
        metrics.count_sent(["AppendEntries", "AppendEntries", "Heartbeat"].into_iter());
        let mut out = String::new();
        metrics.render(&mut out, 7);
        assert!(out.contains("conclave_fsync_seconds_bucket{group=\"7\",le=\"0.000025\"} 1"));
        assert!(out.contains("conclave_fsync_seconds_bucket{group=\"7\",le=\"0.0005\"} 2"));
        assert!(out.contains("conclave_fsync_seconds_bucket{group=\"7\",le=\"+Inf\"} 3"));
        assert!(out.contains("conclave_fsync_seconds_count{group=\"7\"} 3"));
        assert!(out.contains("conclave_messages_sent_total{group=\"7\",type=\"AppendEntries\"} 2"));
    }

    #[test]
    fn high_water_marks_keep_the_longest_and_render_as_gauges() {
        let metrics = Metrics::default();
        record_max(&metrics.loop_turn_max_nanos, Duration::from_millis(30));
        record_max(&metrics.loop_turn_max_nanos, Duration::from_millis(5));
        record_max(&metrics.tick_delay_max_nanos, Duration::from_micros(1500));
        let mut out = String::new();
        metrics.render(&mut out, 3);
        assert!(out.contains("# TYPE conclave_loop_turn_max_seconds gauge\n"));
        assert!(out.contains("conclave_loop_turn_max_seconds{group=\"3\"} 0.03\n"));
        assert!(out.contains("conclave_tick_delay_max_seconds{group=\"3\"} 0.0015\n"));
        assert!(out.contains("conclave_loop_turn_seconds_count{group=\"3\"} 0\n"));
    }
}
