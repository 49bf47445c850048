//! One client connection: RESP in, RESP out, with pipelining.
//!
//! Every command parsed from one read is a pipeline. Consecutive writes are all handed to the
//! group before the first is awaited, so a pipeline shares `Ready`s, fsyncs and replication
//! messages; consecutive reads share read-index rounds. A read waits for the writes before it
//! (a client must read its own writes), and replies always go back in command order.
//!
//! On a follower, writes are forwarded to the leader's client port (or, after `REDIRECT ON`,
//! answered with `-MOVED 0 host:port`); linearizable reads are served locally after the leader
//! confirms a read index. While no leader is known a request waits up to `election_wait`, then
//! fails with `-CLUSTERDOWN`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use conclave_core::NodeId;
use conclave_kv::{Plan, Query};
use conclave_resp::{CommandParser, Frame, Limits, Version};
use conclave_runtime::{ClientError, PendingRead, PendingWrite, ReadConsistency};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::acl::{self, User};
use crate::client::RespClient;
use crate::commands;
use crate::cross_protocol;
use crate::machine::KvMachine;
use crate::shared::{now_ms, ClientMemory, Shared};

/// Most commands taken from one read before executing them (bounds a session's memory).
const PIPELINE_MAX: usize = 1024;
/// Replies are written out once this many bytes of them wait, in the middle of a pipeline too.
const FLUSH_BYTES: usize = 64 << 10;
/// A connection's empty query or output buffer larger than this is given back to the allocator.
const BUFFER_KEEP_BYTES: usize = 256 << 10;
/// Back-off between retries while leadership settles.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);

/// A connection's settings.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub version: Version,
    pub authenticated: bool,
    /// The user the connection runs as: `default` until AUTH, re-read from the replicated
    /// table whenever it changes, so new permissions apply from the next command.
    pub user: User,
    /// Which incarnation of the user's name `user` is (see `Users::incarnation`): a user
    /// deleted and made again is another user, and its connections close.
    pub user_incarnation: u64,
    /// The name and password the client authenticated with, kept in memory only, so that a
    /// write forwarded to the leader runs there as the same user.
    pub credentials: Option<(Bytes, Bytes)>,
    /// Wakes when the user table changes.
    acl_changes: tokio::sync::watch::Receiver<u64>,
    pub name: Option<Bytes>,
    pub consistency: ReadConsistency,
    /// Answer writes on a follower with MOVED instead of forwarding them.
    pub redirect: bool,
    /// This connection is a follower forwarding to us: never forward again.
    pub forwarded: bool,
    /// This connection proved it comes from a cluster member (`CONCLAVE FORWARDED PROOF`, an
    /// HMAC with the cluster secret over [`Session::forward_nonce`]): it is never idle-timed
    /// out. A bare `CONCLAVE FORWARDED` only stops re-forwarding, which any client may ask for.
    pub member: bool,
    /// The nonce `CONCLAVE NONCE` handed out, spent by the next `CONCLAVE FORWARDED PROOF`.
    pub forward_nonce: Option<[u8; 16]>,
    pub close: bool,
    upstream: Option<(NodeId, RespClient)>,
    /// Whether this connection is TLS: a `MOVED` then names the leader's TLS client port.
    tls: bool,
    output: Output,
}

/// A command started but not yet answered.
enum InFlight {
    Write {
        args: Vec<Bytes>,
        pending: PendingWrite<KvMachine>,
    },
    /// A read; `pending` is `None` for a read that shares the barrier of the read before it
    /// (every command of a pipeline was received before that barrier was asked for, so the
    /// barrier's read index covers them all).
    Read {
        args: Vec<Bytes>,
        query: Query,
        pending: Option<PendingRead>,
    },
}

/// Why a write forwarded to the leader got no reply. The two cases differ in whether the write
/// may be sent again.
#[derive(Clone, Debug, PartialEq)]
enum ForwardError {
    /// The leader could not be reached and the command was not sent: retrying is safe.
    NotSent,
    /// The leader answered the connection with an error (its client limit, say) before the
    /// command was sent: the write was not applied, and retrying at once would meet the same
    /// answer.
    Refused(Frame),
    /// The command was sent but no reply came: it may have been applied and must not be sent
    /// again.
    NoReply,
}

/// Why a connection was closed by the server rather than by its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// The client left, or the socket failed.
    Gone,
    /// Its replies were backed up beyond the output limits.
    OutputLimit,
    /// All connections together held too much and this one held the most.
    Evicted,
    /// The client neither sent nor took anything for `client_idle_timeout_s`.
    Idle,
}

