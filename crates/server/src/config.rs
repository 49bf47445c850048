//! A node's configuration: from a TOML file, command-line flags or both (flags win), checked up
//! front so a mistake fails at start with the name of the field.
//!
//! Port rule: a node's peer port is its client port + 100 and its admin port is its client
//! port + 200, unless given explicitly. `conclave up --port P` follows the same rule, so node
//! `i` (from 0) listens for clients on `P + i`, for peers on `P + 100 + i` and for admin on
//! `P + 200 + i`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_core::NodeId;
use serde::Deserialize;
use thiserror::Error;

/// A configuration that cannot work; the message names the field.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The field (or flag) at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { field, reason: reason.into() }
}

/// Everything a node needs, as written in a TOML file; every field is optional there because
/// flags may supply it. Unknown fields are refused (a typo must not be silently ignored).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// This node's id (at least 1).
    pub id: Option<u64>,
    /// Where the log, hard state and snapshots live.
    pub data_dir: Option<PathBuf>,
    /// Address peers connect to.
    pub peer_addr: Option<String>,
    /// Address Redis clients connect to.
    pub client_addr: Option<String>,
    /// Address of the HTTP admin port.
    pub admin_addr: Option<String>,
    /// The initial members as `id=host:port` (peer addresses).
    pub members: Option<Vec<String>>,
    /// A file with one peer `host:port` per line; line `n` (from 1) is node `n`.
    pub hostfile: Option<PathBuf>,
    /// With `hostfile`: this node's line (from 1), which is also its id.
    pub index: Option<u64>,
    /// Start outside the membership, to be added with `conclave cluster add`; `members` then
    /// lists the running cluster.
    pub join: Option<bool>,
    /// Clients must AUTH with this password.
    pub password: Option<String>,
    /// Nodes of different clusters refuse each other's connections.
    pub cluster_name: Option<String>,
    /// Length of one protocol tick in milliseconds.
    pub tick_ms: Option<u64>,
    /// Election timeout in ticks.
    pub election_ticks: Option<u32>,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: Option<u32>,
    /// Take a snapshot every this many applied entries.
    pub snapshot_entries: Option<u64>,
    /// How long a request may take before it fails with a timeout.
    pub request_timeout_ms: Option<u64>,
    /// How long a request waits for a leader during an election before failing.
    pub election_wait_ms: Option<u64>,
    /// Most client connections at once.
    pub max_clients: Option<usize>,
    /// Largest request (one RESP command) a client may send, in bytes.
    pub max_request_bytes: Option<usize>,
    /// Log level when RUST_LOG is not set (read by the command line, not the server).
    pub log_level: Option<String>,
}

impl ConfigFile {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid("config", format!("{}: {e}", path.display())))
    }

    /// Fields set in `flags` replace those here.
    pub fn merge(self, flags: ConfigFile) -> ConfigFile {
        macro_rules! pick {
            ($($f:ident),*) => { ConfigFile { $($f: flags.$f.or(self.$f)),* } };
        }
        pick!(
            id,
            data_dir,
            peer_addr,
            client_addr,
            admin_addr,
            members,
            hostfile,
            index,
            join,
            password,
            cluster_name,
            tick_ms,
            election_ticks,
            heartbeat_ticks,
            snapshot_entries,
            request_timeout_ms,
            election_wait_ms,
            max_clients,
            max_request_bytes,
            log_level
        )
    }
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// This node.
    pub id: NodeId,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The peer listen address.
    pub peer_addr: SocketAddr,
    /// The Redis-protocol listen address.
    pub client_addr: SocketAddr,
    /// The HTTP admin listen address.
    pub admin_addr: SocketAddr,
    /// Initial members (or, when joining, the running cluster's voters) and their peer addresses.
    pub members: BTreeMap<NodeId, SocketAddr>,
    /// Whether this node starts outside the membership.
    pub join: bool,
    /// The client password, if any.
    pub password: Option<String>,
    /// The cluster's identity on the wire (a hash of the cluster name).
    pub cluster_id: u64,
    /// One protocol tick.
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Snapshot policy.
    pub snapshot_entries: u64,
    /// Request timeout.
    pub request_timeout: Duration,
    /// The bounded wait for a leader.
    pub election_wait: Duration,
    /// Most client connections.
    pub max_clients: usize,
    /// Largest client request.
    pub max_request_bytes: usize,
}

fn resolve(field: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.to_socket_addrs()
        .map_err(|e| invalid(field, format!("{text:?}: {e}")))?
        .next()
        .ok_or_else(|| invalid(field, format!("{text:?} resolves to no address")))
}

