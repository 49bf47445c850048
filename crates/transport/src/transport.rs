//! The [`Transport`] handle and the state its tasks share.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use conclave_core::NodeId;
use tokio::net::TcpListener;
use tokio::runtime::Handle as RuntimeHandle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use crate::auth::Nonce;
use crate::config::TransportConfig;
use crate::error::{SendError, TransportError};
use crate::frame::{message_frame_bytes, Hello};
use crate::peer::{lock, LinkSlot, Peer, Queued};
use crate::stats::{add, Telemetry, TransportStats};
use crate::tls::LinkSocket;
use crate::{link, GroupId, Inbound};

/// Framed TCP links to the other nodes of the cluster, shared by every consensus group on this
/// node. Cheap to clone: clones share the links. See the crate documentation for the connection
/// rule and the wire format.
///
/// Dropping the last clone aborts every link at once (without waiting for the sockets to close);
/// [`Transport::shutdown`] does the same and waits.
#[derive(Clone, Debug)]
pub struct Transport {
    handle: Arc<Handle>,
}

/// Owned only by the user's [`Transport`] clones, never by the transport's own tasks, so that its
/// `Drop` runs when the user lets go even though the tasks still hold [`Shared`].
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Dropping a JoinSet aborts its tasks.
        drop(self.shared.close());
    }
}

/// What the accept loop, the dialers and the links share with the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: TransportConfig,
    local_addr: SocketAddr,
    /// Tasks are spawned here, so that `set_peer` works from any thread, not only from inside the
    /// runtime.
    runtime: RuntimeHandle,
    pub(crate) telemetry: Arc<Telemetry>,
    registry: Mutex<Registry>,
    generation: AtomicU64,
    /// The hosts that failed authentication, so that each is warned about once.
    auth_warned: Mutex<HashSet<IpAddr>>,
}

/// How many hosts `Shared::auth_warned` remembers before it starts over.
const AUTH_WARNED_HOSTS_MAX: usize = 1024;

/// The peers and the tasks. Lock order: the registry before a peer's state, never the reverse.
#[derive(Debug)]
struct Registry {
    peers: HashMap<NodeId, Arc<Peer>>,
    /// Every task the transport runs (accept loop, handshakes, dialers, readers, writers), so that
    /// shutdown can abort them and wait until their sockets are closed.
    tasks: JoinSet<()>,
    /// Each receiving group's channel (see [`Transport::receive`]); emptied once closed, so
    /// that every receiver sees the end of its stream.
    routes: HashMap<GroupId, mpsc::Sender<Inbound>>,
    closed: bool,
}

impl Registry {
    /// Spawns `task`, first reaping finished tasks so that a long-lived transport with many
    /// reconnects does not accumulate them.
    fn spawn<F>(&mut self, runtime: &RuntimeHandle, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        while let Some(result) = self.tasks.try_join_next() {
            if let Err(err) = result {
                if err.is_panic() {
                    tracing::error!("transport: a task panicked: {err}");
                }
            }
        }
        self.tasks.spawn_on(task, runtime)
    }
}

/// Which side of a connection is attaching it to its peer.
pub(crate) enum Side<'a> {
    /// This node dialed `peer`; attach only if the peer is still registered (not removed or
    /// replaced by a `set_peer` with a new address meanwhile).
    Dialed(&'a Arc<Peer>),
    /// The peer dialed this node; it becomes known if it was not.
    Accepted,
}

