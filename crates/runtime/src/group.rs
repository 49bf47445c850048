//! The event loop of one consensus group on one node: it owns the protocol core and drives it
//! with real time, peer messages, client requests and storage completions.
//!
//! Each turn of the loop takes one event and then everything else already queued (so a burst of
//! proposals becomes one `Ready`, one storage batch and one round of messages), then carries out
//! the core's `Ready`s in the order the persistence contract demands:
//! 1. `messages` go to the transport at once;
//! 2. the writes go to the log writer (`conclave_storage::LogWriter`) as one job;
//! 3. `persisted_messages` wait until that job (and every earlier one) is durable, and the core
//!    hears of the durable log prefix with `on_persisted`;
//! 4. committed entries are applied, answering the clients that proposed them;
//! 5. reads are answered once the state machine has applied their read index.
//!
//! Snapshots are built off the loop: when the core asks for one, the loop takes a cheap
//! point-in-time copy of the state ([`StateMachine::begin_snapshot`]) and a blocking thread
//! encodes it, while the loop goes on ticking, heartbeating, replicating and applying; the image
//! comes back as one more event and is handed to the core, which persists it through the log
//! writer (fsynced and renamed into place before the log is compacted).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use conclave_core::contract::Checked;
use conclave_core::{
    Entry, EntryKind, Envelope, Index, MembershipChange, MessageMeta, NodeId, ProposeError,
    Protocol, ReadError, ReadId, ReadMode, Ready, Role, Term, WireMessage,
};
use conclave_storage::{Durable, JobId, LogWriter, StorageError, WriteJob};
use conclave_transport::{GroupId, Inbound, Transport};
use tokio::sync::{mpsc, oneshot, watch};

use crate::envelope::{self, AddressBook};
use crate::error::{ClientError, FailureReason, GroupFailure, SnapshotError};
use crate::handle::{GroupStatus, MemberProgress};
use crate::metrics::{bump, record_max, Metrics};
use crate::state_machine::StateMachine;

/// A request from a client session or the admin port to the loop.
pub(crate) enum Request<S: StateMachine> {
    /// Propose a runtime command (already wrapped by [`envelope`]); `reply` gets the outcome once
    /// it is applied. With `term`, refused unless this node still leads in that term.
    Propose { command: Bytes, term: Option<Term>, reply: Reply<S> },
    /// Confirm a read; `reply` fires once the state machine has applied the read index.
    Read { mode: ReadMode, reply: oneshot::Sender<Result<(), ClientError>> },
    /// Change the membership; `reply` fires once the change is applied here.
    ChangeMembership { change: MembershipChange, reply: oneshot::Sender<Result<(), ClientError>> },
    /// Hand leadership to a voter.
    TransferLeadership { target: NodeId, reply: oneshot::Sender<Result<(), ClientError>> },
    /// Describe replication progress (leader only) for the status page.
    Progress { reply: oneshot::Sender<Vec<MemberProgress>> },
}

/// Where the outcome of a proposal goes, by what the proposer expects back.
pub(crate) enum Reply<S: StateMachine> {
    /// A user command: the state machine's output.
    Output(oneshot::Sender<Result<S::Output, ClientError>>),
    /// A runtime command or a membership change: only that it took effect.
    Done(oneshot::Sender<Result<(), ClientError>>),
}

impl<S: StateMachine> Reply<S> {
    fn fail(self, error: ClientError) {
        match self {
            Reply::Output(reply) => drop(reply.send(Err(error))),
            Reply::Done(reply) => drop(reply.send(Err(error))),
        }
    }
}

/// What applying an entry gave back.
enum Applied<O> {
    /// The state machine's output for a user command.
    Output(O),
    /// A runtime command, a membership change or a no-op took effect.
    Done,
}

/// A proposal waiting for its entry to be applied.
struct Waiter<S: StateMachine> {
    term: Term,
    reply: Reply<S>,
}

/// Writes handed to the log writer whose follow-ups wait for durability.
struct PendingPersist<M> {
    job: JobId,
    messages: Vec<Envelope<M>>,
    last_entry: Option<(Index, Term)>,
    /// What the job weighs against [`GroupLoop::backlog_max`].
    bytes: u64,
}