/// The receiving side of a client connection: a TCP socket's, or a TLS session's.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The sending side of a client connection: a TCP socket's, or a TLS session's.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Serves one connection until the client leaves, sends garbage, QUITs, or breaks a limit.
/// `tls`: the connection came in on the TLS client port (redirects then name the leader's);
/// `peer`: where it came from, for protected mode.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    reader: Reader,
    mut writer: Writer,
    tls: bool,
    peer: Option<std::net::SocketAddr>,
) {
    if let Some(denial) = protected_mode_denial(&shared, peer, tls) {
        let mut out = BytesMut::new();
        Frame::error(denial).encode(Version::Resp2, &mut out);
        let _ = writer.write_all(&out).await;
        return;
    }
    let id = shared.next_client.fetch_add(1, Ordering::Relaxed) + 1;
    let memory = shared.clients.register(id);
    let requirepass = shared.config.password.as_deref();
    let (open, user, user_incarnation, acl_changes) = shared.handle.with_state(|m| {
        let user = m.users.get("default").cloned().unwrap_or_else(|| User::new("default"));
        let incarnation = m.users.incarnation("default");
        (m.users.default_is_open(requirepass), user, incarnation, m.watch_users())
    });
    let mut session = Session {
        authenticated: open,
        user,
        user_incarnation,
        credentials: None,
        acl_changes,
        shared: shared.clone(),
        id,
        version: Version::Resp2,
        name: None,
        consistency: ReadConsistency::Linearizable,
        redirect: false,
        forwarded: false,
        member: false,
        forward_nonce: None,
        close: false,
        upstream: None,
        tls,
        output: Output { writer, memory, input_held: 0, above_soft_since: None, closed: None },
    };
    session.serve_requests(reader).await;
    if let Some(reason) = session.output.closed {
        let counter = match reason {
            Closed::Gone => None,
            Closed::OutputLimit => Some(&shared.stats.output_limit_disconnections),
            Closed::Evicted => Some(&shared.stats.evicted),
            Closed::Idle => Some(&shared.stats.timeout_disconnections),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = id, ?reason, "closing a connection over a limit");
        }
    }
    shared.clients.unregister(id);
}

impl Session {
    /// Reads, parses and executes commands until the connection is to close.
    async fn serve_requests(&mut self, mut reader: Reader) {
        let max_request = self.shared.config.max_request_bytes;
        let limits = self.shared.config.client_limits;
        let mut parser =
            CommandParser::new(Limits { bulk_bytes_max: max_request, ..Limits::default() });
        let mut input = BytesMut::with_capacity(16 << 10);
        let mut out = BytesMut::with_capacity(16 << 10);
        // When the command now partly received began to arrive.
        let mut partial_since: Option<Instant> = None;
        loop {
            let Batch { commands: batch, fatal, incomplete, http } =
                parse_batch(&mut parser, &mut input, max_request);
            if !batch.is_empty() || input.is_empty() {
                // A command was completed: what is left, if anything, is a new one.
                partial_since = None;
            }
            if !input.is_empty() && partial_since.is_none() {
                partial_since = Some(Instant::now());
            }
            if input.is_empty() && input.capacity() > BUFFER_KEEP_BYTES {
                // Give back what one large request took, as Redis shrinks idle query buffers:
                // otherwise every connection that once sent 8 MiB would hold 8 MiB for good.
                input = BytesMut::with_capacity(16 << 10);
            }
            self.output.input_held = input.capacity();
            if !batch.is_empty() {
                self.run(batch, &mut out).await;
            }
            if http {
                self.shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                cross_protocol::warn(self.id);
                self.output.best_effort(&out);
                return;
            }
            if let Some(message) = &fatal {
                self.shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = self.id, %message, "closing a connection after a protocol error");
                Frame::error(message).encode(self.version, &mut out);
            }
            if self.output.closed.is_some() {
                // Over a limit: whatever is queued would only wait behind what is backed up.
                self.output.best_effort(&out);
                return;
            }
            if self.output.flush(&self.shared, &mut out).await.is_err() {
                return;
            }
            if fatal.is_some() || self.close {
                return;
            }
            if !incomplete {
                // A long pipeline: execute the rest before reading more.
                continue;
            }
            input.reserve(16 << 10);
            let deadline = match (partial_since, limits.idle_timeout) {
                (Some(since), _) => Some(since + limits.partial_request_timeout),
                // A follower keeps its forwarding connection open between writes, and would
                // find it closed only after sending the next one, when it can no longer tell
                // whether it was applied; like Redis's replication links, it is never idle.
                // Only once it proved it comes from a member: any client can claim to forward.
                (None, Some(idle)) if !self.member => Some(Instant::now() + idle),
                (None, _) => None,
            };
            let read = tokio::select! {
                read = reader.read_buf(&mut input) => read,
                () = sleep_until(deadline) => {
                    self.shared.stats.timeout_disconnections.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(client = self.id, partial = partial_since.is_some(), "closing a connection after a timeout");
                    return;
                }
                // Woken to close for client memory: checked below.
                () = self.output.memory.wake.notified() => Ok(usize::MAX),
                // The user table changed: a connection whose user was deleted closes now,
                // idle or not.
                () = users_changed(&mut self.acl_changes) => {
                    if !self.refresh_user() {
                        return;
                    }
                    Ok(usize::MAX)
                }
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            self.output.input_held = input.capacity();
            self.output.account(&self.shared, out.len());
            self.shared.stats.input_buffer_max.fetch_max(input.len(), Ordering::Relaxed);
            if self.output.memory.is_evicted() {
                self.output.closed = Some(Closed::Evicted);
                return;
            }
        }
    }
}

