//! One node's runtime: the shared transport and the groups that share it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::{DurableState, Index, NodeId, Protocol, WireMessage};
use conclave_storage::{FileStore, LogStore, LogWriter, Options};
use conclave_transport::{GroupId, Transport, TransportError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::envelope::{self, AddressBook};
use crate::error::{BoxError, GroupFailure, RuntimeError, SnapshotError};
use crate::group::GroupLoop;
use crate::handle::{GroupHandle, GroupStatus};
use crate::metrics::{bump, Metrics};
use crate::state_machine::StateMachine;

/// Client requests queued per group; senders wait beyond it (back-pressure on clients).
const GROUP_REQUESTS: usize = 16 * 1024;

/// How to run one group.
#[derive(Clone, Debug)]
pub struct GroupOptions {
    /// The real duration of one protocol tick.
    pub tick: Duration,
    /// The longest a client request may take before it fails with a timeout.
    pub request_timeout: Duration,
    /// Peer addresses from configuration. They win over the replicated address book (which
    /// adds the nodes the configuration does not name), so a cluster restarted on new ports
    /// dials the new ones even though its snapshots and log carry the old.
    pub initial_peers: AddressBook,
    /// Log segment options.
    pub storage: Options,
    /// Bytes of log writes that may wait for the disk before the group stops taking proposals
    /// (clients then wait): bounds memory when the disk is slower than the offered load.
    pub storage_backlog_bytes_max: u64,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            tick: Duration::from_millis(20),
            request_timeout: Duration::from_secs(10),
            initial_peers: AddressBook::new(),
            storage: Options::default(),
            storage_backlog_bytes_max: 64 << 20,
        }
    }
}

/// A node's runtime, shared by its groups.
pub struct Runtime {
    node: NodeId,
    transport: Transport,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    failures: watch::Sender<Option<Arc<GroupFailure>>>,
}

impl Runtime {
    /// A runtime for groups on `node` that talk over `transport`. Each group takes its peer
    /// messages from the transport itself (see [`Runtime::start_group`]).
    pub fn new(node: NodeId, transport: Transport) -> Runtime {
        Runtime {
            node,
            transport,
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            failures: watch::channel(None).0,
        }
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The transport the groups share.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Opens (or creates) the group's storage in `dir`, restores the state machine from the
    /// newest snapshot, builds the core from the recovered state with `make_core`, and starts the
    /// group's loop and its log writer thread.
    pub fn start_group<P, S, E>(
        &self,
        group: GroupId,
        dir: &Path,
        make_core: impl FnOnce(DurableState) -> Result<P, E>,
        mut state: S,
        options: GroupOptions,
    ) -> Result<GroupHandle<S>, RuntimeError>
    where
        P: Protocol + Send + 'static,
        P::Message: WireMessage + Send,
        S: StateMachine,
        E: Into<BoxError>,
    {
        // The group's peer messages come straight from the transport's links into its loop: a
        // loop that falls behind fills this bounded channel and the links stop reading (TCP
        // back-pressure). Claiming the group first also refuses a second start of it.
        let inbox = self.transport.receive(group).map_err(|error| match error {
            TransportError::GroupTaken(group) => RuntimeError::DuplicateGroup(group),
            other => RuntimeError::Transport(other),
        })?;
        let store = FileStore::open(dir, &options.storage)?;
        let durable = store.load()?.state;
        let mut book = AddressBook::new();
        let mut applied = Index(0);
        if let Some(snapshot) = &durable.snapshot {
            let (saved_book, data) =
                envelope::split_image(&snapshot.data).map_err(SnapshotError::Image)?;
            state.restore(&data).map_err(SnapshotError::Restore)?;
            book.extend(saved_book);
            applied = snapshot.index;
        }
        let core = make_core(durable).map_err(|error| RuntimeError::Core(error.into()))?;
        let metrics = Arc::new(Metrics::default());
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let writer_metrics = metrics.clone();
        let storage = LogWriter::start(format!("storage-{group}"), store, move |report| {
            if let Ok(durable) = &report {
                if let Some(sync) = durable.sync {
                    writer_metrics.fsync.observe(sync);
                    bump(&writer_metrics.storage_batches);
                }
                writer_metrics.entries_written.fetch_add(durable.entries, Ordering::Relaxed);
            }
            // The loop is gone only at shutdown, when nothing waits for the report any more.
            let _ = done_tx.send(report);
        })?;
        let (requests_tx, requests_rx) = mpsc::channel(GROUP_REQUESTS);
        let (status_tx, status_rx) = watch::channel(GroupStatus {
            core: core.status(),
            membership: core.membership().cloned(),
            applied,
            stopped: false,
        });
        let state = Arc::new(Mutex::new(state));
        let book_shared = Arc::new(Mutex::new(AddressBook::new()));
        let mut group_loop = GroupLoop::new(
            group,
            core,
            state.clone(),
            book_shared.clone(),
            options.initial_peers.clone(),
            self.transport.clone(),
            storage,
            options.storage_backlog_bytes_max.max(1),
            metrics.clone(),
            status_tx,
            options.tick,
            requests_rx,
            inbox,
            done_rx,
            self.shutdown.subscribe(),
            applied,
        );
        group_loop.set_book(book);
        let failures = self.failures.clone();
        let task = tokio::spawn(async move {
            if let Err(failure) = group_loop.run().await {
                failures.send_replace(Some(Arc::new(failure)));
            }
        });
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
        Ok(GroupHandle {
            group,
            requests: requests_tx,
            status: status_rx,
            state,
            book: book_shared,
            metrics,
            request_timeout: options.request_timeout,
        })
    }

    /// Resolves with the failure once any group has failed (a storage error, or a snapshot it
    /// could not install): the node must stop.
    pub async fn failed(&self) -> Arc<GroupFailure> {
        let mut failures = self.failures.subscribe();
        let failure = match failures.wait_for(Option::is_some).await {
            Ok(failure) => failure.clone(),
            // The sender lives in `self`, which this call borrows: it cannot be gone.
            Err(_) => unreachable!("the runtime's failure channel closed while borrowed"),
        };
        failure.expect("wait_for returns only once a failure is recorded")
    }

    /// Stops every group (their log writers finish what they were handed) and the transport.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
        self.transport.shutdown().await;
    }
}