/// The loop's state.
pub(crate) struct GroupLoop<P: Protocol, S: StateMachine> {
    group: GroupId,
    /// The core, behind the contract check: in debug builds (every test) it asserts that this
    /// loop keeps the `Ready` contract; in release builds it only passes calls through.
    core: Checked<P>,
    state: Arc<Mutex<S>>,
    book: Arc<Mutex<AddressBook>>,
    /// Addresses from this node's configuration: they win over the replicated address book, so
    /// restarting a cluster on new ports is not undone by the addresses its snapshots carry.
    configured: AddressBook,
    transport: Transport,
    storage: LogWriter,
    metrics: Arc<Metrics>,
    status: watch::Sender<GroupStatus>,
    tick: Duration,
    requests: mpsc::Receiver<Request<S>>,
    inbound: mpsc::Receiver<Inbound>,
    done: mpsc::UnboundedReceiver<Result<Durable, StorageError>>,
    shutdown: watch::Receiver<bool>,
    /// The index the state machine has applied.
    applied: Index,
    pending: VecDeque<PendingPersist<P::Message>>,
    /// Bytes handed to the log writer and not yet durable.
    backlog: u64,
    /// Above this backlog the loop takes no more proposals until the disk catches up, so a slow
    /// disk pushes back on clients instead of growing memory.
    backlog_max: u64,
    /// Whether proposals are being held back now (to count each episode once).
    held: bool,
    waiters: BTreeMap<Index, Waiter<S>>,
    reads: HashMap<ReadId, oneshot::Sender<Result<(), ClientError>>>,
    reads_waiting_apply: BTreeMap<Index, Vec<oneshot::Sender<Result<(), ClientError>>>>,
    next_read: ReadId,
    role: Role,
    /// Where snapshot threads send the images they built, with the applied index each was
    /// taken at; the loop keeps a sender so the channel never closes under it.
    snapshots_tx: mpsc::UnboundedSender<(Index, Bytes)>,
    snapshots: mpsc::UnboundedReceiver<(Index, Bytes)>,
}

/// One thing the loop woke up for.
enum Event<S: StateMachine> {
    Shutdown(bool),
    Durable(Option<Result<Durable, StorageError>>),
    SnapshotBuilt(Option<(Index, Bytes)>),
    Tick(tokio::time::Instant),
    Inbound(Option<Inbound>),
    Request(Option<Request<S>>),
}

/// Most events taken from one channel before the loop handles the core's output.
const DRAIN_MAX: usize = 4096;

