//! State shared by every connection of a node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Connections closed because their replies were backed up beyond the output limits
    /// (Redis's `client_output_buffer_limit_disconnections`).
    pub output_limit_disconnections: AtomicU64,
    /// Connections closed because all clients together held more than
    /// `max_client_memory_bytes` (Redis's `evicted_clients`).
    pub evicted: AtomicU64,
    /// Connections closed for being idle or for a request left unfinished too long.
    pub timeout_disconnections: AtomicU64,
    /// The most reply bytes one connection has held, since start.
    pub output_buffer_max: AtomicUsize,
    /// The most request bytes one connection has held, since start.
    pub input_buffer_max: AtomicUsize,
    /// AUTH (and HELLO ... AUTH) attempts refused on the client port (INFO's
    /// `acl_access_denied_auth`).
    pub auth_failures: AtomicU64,
    /// Commands refused by ACLs for the command (`acl_access_denied_cmd`).
    pub acl_denied_commands: AtomicU64,
    /// Commands refused by ACLs for a key (`acl_access_denied_key`).
    pub acl_denied_keys: AtomicU64,
    /// Admin requests refused for a missing or wrong bearer token. Kept with the client
    /// port's counters so that `/metrics` reports every port's failures side by side.
    pub admin_auth_failures: AtomicU64,
    /// TLS client connections whose handshake failed or timed out (no certificate, a
    /// certificate not signed by the CA, plain text on the TLS port).
    pub tls_handshake_failures: AtomicU64,
    /// TLS client connections whose handshake succeeded (forwarded writes from followers
    /// included).
    pub tls_connections_total: AtomicU64,
}

/// What one connection holds, and how the node tells it to close when all connections together
/// hold too much.
#[derive(Debug, Default)]
pub struct ClientMemory {
    /// Bytes held in the connection's query and output buffers.
    held: AtomicUsize,
    /// Set once the connection has been chosen to close; it is then no longer counted as a
    /// candidate, so one overflow closes only as many connections as it takes.
    evicted: AtomicBool,
    /// Wakes the connection so that it notices `evicted` while it waits to read or write.
    pub wake: tokio::sync::Notify,
}

impl ClientMemory {
    /// Whether the connection must close to bring client memory under the limit.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// Every connection's memory, so that a limit on all of them together can close the largest
/// first, as Redis's `maxmemory-clients` does: one client holding a lot is closed rather than
/// many small ones.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<u64, Arc<ClientMemory>>>,
    /// The sum of every connection's `held`.
    total: AtomicUsize,
}

impl ClientRegistry {
    /// Registers connection `id`, holding nothing yet.
    pub fn register(&self, id: u64) -> Arc<ClientMemory> {
        let memory = Arc::new(ClientMemory::default());
        lock(&self.clients).insert(id, memory.clone());
        memory
    }

    /// Forgets connection `id` and what it held.
    pub fn unregister(&self, id: u64) {
        if let Some(memory) = lock(&self.clients).remove(&id) {
            self.total.fetch_sub(memory.held.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Bytes all connections hold now (INFO's `mem_clients_normal`).
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Records that a connection now holds `held` bytes; if all together then hold more than
    /// `limit` (0: no limit), marks the largest connections to close until the rest fit, and
    /// returns how many it marked.
    pub fn update(&self, memory: &ClientMemory, held: usize, limit: usize) -> usize {
        let before = memory.held.swap(held, Ordering::Relaxed);
        let total = if held >= before {
            self.total.fetch_add(held - before, Ordering::Relaxed) + (held - before)
        } else {
            self.total.fetch_sub(before - held, Ordering::Relaxed) - (before - held)
        };
        if limit == 0 || total <= limit {
            return 0;
        }
        let clients = lock(&self.clients);
        let mut candidates: Vec<&Arc<ClientMemory>> =
            clients.values().filter(|c| !c.is_evicted()).collect();
        let mut remaining: usize = candidates.iter().map(|c| c.held.load(Ordering::Relaxed)).sum();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.held.load(Ordering::Relaxed)));
        let mut marked = 0;
        for candidate in candidates {
            if remaining <= limit {
                break;
            }
            remaining -= candidate.held.load(Ordering::Relaxed).min(remaining);
            candidate.evicted.store(true, Ordering::Relaxed);
            candidate.wake.notify_one();
            marked += 1;
        }
        marked
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves only byte counts behind: still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// What each client connection holds, for `max_client_memory_bytes`.
    pub clients: ClientRegistry,
    /// Client ids, unique per node.
    pub next_client: AtomicU64,
    /// A random-enough id of this process, for INFO's `run_id`.
    pub run_id: String,
    /// `ACL LOG`: this node's recent refusals.
    pub acl_log: crate::acl::AclLog,
    /// The TLS certificates and configurations, when a port speaks TLS.
    pub tls: Option<Arc<crate::tls::TlsState>>,
    /// The TLS client port's bound address, when there is one.
    pub tls_client_addr: Option<SocketAddr>,
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

    /// The leader's TLS client address, if it has one and it is known.
    pub fn leader_tls_client_addr(&self, leader: NodeId) -> Option<SocketAddr> {
        self.addresses_of(leader).and_then(|a| a.tls_client)
    }
}

/// Milliseconds since the Unix epoch: the leader's clock, stamped into writes so that expiry is
/// decided once, by the leader.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
