//! The report folder of a chaos run: everything needed to understand a failure without
//! rerunning it.
//!
//! | file | what |
//! | --- | --- |
//! | `summary.txt` | the verdict, counts, throughput, faults, lost writes |
//! | `history.jsonl` | the client history (docs/HISTORY.md); `conclave check` reads it |
//! | `check.txt`, `check.json` | the checker's report |
//! | `timeline.html` | the history as a timeline, violating operations highlighted |
//! | `nemesis.jsonl` | every fault's start and end, with targets |
//! | `timeseries.csv` | per second: completions by outcome, latency p50/p99, faults in force |
//! | `nodes/node-N.log` | each node's log |

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use conclave_check::{render_html, Event, EventKind, HistoryWriter, Operation, Report};

use crate::cluster::Cluster;
use crate::nemesis::NemesisRecord;
use crate::{ChaosConfig, ChaosError};

/// What a run produced, for [`write`].
pub struct Findings<'a> {
    /// The history.
    pub events: &'a [Event],
    /// Its operations, as the check report numbers them.
    pub ops: &'a [Operation],
    /// The linearizability check.
    pub check: &'a Report,
    /// The nemesis log.
    pub nemesis: &'a [NemesisRecord],
    /// Lost acknowledged writes.
    pub lost_writes: &'a [String],
    /// Problems healing the cluster.
    pub heal_problems: &'a [String],
    /// Keys read after healing.
    pub final_reads: usize,
}

/// Copies each node's log into `dir/nodes/`.
pub fn copy_logs(cluster: &Cluster, dir: &Path) {
    let nodes = dir.join("nodes");
    let _ = std::fs::create_dir_all(&nodes);
    for (i, node) in cluster.nodes.iter().enumerate() {
        if let Ok(mut from) = cluster.open_log(i) {
            if let Ok(mut to) = File::create(nodes.join(format!("node-{}.log", node.id))) {
                let _ = std::io::copy(&mut from, &mut to);
            }
        }
    }
}

fn save(path: &Path, text: &str) -> Result<(), ChaosError> {
    std::fs::write(path, text).map_err(ChaosError::io("writing the report"))
}

/// One second of the run.
#[derive(Default)]
struct Second {
    ok: u64,
    fail: u64,
    info: u64,
    latencies_us: Vec<u64>,
}

/// Completions per second by outcome, with the latency of the `ok` ones.
fn per_second(events: &[Event]) -> BTreeMap<u64, Second> {
    let mut open: HashMap<u64, u64> = HashMap::new();
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    for event in events {
        let time = event.time.unwrap_or(0);
        if event.kind == EventKind::Invoke {
            open.insert(event.process, time);
            continue;
        }
        let Some(began) = open.remove(&event.process) else { continue };
        let second = seconds.entry(time / 1_000_000_000).or_default();
        match event.kind {
            EventKind::Ok => {
                second.ok += 1;
                second.latencies_us.push(time.saturating_sub(began) / 1000);
            }
            EventKind::Fail => second.fail += 1,
            _ => second.info += 1,
        }
    }
    seconds
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// The faults in force during second `s`.
fn faults_during(nemesis: &[NemesisRecord], s: u64) -> String {
    let (from, to) = (s * 1000, (s + 1) * 1000);
    let mut active = Vec::new();
    let mut started: Vec<&NemesisRecord> = Vec::new();
    for record in nemesis {
        match record.phase {
            "start" => started.push(record),
            "end" => {
                if let Some(at) = started.iter().position(|r| r.fault == record.fault) {
                    let start = started.remove(at);
                    if start.time_ms < to && record.time_ms >= from {
                        active.push(format!("{:?}", start.fault).to_lowercase());
                    }
                }
            }
            _ => {}
        }
    }
    for start in started {
        if start.time_ms < to {
            active.push(format!("{:?}", start.fault).to_lowercase());
        }
    }
    active.join(";")
}

/// Writes every report file and returns the summary.
pub fn write(config: &ChaosConfig, findings: &Findings<'_>) -> Result<String, ChaosError> {
    let dir = &config.report_dir;
    let file =
        File::create(dir.join("history.jsonl")).map_err(ChaosError::io("writing the history"))?;
    let mut writer = HistoryWriter::new(BufWriter::new(file));
    for event in findings.events {
        writer.write(event.clone()).map_err(ChaosError::io("writing the history"))?;
    }
    drop(writer);
    let check = findings.check;
    save(&dir.join("check.txt"), &check.summary(findings.ops))?;
    save(&dir.join("check.json"), &format!("{:#}\n", check.to_json(findings.ops)))?;
    let title = format!("conclave chaos --seed {}", config.seed);
    save(&dir.join("timeline.html"), &render_html(&title, findings.ops, check))?;
    let mut nemesis = String::new();
    for record in findings.nemesis {
        let _ = writeln!(nemesis, "{}", serde_json::to_string(record).unwrap_or_default());
    }
    save(&dir.join("nemesis.jsonl"), &nemesis)?;

    let seconds = per_second(findings.events);
    let mut csv = String::from("second,ok,fail,info,p50_ms,p99_ms,faults\n");
    for (s, second) in &seconds {
        let mut sorted = second.latencies_us.clone();
        sorted.sort_unstable();
        let _ = writeln!(
            csv,
            "{s},{},{},{},{:.3},{:.3},{}",
            second.ok,
            second.fail,
            second.info,
            percentile(&sorted, 50.0),
            percentile(&sorted, 99.0),
            faults_during(findings.nemesis, *s)
        );
    }
    save(&dir.join("timeseries.csv"), &csv)?;

    let mut all: Vec<u64> = seconds.values().flat_map(|s| s.latencies_us.iter().copied()).collect();
    all.sort_unstable();
    let ok: u64 = seconds.values().map(|s| s.ok).sum();
    let run_secs = config.duration.as_secs_f64().max(0.001);
    let starts = findings.nemesis.iter().filter(|r| r.phase == "start").count();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "conclave chaos: {} nodes, {} clients on {} keys, reads {}, {:.0} s, seed {}",
        config.nodes,
        config.workload.clients,
        config.workload.keys,
        config.workload.read_mode,
        run_secs,
        config.seed
    );
    let _ = writeln!(
        summary,
        "operations: {} ok ({:.0}/s), latency p50 {:.2} ms p99 {:.2} ms; {} faults injected; {} final reads",
        ok,
        ok as f64 / run_secs,
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        starts,
        findings.final_reads
    );
    summary.push_str(&check.summary(findings.ops));
    if findings.lost_writes.is_empty() {
        let _ = writeln!(summary, "lost acknowledged writes: none");
    } else {
        let _ = writeln!(summary, "LOST ACKNOWLEDGED WRITES: {}", findings.lost_writes.len());
        for line in findings.lost_writes.iter().take(20) {
            let _ = writeln!(summary, "  {line}");
        }
    }
    for problem in findings.heal_problems {
        let _ = writeln!(summary, "warning: {problem}");
    }
    let _ = writeln!(summary, "report: {}", dir.display());
    save(&dir.join("summary.txt"), &summary)?;
    let mut out = std::io::stdout();
    let _ = out.flush();
    Ok(summary)
}