impl Transport {
    /// Starts accepting links on `listener` and returns the handle. Inbound messages go to the
    /// groups that asked for them with [`Transport::receive`].
    ///
    /// The listener is bound by the caller, so that tests and tools can bind port 0 and read the
    /// chosen port.
    ///
    /// Must be called inside a tokio runtime, which runs every task of the transport.
    pub fn start(
        config: TransportConfig,
        listener: TcpListener,
    ) -> Result<Transport, TransportError> {
        config.validate()?;
        let runtime = RuntimeHandle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            local_addr,
            runtime,
            telemetry: Arc::new(Telemetry::new()),
            registry: Mutex::new(Registry {
                peers: HashMap::new(),
                tasks: JoinSet::new(),
                routes: HashMap::new(),
                closed: false,
            }),
            generation: AtomicU64::new(0),
            auth_warned: Mutex::new(HashSet::new()),
        });
        shared.spawn(link::accept_loop(shared.clone(), listener));
        tracing::info!(
            "transport: node {} listening on {local_addr} (cluster {})",
            shared.config.node,
            shared.config.cluster_id
        );
        if shared.config.secret.is_empty() {
            tracing::warn!(
                "transport: no cluster secret: any process that reaches {local_addr} can \
                 authenticate as a peer"
            );
        }
        Ok(Transport { handle: Arc::new(Handle { shared }) })
    }

    /// The stream of messages for `group`, which the links hand straight to it.
    ///
    /// The channel is bounded (`inbound_messages_max`): while it is full, the link that has a
    /// message for it stops reading its socket, and TCP flow control slows the sender, instead
    /// of this node buffering without bound or dropping. A link carries every group, so its
    /// other groups wait too. Messages for a group nobody receives are dropped and counted.
    /// The stream ends after [`Transport::shutdown`]; dropping the receiver lets the group be
    /// received again (a group restarted on this node).
    pub fn receive(&self, group: GroupId) -> Result<mpsc::Receiver<Inbound>, TransportError> {
        let shared = self.shared();
        let mut registry = lock(&shared.registry);
        if registry.closed {
            return Err(TransportError::Closed);
        }
        if registry.routes.get(&group).is_some_and(|route| !route.is_closed()) {
            return Err(TransportError::GroupTaken(group));
        }
        let (route, receiver) = mpsc::channel(shared.config.inbound_messages_max);
        registry.routes.insert(group, route);
        Ok(receiver)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// This node's id, as configured.
    pub fn node(&self) -> NodeId {
        self.shared().config.node
    }

    /// The address the listener is bound to, for logs and for tests that bound port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local_addr
    }

    /// Adds a peer or changes its address.
    ///
    /// If `node` has the higher id this node dials it, now and after every failure, for as long
    /// as the peer is set; a new address closes the current link and dials the new one. If `node`
    /// has the lower id it dials this node, and the address is only remembered; setting it still
    /// lets messages for `node` queue before it connects. Setting this node's own id is ignored,
    /// so the runtime can pass the whole membership.
    pub fn set_peer(&self, node: NodeId, addr: SocketAddr) {
        let shared = self.shared();
        if node == shared.config.node {
            return;
        }
        let mut registry = lock(&shared.registry);
        if registry.closed {
            return;
        }
        let peer = registry.peers.entry(node).or_insert_with(|| Arc::new(Peer::new(node))).clone();
        let mut state = lock(&peer.state);
        if state.addr == Some(addr) {
            return;
        }
        let moved = state.addr.replace(addr).is_some();
        if node < shared.config.node {
            return;
        }
        if moved {
            tracing::info!("transport: node {node} moved to {addr}; reconnecting");
            state.link = None;
            if let Some(dialer) = state.dialer.take() {
                dialer.abort();
            }
        }
        if state.dialer.is_none() {
            let dialer = link::dial_loop(shared.clone(), peer.clone());
            state.dialer = Some(registry.spawn(&shared.runtime, dialer));
        }
    }

    /// Closes the link to `node` and forgets it: its address, its queue (the messages are
    /// dropped) and its advertised bytes. A lower-id node that keeps dialing this one becomes
    /// known again when it next connects; remove it on its own side to stop that.
    pub fn remove_peer(&self, node: NodeId) {
        let shared = self.shared();
        let Some(peer) = lock(&shared.registry).peers.remove(&node) else { return };
        shared.forget(&peer);
    }

    /// Queues `payload` for the link to `to`, tagged with `group`.
    ///
    /// Never blocks: the caller is a consensus loop, which must not wait on a slow peer. Every
    /// error drops the message (protocols retransmit): [`SendError::UnknownPeer`] if the node has
    /// neither an address nor a connection, [`SendError::QueueFull`] beyond `queue_bytes_max`,
    /// [`SendError::TooLarge`] if it cannot fit in one frame, [`SendError::Closed`] after
    /// shutdown. A message queued while the link is down waits for the next one.
    ///
    /// Messages to one peer are written in the order they were queued, so they arrive in order
    /// while the link stays up. A link failure may lose the messages being written at the time,
    /// never duplicate or reorder the rest.
    pub fn send(&self, to: NodeId, group: GroupId, payload: Bytes) -> Result<(), SendError> {
        let shared = self.shared();
        let result = shared.enqueue(to, Queued { group, payload });
        if result.is_err() {
            add(&shared.telemetry.counters.messages_dropped, 1);
        }
        result
    }

    /// The `advertise` bytes from `node`'s last handshake, kept after its link goes down so that
    /// the runtime can still redirect clients to it.
    pub fn peer_info(&self, node: NodeId) -> Option<Bytes> {
        let peer = lock(&self.shared().registry).peers.get(&node).cloned()?;
        let advertise = lock(&peer.state).advertise.clone();
        advertise
    }

    /// The nodes with a link up right now, in id order.
    pub fn connected(&self) -> Vec<NodeId> {
        let peers: Vec<Arc<Peer>> = lock(&self.shared().registry).peers.values().cloned().collect();
        let mut nodes: Vec<NodeId> =
            peers.iter().filter(|peer| lock(&peer.state).link.is_some()).map(|p| p.node).collect();
        nodes.sort_unstable();
        nodes
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        self.shared().telemetry.counters.snapshot()
    }

    /// Closes the listener and every link, drops every queued message, and returns once their
    /// sockets are closed (so the port can be bound again at once). Later sends fail with
    /// [`SendError::Closed`] and every group's inbound stream ends. Idempotent.
    pub async fn shutdown(&self) {
        if let Some(mut tasks) = self.shared().close() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Test access to the shared state.
    #[cfg(test)]
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.shared().telemetry
    }
}