fn with_port(addr: SocketAddr, field: &'static str, delta: i32) -> Result<SocketAddr, ConfigError> {
    let port = i32::from(addr.port()) + delta;
    let port = u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
        invalid(field, format!("derived port {port} is out of range; set it explicitly"))
    })?;
    Ok(SocketAddr::new(addr.ip(), port))
}

/// FNV-1a: a fixed hash, so every node derives the same cluster id from the same name.
fn cluster_id(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

impl ConfigFile {
    /// Checks everything and fills in defaults.
    pub fn resolve(self) -> Result<ServerConfig, ConfigError> {
        let mut members = BTreeMap::new();
        let mut id = self.id;
        if let Some(path) = &self.hostfile {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("hostfile", format!("cannot read {}: {e}", path.display())))?;
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if lines.is_empty() {
                return Err(invalid("hostfile", "no host:port lines"));
            }
            for (n, line) in lines.iter().enumerate() {
                members.insert(NodeId(n as u64 + 1), resolve("hostfile", line)?);
            }
            let index = self.index.ok_or_else(|| invalid("index", "required with a hostfile"))?;
            if index == 0 || index as usize > lines.len() {
                return Err(invalid("index", format!("must be in 1..={}", lines.len())));
            }
            if id.is_some_and(|id| id != index) {
                return Err(invalid("id", "with a hostfile the id is the line index"));
            }
            id = Some(index);
        } else if self.index.is_some() {
            return Err(invalid("index", "only meaningful with a hostfile"));
        }
        for member in self.members.iter().flatten() {
            let (node, addr) = member
                .split_once('=')
                .ok_or_else(|| invalid("members", format!("{member:?} is not id=host:port")))?;
            let node: u64 = node.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid("members", format!("{node:?} is not a node id (1 or more)"))
            })?;
            if members.insert(NodeId(node), resolve("members", addr.trim())?).is_some() {
                return Err(invalid("members", format!("node {node} is listed twice")));
            }
        }
        let id = NodeId(id.ok_or_else(|| invalid("id", "required (or a hostfile and index)"))?);
        if id.0 == 0 {
            return Err(invalid("id", "must be at least 1"));
        }
        let join = self.join.unwrap_or(false);
        let peer_addr = match (&self.peer_addr, members.get(&id)) {
            (Some(text), _) => resolve("peer_addr", text)?,
            (None, Some(addr)) => *addr,
            (None, None) if !join && !members.is_empty() => {
                return Err(invalid(
                    "members",
                    format!("this node ({id}) is not listed; use join to add a node later"),
                ))
            }
            (None, None) => match &self.client_addr {
                Some(text) => with_port(resolve("client_addr", text)?, "peer_addr", 100)?,
                None => {
                    return Err(invalid("peer_addr", "required (or list this node in members)"))
                }
            },
        };
        if join {
            if members.contains_key(&id) {
                return Err(invalid(
                    "join",
                    format!("node {id} is listed in members; a joining node is not"),
                ));
            }
            if members.is_empty() {
                return Err(invalid(
                    "members",
                    "a joining node needs the running cluster's members",
                ));
            }
        } else {
            if members.is_empty() {
                members.insert(id, peer_addr);
            }
            match members.get(&id) {
                None => {
                    return Err(invalid(
                        "members",
                        format!("this node ({id}) is not listed; use join to add a node later"),
                    ))
                }
                Some(listed) if *listed != peer_addr => {
                    return Err(invalid(
                        "peer_addr",
                        format!("{peer_addr} differs from this node's entry in members ({listed})"),
                    ))
                }
                Some(_) => {}
            }
        }
        let client_addr = match &self.client_addr {
            Some(text) => resolve("client_addr", text)?,
            None => with_port(peer_addr, "client_addr", -100)?,
        };
        let admin_addr = match &self.admin_addr {
            Some(text) => resolve("admin_addr", text)?,
            None => with_port(client_addr, "admin_addr", 200)?,
        };
        let addrs = [peer_addr, client_addr, admin_addr];
        if addrs[0] == addrs[1] || addrs[0] == addrs[2] || addrs[1] == addrs[2] {
            return Err(invalid("client_addr", "peer, client and admin addresses must differ"));
        }
        let data_dir = self.data_dir.ok_or_else(|| invalid("data_dir", "required"))?;
        let tick_ms = self.tick_ms.unwrap_or(20);
        if !(1..=10_000).contains(&tick_ms) {
            return Err(invalid("tick_ms", "must be in 1..=10000"));
        }
        let election_ticks = self.election_ticks.unwrap_or(10);
        if election_ticks < 5 {
            return Err(invalid(
                "election_ticks",
                "must be at least 5 (the lease keeps a 2-tick margin)",
            ));
        }
        let heartbeat_ticks = self.heartbeat_ticks.unwrap_or(1);
        if heartbeat_ticks == 0 || heartbeat_ticks >= election_ticks {
            return Err(invalid(
                "heartbeat_ticks",
                format!("must be at least 1 and below election_ticks ({election_ticks})"),
            ));
        }
        let max_clients = self.max_clients.unwrap_or(10_000);
        if max_clients == 0 {
            return Err(invalid("max_clients", "must be at least 1"));
        }
        let max_request_bytes = self.max_request_bytes.unwrap_or(8 << 20);
        // A larger command could not fit the transport's per-peer queue (32 MiB) with the rest
        // of an AppendEntries, and would stall replication.
        if !(1024..=16 << 20).contains(&max_request_bytes) {
            return Err(invalid("max_request_bytes", "must be in 1 KiB..=16 MiB"));
        }
        if self.password.as_deref() == Some("") {
            return Err(invalid("password", "must not be empty"));
        }
        Ok(ServerConfig {
            id,
            data_dir,
            peer_addr,
            client_addr,
            admin_addr,
            members,
            join,
            password: self.password,
            cluster_id: cluster_id(self.cluster_name.as_deref().unwrap_or("conclave")),
            tick: Duration::from_millis(tick_ms),
            election_ticks,
            heartbeat_ticks,
            snapshot_entries: self.snapshot_entries.unwrap_or(100_000),
            request_timeout: Duration::from_millis(self.request_timeout_ms.unwrap_or(10_000)),
            election_wait: Duration::from_millis(self.election_wait_ms.unwrap_or(3_000)),
            max_clients,
            max_request_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigFile {
        ConfigFile {
            id: Some(2),
            data_dir: Some("/tmp/x".into()),
            members: Some(vec![
                "1=127.0.0.1:7100".into(),
                "2=127.0.0.1:7101".into(),
                "3=127.0.0.1:7102".into(),
            ]),
            ..ConfigFile::default()
        }
    }

    #[test]
    fn ports_follow_the_rule() {
        let config = base().resolve().unwrap();
        assert_eq!(config.peer_addr, "127.0.0.1:7101".parse().unwrap());
        assert_eq!(config.client_addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.admin_addr, "127.0.0.1:7201".parse().unwrap());
        assert_eq!(config.members.len(), 3);
    }

    #[test]
    fn mistakes_name_their_field() {
        let field = |c: ConfigFile| c.resolve().unwrap_err().field;
        assert_eq!(field(ConfigFile { id: Some(9), ..base() }), "members");
        assert_eq!(field(ConfigFile { data_dir: None, ..base() }), "data_dir");
        assert_eq!(field(ConfigFile { members: Some(vec!["x".into()]), ..base() }), "members");
        assert_eq!(field(ConfigFile { heartbeat_ticks: Some(10), ..base() }), "heartbeat_ticks");
        assert_eq!(field(ConfigFile { join: Some(true), ..base() }), "join");
        assert_eq!(field(ConfigFile { index: Some(1), ..base() }), "index");
        assert_eq!(field(ConfigFile { tick_ms: Some(0), ..base() }), "tick_ms");
        assert_eq!(
            field(ConfigFile { peer_addr: Some("127.0.0.1:1".into()), ..base() }),
            "peer_addr"
        );
    }

    #[test]
    fn toml_and_hostfile() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "# cluster\n127.0.0.1:7100\n127.0.0.1:7101\n\n").unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, format!("hostfile = {:?}\nindex = 2\ndata_dir = \"d\"\n", hosts))
            .unwrap();
        let config = ConfigFile::load(&file).unwrap().resolve().unwrap();
        assert_eq!((config.id, config.members.len()), (NodeId(2), 2));
        std::fs::write(&file, "idd = 3\n").unwrap();
        let error = ConfigFile::load(&file).unwrap_err();
        assert!(error.reason.contains("unknown field"), "{error}");
        let merged = ConfigFile { id: Some(1), ..ConfigFile::default() }
            .merge(ConfigFile { id: Some(5), ..ConfigFile::default() });
        assert_eq!(merged.id, Some(5));
    }
}
