//! The chaos runner: Jepsen-style testing of real Conclave processes on one machine.
//!
//! A run starts a local cluster of `conclave serve` processes with a fault-injecting proxy on
//! every peer link ([`proxy`]), drives concurrent clients over the Redis protocol that record a
//! history ([`workload`], [`recorder`]), and meanwhile lets a seeded nemesis ([`nemesis`]) kill,
//! pause, partition and reconfigure the cluster. At the end it heals everything, reads every key
//! once more, checks the history for linearizability with `conclave-check` and for lost
//! acknowledged writes ([`lost`]), and writes a report folder ([`report`]).
//!
//! Unlike the simulator, a chaos run is not reproducible event for event: real processes, real
//! sockets and the OS scheduler decide the interleaving. The seed fixes the nemesis's plan and
//! the clients' choices, so reruns face the same faults.

pub mod cluster;
pub mod lost;
pub mod nemesis;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave_check::{check_history, Budget, CheckOptions, History, ModelKind, Verdict};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cluster::{Cluster, NodeSettings};
use crate::nemesis::{NemesisRecord, Schedule};
use crate::recorder::Recorder;
use crate::workload::Workload;

/// What can stop a run before it has a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The cluster never elected a leader at the start, so there is nothing to test.
    #[error("the cluster did not elect a leader within {0:?} of starting; see the node logs in the report")]
    NoLeader(Duration),
    /// The history could not be checked (a bug in the recorder).
    #[error("checking the history: {0}")]
    Check(String),
}

impl ChaosError {
    /// Wraps an IO error with what was being done, for `map_err`.
    pub fn io(what: &'static str) -> impl Fn(std::io::Error) -> ChaosError {
        move |source| ChaosError::Io { what, source }
    }
}

/// A chaos run's settings.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// The `conclave` binary that provides `serve`.
    pub binary: PathBuf,
    /// Cluster size.
    pub nodes: usize,
    /// How long clients and the nemesis run (before healing and the final reads).
    pub duration: Duration,
    /// Decides the nemesis's plan and the clients' choices.
    pub seed: u64,
    /// The report folder (created; files in it are overwritten).
    pub report_dir: PathBuf,
    /// The clients.
    pub workload: Workload,
    /// The nemesis.
    pub schedule: Schedule,
    /// The nodes' settings (ticks, timeouts).
    pub node_settings: NodeSettings,
    /// Wall time the linearizability check may take.
    pub check_budget: Duration,
}

/// What a run found.
#[derive(Debug)]
pub struct ChaosOutcome {
    /// The checker's verdict.
    pub verdict: Verdict,
    /// Acknowledged writes the final reads show were lost.
    pub lost_writes: Vec<String>,
    /// Problems healing the cluster at the end (a node that would not come back).
    pub heal_problems: Vec<String>,
    /// The human summary, also written to `summary.txt`.
    pub summary: String,
}

impl ChaosOutcome {
    /// 0: linearizable and nothing lost; 1: a violation or a lost write; 3: the check ran out of
    /// budget (and nothing was lost).
    pub fn exit_code(&self) -> i32 {
        if !self.lost_writes.is_empty() {
            return 1;
        }
        self.verdict.exit_code()
    }
}

/// Runs the whole experiment. Must be called inside a multi-threaded tokio runtime.
pub async fn run(config: &ChaosConfig) -> Result<ChaosOutcome, ChaosError> {
    std::fs::create_dir_all(&config.report_dir)
        .map_err(ChaosError::io("creating the report folder"))?;
    let work = config.report_dir.join("data");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(ChaosError::io("creating the data folder"))?;
    let cluster =
        Cluster::start(config.nodes, &work, config.node_settings.clone(), config.seed).await?;
    let cluster = Arc::new(Mutex::new(cluster));
    let startup = Duration::from_secs(30);
    if cluster.lock().await.wait_leader(startup).await.is_none() {
        report::copy_logs(&*cluster.lock().await, &config.report_dir);
        return Err(ChaosError::NoLeader(startup));
    }
    let addrs: Vec<_> = cluster.lock().await.nodes.iter().map(|n| n.client).collect();
    let recorder = Arc::new(Recorder::new());
    let log: Arc<std::sync::Mutex<Vec<NemesisRecord>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..config.workload.clients)
        .map(|i| {
            tokio::spawn(workload::client(
                i,
                addrs.clone(),
                config.workload.clone(),
                recorder.clone(),
                stop.clone(),
                config.seed,
            ))
        })
        .collect();
    let until = Instant::now() + config.duration;
    nemesis::run(
        cluster.clone(),
        config.schedule.clone(),
        config.seed,
        until,
        recorder.clone(),
        log.clone(),
    )
    .await;
    tokio::time::sleep_until(until).await;
    let heal_problems = nemesis::heal_all(&cluster).await;
    // Let the clients see the healed cluster for a moment, then stop them.
    let _ = cluster.lock().await.wait_leader(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let final_reads = workload::final_reads(
        &addrs,
        config.workload.keys,
        &recorder,
        config.workload.timeout,
        Duration::from_secs(20),
    )
    .await;
    cluster.lock().await.stop_all();
    report::copy_logs(&*cluster.lock().await, &config.report_dir);

    let events = recorder.snapshot();
    let history = History::from_events(events.clone());
    let options = CheckOptions {
        model: Some(ModelKind::Kv),
        balances: None,
        budget: Budget::time(config.check_budget),
    };
    let (ops, check) =
        check_history(&history, &options).map_err(|e| ChaosError::Check(e.to_string()))?;
    let lost_writes = lost::lost_writes(&events);
    let nemesis_log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let summary = report::write(
        config,
        &report::Findings {
            events: &events,
            ops: &ops,
            check: &check,
            nemesis: &nemesis_log,
            lost_writes: &lost_writes,
            heal_problems: &heal_problems,
            final_reads,
        },
    )?;
    Ok(ChaosOutcome { verdict: check.verdict.clone(), lost_writes, heal_problems, summary })
}