/// What one log entry weighs in the storage backlog beyond its data (index, term, framing).
const ENTRY_OVERHEAD: u64 = 32;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug elsewhere; the data (a map or a state machine
    // between two applies) is still consistent, so keep going rather than cascade the panic.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<P, S> GroupLoop<P, S>
where
    P: Protocol + Send + 'static,
    P::Message: WireMessage + Send,
    S: StateMachine,
{
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        group: GroupId,
        core: P,
        state: Arc<Mutex<S>>,
        book: Arc<Mutex<AddressBook>>,
        configured: AddressBook,
        transport: Transport,
        storage: LogWriter,
        backlog_max: u64,
        metrics: Arc<Metrics>,
        status: watch::Sender<GroupStatus>,
        tick: Duration,
        requests: mpsc::Receiver<Request<S>>,
        inbound: mpsc::Receiver<Inbound>,
        done: mpsc::UnboundedReceiver<Result<Durable, StorageError>>,
        shutdown: watch::Receiver<bool>,
        applied: Index,
    ) -> Self {
        let role = core.status().role;
        let (snapshots_tx, snapshots) = mpsc::unbounded_channel();
        GroupLoop {
            group,
            core: Checked::new(core),
            state,
            book,
            configured,
            transport,
            storage,
            backlog: 0,
            backlog_max,
            held: false,
            metrics,
            status,
            tick,
            requests,
            inbound,
            done,
            shutdown,
            applied,
            pending: VecDeque::new(),
            waiters: BTreeMap::new(),
            reads: HashMap::new(),
            reads_waiting_apply: BTreeMap::new(),
            next_read: 1,
            role,
            snapshots_tx,
            snapshots,
        }
    }

    /// Runs until shutdown (`Ok`) or a failure that must stop the node.
    pub async fn run(mut self) -> Result<(), GroupFailure> {
        let mut ticker = tokio::time::interval(self.tick);
        // Ticks missed while the loop was busy are delivered, not skipped: the core must count
        // the time that passed, or a stalled leader would trust its lease past the followers'
        // election timeout.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        self.publish_status();
        let failure = loop {
            let event = tokio::select! {
                biased;
                changed = self.shutdown.changed() => {
                    Event::Shutdown(changed.is_err() || *self.shutdown.borrow())
                }
                done = self.done.recv() => Event::Durable(done),
                built = self.snapshots.recv() => Event::SnapshotBuilt(built),
                due = ticker.tick() => Event::Tick(due),
                message = self.inbound.recv() => Event::Inbound(message),
                request = self.requests.recv(), if self.backlog < self.backlog_max => {
                    Event::Request(request)
                }
            };
            let turn = Instant::now();
            match event {
                Event::Shutdown(stop) => {
                    if stop {
                        break None;
                    }
                }
                Event::Durable(done) => {
                    match done {
                        Some(Ok(durable)) => self.on_durable(durable.upto),
                        Some(Err(error)) => break Some(FailureReason::Storage(error)),
                        None => break Some(FailureReason::WriterGone),
                    }
                    for _ in 0..DRAIN_MAX {
                        match self.done.try_recv() {
                            Ok(Ok(durable)) => self.on_durable(durable.upto),
                            Ok(Err(error)) => return self.fail(FailureReason::Storage(error)),
                            Err(_) => break,
                        }
                    }
                }
                // The loop holds a sender, so the channel never reports closed.
                Event::SnapshotBuilt(built) => {
                    if let Some((index, image)) = built {
                        self.on_snapshot_built(index, image);
                    }
                }
                Event::Tick(due) => {
                    let late = turn.saturating_duration_since(due.into_std());
                    record_max(&self.metrics.tick_delay_max_nanos, late);
                    if late > self.tick && self.role == Role::Leader {
                        // After a stall, a leader first reads the answers that queued up during
                        // it, then counts the ticks it missed: otherwise check-quorum would count
                        // a whole election timeout of silence from followers whose answers are
                        // sitting unread, and step down. Hearing them first only makes the
                        // leader think it heard them earlier than it did, which errs on the safe
                        // side (its lease counts from the rounds it sent, not from this).
                        self.drain_inbound();
                    }
                    self.core.tick();
                }
                Event::Inbound(message) => {
                    let Some(message) = message else { break None };
                    self.on_message(message);
                    self.drain_inbound();
                }
                Event::Request(request) => {
                    let Some(request) = request else { break None };
                    self.on_request(request);
                    for _ in 0..DRAIN_MAX {
                        match self.requests.try_recv() {
                            Ok(request) => self.on_request(request),
                            Err(_) => break,
                        }
                    }
                }
            }
            if let Err(reason) = self.process_ready() {
                break Some(reason);
            }
            let held = self.backlog >= self.backlog_max;
            if held && !self.held {
                bump(&self.metrics.storage_backpressure);
            }
            self.held = held;
            self.publish_status();
            let took = turn.elapsed();
            self.metrics.loop_turn.observe(took);
            record_max(&self.metrics.loop_turn_max_nanos, took);
        };
        match failure {
            Some(reason) => self.fail(reason),
            None => {
                self.stop_clients();
                Ok(())
            }
        }
    }

    /// Stops after a failure: nothing more is acknowledged.
    fn fail(mut self, reason: FailureReason) -> Result<(), GroupFailure> {
        tracing::error!(group = %self.group, error = %reason, "stopping this node's group");
        self.stop_clients();
        Err(GroupFailure { group: self.group, reason })
    }

    fn stop_clients(&mut self) {
        for (_, waiter) in std::mem::take(&mut self.waiters) {
            waiter.reply.fail(ClientError::Stopped);
        }
        for (_, reply) in self.reads.drain() {
            let _ = reply.send(Err(ClientError::Stopped));
        }
        for (_, replies) in std::mem::take(&mut self.reads_waiting_apply) {
            for reply in replies {
                let _ = reply.send(Err(ClientError::Stopped));
            }
        }
        self.status.send_modify(|s| s.stopped = true);
    }

    /// Steps the core with the peer messages already queued (at most [`DRAIN_MAX`]).
    fn drain_inbound(&mut self) {
        for _ in 0..DRAIN_MAX {
            match self.inbound.try_recv() {
                Ok(message) => self.on_message(message),
                Err(_) => break,
            }
        }
    }

    fn on_message(&mut self, inbound: Inbound) {
        match P::Message::decode(inbound.payload) {
            Ok(msg) => {
                self.metrics.count_received(msg.kind());
                let to = self.core.id();
                self.core.step(Envelope { from: inbound.from, to, msg });
            }
            Err(error) => {
                bump(&self.metrics.messages_malformed);
                tracing::warn!(group = %self.group, from = %inbound.from, %error, "dropping a malformed message");
            }
        }
    }

    fn on_request(&mut self, request: Request<S>) {
        match request {
            Request::Propose { term: Some(term), reply, .. } if term != self.core.status().term => {
                bump(&self.metrics.proposals_refused);
                reply.fail(ClientError::NotLeader { leader: self.core.status().leader });
            }
            Request::Propose { command, reply, .. } => match self.core.propose(command) {
                Ok(proposal) => {
                    bump(&self.metrics.proposals);
                    self.waiters.insert(proposal.index, Waiter { term: proposal.term, reply });
                }
                Err(error) => {
                    bump(&self.metrics.proposals_refused);
                    reply.fail(propose_error(error));
                }
            },
            Request::Read { mode, reply } => {
                let id = self.next_read;
                self.next_read += 1;
                match self.core.read(id, mode) {
                    Ok(()) => {
                        self.reads.insert(id, reply);
                    }
                    Err(error) => {
                        bump(&self.metrics.reads_failed);
                        let _ = reply.send(Err(read_error(error)));
                    }
                }
            }
            Request::ChangeMembership { change, reply } => {
                match self.core.change_membership(change) {
                    Ok(proposal) => {
                        let reply = Reply::Done(reply);
                        self.waiters.insert(proposal.index, Waiter { term: proposal.term, reply });
                    }
                    Err(conclave_core::MembershipError::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(ClientError::NotLeader { leader: leader_hint }));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(ClientError::MembershipRefused(error)));
                    }
                }
            }
            Request::TransferLeadership { target, reply } => {
                let result = self.core.transfer_leadership(target).map_err(|error| match error {
                    conclave_core::TransferError::NotLeader { leader_hint } => {
                        ClientError::NotLeader { leader: leader_hint }
                    }
                    other => ClientError::TransferRefused(other),
                });
                let _ = reply.send(result);
            }
            Request::Progress { reply } => {
                let progress = self
                    .core
                    .replication_progress()
                    .into_iter()
                    .map(|(id, matched)| MemberProgress { id, matched })
                    .collect();
                let _ = reply.send(progress);
            }
        }
    }

    fn process_ready(&mut self) -> Result<(), FailureReason> {
        while self.core.has_ready() {
            let ready = self.core.ready();
            self.handle_ready(ready)?;
        }
        Ok(())
    }

    fn handle_ready(&mut self, ready: Ready<P::Message>) -> Result<(), FailureReason> {
        let Ready {
            hard_state,
            entries,
            messages,
            persisted_messages,
            committed_entries,
            snapshot,
            compact_log_to,
            snapshot_due,
            reads,
        } = ready;
        self.send(messages);
        self.metrics.committed.fetch_add(committed_entries.len() as u64, Ordering::Relaxed);

        if let Some(snapshot) = &snapshot {
            if snapshot.index > self.applied {
                self.install(snapshot.index, &snapshot.data)?;
            }
        }
        let last_entry = entries.last().map(|e| (e.index, e.term));
        let bytes = entries.iter().map(|e| e.data.len() as u64 + ENTRY_OVERHEAD).sum::<u64>()
            + snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
        let job = WriteJob { hard_state, snapshot, entries, compact_log_to };
        if !job.is_empty() {
            let id = self.storage.submit(job)?;
            self.backlog += bytes;
            self.pending.push_back(PendingPersist {
                job: id,
                messages: persisted_messages,
                last_entry,
                bytes,
            });
        } else if !persisted_messages.is_empty() {
            if self.pending.is_empty() {
                self.send_persisted(persisted_messages);
            } else {
                // Ordered behind earlier writes: released with the latest job.
                self.pending.push_back(PendingPersist {
                    job: self.storage.last_submitted(),
                    messages: persisted_messages,
                    last_entry: None,
                    bytes: 0,
                });
            }
        }

        self.apply(committed_entries);
        if let Some(index) = snapshot_due {
            self.take_snapshot(index);
        }
        for read in reads {
            let Some(reply) = self.reads.remove(&read.id) else { continue };
            match read.outcome {
                Ok(index) if index <= self.applied => {
                    bump(&self.metrics.reads);
                    let _ = reply.send(Ok(()));
                }
                Ok(index) => self.reads_waiting_apply.entry(index).or_default().push(reply),
                Err(error) => {
                    bump(&self.metrics.reads_failed);
                    let _ = reply.send(Err(read_error(error)));
                }
            }
        }
        Ok(())
    }

    fn send(&self, messages: Vec<Envelope<P::Message>>) {
        if messages.is_empty() {
            return;
        }
        self.metrics.count_sent(messages.iter().map(|m| m.msg.kind()));
        for envelope in messages {
            let mut out = BytesMut::new();
            envelope.msg.encode(&mut out);
            if self.transport.send(envelope.to, self.group, out.freeze()).is_err() {
                bump(&self.metrics.messages_dropped);
            }
        }
    }

    fn on_durable(&mut self, job: JobId) {
        while self.pending.front().is_some_and(|p| p.job <= job) {
            let Some(done) = self.pending.pop_front() else { break };
            self.backlog -= done.bytes;
            if let Some((index, term)) = done.last_entry {
                self.core.on_persisted(index, term);
            }
            self.send_persisted(done.messages);
        }
    }

    /// Sends a `Ready`'s persisted messages, whose writes (and every earlier one) are durable.
    fn send_persisted(&mut self, messages: Vec<Envelope<P::Message>>) {
        if !messages.is_empty() {
            self.core.assert_persisted_messages_may_go();
            self.send(messages);
        }
    }

    /// Restores the state machine from a leader's snapshot.
    fn install(&mut self, index: Index, image: &Bytes) -> Result<(), FailureReason> {
        let failed = |source| FailureReason::Snapshot { index, source };
        let (book, data) =
            envelope::split_image(image).map_err(|error| failed(SnapshotError::Image(error)))?;
        lock(&self.state).restore(&data).map_err(|error| failed(SnapshotError::Restore(error)))?;
        self.set_book(book);
        self.applied = index;
        bump(&self.metrics.snapshots_installed);
        // Proposals whose entries the snapshot swallowed: applied or not, nobody can tell.
        let later = self.waiters.split_off(&index.next());
        for (_, waiter) in std::mem::replace(&mut self.waiters, later) {
            waiter.reply.fail(ClientError::Unknown);
        }
        self.release_reads();
        Ok(())
    }

    fn take_snapshot(&mut self, index: Index) {
        if index != self.applied {
            tracing::warn!(group = %self.group, index = index.0, applied = self.applied.0, "a snapshot was asked for at an index other than the applied one; skipping it");
            return;
        }
        // Only the copy happens here; encoding a large state takes a blocking thread, and the
        // core asks for no other snapshot until this one comes back.
        let job = lock(&self.state).begin_snapshot();
        let book = lock(&self.book).clone();
        let built = self.snapshots_tx.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let image = envelope::image(&book, &job());
            metrics.snapshot_build.observe(started.elapsed());
            // The loop is gone only at shutdown, when the image is no longer wanted.
            let _ = built.send((index, image));
        });
    }

    /// A snapshot thread built the image the core asked for at `index`. The core keeps it
    /// unless a snapshot installed meanwhile already covers `index`.
    fn on_snapshot_built(&mut self, index: Index, image: Bytes) {
        self.core.on_snapshot_taken(index, image);
        bump(&self.metrics.snapshots_taken);
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            let waiter = self.waiters.remove(&entry.index);
            let outcome = match entry.kind {
                EntryKind::Command => match envelope::decode(&entry.data) {
                    Ok(envelope::Command::User(data)) => {
                        bump(&self.metrics.applied);
                        Applied::Output(state.apply(entry.index, &data))
                    }
                    Ok(envelope::Command::SetPeer(node, addr)) => {
                        let mut book = lock(&self.book);
                        match addr {
                            Some(addr) => {
                                let addr = self.configured.get(&node).copied().unwrap_or(addr);
                                book.insert(node, addr);
                                if node != self.core.id() {
                                    self.transport.set_peer(node, addr);
                                }
                            }
                            None => {
                                book.remove(&node);
                            }
                        }
                        Applied::Done
                    }
                    Err(error) => {
                        // Every node sees the same bytes and skips them alike.
                        tracing::error!(group = %self.group, index = entry.index.0, %error, "skipping an undecodable command");
                        Applied::Done
                    }
                },
                EntryKind::Noop | EntryKind::Config => Applied::Done,
            };
            self.applied = entry.index;
            if let Some(waiter) = waiter {
                self.settle(waiter, entry.index, entry.term, outcome);
            }
        }
        drop(state);
        // Waiters below the applied index whose entries never came (replaced by a snapshot) are
        // settled by `install`; anything left below here was overwritten.
        let later = self.waiters.split_off(&self.applied.next());
        for (_, waiter) in std::mem::replace(&mut self.waiters, later) {
            waiter.reply.fail(ClientError::Overwritten);
        }
        self.release_reads();
    }

    /// Answers the proposer of the entry at `index`, which was applied with `outcome`.
    fn settle(&self, waiter: Waiter<S>, index: Index, term: Term, outcome: Applied<S::Output>) {
        if waiter.term != term {
            waiter.reply.fail(ClientError::Overwritten);
            return;
        }
        match (waiter.reply, outcome) {
            (Reply::Output(reply), Applied::Output(output)) => drop(reply.send(Ok(output))),
            (Reply::Done(reply), _) => drop(reply.send(Ok(()))),
            (Reply::Output(reply), Applied::Done) => {
                // Cannot happen: the entry at the proposal's index and term is the proposal
                // itself (Log Matching), and a user command always decodes as one. Answer
                // without claiming an output rather than stop the node.
                tracing::error!(group = %self.group, index = index.0, "a user proposal applied as a runtime command");
                drop(reply.send(Err(ClientError::Unknown)));
            }
        }
    }

    fn release_reads(&mut self) {
        let later = self.reads_waiting_apply.split_off(&self.applied.next());
        for (_, replies) in std::mem::replace(&mut self.reads_waiting_apply, later) {
            for reply in replies {
                bump(&self.metrics.reads);
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Replaces the address book (from a snapshot) and tells the transport; configured
    /// addresses win over the book's.
    pub(crate) fn set_book(&mut self, mut book: AddressBook) {
        book.extend(self.configured.iter().map(|(node, addr)| (*node, *addr)));
        for (node, addr) in &book {
            if *node != self.core.id() {
                self.transport.set_peer(*node, *addr);
            }
        }
        *lock(&self.book) = book;
    }

    fn publish_status(&mut self) {
        let status = self.core.status();
        if status.role != self.role {
            match status.role {
                Role::Candidate => bump(&self.metrics.elections),
                Role::Leader => bump(&self.metrics.became_leader),
                _ => {}
            }
            self.role = status.role;
        }
        let membership = self.core.membership().cloned();
        let applied = self.applied;
        self.status.send_if_modified(|current| {
            let changed = current.core != status
                || current.membership != membership
                || current.applied != applied;
            if changed {
                current.core = status;
                current.membership = membership;
                current.applied = applied;
            }
            changed
        });
    }
}

fn propose_error(error: ProposeError) -> ClientError {
    match error {
        ProposeError::NotLeader { leader_hint } => ClientError::NotLeader { leader: leader_hint },
        ProposeError::LeadershipTransfer => ClientError::NotLeader { leader: None },
        ProposeError::TooLarge { size, limit } => ClientError::TooLarge { size, limit },
    }
}

fn read_error(error: ReadError) -> ClientError {
    match error {
        ReadError::NotLeader { leader_hint } => ClientError::NotLeader { leader: leader_hint },
        other => ClientError::ReadFailed(other),
    }
}
