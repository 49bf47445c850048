//! The client side of a group: what a server's sessions and admin port call.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use conclave_core::{
    Index, Membership, MembershipChange, NodeId, ReadConsistency, Role, Status, Term,
};
use conclave_transport::GroupId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::envelope::{self, AddressBook};
use crate::error::ClientError;
use crate::group::{Reply, Request};
use crate::metrics::Metrics;
use crate::state_machine::StateMachine;

/// A group's externally visible state, published by its loop after every turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The core's status.
    pub core: Status,
    /// The membership the core acts on.
    pub membership: Option<Membership>,
    /// The index the state machine has applied.
    pub applied: Index,
    /// True once the group has stopped (shutdown or storage failure).
    pub stopped: bool,
}

/// How far one member's log matches the leader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberProgress {
    /// The member.
    pub id: NodeId,
    /// The highest index known to match the leader's log.
    pub matched: Index,
}

/// A write handed to the group whose outcome has not been awaited yet. Its outcome is the state
/// machine's output or an error; there is no third case.
pub struct PendingWrite<S: StateMachine> {
    answer: oneshot::Receiver<Result<S::Output, ClientError>>,
    timeout: Duration,
}

impl<S: StateMachine> PendingWrite<S> {
    /// Waits for the state machine's output for this command, once it is committed and applied.
    pub async fn wait(self) -> Result<S::Output, ClientError> {
        let answer = tokio::time::timeout(self.timeout, self.answer).await;
        match answer {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ClientError::Stopped),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }
}

/// A read barrier handed to the group whose outcome has not been awaited yet.
pub struct PendingRead {
    answer: ReadAnswer,
    timeout: Duration,
}

enum ReadAnswer {
    /// A stale read needs no confirmation.
    Ready,
    Waiting(oneshot::Receiver<Result<(), ClientError>>),
}

impl PendingRead {
    /// Waits until a read may be served from the local state machine.
    pub async fn wait(self) -> Result<(), ClientError> {
        let ReadAnswer::Waiting(answer) = self.answer else { return Ok(()) };
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ClientError::Stopped),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }
}

/// A cheap, cloneable handle to one group running on this node.
pub struct GroupHandle<S: StateMachine> {
    pub(crate) group: GroupId,
    pub(crate) requests: mpsc::Sender<Request<S>>,
    pub(crate) status: watch::Receiver<GroupStatus>,
    pub(crate) state: Arc<Mutex<S>>,
    pub(crate) book: Arc<Mutex<AddressBook>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
}