/// The commands parsed from what a connection sent so far.
struct Batch {
    /// Complete commands, in order, at most [`PIPELINE_MAX`].
    commands: Vec<Vec<Bytes>>,
    /// A protocol error, after which the connection closes.
    fatal: Option<String>,
    /// Whether the parser stopped for want of bytes (rather than at `PIPELINE_MAX`).
    incomplete: bool,
    /// An HTTP request line or header came in as a command: nothing from there on may run, and
    /// the connection closes (see `cross_protocol`).
    http: bool,
}

/// Parses the complete commands at the front of `input`, dropping their bytes.
fn parse_batch(parser: &mut CommandParser, input: &mut BytesMut, max_request: usize) -> Batch {
    let mut batch = Batch { commands: Vec::new(), fatal: None, incomplete: false, http: false };
    while batch.commands.len() < PIPELINE_MAX {
        if cross_protocol::is_tls_handshake(input) {
            batch.fatal = Some(cross_protocol::TLS_ON_PLAIN_PORT.to_string());
            break;
        }
        match parser.parse(input) {
            Ok(Some((args, used))) => {
                input.advance(used);
                if cross_protocol::is_http(&args) {
                    batch.http = true;
                    break;
                }
                if !args.is_empty() {
                    batch.commands.push(args);
                }
            }
            Ok(None) => {
                batch.incomplete = true;
                if input.len() > max_request + (64 << 10) {
                    batch.fatal =
                        Some("ERR Protocol error: request exceeds max_request_bytes".to_string());
                }
                break;
            }
            Err(error) => {
                batch.fatal = Some(format!("ERR {error}"));
                break;
            }
        }
    }
    batch
}

/// Protected mode on a connection, as Redis applies it: a node that listens beyond loopback
/// with no `password` (allowed when its data directory held state, which may hold users) turns
/// away a connection from beyond loopback while any enabled user needs no password. The users
/// are the replicated ones as applied now, so the answer follows `ACL SETUSER`.
fn protected_mode_denial(
    shared: &Shared,
    peer: Option<std::net::SocketAddr>,
    tls: bool,
) -> Option<String> {
    let config = &shared.config;
    // On the TLS port a required client certificate already authenticated the client.
    let tls_config = config.tls.as_ref();
    if tls && tls_config.is_some_and(|t| t.files.auth_clients == crate::tls::AuthClients::Yes) {
        return None;
    }
    let listening =
        if tls { tls_config.and_then(|t| t.client_addr) } else { Some(config.client_addr) };
    let exposed = !config.insecure
        && config.password.is_none()
        && listening.is_some_and(|addr| !addr.ip().is_loopback())
        && !peer.is_some_and(|p| p.ip().is_loopback());
    if !exposed {
        return None;
    }
    let user = shared.handle.with_state(|m| m.users.passwordless_user(None).map(str::to_owned));
    user.as_deref().map(denial_text)
}

/// The `-DENIED` reply of protected mode, naming the user that needs no password.
fn denial_text(user: &str) -> String {
    format!(
        "DENIED Conclave is running in protected mode: this node has no password and the user '{user}' needs none, so connections are only accepted from the loopback interface. Give every user a password (ACL SETUSER {user} resetpass >...), or set password, or set insecure if every host that can reach the node is trusted"
    )
}

/// Whether a call skips the ACL check: logging in and out, and the forwarding handshake (a
/// follower sends it as the client's own user, whatever that user may run). Every other
/// `CONCLAVE` subcommand is checked like any command.
fn exempt_from_acl(name: &[u8], args: &[Bytes]) -> bool {
    match name {
        b"AUTH" | b"HELLO" | b"QUIT" => true,
        b"CONCLAVE" => match args.len() {
            2 => {
                args[1].eq_ignore_ascii_case(b"FORWARDED") || args[1].eq_ignore_ascii_case(b"NONCE")
            }
            3 => args[1].eq_ignore_ascii_case(b"FORWARDED"),
            _ => false,
        },
        _ => false,
    }
}

