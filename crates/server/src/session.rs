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
use conclave_kv::{plan, Plan, Query};
use conclave_resp::{parse_command, Frame, Limits, Version};
use conclave_runtime::{ClientError, PendingRead, PendingWrite, ReadConsistency};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::RespClient;
use crate::commands;
use crate::cross_protocol;
use crate::machine::KvMachine;
use crate::shared::{now_ms, Shared};

/// Most commands taken from one read before executing them (bounds a session's memory).
const PIPELINE_MAX: usize = 1024;
/// The most reply bytes one pipeline may produce before the connection is closed.
const OUTPUT_MAX: usize = 512 << 20;
/// Back-off between retries while leadership settles.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);

/// A connection's settings.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub version: Version,
    pub authenticated: bool,
    pub name: Option<Bytes>,
    pub consistency: ReadConsistency,
    /// Answer writes on a follower with MOVED instead of forwarding them.
    pub redirect: bool,
    /// This connection is a follower forwarding to us: never forward again.
    pub forwarded: bool,
    pub close: bool,
    upstream: Option<(NodeId, RespClient)>,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ForwardError {
    /// The leader could not be reached and the command was not sent: retrying is safe.
    NotSent,
    /// The command was sent but no reply came: it may have been applied and must not be sent
    /// again.
    NoReply,
}

/// Serves one connection until the client leaves, sends garbage, or QUITs.
pub(crate) async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let id = shared.next_client.fetch_add(1, Ordering::Relaxed) + 1;
    let max_request = shared.config.max_request_bytes;
    let limits = Limits { bulk_bytes_max: max_request, ..Limits::default() };
    let mut session = Session {
        authenticated: shared.config.password.is_none(),
        shared,
        id,
        version: Version::Resp2,
        name: None,
        consistency: ReadConsistency::Linearizable,
        redirect: false,
        forwarded: false,
        close: false,
        upstream: None,
    };
    let mut input = BytesMut::with_capacity(16 << 10);
    let mut output = BytesMut::with_capacity(16 << 10);
    loop {
        let mut batch = Vec::new();
        let mut fatal = None;
        let mut http = false;
        while batch.len() < PIPELINE_MAX {
            match parse_command(&input, &limits) {
                Ok(Some((args, used))) => {
                    input.advance(used);
                    // An HTTP request: nothing from here on may run (see `cross_protocol`).
                    if cross_protocol::is_http(&args) {
                        http = true;
                        break;
                    }
                    if !args.is_empty() {
                        batch.push(args);
                    }
                }
                Ok(None) => {
                    if input.len() > max_request + (64 << 10) {
                        fatal = Some(
                            "ERR Protocol error: request exceeds max_request_bytes".to_string(),
                        );
                    }
                    break;
                }
                Err(error) => {
                    fatal = Some(format!("ERR {error}"));
                    break;
                }
            }
        }
        if !batch.is_empty() {
            session.run(batch, &mut output).await;
        }
        if http {
            session.shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            cross_protocol::warn(id);
            return;
        }
        if let Some(message) = &fatal {
            session.shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = id, %message, "closing a connection after a protocol error");
            Frame::error(message).encode(session.version, &mut output);
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if fatal.is_some() || session.close {
            return;
        }
        if input.is_empty() || batch_was_partial(&input) {
            input.reserve(16 << 10);
            match stream.read_buf(&mut input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Whether what is buffered is an incomplete command (more must be read) rather than more
/// complete commands left over from a long pipeline.
fn batch_was_partial(input: &[u8]) -> bool {
    !matches!(parse_command(input, &Limits::default()), Ok(Some(_)) | Err(_))
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
            if self.close {
                break;
            }
            let name = args[0].to_ascii_uppercase();
            if !self.authenticated && !matches!(&name[..], b"AUTH" | b"HELLO" | b"QUIT") {
                self.drain(&mut inflight, out).await;
                self.reply(out, Frame::error("NOAUTH Authentication required."));
                continue;
            }
            let Some(kv) = plan(&args, now_ms()) else {
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
        let frame = if out.len() + encoded_size(&frame) > OUTPUT_MAX {
            // Like Redis's output buffer limit: refuse rather than let one client exhaust memory.
            self.close = true;
            Frame::error(format!(
                "ERR reply exceeds the output limit of {} MiB; closing the connection",
                OUTPUT_MAX >> 20
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
                let Some(Plan::Write(command)) = plan(args, now_ms()) else {
                    return Frame::error("ERR internal: the command is no longer a write");
                };
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
            let addr = self.shared.leader_client_addr(leader).ok_or(ForwardError::NotSent)?;
            let password = self.shared.config.password.clone();
            let handshake = async {
                let mut client = RespClient::connect(addr, timeout).await.ok()?;
                if let Some(password) = &password {
                    client.send(&[b"AUTH", password.as_bytes()]);
                }
                client.send(&[b"CONCLAVE", b"FORWARDED"]);
                client.flush().await.ok()?;
                if password.is_some() {
                    client.recv().await.ok()?;
                }
                client.recv().await.ok()?;
                Some(client)
            };
            let client = tokio::time::timeout(timeout, handshake)
                .await
                .ok()
                .flatten()
                .ok_or(ForwardError::NotSent)?;
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

    fn moved(&self, leader: NodeId) -> Frame {
        match self.shared.leader_client_addr(leader) {
            Some(addr) => Frame::error(format!("MOVED 0 {addr}")),
            None => Frame::error(format!(
                "CLUSTERDOWN the leader is node {leader}, whose address is not known yet; retry"
            )),
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
