//! Starting and stopping a node: listeners, transport, runtime, the key-value group, the client
//! and admin ports, and the leader's expiry sweeper.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_core::{NodeId, SeededRng};
use conclave_raft::{Config, Raft};
use conclave_runtime::{GroupOptions, Runtime, RuntimeError};
use conclave_storage::StorageError;
use conclave_transport::{GroupId, Transport, TransportConfig};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::advertise::Advertised;
use crate::config::ServerConfig;
use crate::machine::KvMachine;
use crate::shared::{now_ms, ClientStats, Shared};
use crate::tls::TlsState;
use crate::{admin, session};

/// The key-value store's consensus group.
pub const KV_GROUP: GroupId = GroupId(1);
/// How often the leader checks for keys whose deadline has passed.
const EXPIRY_SWEEP: Duration = Duration::from_millis(50);

/// Why a node could not start or had to stop.
#[derive(Debug, Error)]
pub enum ServeError {
    /// A listen address could not be bound.
    #[error("cannot listen on {what} address {addr}: {source}")]
    Bind {
        /// Which port.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory holds corruption (not a torn tail): the node refuses to start rather
    /// than guess, and says how to rebuild it from its peers.
    #[error(
        "{corruption}\nthis node's storage is damaged, so it will not start: it may have lost \
         entries it acknowledged, or votes it gave. Inspect it with `conclave wal inspect {dir}`. \
         To rebuild it from its peers while the others keep running (the damaged files are \
         moved aside, not deleted), run `conclave wal repair --data-dir {dir} --id {id} --admin \
         ADDR_OF_A_RUNNING_NODE` (see \"Recovering a node with a damaged disk\" in \
         docs/SECURITY.md)",
        dir = data_dir.display()
    )]
    DamagedStorage {
        /// The node.
        id: NodeId,
        /// Its data directory.
        data_dir: std::path::PathBuf,
        /// The file, offset and reason.
        corruption: conclave_storage::CorruptionError,
    },
    /// `conclave wal repair` emptied the data directory for another node: the cluster took that
    /// node out and back in as a learner, so under this id the empty log would be a voter's.
    #[error(
        "{} was emptied by `conclave wal repair` for node {rebuilt}, but this node is {id}: \
         check --id (or the hostfile index); starting a voter on an emptied log could lose \
         committed writes",
        data_dir.display()
    )]
    RebuiltForAnother {
        /// This node.
        id: NodeId,
        /// The node the directory was emptied for.
        rebuilt: NodeId,
        /// The data directory.
        data_dir: std::path::PathBuf,
    },
    /// The transport or the group failed to start.
    #[error("{0}")]
    Start(String),
    /// The TLS certificate, key or CA could not be loaded; the message names the file.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The node stopped because a group failed (its storage, or a snapshot it could not
    /// install).
    #[error("stopped: {0}")]
    Failed(#[source] std::sync::Arc<conclave_runtime::GroupFailure>),
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { what, addr, source })
}