/// Waits until the user table changes (forever once the node is stopping).
async fn users_changed(changes: &mut tokio::sync::watch::Receiver<u64>) {
    if changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Replies that wait to be sent, in front of the connection's socket. Replies are written out
/// as they are produced (every `FLUSH_BYTES`), and while the client does not take them the
/// session waits here instead of executing more commands: a client that pipelines large reads
/// without reading the replies holds at most about one reply in the server, never the whole
/// pipeline's.
pub(crate) struct Output {
    writer: Writer,
    /// This connection's entry in the node's client memory accounting.
    memory: Arc<ClientMemory>,
    /// Bytes the connection's query buffer holds, counted with the output.
    input_held: usize,
    /// Since when the untaken replies have been above the soft limit.
    above_soft_since: Option<Instant>,
    /// Set when the connection must close because of a limit.
    closed: Option<Closed>,
}

impl Output {
    /// Records what the connection holds (query buffer plus `output_held`); the node may then
    /// mark the largest connections to close.
    fn account(&mut self, shared: &Shared, output_held: usize) {
        let limit = shared.config.client_limits.memory_max_bytes;
        shared.clients.update(&self.memory, self.input_held + output_held, limit);
        shared.stats.output_buffer_max.fetch_max(output_held, Ordering::Relaxed);
        if self.memory.is_evicted() && self.closed.is_none() {
            self.closed = Some(Closed::Evicted);
        }
    }

    /// Writes out everything in `out`, waiting while the client does not read. Fails when the
    /// client is gone, or when the replies stay above the soft limit for longer than allowed,
    /// or when the node closes this connection to free client memory.
    async fn flush(&mut self, shared: &Shared, out: &mut BytesMut) -> Result<(), Closed> {
        let limits = shared.config.client_limits;
        self.account(shared, out.len());
        let mut last_progress = Instant::now();
        while !out.is_empty() {
            if let Some(reason) = self.closed {
                return Err(reason);
            }
            // The soft limit's clock starts when the untaken replies pass it and stops only
            // once the client has taken them all: the kernel's socket buffer takes part of a
            // reply, so what waits here may dip below the limit while the client still reads
            // nothing.
            if out.len() > limits.output_soft_bytes && self.above_soft_since.is_none() {
                self.above_soft_since = Some(Instant::now());
            }
            let soft_deadline = self.above_soft_since.map(|since| since + limits.output_soft_time);
            // A client that takes nothing is idle too, as in Redis, whose `timeout` counts
            // from the last byte read or written.
            let idle_deadline = limits.idle_timeout.map(|idle| last_progress + idle);
            let deadline = match (soft_deadline, idle_deadline) {
                (Some(soft), Some(idle)) => Some(soft.min(idle)),
                (soft, idle) => soft.or(idle),
            };
            // `None`: woken to close for client memory.
            let written = tokio::select! {
                written = self.writer.write(out) => Some(written),
                () = sleep_until(deadline) => {
                    let reason = if soft_deadline == deadline { Closed::OutputLimit } else { Closed::Idle };
                    self.closed = Some(reason);
                    return Err(reason);
                }
                () = self.memory.wake.notified() => None,
            };
            match written {
                None if self.memory.is_evicted() => {
                    self.closed = Some(Closed::Evicted);
                    return Err(Closed::Evicted);
                }
                None => {}
                Some(Ok(n)) if n > 0 => {
                    out.advance(n);
                    last_progress = Instant::now();
                }
                Some(_) => {
                    self.closed = Some(Closed::Gone);
                    return Err(Closed::Gone);
                }
            }
            self.account(shared, out.len());
        }
        // TLS keeps the tail of a write in its own buffer until flushed (for TCP this does
        // nothing); a client that takes nothing for as long as the soft limit allows is gone.
        let flushed = tokio::time::timeout(limits.output_soft_time, self.writer.flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            self.closed = Some(Closed::Gone);
            return Err(Closed::Gone);
        }
        self.above_soft_since = None;
        if out.capacity() > BUFFER_KEEP_BYTES {
            // As for the query buffer: one large reply must not stay allocated.
            *out = BytesMut::with_capacity(16 << 10);
        }
        out.clear();
        self.account(shared, 0);
        Ok(())
    }

    /// Sends what the socket takes at once, without waiting: the last words of a connection
    /// that is being closed over a limit.
    fn best_effort(&mut self, out: &[u8]) {
        // One poll with a waker that does nothing: whatever the socket takes now, and no wait.
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let mut writer = std::pin::Pin::new(&mut self.writer);
        if let std::task::Poll::Ready(Ok(_)) = writer.as_mut().poll_write(&mut context, out) {
            let _ = writer.poll_flush(&mut context);
        }
    }
}

fn is_write(plan: &Plan) -> bool {
    matches!(plan, Plan::Write(_))
}

impl Session {
    /// Executes a pipeline, appending the replies to `out` in order.
    async fn run(&mut self, batch: Vec<Vec<Bytes>>, out: &mut BytesMut) {
        let mut inflight: Vec<InFlight> = Vec::new();
        // The term a run of pipelined writes is submitted in: a write submitted in any other
        // term is refused and retried in order after the writes before it (see
        // `GroupHandle::submit_in_term`).
        let mut write_term = None;
        for args in batch {
            self.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
            self.flush_if_full(out).await;
            if self.close {
                break;
            }
            let name = args[0].to_ascii_uppercase();
            // Passwords in ACL SETUSER become hashes here, before the command is proposed or
            // forwarded, so no plaintext travels further than this node.
            let args = if name == b"ACL" { acl::hash_passwords(args) } else { args };
            if self.acl_changes.has_changed().unwrap_or(false) && !self.refresh_user() {
                self.drain(&mut inflight, out).await;
                self.close = true;
                break;
            }
            if !self.authenticated && !matches!(&name[..], b"AUTH" | b"HELLO" | b"QUIT") {
                self.drain(&mut inflight, out).await;
                self.reply(out, Frame::error("NOAUTH Authentication required."));
                continue;
            }
            if self.authenticated && !exempt_from_acl(&name, &args) {
                if let Err((denied, reason, object)) = acl::check(&self.user, &args) {
                    tracing::info!(client = self.id, user = ?self.user.name, command = ?String::from_utf8_lossy(&args[0]), "command refused by ACL");
                    let counter = match reason {
                        acl::Reason::Key => &self.shared.stats.acl_denied_keys,
                        _ => &self.shared.stats.acl_denied_commands,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.log_refusal(reason, &object, &self.user.name.clone());
                    self.drain(&mut inflight, out).await;
                    self.reply(out, denied);
                    continue;
                }
            }
            let Some(kv) = acl::plan_write(&args, now_ms()) else {
                self.drain(&mut inflight, out).await;
                let reply = commands::execute(self, &name, &args);
                self.reply(out, reply);
                continue;
            };
            if inflight.iter().any(|f| matches!(f, InFlight::Write { .. })) != is_write(&kv)
                && !inflight.is_empty()
            {
                self.drain(&mut inflight, out).await;
            }
            match kv {
                Plan::Reply(frame) => {
                    self.drain(&mut inflight, out).await;
                    self.reply(out, frame);
                }
                Plan::Write(command) if self.shared.handle.is_leader() => {
                    if let Some(refusal) = self.refuse_over_maxmemory(&command) {
                        self.drain(&mut inflight, out).await;
                        self.reply(out, refusal);
                        continue;
                    }
                    if inflight.is_empty() {
                        write_term = Some(self.shared.handle.term());
                    }
                    match self.shared.handle.submit_in_term(&command, write_term).await {
                        Ok(pending) => inflight.push(InFlight::Write { args, pending }),
                        Err(error) => {
                            self.drain(&mut inflight, out).await;
                            let reply = self.error_frame(error);
                            self.reply(out, reply);
                        }
                    }
                }
                Plan::Write(_) => {
                    self.drain(&mut inflight, out).await;
                    let reply = self.write_slow(&args).await;
                    self.reply(out, reply);
                }
                Plan::Read(query) if matches!(inflight.last(), Some(InFlight::Read { .. })) => {
                    inflight.push(InFlight::Read { args, query, pending: None });
                }
                Plan::Read(query) => match self.shared.handle.submit_read(self.consistency).await {
                    Ok(pending) => {
                        inflight.push(InFlight::Read { args, query, pending: Some(pending) })
                    }
                    Err(error) => {
                        self.drain(&mut inflight, out).await;
                        let reply = self.error_frame(error);
                        self.reply(out, reply);
                    }
                },
            }
        }
        self.drain(&mut inflight, out).await;
    }

    fn reply(&mut self, out: &mut BytesMut, frame: Frame) {
        if self.output.closed.is_some() {
            return;
        }
        let hard = self.shared.config.client_limits.output_hard_bytes;
        let frame = if out.len() + encoded_size(&frame) > hard {
            // Redis's hard output buffer limit: close rather than let one client exhaust memory.
            self.close = true;
            self.output.closed = Some(Closed::OutputLimit);
            Frame::error(format!(
                "ERR reply exceeds the client output buffer limit of {hard} bytes; closing the connection"
            ))
        } else {
            frame
        };
        if matches!(frame, Frame::Error(_) | Frame::BulkError(_)) {
            self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        frame.encode(self.version, out);
    }

    /// Awaits everything in flight, in order, retrying what failed only because leadership moved.
    async fn drain(&mut self, inflight: &mut Vec<InFlight>, out: &mut BytesMut) {
        let mut barrier: Result<(), ClientError> = Ok(());
        for started in inflight.drain(..) {
            if self.output.closed.is_some() {
                // Nobody will read the reply. A write still applies, whether awaited or not.
                continue;
            }
            let reply = match started {
                InFlight::Write { args, pending } => match pending.wait().await {
                    Ok(frame) => frame,
                    Err(ClientError::NotLeader { .. } | ClientError::Overwritten) => {
                        self.write_slow(&args).await
                    }
                    Err(error) => self.error_frame(error),
                },
                InFlight::Read { args, query, pending } => {
                    if let Some(pending) = pending {
                        barrier = pending.wait().await;
                    }
                    match barrier.clone() {
                        Ok(()) => self.query(&query),
                        Err(ClientError::NotLeader { .. }) => self.read_slow(&args, &query).await,
                        Err(error) => self.error_frame(error),
                    }
                }
            };
            self.reply(out, reply);
            self.flush_if_full(out).await;
        }
    }

    /// Writes the replies out once enough of them wait, so that a pipeline never holds all of
    /// its replies, and so that a client that does not read stops the pipeline here.
    async fn flush_if_full(&mut self, out: &mut BytesMut) {
        if out.len() >= FLUSH_BYTES && self.output.flush(&self.shared, out).await.is_err() {
            self.close = true;
        }
    }

    fn query(&self, query: &Query) -> Frame {
        let now = now_ms();
        self.shared.handle.with_state(|machine| machine.store.query(query, now))
    }

    /// A write that could not simply be proposed here: wait for a leader, then propose it if we
    /// lead, else forward it (or redirect the client), until it succeeds or `election_wait`
    /// passes.
    async fn write_slow(&mut self, args: &[Bytes]) -> Frame {
        let wait = self.shared.config.election_wait;
        let deadline = Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let leader = match self.shared.handle.leader(remaining).await {
                Ok(leader) => leader,
                Err(error) => return self.error_frame(error),
            };
            if leader == self.shared.config.id {
                // Planned again here so the leader's clock stamps it.
                let Some(Plan::Write(command)) = acl::plan_write(args, now_ms()) else {
                    return Frame::error("ERR internal: the command is no longer a write");
                };
                if let Some(refusal) = self.refuse_over_maxmemory(&command) {
                    return refusal;
                }
                let result = match self.shared.handle.submit(&command).await {
                    Ok(pending) => pending.wait().await,
                    Err(error) => Err(error),
                };
                match result {
                    Ok(frame) => return frame,
                    Err(ClientError::NotLeader { .. } | ClientError::Overwritten) => {}
                    Err(error) => return self.error_frame(error),
                }
            } else if self.redirect || self.forwarded {
                return self.moved(leader);
            } else {
                match self.forward(leader, args).await {
                    Ok(frame) if !retryable(&frame) => return frame,
                    Ok(_) | Err(ForwardError::NotSent) => {}
                    Err(ForwardError::NoReply) => return self.error_frame(ClientError::Unknown),
                    Err(ForwardError::Refused(answer)) => {
                        let reason = match &answer {
                            Frame::Error(text) => String::from_utf8_lossy(text).into_owned(),
                            other => format!("{other:?}"),
                        };
                        return Frame::error(format!(
                            "ERR the write was not applied: the leader (node {leader}) refused the forwarding connection: {reason}"
                        ));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Frame::error(format!(
                    "CLUSTERDOWN leadership did not settle within {} ms; retry later",
                    wait.as_millis()
                ));
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// A read whose barrier failed because leadership moved: retry within `election_wait`.
    async fn read_slow(&mut self, _args: &[Bytes], query: &Query) -> Frame {
        let wait = self.shared.config.election_wait;
        let deadline = Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Err(error) = self.shared.handle.leader(remaining).await {
                return self.error_frame(error);
            }
            let result = match self.shared.handle.submit_read(self.consistency).await {
                Ok(pending) => pending.wait().await,
                Err(error) => Err(error),
            };
            match result {
                Ok(_) => return self.query(query),
                Err(ClientError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(ClientError::NotLeader { .. }) => {
                    return Frame::error(format!(
                        "CLUSTERDOWN leadership did not settle within {} ms; retry later",
                        wait.as_millis()
                    ))
                }
                Err(error) => return self.error_frame(error),
            }
        }
    }

    /// Sends a write to the leader's client port and returns its reply.
    async fn forward(&mut self, leader: NodeId, args: &[Bytes]) -> Result<Frame, ForwardError> {
        let timeout = self.shared.config.request_timeout;
        if self.upstream.as_ref().is_none_or(|(node, _)| *node != leader) {
            self.upstream = None;
            // Over TLS when both ends can: this node checks the leader's certificate against the
            // CA and presents its own, which a leader requiring client certificates accepts.
            let tls = self.shared.tls.as_ref().and_then(|tls| tls.forward_config());
            let tls = tls.zip(self.shared.leader_tls_client_addr(leader));
            let addr = match tls {
                Some((_, addr)) => addr,
                None => self.shared.leader_client_addr(leader).ok_or(ForwardError::NotSent)?,
            };
            // As the client's own user when it authenticated, else as `default` with the
            // node's password.
            let auth: Option<Vec<Bytes>> = match &self.credentials {
                Some((user, password)) => Some(vec![user.clone(), password.clone()]),
                None => self.shared.config.password.clone().map(|p| vec![Bytes::from(p)]),
            };
            // The leader may answer with an error instead of serving the connection (it is at
            // `max_clients`): that error is the first frame, whatever was sent.
            let handshake = async {
                let connected = match tls {
                    Some((config, _)) => RespClient::connect_tls(addr, timeout, config).await,
                    None => RespClient::connect(addr, timeout).await,
                };
                let mut client = connected.map_err(|_| ForwardError::NotSent)?;
                if let Some(auth) = &auth {
                    let mut command: Vec<&[u8]> = vec![b"AUTH"];
                    command.extend(auth.iter().map(|a| &a[..]));
                    client.send(&command);
                }
                client.send(&[b"CONCLAVE", b"NONCE"]);
                client.flush().await.map_err(|_| ForwardError::NotSent)?;
                if auth.is_some() {
                    let answer = client.recv().await.map_err(|_| ForwardError::NotSent)?;
                    if matches!(answer, Frame::Error(_)) {
                        return Err(ForwardError::Refused(answer));
                    }
                }
                // The proof that this connection comes from a member, so that the leader never
                // idle-times it out. A leader without `CONCLAVE NONCE` (an older version) gets
                // the bare form, as before.
                let answer = client.recv().await.map_err(|_| ForwardError::NotSent)?;
                match answer {
                    Frame::Bulk(nonce) => {
                        let proof = self.shared.config.cluster_secret.prove_forwarding(&nonce);
                        client.send(&[b"CONCLAVE", b"FORWARDED", &proof]);
                    }
                    Frame::Error(text) if text.starts_with(b"ERR unknown CONCLAVE") => {
                        client.send(&[b"CONCLAVE", b"FORWARDED"]);
                    }
                    other => return Err(ForwardError::Refused(other)),
                }
                client.flush().await.map_err(|_| ForwardError::NotSent)?;
                let answer = client.recv().await.map_err(|_| ForwardError::NotSent)?;
                if matches!(answer, Frame::Error(_)) {
                    return Err(ForwardError::Refused(answer));
                }
                Ok(client)
            };
            let client = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| ForwardError::NotSent)??;
            self.upstream = Some((leader, client));
        }
        let (_, client) = self.upstream.as_mut().ok_or(ForwardError::NotSent)?;
        let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        client.send(&refs);
        if client.flush().await.is_err() {
            // Nothing reached the leader's session: a connection that failed on write was
            // already dead (the reply to the previous command had been read).
            self.upstream = None;
            return Err(ForwardError::NotSent);
        }
        match tokio::time::timeout(timeout, client.recv()).await {
            Ok(Ok(frame)) => {
                self.shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                Ok(frame)
            }
            outcome => {
                tracing::debug!(%leader, ?outcome, "no reply to a forwarded write");
                self.upstream = None;
                Err(ForwardError::NoReply)
            }
        }
    }

    /// Redis's refusal of a write that could grow the data set past `maxmemory`, if `command`
    /// is one; checked by the leader before it proposes.
    fn refuse_over_maxmemory(&self, command: &[u8]) -> Option<Frame> {
        let max = self.shared.config.max_memory_bytes;
        let admitted = self.shared.handle.with_state(|machine| machine.store.admits(command, max));
        (!admitted).then(|| Frame::error("OOM command not allowed when used memory > 'maxmemory'."))
    }

    fn moved(&self, leader: NodeId) -> Frame {
        let tls_addr = self.shared.leader_tls_client_addr(leader).filter(|_| self.tls);
        match tls_addr.or_else(|| self.shared.leader_client_addr(leader)) {
            Some(addr) => Frame::error(format!("MOVED 0 {addr}")),
            None => Frame::error(format!(
                "CLUSTERDOWN the leader is node {leader}, whose address is not known yet; retry"
            )),
        }
    }

    /// Drops the connection writes are forwarded on: it is logged in as the user this
    /// connection had, and after AUTH the leader must see the new one.
    pub(crate) fn forget_upstream(&mut self) {
        self.upstream = None;
    }

    /// Records a refusal in `ACL LOG`.
    pub(crate) fn log_refusal(&self, reason: acl::Reason, object: &[u8], username: &str) {
        let name = self.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned());
        let client_info =
            format!("id={} name={} user={}", self.id, name.unwrap_or_default(), self.user.name);
        let refusal = acl::Refusal { reason, object, username, client_info };
        self.shared.acl_log.record(refusal, now_ms());
    }

    /// Re-reads the connection's user after the user table changed. Returns false when the
    /// connection must close: its user was deleted, as Redis closes them. A user turned `off`
    /// keeps its open connections, as in Redis: `off` only stops new logins.
    pub(crate) fn refresh_user(&mut self) -> bool {
        self.acl_changes.mark_unchanged();
        if !self.authenticated {
            // As in Redis, whether AUTH is needed follows `default`: once it is on and needs
            // no password, a connection that has not logged in runs as `default`.
            let requirepass = self.shared.config.password.clone();
            let open = self.shared.handle.with_state(|m| {
                let open = m.users.default_is_open(requirepass.as_deref());
                let default = m.users.get("default").cloned();
                open.then(|| default.map(|d| (d, m.users.incarnation("default")))).flatten()
            });
            if let Some((default, incarnation)) = open {
                self.authenticated = true;
                self.user = default;
                self.user_incarnation = incarnation;
            }
            return true;
        }
        let name = self.user.name.clone();
        let current = self.shared.handle.with_state(|m| {
            let same = m.users.incarnation(&name) == self.user_incarnation;
            m.users.get(&name).filter(|_| same).cloned()
        });
        match current {
            Some(user) => {
                self.user = user;
                true
            }
            None => {
                tracing::info!(client = self.id, user = %name, "closing a connection whose user was deleted");
                false
            }
        }
    }

    /// The RESP error for a failed request.
    pub fn error_frame(&self, error: ClientError) -> Frame {
        match error {
            ClientError::NotLeader { leader: Some(leader) } => self.moved(leader),
            ClientError::NotLeader { leader: None } | ClientError::NoLeader(_) => {
                Frame::error(format!(
                    "CLUSTERDOWN no leader elected within {} ms; retry later",
                    self.shared.config.election_wait.as_millis()
                ))
            }
            ClientError::Overwritten => {
                Frame::error("TRYAGAIN the write was overwritten by a new leader and not applied")
            }
            ClientError::Unknown => Frame::error(
                "ERR the outcome is unknown (leadership changed): the write may or may not have been applied",
            ),
            ClientError::Timeout(d) => Frame::error(format!(
                "TIMEOUT no answer within {} ms; a write may or may not have been applied",
                d.as_millis()
            )),
            ClientError::ReadFailed(reason) => {
                Frame::error(format!("TRYAGAIN read not confirmed: {reason}"))
            }
            ClientError::TooLarge { size, limit } => {
                Frame::error(format!("ERR command of {size} bytes exceeds the limit of {limit}"))
            }
            ClientError::MembershipRefused(reason) => Frame::error(format!("ERR {reason}")),
            ClientError::TransferRefused(reason) => Frame::error(format!("ERR {reason}")),
            ClientError::Stopped => Frame::error(
                "ERR the node has stopped; a write in flight may or may not have been applied",
            ),
        }
    }
}

/// About how many bytes `frame` encodes to (an upper bound up to headers), computed before
/// encoding so that a huge reply is refused before it is built.
fn encoded_size(frame: &Frame) -> usize {
    match frame {
        Frame::Simple(b)
        | Frame::Error(b)
        | Frame::Bulk(b)
        | Frame::BigNumber(b)
        | Frame::BulkError(b) => b.len() + 16,
        Frame::Verbatim { text, .. } => text.len() + 20,
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            16 + items.iter().map(encoded_size).sum::<usize>()
        }
        Frame::Map(pairs) => {
            16 + pairs.iter().map(|(k, v)| encoded_size(k) + encoded_size(v)).sum::<usize>()
        }
        _ => 32,
    }
}

/// A forwarded reply that means "not the leader (any more)": retry after leadership settles.
fn retryable(frame: &Frame) -> bool {
    match frame {
        Frame::Error(e) => {
            e.starts_with(b"MOVED ")
                || e.starts_with(b"CLUSTERDOWN ")
                || e.starts_with(b"TRYAGAIN ")
        }
        _ => false,
    }
}
