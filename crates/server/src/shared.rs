//! State shared by every connection of a node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conclave_core::NodeId;
use conclave_runtime::GroupHandle;
use conclave_transport::Transport;

use crate::advertise::Advertised;
use crate::config::ServerConfig;
use crate::machine::KvMachine;

/// Counters of the client port.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connected: AtomicUsize,
    /// Connections refused (over `max_clients`).
    pub rejected: AtomicU64,
    /// Commands executed.
    pub commands: AtomicU64,
    /// Commands answered with an error.
    pub errors: AtomicU64,
    /// Writes forwarded to the leader.
    pub forwarded: AtomicU64,
    /// Connections closed for a protocol error.
    pub protocol_errors: AtomicU64,
}

/// What sessions and the admin port share.
pub struct Shared {
    /// The node's configuration.
    pub config: ServerConfig,
    /// The key-value group.
    pub handle: GroupHandle<KvMachine>,
    /// The peer transport (for the leader's advertised addresses and link stats).
    pub transport: Transport,
    /// This node's own public addresses.
    pub advertised: Advertised,
    /// When the server started.
    pub started: Instant,
    /// Client port counters.
    pub stats: ClientStats,
    /// Client ids, unique per node.
    pub next_client: AtomicU64,
    /// A random-enough id of this process, for INFO's `run_id`.
    pub run_id: String,
}

impl Shared {
    /// The public addresses of `node`: our own, or what it advertised when its link came up.
    pub fn addresses_of(&self, node: NodeId) -> Option<Advertised> {
        if node == self.config.id {
            return Some(self.advertised);
        }
        self.transport.peer_info(node).and_then(|bytes| Advertised::decode(&bytes))
    }

    /// The leader's client address, if known.
    pub fn leader_client_addr(&self, leader: NodeId) -> Option<SocketAddr> {
        self.addresses_of(leader).map(|a| a.client)
    }
}

/// Milliseconds since the Unix epoch: the leader's clock, stamped into writes so that expiry is
/// decided once, by the leader.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