/// A running node.
pub struct Server {
    shared: Arc<Shared>,
    runtime: Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds every port, recovers the data directory and starts serving.
    pub async fn start(config: ServerConfig) -> Result<Server, ServeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        match conclave_storage::rebuilt_for(&config.data_dir) {
            Ok(Some(rebuilt)) if rebuilt != config.id => {
                return Err(ServeError::RebuiltForAnother {
                    id: config.id,
                    rebuilt,
                    data_dir: config.data_dir.clone(),
                })
            }
            Ok(_) => {}
            Err(error) => return Err(ServeError::Start(error.to_string())),
        }
        // The directory records whose it is at first start (an older one at its next start),
        // so that the same directory started under another id is refused.
        conclave_storage::claim(&config.data_dir, config.id)
            .map_err(|error| ServeError::Start(error.to_string()))?;
        // TLS files first: a wrong path is the likeliest mistake, and it must stop the start
        // before any port opens.
        let tls = match &config.tls {
            Some(tls) => Some(Arc::new(TlsState::load(tls.files.clone(), tls.cluster)?)),
            None => None,
        };
        let peer_listener = bind("peer", config.peer_addr).await?;
        let client_listener = bind("client", config.client_addr).await?;
        let admin_listener = bind("admin", config.admin_addr).await?;
        // The bound addresses, not the configured ones: port 0 asks the OS for a free port,
        // and peers and operators need the real one.
        let bound = |what, listener: &TcpListener, addr| {
            listener.local_addr().map_err(|source| ServeError::Bind { what, addr, source })
        };
        let peer_bound = bound("peer", &peer_listener, config.peer_addr)?;
        let client_bound = bound("client", &client_listener, config.client_addr)?;
        let admin_bound = bound("admin", &admin_listener, config.admin_addr)?;
        let tls_client_listener = match config.tls.as_ref().and_then(|tls| tls.client_addr) {
            Some(addr) => Some((bind("TLS client", addr).await?, addr)),
            None => None,
        };
        let tls_client_bound = match &tls_client_listener {
            Some((listener, addr)) => Some(bound("TLS client", listener, *addr)?),
            None => None,
        };
        let advertised =
            Advertised { client: client_bound, admin: admin_bound, tls_client: tls_client_bound };
        let mut transport_config = TransportConfig::new(config.id, config.cluster_id);
        transport_config.advertise = advertised.encode();
        transport_config.secret = config.cluster_secret.clone();
        transport_config.tls = tls.as_ref().and_then(|tls| tls.peer());
        let transport = Transport::start(transport_config, peer_listener)
            .map_err(|e| ServeError::Start(format!("transport: {e}")))?;
        let runtime = Runtime::new(config.id, transport.clone());

        let mut raft = Config::new(config.id, config.members.keys().copied().collect());
        raft.election_ticks = config.election_ticks;
        raft.heartbeat_ticks = config.heartbeat_ticks;
        raft.snapshot_entries = config.snapshot_entries;
        raft.command_bytes_max = config.max_request_bytes + 1024;
        let seed = seed(config.id);
        let options = GroupOptions {
            tick: config.tick,
            request_timeout: config.request_timeout,
            initial_peers: config.members.clone(),
            ..GroupOptions::default()
        };
        let handle = runtime
            .start_group(
                KV_GROUP,
                &config.data_dir,
                move |durable| Raft::new(raft, durable, Box::new(SeededRng::new(seed))),
                KvMachine::default(),
                options,
            )
            .map_err(|error| match error {
                RuntimeError::Storage(StorageError::Corrupt(corruption)) => {
                    ServeError::DamagedStorage {
                        id: config.id,
                        data_dir: config.data_dir.clone(),
                        corruption,
                    }
                }
                other => ServeError::Start(other.to_string()),
            })?;
        let status = handle.status();
        tracing::info!(
            node = %config.id,
            client = %client_bound,
            peer = %peer_bound,
            admin = %admin_bound,
            tls_client = ?tls_client_bound,
            tls_admin = config.tls.as_ref().is_some_and(|tls| tls.admin),
            tls_cluster = config.tls.as_ref().is_some_and(|tls| tls.cluster),
            admin_token = config.admin_token.is_some(),
            password = config.password.is_some(),
            term = status.core.term.0,
            applied = status.applied.0,
            last_index = status.core.last_index.0,
            "node started"
        );
        if config.insecure {
            tracing::warn!(
                "protected mode is off (insecure): ports beyond loopback may be open to anyone \
                 who can reach them"
            );
        }
        let shared = Arc::new(Shared {
            run_id: format!("{:040x}", u128::from(seed) << 64 | u128::from(std::process::id())),
            config,
            handle,
            transport,
            advertised,
            started: Instant::now(),
            stats: ClientStats::default(),
            clients: Default::default(),
            next_client: Default::default(),
            acl_log: Default::default(),
            tls,
            tls_client_addr: tls_client_bound,
        });
        let mut tasks = vec![
            tokio::spawn(accept_clients(shared.clone(), client_listener, false)),
            tokio::spawn(accept_admin(shared.clone(), admin_listener)),
            tokio::spawn(sweep_expired(shared.clone())),
        ];
        if let Some((listener, _)) = tls_client_listener {
            tasks.push(tokio::spawn(accept_clients(shared.clone(), listener, true)));
        }
        if let Some(every) = shared.config.tls.as_ref().and_then(|tls| tls.reload_check) {
            tasks.push(tokio::spawn(watch_tls_files(shared.clone(), every)));
        }
        Ok(Server { shared, runtime, tasks })
    }

    /// The node's shared state (for tests and embedding).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until `shutdown` resolves (a clean stop) or the storage fails (an error).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            reason = self.runtime.failed() => Err(ServeError::Failed(reason)),
        };
        for task in &self.tasks {
            task.abort();
        }
        self.runtime.shutdown().await;
        tracing::info!(node = %self.shared.config.id, "node stopped");
        outcome
    }
}