impl Shared {
    /// Spawns a task on the transport's runtime unless the transport is closed. Returns false if
    /// it was closed.
    pub(crate) fn spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut registry = lock(&self.registry);
        if registry.closed {
            return false;
        }
        registry.spawn(&self.runtime, task);
        true
    }

    fn enqueue(&self, to: NodeId, message: Queued) -> Result<(), SendError> {
        if message_frame_bytes(message.payload.len()) > self.config.frame_bytes_max {
            return Err(SendError::TooLarge);
        }
        let peer = {
            let registry = lock(&self.registry);
            if registry.closed {
                return Err(SendError::Closed);
            }
            registry.peers.get(&to).cloned().ok_or(SendError::UnknownPeer)?
        };
        peer.enqueue(message, self.config.queue_bytes_max)
    }

    /// Where messages for `group` go: `None` if no group receives them (or the transport is
    /// closed).
    pub(crate) fn route(&self, group: GroupId) -> Option<mpsc::Sender<Inbound>> {
        lock(&self.registry).routes.get(&group).cloned()
    }

    /// The hello this node sends on a connection, with that connection's `nonce`.
    pub(crate) fn hello(&self, nonce: Nonce) -> Hello {
        Hello {
            cluster_id: self.config.cluster_id,
            node: self.config.node,
            frame_bytes_max: self.config.frame_bytes_max_u32(),
            nonce,
            advertise: self.config.advertise.clone(),
        }
    }

    /// Records an authentication failure from `host` and returns true if it is the first one
    /// from there, which is the one worth a warning. The set is bounded: past
    /// `AUTH_WARNED_HOSTS_MAX` hosts it is cleared, so a scan of many addresses costs bounded
    /// memory and at worst some repeated warnings.
    pub(crate) fn first_auth_failure_from(&self, host: IpAddr) -> bool {
        let mut warned = lock(&self.auth_warned);
        if warned.len() >= AUTH_WARNED_HOSTS_MAX {
            warned.clear();
        }
        warned.insert(host)
    }

    /// Makes a handshaken connection the peer's link, replacing (and so closing) any older one.
    /// Returns a receiver that completes when the link ends, or `None` if the connection was
    /// dropped instead (the transport is closed, or the dialed peer was removed meanwhile).
    pub(crate) fn attach(
        self: &Arc<Self>,
        side: Side<'_>,
        socket: LinkSocket,
        remote: SocketAddr,
        hello: Hello,
    ) -> Option<oneshot::Receiver<()>> {
        let mut registry = lock(&self.registry);
        if registry.closed {
            return None;
        }
        let peer = match side {
            Side::Dialed(peer) => {
                let current = registry.peers.get(&peer.node);
                if !current.is_some_and(|current| Arc::ptr_eq(current, peer)) {
                    return None;
                }
                peer.clone()
            }
            Side::Accepted => {
                let node = hello.node;
                registry.peers.entry(node).or_insert_with(|| Arc::new(Peer::new(node))).clone()
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let frame_bytes_max = self.config.frame_bytes_max.min(hello.frame_bytes_max as usize);
        let (read, write) = socket.split();
        let (ended, link_ended) = oneshot::channel();
        // The peer's state stays locked until the slot is in place, so that a task that fails at
        // once finds its slot when it comes to end it.
        let mut state = lock(&peer.state);
        let link = link::Link { shared: self.clone(), peer: peer.clone(), generation, remote };
        let reader = registry.spawn(&self.runtime, link.clone().read(read));
        let writer = registry.spawn(&self.runtime, link.write(write, frame_bytes_max));
        state.advertise = Some(hello.advertise);
        state.link = Some(LinkSlot {
            generation,
            remote,
            reader,
            writer,
            _ended: ended,
            telemetry: self.telemetry.clone(),
        });
        add(&self.telemetry.counters.connects, 1);
        self.telemetry.link_changed();
        tracing::info!("transport: link to node {} at {remote} up", peer.node);
        Some(link_ended)
    }

    /// Stops everything that concerns `peer`, which was just taken out of the registry.
    fn forget(&self, peer: &Peer) {
        let mut state = lock(&peer.state);
        state.removed = true;
        state.addr = None;
        state.advertise = None;
        state.link = None;
        if let Some(dialer) = state.dialer.take() {
            dialer.abort();
        }
        let discarded = Peer::discard_queued(&mut state);
        add(&self.telemetry.counters.messages_dropped, discarded as u64);
    }

    /// Marks the transport closed and ends every link; returns the tasks for the caller to await
    /// or drop, or `None` if it was already closed.
    fn close(&self) -> Option<JoinSet<()>> {
        let mut registry = lock(&self.registry);
        if registry.closed {
            return None;
        }
        registry.closed = true;
        registry.routes.clear();
        for (_, peer) in registry.peers.drain() {
            self.forget(&peer);
        }
        tracing::info!("transport: node {} shut down", self.config.node);
        Some(std::mem::take(&mut registry.tasks))
    }
}
