//! The cluster under test: `conclave serve` child processes on loopback, one fault-injecting
//! proxy per peer link, and the process-level faults (SIGKILL and restart, SIGSTOP and SIGCONT).

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conclave_core::NodeId;
use conclave_server::http;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

use crate::proxy::{LinkProxy, Weather};
use crate::ChaosError;

/// One node's addresses and process.
pub struct Node {
    /// Its id (1-based).
    pub id: NodeId,
    /// The Redis-protocol port clients use.
    pub client: SocketAddr,
    /// The real peer port (behind the proxies).
    pub peer: SocketAddr,
    /// The HTTP admin port.
    pub admin: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// Whether the process is running (it may be paused).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Settings the nodes are started with.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// The `conclave` binary.
    pub binary: PathBuf,
    /// Milliseconds per tick.
    pub tick_ms: u64,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// How long a request waits for a leader before `CLUSTERDOWN`.
    pub election_wait_ms: u64,
    /// How long a request may take in all.
    pub request_timeout_ms: u64,
    /// Snapshot every this many entries (small, so snapshots happen during a run).
    pub snapshot_entries: u64,
}

/// The running cluster.
pub struct Cluster {
    /// The nodes, `nodes[i]` having id `i + 1`.
    pub nodes: Vec<Node>,
    proxies: Vec<LinkProxy>,
    settings: NodeSettings,
}

fn free_addr() -> Result<SocketAddr, ChaosError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ChaosError::io("binding a port"))?;
    listener.local_addr().map_err(ChaosError::io("binding a port"))
}

