//! The tasks behind the links: the accept loop and its handshakes, the dialers, and each link's
//! reader and writer.
//!
//! A connection goes through four steps. The dialer (the lower id) sends its hello; the acceptor
//! reads it, checks the version, magic, cluster id and node id, and answers with its own hello and
//! its proof of the cluster secret; the dialer checks the answer the same way, that it comes from
//! the node it meant to reach and that the proof holds, and sends its own proof; the acceptor
//! checks it. Only then does [`Shared::attach`] make it the peer's link, and a reader and a writer
//! task run until either half fails: no batch is read from a peer that has not proved it knows
//! the secret. Nothing a peer sends is trusted: every refusal is logged with the peer's address
//! and counted, and resets the connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use conclave_core::NodeId;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

use bytes::Bytes;

use crate::auth::{self, Direction};
use crate::backoff::Backoff;
use crate::frame::{
    decode_batch, decode_hello, decode_proof, encode_hello, encode_proof, frame_body,
    message_frame_bytes, read_frame, BatchEncoder, Hello, WireError, HELLO_FRAME_BYTES_MAX,
    PROOF_FRAME_BYTES,
};
use crate::peer::{lock, Peer};
use crate::stats::add;
use crate::tls::{LinkReader, LinkSocket, LinkStream, LinkWriter};
use crate::transport::{Shared, Side};
use crate::Inbound;

/// The reader's socket buffer: many small frames cost one system call, and a large frame is read
/// past the buffer straight into its own allocation.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// A writer keeps its flush buffer between flushes unless a burst grew it beyond this, so that an
/// idle link does not hold on to tens of mebibytes.
const WRITE_BUFFER_KEEP_BYTES: usize = 1 << 20;

/// Accepts connections until the transport closes, each handshake in a task of its own so that a
/// silent client cannot hold up the others.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if !shared.spawn(accept(shared.clone(), stream, remote)) {
                    return;
                }
            }
            Err(err) => {
                // Typically out of file descriptors: pause rather than spin on the error.
                tracing::warn!("transport: accept failed: {err}");
                tokio::time::sleep(shared.config.reconnect_min).await;
            }
        }
    }
}

/// The acceptor's side of the handshake, then the link.
async fn accept(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    let limit = shared.config.connect_timeout;
    let handshake = async {
        stream.set_nodelay(true)?;
        match &shared.config.tls {
            Some(tls) => {
                let mut stream = tls.accept(stream).await?;
                let hello = accept_handshake(&shared, &mut stream).await?;
                Ok((LinkSocket::Tls(stream), hello))
            }
            None => {
                let mut stream = stream;
                let hello = accept_handshake(&shared, &mut stream).await?;
                Ok((LinkSocket::Plain(stream), hello))
            }
        }
    };
    match timeout(limit, handshake).await.unwrap_or(Err(WireError::Timeout(limit))) {
        Ok((socket, hello)) => {
            shared.attach(Side::Accepted, socket, remote, hello);
        }
        Err(reason) => report(&shared, remote, &reason),
    }
}