impl<S: StateMachine> Clone for GroupHandle<S> {
    fn clone(&self) -> Self {
        GroupHandle {
            group: self.group,
            requests: self.requests.clone(),
            status: self.status.clone(),
            state: self.state.clone(),
            book: self.book.clone(),
            metrics: self.metrics.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

impl<S: StateMachine> GroupHandle<S> {
    /// The group this handle drives.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The latest published status.
    pub fn status(&self) -> GroupStatus {
        self.status.borrow().clone()
    }

    /// The group's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The replicated address book: each node's peer address.
    pub fn addresses(&self) -> AddressBook {
        self.book.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the group knows a leader (returning it) or `wait` passes. Requests arriving
    /// during an election use this to wait a bounded time instead of failing at once.
    pub async fn leader(&self, wait: Duration) -> Result<NodeId, ClientError> {
        let mut status = self.status.clone();
        let found = tokio::time::timeout(wait, async {
            loop {
                {
                    let current = status.borrow_and_update();
                    if current.stopped {
                        return Err(ClientError::Stopped);
                    }
                    if let Some(leader) = current.core.leader {
                        return Ok(leader);
                    }
                }
                if status.changed().await.is_err() {
                    return Err(ClientError::Stopped);
                }
            }
        })
        .await;
        found.unwrap_or(Err(ClientError::NoLeader(wait)))
    }

    /// True if this node leads the group right now.
    pub fn is_leader(&self) -> bool {
        self.status.borrow().core.role == Role::Leader
    }

    /// Proposes an application command and returns the state machine's output once it is
    /// committed and applied here.
    pub async fn propose(&self, command: &[u8]) -> Result<S::Output, ClientError> {
        self.submit(command).await?.wait().await
    }

    /// Proposes one of the runtime's own commands (see [`envelope`]) and returns once it is
    /// applied here.
    async fn propose_runtime(&self, command: Bytes) -> Result<(), ClientError> {
        self.call(|reply| Request::Propose { command, term: None, reply: Reply::Done(reply) })
            .await?
    }

    /// Hands a command to the group and returns as soon as it is queued, so a session can
    /// submit a whole pipeline of commands before waiting for the first: they then share
    /// `Ready`s, fsyncs and replication messages. Await the result with [`PendingWrite::wait`].
    pub async fn submit(&self, command: &[u8]) -> Result<PendingWrite<S>, ClientError> {
        self.submit_in_term(command, None).await
    }

    /// Like [`GroupHandle::submit`], but the group refuses the command (with
    /// [`ClientError::NotLeader`]) unless it still leads in `term`.
    ///
    /// This keeps a pipeline's writes in order across a change of leadership: take the term from
    /// [`GroupHandle::term`] before submitting the first write, and submit the rest in that term.
    /// Raft's log matching then guarantees that if a later write commits, every earlier one of
    /// the same term did too, so a write that fails because it was overwritten can be retried
    /// without landing after writes the client sent after it.
    pub async fn submit_in_term(
        &self,
        command: &[u8],
        term: Option<Term>,
    ) -> Result<PendingWrite<S>, ClientError> {
        let (reply, answer) = oneshot::channel();
        let command = envelope::user(command);
        self.enqueue(Request::Propose { command, term, reply: Reply::Output(reply) }).await?;
        Ok(PendingWrite { answer, timeout: self.request_timeout })
    }

    /// The current term as last published by the group (never ahead of the core's).
    pub fn term(&self) -> Term {
        self.status.borrow().core.term
    }

    /// Starts a read barrier and returns once it is queued (see [`GroupHandle::submit`]).
    pub async fn submit_read(
        &self,
        consistency: ReadConsistency,
    ) -> Result<PendingRead, ClientError> {
        let timeout = self.request_timeout;
        let Some(mode) = consistency.protocol_mode() else {
            return Ok(PendingRead { answer: ReadAnswer::Ready, timeout });
        };
        let (reply, answer) = oneshot::channel();
        self.enqueue(Request::Read { mode, reply }).await?;
        Ok(PendingRead { answer: ReadAnswer::Waiting(answer), timeout })
    }

    async fn enqueue(&self, request: Request<S>) -> Result<(), ClientError> {
        let timeout = self.request_timeout;
        match tokio::time::timeout(timeout, self.requests.send(request)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ClientError::Stopped),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    /// Waits until a read may be served from the local state machine with `consistency`.
    pub async fn read_barrier(&self, consistency: ReadConsistency) -> Result<(), ClientError> {
        let Some(mode) = consistency.protocol_mode() else { return Ok(()) };
        self.call(|reply| Request::Read { mode, reply }).await?
    }

    /// Runs `f` on the state machine (after [`GroupHandle::read_barrier`], for a read).
    pub fn with_state<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the membership and returns once the change is applied on this node.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), ClientError> {
        self.call(|reply| Request::ChangeMembership { change, reply }).await?
    }

    /// Adds `node` as a learner reachable at `peer_addr`: the address goes through the log
    /// first, so every member (and every later leader) can reach the new node.
    pub async fn add_learner(
        &self,
        node: NodeId,
        peer_addr: SocketAddr,
    ) -> Result<(), ClientError> {
        self.propose_runtime(envelope::set_peer(node, Some(peer_addr))).await?;
        self.change_membership(MembershipChange::AddLearner(node)).await
    }

    /// Asks the leader to hand leadership to `target`.
    pub async fn transfer_leadership(&self, target: NodeId) -> Result<(), ClientError> {
        self.call(|reply| Request::TransferLeadership { target, reply }).await?
    }

    /// The leader's view of each member's replication; empty on followers.
    pub async fn progress(&self) -> Result<Vec<MemberProgress>, ClientError> {
        self.call(|reply| Request::Progress { reply }).await
    }

    async fn call<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request<S>,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        let timeout = self.request_timeout;
        let work = async {
            self.requests.send(request(reply)).await.map_err(|_| ClientError::Stopped)?;
            answer.await.map_err(|_| ClientError::Stopped)
        };
        tokio::time::timeout(timeout, work).await.unwrap_or(Err(ClientError::Timeout(timeout)))
    }
}