/// A seed for the core's randomised election timeouts: distinct per node and per start.
fn seed(id: NodeId) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Accepts client connections; over TLS (`tls`) each handshake runs in the connection's own
/// task, so a slow handshake holds up no one else.
async fn accept_clients(shared: Arc<Shared>, listener: TcpListener, tls: bool) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        shared.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        if shared.stats.connected.load(Ordering::Relaxed) >= shared.config.max_clients {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            });
            continue;
        }
        shared.stats.connected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let shared = shared.clone();
        // The acceptor is taken now, so a connection gets the certificate current when it came.
        let acceptor = shared.tls.as_ref().filter(|_| tls).map(|state| state.client_acceptor());
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let (reader, writer) = stream.into_split();
                    session::serve(shared.clone(), Box::new(reader), Box::new(writer), false, peer)
                        .await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            shared.stats.tls_connections_total.fetch_add(1, Ordering::Relaxed);
                            let (reader, writer) = tokio::io::split(stream);
                            session::serve(
                                shared.clone(),
                                Box::new(reader),
                                Box::new(writer),
                                true,
                                peer,
                            )
                            .await;
                        }
                        Ok(Err(error)) => {
                            shared.stats.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%error, "TLS client handshake failed");
                        }
                        Err(_) => {
                            shared.stats.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            shared.stats.connected.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// How long a client has to finish a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many admin connections are served at once. Each may hold a request of up to 80 KiB for
/// its read timeout (and a TLS handshake for [`TLS_HANDSHAKE_TIMEOUT`]) before saying anything
/// that can be checked, so without a cap whoever reaches the port could open connections until
/// the node runs out of memory or file descriptors. Operators and scrapers need few.
const ADMIN_CONNECTIONS_MAX: usize = 64;

async fn accept_admin(shared: Arc<Shared>, listener: TcpListener) {
    let https = shared.config.tls.as_ref().is_some_and(|tls| tls.admin);
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS_MAX));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("admin connection refused: {ADMIN_CONNECTIONS_MAX} already open");
            if !https {
                tokio::spawn(async move {
                    let busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n";
                    let _ = stream.write_all(busy).await;
                });
            }
            continue;
        };
        let addrs = [stream.peer_addr().ok(), stream.local_addr().ok()];
        let shared = shared.clone();
        let acceptor = shared.tls.as_ref().filter(|_| https).map(|state| state.admin_acceptor());
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return admin::serve(shared, stream, addrs, false).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    // The verifier has checked any certificate against the CA already.
                    let certified =
                        stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                    admin::serve(shared, stream, addrs, certified).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, "TLS admin handshake failed"),
                Err(_) => tracing::debug!("TLS admin handshake timed out"),
            }
        });
    }
}

/// Reloads the TLS files when they change, so a renewed certificate takes effect without a
/// restart or an explicit `POST /tls/reload`.
async fn watch_tls_files(shared: Arc<Shared>, every: Duration) {
    let Some(tls) = shared.tls.clone() else { return };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Errors are logged and counted by `reload`.
        let _ = tls.reload_if_changed();
    }
}

/// On the leader, proposes an expiry command whenever a key's deadline has passed by the
/// leader's clock; every node then deletes the same keys at the same log position.
async fn sweep_expired(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(EXPIRY_SWEEP);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !shared.handle.is_leader() {
            continue;
        }
        let now = now_ms();
        let due = shared.handle.with_state(|m| m.store.next_expiry().is_some_and(|at| at <= now));
        if due {
            if let Err(error) = shared.handle.propose(&conclave_kv::expire_command(now)).await {
                tracing::debug!(%error, "expiry sweep not applied");
            }
        }
    }
}
