//! One peer's state: its address, its outbound queue, and its current link.
//!
//! The queue outlives links: messages queued while a link is down wait (up to the bound) for the
//! next one. Every critical section here is a few field updates, never IO or an await, so a std
//! `Mutex` serves and `send` never blocks on a socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use conclave_core::NodeId;
use tokio::sync::{oneshot, Notify};
use tokio::task::AbortHandle;

use crate::error::SendError;
use crate::frame::MESSAGE_HEADER_BYTES;
use crate::stats::{add, Telemetry};
use crate::GroupId;

/// Locks `mutex`, ignoring poisoning: every critical section in this crate leaves its state
/// consistent at each step, so a panic elsewhere (a bug, which tokio confines to its task) must
/// not also take down every later `send`.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A node this one has an address for, or that has connected to it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) node: NodeId,
    /// Wakes the link's writer when a message is queued. A `notify_one` with no writer waiting
    /// leaves a permit, so a message queued between the writer's check and its wait is not missed.
    pub(crate) wake: Notify,
    pub(crate) state: Mutex<PeerState>,
}

/// The mutable part of a [`Peer`].
#[derive(Debug, Default)]
pub(crate) struct PeerState {
    /// Where to dial it (used only when it has the higher id).
    pub(crate) addr: Option<SocketAddr>,
    /// The bytes from its last hello.
    pub(crate) advertise: Option<Bytes>,
    /// Messages waiting for the writer.
    queue: VecDeque<Queued>,
    /// Invariant: the sum of `wire_bytes()` over `queue`.
    queue_bytes: usize,
    /// The connection in use, if any.
    pub(crate) link: Option<LinkSlot>,
    /// The task that keeps a connection to the peer open, when this node is the one that dials.
    pub(crate) dialer: Option<AbortHandle>,
    /// Set by `remove_peer`, so that a `send` that looked the peer up just before cannot queue
    /// into a queue nobody will ever drain.
    pub(crate) removed: bool,
}

/// A message waiting in a peer's queue. Encoded only when written, straight into the flush
/// buffer, so the payload is copied once.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) group: GroupId,
    pub(crate) payload: Bytes,
}

impl Queued {
    /// What the message costs in a batch frame, which is what the queue bound counts.
    pub(crate) fn wire_bytes(&self) -> usize {
        MESSAGE_HEADER_BYTES + self.payload.len()
    }
}

/// A live link, owned by its peer's state.
///
/// Invariant: a link is up exactly while its slot exists. Dropping the slot (on failure,
/// replacement by a newer connection, `remove_peer` or shutdown) aborts the link's reader and
/// writer tasks, which closes the socket, counts the disconnect and wakes the dialer waiting on
/// `_ended`. Tying all of that to `Drop` means no path that ends a link can forget a step.
#[derive(Debug)]
pub(crate) struct LinkSlot {
    /// Tells this link apart from the peer's earlier and later ones, so that a task of a replaced
    /// link cannot end its successor.
    pub(crate) generation: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) reader: AbortHandle,
    pub(crate) writer: AbortHandle,
    /// Never sent on: dropping it with the slot is what wakes the dialer waiting on the other
    /// end.
    pub(crate) _ended: oneshot::Sender<()>,
    pub(crate) telemetry: Arc<Telemetry>,
}

impl Drop for LinkSlot {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        add(&self.telemetry.counters.disconnects, 1);
        self.telemetry.link_changed();
    }
}

impl Peer {
    pub(crate) fn new(node: NodeId) -> Self {
        Peer { node, wake: Notify::new(), state: Mutex::new(PeerState::default()) }
    }

    /// Queues a message for the writer, or refuses it if the queue would exceed `bytes_max`.
    pub(crate) fn enqueue(&self, message: Queued, bytes_max: usize) -> Result<(), SendError> {
        let mut state = lock(&self.state);
        if state.removed {
            return Err(SendError::UnknownPeer);
        }
        let bytes = message.wire_bytes();
        if state.queue_bytes + bytes > bytes_max {
            return Err(SendError::QueueFull);
        }
        state.queue.push_back(message);
        state.queue_bytes += bytes;
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Moves everything queued into `into`, which must be empty. Swapping the deques keeps both
    /// allocations alive, so a busy link does not allocate a queue per flush.
    pub(crate) fn take_queued(&self, into: &mut VecDeque<Queued>) {
        assert!(into.is_empty(), "the writer clears its batch after each flush");
        let mut state = lock(&self.state);
        std::mem::swap(&mut state.queue, into);
        state.queue_bytes = 0;
    }

    /// Empties the queue and returns how many messages it held.
    pub(crate) fn discard_queued(state: &mut PeerState) -> usize {
        let discarded = state.queue.len();
        state.queue.clear();
        state.queue_bytes = 0;
        discarded
    }

    /// Ends the link numbered `generation` if it is still the current one, and returns its remote
    /// address if so. A reader or writer calls this when its half of the connection fails.
    pub(crate) fn end_link(&self, generation: u64) -> Option<SocketAddr> {
        let mut state = lock(&self.state);
        if state.link.as_ref().is_some_and(|link| link.generation == generation) {
            return state.link.take().map(|link| link.remote);
        }
        None
    }
}
