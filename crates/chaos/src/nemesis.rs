//! The nemesis: on a schedule drawn from the run's seed, injects one fault at a time into the
//! running cluster, holds it, and undoes it, logging both.
//!
//! Episodes do not overlap, so the log reads as a story: "12.3 s: partition {1} | {2,3}; 14.1 s:
//! healed". The seed decides the kinds, targets, lengths and gaps; what the cluster does in
//! response (who leads next) is real, so two runs with one seed differ in detail but face the
//! same kind of trouble.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::{RandomSource, SeededRng};
use conclave_sim::Fault;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::proxy::Weather;
use crate::recorder::Recorder;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL a node, restart it later on its data: the simulator's `crash`, under its name.
    Crash,
    /// SIGSTOP a node, SIGCONT it later.
    Pause,
    /// Split the nodes in two groups that cannot talk (both directions).
    Partition,
    /// Cut one link in one direction only.
    Cut,
    /// Lose a share of the frames on some links.
    Drop,
    /// Hold back frames on some links.
    Delay,
    /// Remove a voter, then add it back as a learner and promote it.
    Membership,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Cut,
        FaultKind::Drop,
        FaultKind::Delay,
        FaultKind::Membership,
    ];

    /// The simulator's fault this kind is, for the kinds both know: one fault, one name.
    pub fn sim_fault(self) -> Option<Fault> {
        match self {
            FaultKind::Crash => Some(Fault::Crash),
            FaultKind::Partition => Some(Fault::Partition),
            FaultKind::Drop => Some(Fault::Drop),
            FaultKind::Delay => Some(Fault::Delay),
            FaultKind::Membership => Some(Fault::Membership),
            FaultKind::Pause | FaultKind::Cut => None,
        }
    }

    /// The name on the command line and in the nemesis log: the simulator's name for a fault
    /// both share ([`Fault::name`] is its one definition), the runner's own for the rest.
    pub fn name(self) -> &'static str {
        match (self, self.sim_fault()) {
            (_, Some(fault)) => fault.name(),
            (FaultKind::Pause, None) => "pause",
            (FaultKind::Cut, None) => "cut",
            (kind, None) => unreachable!("{kind:?} is a simulator fault"),
        }
    }

    /// Every kind's name, comma-separated: what the `--faults` help and errors list.
    pub fn names() -> String {
        FaultKind::ALL.map(FaultKind::name).join(", ")
    }
}

impl Serialize for FaultKind {
    /// By [`name`](FaultKind::name), so the nemesis log uses the command line's names.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A set of fault kinds, parsed from a comma list (`crash,partition`), `all` or `none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSet(pub BTreeSet<FaultKind>);

impl FaultSet {
    /// The help text of `conclave chaos --faults`, written from [`FaultKind::ALL`] (whose
    /// shared names come from the simulator), so help, errors and parsing cannot disagree.
    pub fn help() -> String {
        format!("Faults: a comma list of {}; or all or none", FaultKind::names())
    }
}

impl FromStr for FaultSet {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultSet, String> {
        let mut set = BTreeSet::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => set.extend(FaultKind::ALL),
                "none" => {}
                _ => {
                    let kind =
                        FaultKind::ALL.into_iter().find(|k| k.name() == word).ok_or_else(|| {
                            format!(
                                "unknown fault {word:?}: use {}, all or none",
                                FaultKind::names()
                            )
                        })?;
                    set.insert(kind);
                }
            }
        }
        Ok(FaultSet(set))
    }
}

/// One line of the nemesis log.
#[derive(Clone, Debug, Serialize)]
pub struct NemesisRecord {
    /// Milliseconds since the run began.
    pub time_ms: u64,
    /// `start` or `end` of an episode, or `note`.
    pub phase: &'static str,
    /// The fault kind.
    pub fault: FaultKind,
    /// Targets and parameters.
    pub detail: Value,
}

/// The nemesis's timing.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Enabled fault kinds.
    pub faults: FaultSet,
    /// Quiet time between episodes: drawn from this range.
    pub gap: (Duration, Duration),
    /// Length of an episode: drawn from this range.
    pub length: (Duration, Duration),
}

fn draw(rng: &mut SeededRng, (low, high): (Duration, Duration)) -> Duration {
    let (low, high) = (low.as_millis() as u64, high.as_millis().max(low.as_millis()) as u64);
    Duration::from_millis(rng.between(low, high + 1))
}