/// The acceptor's frames of the handshake, over TLS or not: the dialer's hello, ours with our
/// proof, the dialer's proof.
async fn accept_handshake<S: LinkStream>(
    shared: &Shared,
    stream: &mut S,
) -> Result<Hello, WireError> {
    let (hello, their_body) = read_hello(shared, stream).await?;
    let me = shared.config.node;
    if hello.node == me {
        return Err(WireError::Node { theirs: hello.node, why: "that is this node's id" });
    }
    if hello.node > me {
        let why = "a higher id than this node's, and between two nodes the lower id dials";
        return Err(WireError::Node { theirs: hello.node, why });
    }
    // Our hello and our proof go in one write; the proof covers both hellos.
    let mut out = encoded_hello(shared)?;
    let ours = frame_body(&out).to_vec();
    let proof = auth::prove(&shared.config.secret, Direction::Acceptor, &their_body, &ours);
    encode_proof(&proof, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let proof = read_proof(stream).await?;
    if !auth::verify(&shared.config.secret, Direction::Dialer, &their_body, &ours, &proof) {
        return Err(WireError::Auth("the dialer's proof does not match this cluster's secret"));
    }
    Ok(hello)
}

/// Keeps a link to `peer` (which has the higher id) open for as long as the peer is set:
/// connects, runs the link until it fails, waits out the backoff, and again.
pub(crate) async fn dial_loop(shared: Arc<Shared>, peer: Arc<Peer>) {
    let config = &shared.config;
    let seed = config.node.0.rotate_left(32) ^ peer.node.0 ^ config.cluster_id;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max, seed);
    // Only the first failure of a run is logged above debug, so a peer that is down for an hour
    // does not fill the log.
    let mut failing = false;
    loop {
        let Some(addr) = lock(&peer.state).addr else { return };
        let limit = config.connect_timeout;
        let attempt = timeout(limit, dial(&shared, peer.node, addr));
        match attempt.await.unwrap_or(Err(WireError::Timeout(limit))) {
            Ok((stream, hello)) => {
                failing = false;
                let Some(link_ended) = shared.attach(Side::Dialed(&peer), stream, addr, hello)
                else {
                    return;
                };
                let up_since = Instant::now();
                // An error only means the slot was dropped, which is the signal.
                let _ = link_ended.await;
                if up_since.elapsed() >= config.reconnect_max {
                    backoff.reset();
                }
            }
            Err(reason) => {
                if reason.is_refusal() {
                    report(&shared, addr, &reason);
                } else if !failing {
                    let node = peer.node;
                    tracing::info!(
                        "transport: cannot reach node {node} at {addr}: {reason}; retrying"
                    );
                } else {
                    tracing::debug!(
                        "transport: node {} at {addr} still unreachable: {reason}",
                        peer.node
                    );
                }
                failing = true;
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// The dialer's side of the handshake: connect, send the hello, check the answer.
async fn dial(
    shared: &Shared,
    node: NodeId,
    addr: SocketAddr,
) -> Result<(LinkSocket, Hello), WireError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    match &shared.config.tls {
        Some(tls) => {
            let mut stream = tls.connect(stream, addr).await?;
            let hello = dial_handshake(shared, node, &mut stream).await?;
            Ok((LinkSocket::Tls(stream), hello))
        }
        None => {
            let mut stream = stream;
            let hello = dial_handshake(shared, node, &mut stream).await?;
            Ok((LinkSocket::Plain(stream), hello))
        }
    }
}

/// The dialer's frames of the handshake, over TLS or not: our hello, the acceptor's hello and
/// proof, our proof.
async fn dial_handshake<S: LinkStream>(
    shared: &Shared,
    node: NodeId,
    stream: &mut S,
) -> Result<Hello, WireError> {
    let out = encoded_hello(shared)?;
    stream.write_all(&out).await?;
    stream.flush().await?;
    let ours = frame_body(&out);
    let (hello, their_body) = read_hello(shared, stream).await?;
    if hello.node != node {
        let why = "not the node this address was set for";
        return Err(WireError::Node { theirs: hello.node, why });
    }
    let secret = &shared.config.secret;
    let proof = read_proof(stream).await?;
    if !auth::verify(secret, Direction::Acceptor, ours, &their_body, &proof) {
        return Err(WireError::Auth("the acceptor's proof does not match this cluster's secret"));
    }
    let mut out = Vec::new();
    encode_proof(&auth::prove(secret, Direction::Dialer, ours, &their_body), &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(hello)
}

/// Reads the peer's proof frame. Whatever else comes in its place (a batch of any size, a frame
/// of another version, garbage) is an authentication failure: the peer did not authenticate, and
/// that is what the operator should read, and what `auth_failures` should count.
async fn read_proof<S: LinkStream>(stream: &mut S) -> Result<auth::Proof, WireError> {
    match read_frame(stream, PROOF_FRAME_BYTES).await {
        Ok(frame) => decode_proof(frame),
        Err(err) if err.is_refusal() => Err(WireError::Auth("expected a proof frame")),
        Err(err) => Err(err),
    }
}

/// This node's hello for a new connection, with a fresh nonce, as one frame.
fn encoded_hello(shared: &Shared) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    encode_hello(&shared.hello(auth::nonce()?), &mut out);
    Ok(out)
}

/// Reads the peer's hello, within the small hello limit, and checks its cluster id. Returns the
/// hello's body too, which the proofs cover.
async fn read_hello<S: LinkStream>(
    shared: &Shared,
    stream: &mut S,
) -> Result<(Hello, Bytes), WireError> {
    let limit = HELLO_FRAME_BYTES_MAX.min(shared.config.frame_bytes_max);
    let frame = read_frame(stream, limit).await?;
    let body = frame.body.clone();
    let hello = decode_hello(frame)?;
    let ours = shared.config.cluster_id;
    if hello.cluster_id != ours {
        return Err(WireError::Cluster { theirs: hello.cluster_id, ours });
    }
    Ok((hello, body))
}

/// Logs why a connection ends: a warning (and a count) when the peer broke the protocol, a debug
/// line for ordinary connection loss.
///
/// A failed authentication (a wrong proof, or a failed TLS handshake) is also counted in
/// `auth_failures`, and warned about once per remote
/// host: whoever keeps knocking without the secret (a scanner, or a node with the wrong secret
/// that reconnects with backoff) must not fill the log. Later failures from it are logged at
/// debug level; the counter keeps counting them.
fn report(shared: &Shared, remote: SocketAddr, reason: &WireError) {
    // A failed TLS handshake under mutual TLS is a peer without a certificate of the cluster CA
    // (or without TLS): as much a failed authentication as a wrong proof.
    if matches!(reason, WireError::Auth(_) | WireError::Tls(_)) {
        add(&shared.telemetry.counters.frames_refused, 1);
        add(&shared.telemetry.counters.auth_failures, 1);
        if shared.first_auth_failure_from(remote.ip()) {
            tracing::warn!(
                "transport: refused {remote}: {reason}; resetting the connection (further \
                 failures from this host are only counted)"
            );
        } else {
            tracing::debug!("transport: refused {remote} again: {reason}");
        }
    } else if reason.is_refusal() {
        add(&shared.telemetry.counters.frames_refused, 1);
        tracing::warn!("transport: refused {remote}: {reason}; resetting the connection");
    } else {
        tracing::debug!("transport: connection with {remote} ended: {reason}");
    }
}

/// What a link's reader and writer know about the link they serve.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) shared: Arc<Shared>,
    pub(crate) peer: Arc<Peer>,
    pub(crate) generation: u64,
    pub(crate) remote: SocketAddr,
}

impl Link {
    /// The reader task: frames from the socket to each message's group, until the connection
    /// fails or the peer breaks the protocol.
    pub(crate) async fn read(self, read: LinkReader) {
        let Err(reason) = self.read_frames(read).await;
        self.end(reason);
    }

    /// The writer task: queued messages to the socket, one write per flush, until a write fails.
    pub(crate) async fn write(self, write: LinkWriter, frame_bytes_max: usize) {
        let Err(reason) = self.write_frames(write, frame_bytes_max).await;
        self.end(WireError::Io(reason));
    }

    async fn read_frames(&self, read: LinkReader) -> Result<Infallible, WireError> {
        let counters = &self.shared.telemetry.counters;
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, read);
        loop {
            let frame = read_frame(&mut reader, self.shared.config.frame_bytes_max).await?;
            let wire_bytes = frame.wire_bytes as u64;
            let messages = decode_batch(frame, self.shared.config.node)?;
            add(&counters.frames_received, 1);
            add(&counters.bytes_received, wire_bytes);
            for (group, payload) in messages {
                // Waiting here when the group's channel is full is the back-pressure: this socket
                // is not read until the group catches up.
                let message = Inbound { from: self.peer.node, group, payload };
                let delivered = match self.shared.route(group) {
                    Some(route) => route.send(message).await.is_ok(),
                    None => false,
                };
                if delivered {
                    add(&counters.messages_received, 1);
                } else {
                    add(&counters.messages_dropped, 1);
                    tracing::debug!("transport: dropped a message for group {group}, which no one here receives");
                }
            }
        }
    }

    async fn write_frames(
        &self,
        mut write: LinkWriter,
        frame_bytes_max: usize,
    ) -> Result<Infallible, std::io::Error> {
        let counters = &self.shared.telemetry.counters;
        let mut batch = VecDeque::new();
        let mut buffer = Vec::new();
        loop {
            self.peer.take_queued(&mut batch);
            if batch.is_empty() {
                self.peer.wake.notified().await;
                continue;
            }
            buffer.clear();
            let mut encoder = BatchEncoder::new(&mut buffer, self.peer.node, frame_bytes_max);
            let mut encoded = 0;
            for message in &batch {
                // Only a peer with a smaller frame limit than ours can make this false.
                if message_frame_bytes(message.payload.len()) <= frame_bytes_max {
                    encoder.push(message.group, &message.payload);
                    encoded += 1;
                }
            }
            let frames = encoder.finish();
            let too_large = batch.len() as u64 - encoded;
            if too_large > 0 {
                add(&counters.messages_dropped, too_large);
                let node = self.peer.node;
                tracing::warn!(
                    "transport: dropped {too_large} messages over node {node}'s frame limit \
                     ({frame_bytes_max} bytes)"
                );
            }
            batch.clear();
            // A TLS stream may keep part of a write in its buffer until flushed.
            let written = match write.write_all(&buffer).await {
                Ok(()) => write.flush().await,
                Err(err) => Err(err),
            };
            if let Err(err) = written {
                add(&counters.messages_dropped, encoded);
                return Err(err);
            }
            add(&counters.frames_sent, frames);
            add(&counters.bytes_sent, buffer.len() as u64);
            add(&counters.messages_sent, encoded);
            if buffer.capacity() > WRITE_BUFFER_KEEP_BYTES {
                buffer = Vec::new();
            }
        }
    }

    /// Reports why the link ended and ends it, unless a newer link replaced it already.
    fn end(&self, reason: WireError) {
        report(&self.shared, self.remote, &reason);
        if self.peer.end_link(self.generation).is_some() {
            tracing::info!(
                "transport: link to node {} at {} down: {reason}",
                self.peer.node,
                self.remote
            );
        }
    }
}