impl Cluster {
    /// Lays out `size` nodes under `dir` with a proxy on every peer link, and starts them.
    pub async fn start(
        size: usize,
        dir: &Path,
        settings: NodeSettings,
        seed: u64,
    ) -> Result<Cluster, ChaosError> {
        let mut nodes = Vec::new();
        for i in 0..size {
            let id = NodeId(i as u64 + 1);
            nodes.push(Node {
                id,
                client: free_addr()?,
                peer: free_addr()?,
                admin: free_addr()?,
                data_dir: dir.join(format!("node-{id}")),
                log: dir.join(format!("node-{id}.log")),
                child: None,
                paused: false,
            });
        }
        let mut proxies = Vec::new();
        for low in 0..size {
            for high in low + 1..size {
                let proxy = LinkProxy::start(
                    nodes[low].id,
                    nodes[high].id,
                    nodes[high].peer,
                    seed ^ ((low as u64) << 32 | high as u64),
                )
                .await
                .map_err(ChaosError::io("starting a link proxy"))?;
                proxies.push(proxy);
            }
        }
        let mut cluster = Cluster { nodes, proxies, settings };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// The peer addresses node `i` is configured with: its own real one, a proxy for every node
    /// it dials (higher ids), and the real one of lower ids (which dial it, never the reverse).
    fn members_for(&self, i: usize) -> String {
        let me = self.nodes[i].id;
        self.nodes
            .iter()
            .map(|node| {
                let addr = if node.id > me {
                    self.proxy(me, node.id).map_or(node.peer, LinkProxy::addr)
                } else {
                    node.peer
                };
                format!("{}={addr}", node.id)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn proxy(&self, a: NodeId, b: NodeId) -> Option<&LinkProxy> {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        self.proxies.iter().find(|p| p.low == low && p.high == high)
    }

    fn spawn(&mut self, i: usize) -> Result<(), ChaosError> {
        let members = self.members_for(i);
        let s = &self.settings;
        let node = &self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(ChaosError::io("opening a node log"))?;
        let err = log.try_clone().map_err(ChaosError::io("opening a node log"))?;
        let child = Command::new(&s.binary)
            .arg("serve")
            .arg(format!("--id={}", node.id))
            .arg(format!("--data-dir={}", node.data_dir.display()))
            .arg(format!("--members={members}"))
            .arg(format!("--peer-addr={}", node.peer))
            .arg(format!("--client-addr={}", node.client))
            .arg(format!("--admin-addr={}", node.admin))
            .arg(format!("--tick-ms={}", s.tick_ms))
            .arg(format!("--election-ticks={}", s.election_ticks))
            .arg(format!("--election-wait-ms={}", s.election_wait_ms))
            .arg(format!("--request-timeout-ms={}", s.request_timeout_ms))
            .arg(format!("--snapshot-entries={}", s.snapshot_entries))
            .arg("--log-level=info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(ChaosError::io("starting conclave serve"))?;
        self.nodes[i].child = Some(child);
        self.nodes[i].paused = false;
        Ok(())
    }

    /// SIGKILL: the node gets no chance to flush anything.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            if self.nodes[i].paused {
                let _ = signal(&child, Signal::CONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes[i].paused = false;
    }

    /// Starts a killed node again on its data directory.
    pub fn restart(&mut self, i: usize) -> Result<(), ChaosError> {
        if self.nodes[i].child.is_some() {
            return Ok(());
        }
        self.spawn(i)
    }

    /// SIGSTOP: the process freezes with its sockets open, like a long GC pause or a VM stall.
    pub fn pause(&mut self, i: usize) {
        if let Some(child) = &self.nodes[i].child {
            if signal(child, Signal::STOP).is_ok() {
                self.nodes[i].paused = true;
            }
        }
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&mut self, i: usize) {
        if let Some(child) = &self.nodes[i].child {
            let _ = signal(child, Signal::CONT);
        }
        self.nodes[i].paused = false;
    }

    /// Sets the weather of frames from node `from` to node `to` (both indexes).
    pub fn set_link(&self, from: usize, to: usize, weather: Weather) {
        if let Some(proxy) = self.proxy(self.nodes[from].id, self.nodes[to].id) {
            proxy.set(self.nodes[from].id, weather);
        }
    }

    /// Clears every link.
    pub fn heal_links(&self) {
        for proxy in &self.proxies {
            proxy.heal();
        }
    }

    /// Node `i`'s `/status`, if it answers.
    pub async fn status(&self, i: usize) -> Option<Value> {
        let (code, body) =
            http::call(self.nodes[i].admin, "GET", "/status", None, Duration::from_secs(2))
                .await
                .ok()?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// The node that says it leads, in the highest term among those that answer: where
    /// membership changes must go. A node that was removed from the cluster (and no longer
    /// hears from it) does not get a say.
    pub async fn leader(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_up() || node.paused {
                continue;
            }
            let Some(status) = self.status(i).await else { continue };
            if status["role"] == "leader" {
                let term = status["term"].as_u64().unwrap_or(0);
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The leader, once every running, unpaused member (as the leader lists them) names it:
    /// the cluster has settled.
    pub async fn agreed_leader(&self) -> Option<usize> {
        let leader = self.leader().await?;
        let status = self.status(leader).await?;
        let members: Vec<u64> =
            status["members"].as_array()?.iter().filter_map(|m| m["id"].as_u64()).collect();
        let leader_id = self.nodes[leader].id.0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_up() || node.paused || !members.contains(&node.id.0) {
                continue;
            }
            if self.status(i).await?["leader"].as_u64() != Some(leader_id) {
                return None;
            }
        }
        Some(leader)
    }

    /// Waits up to `wait` for [`Cluster::agreed_leader`].
    pub async fn wait_leader(&self, wait: Duration) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends an admin `POST` to the leader, following `421` answers; returns the code and body.
    pub async fn admin_post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        let mut target = match self.leader().await {
            Some(leader) => self.nodes[leader].admin,
            None => return Err("no leader".into()),
        };
        for _ in 0..4 {
            let (code, reply) =
                http::call(target, "POST", path, Some(body), Duration::from_secs(5))
                    .await
                    .map_err(|e| e.to_string())?;
            if code != 421 {
                // The answer is for a log line: the outcome, not the whole status page.
                let value: Value = serde_json::from_str(&reply).unwrap_or_default();
                let short = match value.get("error") {
                    Some(error) => error.to_string(),
                    None if value.get("ok").is_some() => "ok".to_string(),
                    None => reply.chars().take(200).collect(),
                };
                return Ok((code, short));
            }
            let value: Value = serde_json::from_str(&reply).unwrap_or_default();
            match value["leader_admin_addr"].as_str().and_then(|a| a.parse().ok()) {
                Some(next) => target = next,
                None => return Ok((code, reply)),
            }
        }
        Err("leadership kept moving".into())
    }

    /// The voters and learners as the leader sees them.
    pub async fn members(&self) -> Option<Vec<(NodeId, String)>> {
        let leader = self.leader().await?;
        let status = self.status(leader).await?;
        Some(
            status["members"]
                .as_array()?
                .iter()
                .filter_map(|m| Some((NodeId(m["id"].as_u64()?), m["role"].as_str()?.to_owned())))
                .collect(),
        )
    }

    /// Kills every node (SIGKILL after SIGCONT), for the end of a run.
    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }

    /// Opens a node's log for copying into the report.
    pub fn open_log(&self, i: usize) -> std::io::Result<File> {
        File::open(&self.nodes[i].log)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn signal(child: &Child, signal: Signal) -> rustix::io::Result<()> {
    match Pid::from_raw(child.id() as i32) {
        Some(pid) => kill_process(pid, signal),
        None => Ok(()),
    }
}