/// Picks a node: the leader half the time when one is known (faults there matter most).
async fn target(cluster: &Cluster, rng: &mut SeededRng) -> usize {
    if rng.chance(0.5) {
        if let Some(leader) = cluster.leader().await {
            return leader;
        }
    }
    rng.between(0, cluster.nodes.len() as u64) as usize
}

/// Runs episodes until `until`, then returns with everything it did undone.
pub async fn run(
    cluster: Arc<Mutex<Cluster>>,
    schedule: Schedule,
    seed: u64,
    until: Instant,
    recorder: Arc<Recorder>,
    log: Arc<std::sync::Mutex<Vec<NemesisRecord>>>,
) {
    let kinds: Vec<FaultKind> = schedule.faults.0.iter().copied().collect();
    if kinds.is_empty() {
        return;
    }
    let mut rng = SeededRng::new(seed ^ 0x006e_656d_6573_6973);
    let note = |phase: &'static str, fault: FaultKind, detail: Value| {
        let record = NemesisRecord { time_ms: recorder.elapsed_ms(), phase, fault, detail };
        tracing::info!(phase, fault = fault.name(), detail = %record.detail, "nemesis");
        log.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    };
    loop {
        let gap = draw(&mut rng, schedule.gap);
        if Instant::now() + gap >= until {
            return;
        }
        tokio::time::sleep(gap).await;
        let kind = kinds[rng.between(0, kinds.len() as u64) as usize];
        let length =
            draw(&mut rng, schedule.length).min(until.saturating_duration_since(Instant::now()));
        let mut c = cluster.lock().await;
        let n = c.nodes.len();
        match kind {
            FaultKind::Crash => {
                let victim = target(&c, &mut rng).await;
                c.kill(victim);
                note("start", kind, json!({ "node": victim + 1 }));
                drop(c);
                tokio::time::sleep(length).await;
                let mut c = cluster.lock().await;
                let restarted = c.restart(victim).map_err(|e| e.to_string());
                note("end", kind, json!({ "node": victim + 1, "restarted": restarted.is_ok() }));
            }
            FaultKind::Pause => {
                let victim = target(&c, &mut rng).await;
                c.pause(victim);
                note("start", kind, json!({ "node": victim + 1 }));
                drop(c);
                tokio::time::sleep(length).await;
                cluster.lock().await.resume(victim);
                note("end", kind, json!({ "node": victim + 1 }));
            }
            FaultKind::Partition => {
                // Isolate one node (often the leader) or split off a random minority.
                let mut side: BTreeSet<usize> = BTreeSet::new();
                side.insert(target(&c, &mut rng).await);
                let minority = (n - 1) / 2;
                while side.len() < minority && rng.chance(0.5) {
                    side.insert(rng.between(0, n as u64) as usize);
                }
                let other: Vec<usize> = (0..n).filter(|i| !side.contains(i)).collect();
                for &a in &side {
                    for &b in &other {
                        c.set_link(a, b, Weather { cut: true, ..Weather::CLEAR });
                        c.set_link(b, a, Weather { cut: true, ..Weather::CLEAR });
                    }
                }
                let groups = json!([
                    side.iter().map(|i| i + 1).collect::<Vec<_>>(),
                    other.iter().map(|i| i + 1).collect::<Vec<_>>()
                ]);
                note("start", kind, json!({ "groups": groups }));
                drop(c);
                tokio::time::sleep(length).await;
                cluster.lock().await.heal_links();
                note("end", kind, json!({ "groups": groups }));
            }
            FaultKind::Cut => {
                let from = rng.between(0, n as u64) as usize;
                let to = (from + 1 + rng.between(0, n as u64 - 1) as usize) % n;
                c.set_link(from, to, Weather { cut: true, ..Weather::CLEAR });
                note("start", kind, json!({ "from": from + 1, "to": to + 1 }));
                drop(c);
                tokio::time::sleep(length).await;
                cluster.lock().await.heal_links();
                note("end", kind, json!({ "from": from + 1, "to": to + 1 }));
            }
            FaultKind::Drop | FaultKind::Delay => {
                let weather = if kind == FaultKind::Drop {
                    Weather { drop: rng.between(10, 60) as f64 / 100.0, ..Weather::CLEAR }
                } else {
                    Weather { delay_ms: rng.between(10, 150), ..Weather::CLEAR }
                };
                let mut links = Vec::new();
                for a in 0..n {
                    for b in 0..n {
                        if a != b && rng.chance(0.5) {
                            c.set_link(a, b, weather);
                            links.push([a + 1, b + 1]);
                        }
                    }
                }
                note("start", kind, json!({ "links": links, "weather": weather }));
                drop(c);
                tokio::time::sleep(length).await;
                cluster.lock().await.heal_links();
                note("end", kind, json!({ "links": links }));
            }
            FaultKind::Membership => {
                drop(c);
                membership_episode(&cluster, &mut rng, length, &note).await;
            }
        }
    }
}

/// Removes a follower voter, waits, adds it back as a learner and promotes it once it catches
/// up (retrying for a while). Every step and its answer goes to the log.
async fn membership_episode(
    cluster: &Arc<Mutex<Cluster>>,
    rng: &mut SeededRng,
    length: Duration,
    note: &impl Fn(&'static str, FaultKind, Value),
) {
    let kind = FaultKind::Membership;
    let (victim, peer) = {
        let c = cluster.lock().await;
        let Some(leader) = c.leader().await else {
            note("note", kind, json!({ "skipped": "no leader" }));
            return;
        };
        let Some(members) = c.members().await else { return };
        let voters: Vec<u64> = members
            .iter()
            .filter(|(id, role)| role == "voter" && id.0 != c.nodes[leader].id.0)
            .map(|(id, _)| id.0)
            .collect();
        if voters.len() < 2 {
            note("note", kind, json!({ "skipped": "too few voters to remove one" }));
            return;
        }
        let victim = voters[rng.between(0, voters.len() as u64) as usize];
        (victim, c.nodes[victim as usize - 1].peer)
    };
    let remove = json!({ "action": "remove", "id": victim }).to_string();
    let answer = cluster.lock().await.admin_post("/members", &remove).await;
    note("start", kind, json!({ "remove": victim, "answer": format!("{answer:?}") }));
    tokio::time::sleep(length).await;
    let add =
        json!({ "action": "add-learner", "id": victim, "peer_addr": peer.to_string() }).to_string();
    let added = cluster.lock().await.admin_post("/members", &add).await;
    let promote = json!({ "action": "promote", "id": victim }).to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut promoted = Err("not tried".to_string());
    while Instant::now() < deadline {
        promoted = cluster.lock().await.admin_post("/members", &promote).await;
        if matches!(promoted, Ok((200, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    note(
        "end",
        kind,
        json!({ "add": victim, "added": format!("{added:?}"), "promoted": format!("{promoted:?}") }),
    );
}

/// After the run: every node up and running, every link clear, every node a voter again.
pub async fn heal_all(cluster: &Arc<Mutex<Cluster>>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut c = cluster.lock().await;
    c.heal_links();
    for i in 0..c.nodes.len() {
        if c.nodes[i].is_paused() {
            c.resume(i);
        }
        if !c.nodes[i].is_up() {
            if let Err(e) = c.restart(i) {
                problems.push(format!("node {} did not restart: {e}", i + 1));
            }
        }
    }
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = cluster.lock().await;
        let members = c.members().await;
        let missing: Vec<(u64, SocketAddrText)> = match &members {
            Some(members) => c
                .nodes
                .iter()
                .filter(|n| !members.iter().any(|(id, role)| *id == n.id && role == "voter"))
                .map(|n| (n.id.0, n.peer.to_string()))
                .collect(),
            None => Vec::new(),
        };
        if members.is_some() && missing.is_empty() {
            return problems;
        }
        if Instant::now() >= deadline {
            problems.push(format!("membership not restored within 30 s: missing {missing:?}"));
            return problems;
        }
        for (id, peer) in missing {
            let add = json!({ "action": "add-learner", "id": id, "peer_addr": peer }).to_string();
            let _ = c.admin_post("/members", &add).await;
            let promote = json!({ "action": "promote", "id": id }).to_string();
            let _ = c.admin_post("/members", &promote).await;
        }
        drop(c);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type SocketAddrText = String;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_faults_carry_the_simulators_names() {
        assert_eq!(FaultKind::Crash.name(), Fault::Crash.name());
        for kind in FaultKind::ALL {
            if let Some(fault) = kind.sim_fault() {
                assert_eq!(kind.name(), fault.name());
            }
            let parsed: FaultSet = kind.name().parse().unwrap();
            assert_eq!(parsed.0.into_iter().collect::<Vec<_>>(), vec![kind]);
        }
        let error = "crash,kill".parse::<FaultSet>().unwrap_err();
        assert!(error.contains("\"kill\"") && error.contains(&FaultKind::names()), "{error}");
        assert_eq!(serde_json::to_string(&FaultKind::Crash).unwrap(), "\"crash\"");
    }
}
