//! Scenario tests on 127.0.0.1 with OS-picked ports. Nothing sleeps to synchronise: tests wait on
//! a group's inbound channel, on a raw socket, or on the link-change signal, each under a timeout.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use conclave_core::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

use crate::auth::{self, Direction};
use crate::frame::{
    decode_batch, decode_hello, decode_proof, encode_hello, encode_proof, frame_body, read_frame,
    BatchEncoder, Hello, KIND_HELLO, MESSAGE_HEADER_BYTES, PROOF_FRAME_BYTES,
};
use crate::{ClusterSecret, GroupId, Inbound, SendError, Transport, TransportConfig};

const CLUSTER: u64 = 42;
/// The secret of the test clusters.
const SECRET: &[u8] = b"the test cluster's secret";
/// How long any single wait may take before the test fails; far above what any step needs.
const WAIT: Duration = Duration::from_secs(3);

fn config(node: u64) -> TransportConfig {
    let mut config = TransportConfig::new(NodeId(node), CLUSTER);
    config.advertise = Bytes::from(format!("node-{node}"));
    config.secret = ClusterSecret::new(SECRET);
    config.reconnect_min = Duration::from_millis(5);
    config.reconnect_max = Duration::from_millis(50);
    config.connect_timeout = Duration::from_millis(500);
    config
}

/// The groups every test node receives.
const GROUPS: [u64; 8] = [0, 1, 2, 3, 4, 5, 7, 1_000_000];

struct Node {
    transport: Transport,
    inbound: HashMap<u64, Receiver<Inbound>>,
    addr: SocketAddr,
}

impl Node {
    async fn start(config: TransportConfig) -> Node {
        Node::start_on(config, TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn start_on(config: TransportConfig, listener: TcpListener) -> Node {
        let addr = listener.local_addr().unwrap();
        let transport = Transport::start(config, listener).unwrap();
        let inbound = GROUPS
            .into_iter()
            .map(|group| (group, transport.receive(GroupId(group)).unwrap()))
            .collect();
        Node { transport, inbound, addr }
    }

    fn send(&self, to: u64, group: u64, payload: &[u8]) {
        let payload = Bytes::copy_from_slice(payload);
        self.transport.send(NodeId(to), GroupId(group), payload).unwrap();
    }

    /// The next message for `group`.
    async fn recv(&mut self, group: u64) -> Inbound {
        let next = timeout(WAIT, self.inbound.get_mut(&group).unwrap().recv()).await;
        next.expect("timed out waiting for a message").expect("inbound stream ended")
    }

    /// Waits until `done` holds, re-checking whenever a link comes up or goes down.
    async fn wait_until(&self, what: &str, done: impl Fn(&Transport) -> bool) {
        let mut changes = self.transport.telemetry().watch_links();
        let waited = timeout(WAIT, async {
            while !done(&self.transport) {
                changes.changed().await.unwrap();
            }
        });
        waited.await.unwrap_or_else(|_| panic!("timed out waiting until {what}"));
    }
}

/// Starts a node for each id and gives every node every other's address, as the runtime does
/// with the membership.
async fn cluster(ids: &[u64]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for &id in ids {
        nodes.push(Node::start(config(id)).await);
    }
    for node in &nodes {
        for (other, &id) in nodes.iter().zip(ids) {
            node.transport.set_peer(NodeId(id), other.addr);
        }
    }
    nodes
}

fn expect(message: &Inbound, from: u64, group: u64, payload: &[u8]) {
    assert_eq!((message.from, message.group), (NodeId(from), GroupId(group)));
    assert_eq!(&message.payload[..], payload);
}

#[tokio::test]
async fn two_nodes_talk_both_ways_over_one_connection() {
    let mut nodes = cluster(&[1, 2]).await;
    nodes[0].send(2, 1, b"ping");
    expect(&nodes[1].recv(1).await, 1, 1, b"ping");
    nodes[1].send(1, 1, b"pong");
    expect(&nodes[0].recv(1).await, 2, 1, b"pong");

    assert_eq!(nodes[0].transport.connected(), [NodeId(2)]);
    assert_eq!(nodes[1].transport.connected(), [NodeId(1)]);
    for node in &nodes {
        let stats = node.transport.stats();
        assert_eq!((stats.connects, stats.disconnects, stats.frames_refused), (1, 0, 0));
    }
}

#[tokio::test]
async fn three_nodes_keep_one_connection_per_pair() {
    let ids = [1, 2, 3];
    let mut nodes = cluster(&ids).await;
    for (node, &from) in nodes.iter().zip(&ids) {
        for &to in ids.iter().filter(|&&to| to != from) {
            node.send(to, 0, format!("{from}->{to}").as_bytes());
        }
    }
    for (node, &me) in nodes.iter_mut().zip(&ids) {
        let mut senders = Vec::new();
        for _ in 0..2 {
            let message = node.recv(0).await;
            assert_eq!(&message.payload[..], format!("{}->{me}", message.from).as_bytes());
            senders.push(message.from.0);
        }
        senders.sort_unstable();
        let others: Vec<u64> = ids.iter().copied().filter(|&id| id != me).collect();
        assert_eq!(senders, others);
        let connected: Vec<NodeId> = others.iter().map(|&id| NodeId(id)).collect();
        assert_eq!(node.transport.connected(), connected);
        assert_eq!(node.transport.stats().connects, 2, "node {me}: one connection per peer");
    }
}

#[tokio::test]
async fn messages_arrive_tagged_with_their_group() {
    let mut nodes = cluster(&[1, 2]).await;
    let groups = [7, 1, 7, 3, 1_000_000];
    for (i, group) in groups.iter().enumerate() {
        nodes[0].send(2, *group, format!("m{i}").as_bytes());
    }
    for (i, group) in groups.iter().enumerate() {
        expect(&nodes[1].recv(*group).await, 1, *group, format!("m{i}").as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_keep_their_order_both_ways() {
    const COUNT: u64 = 10_000;
    let mut nodes = cluster(&[1, 2]).await;
    for i in 0..COUNT {
        nodes[0].send(2, i % 3, &i.to_le_bytes());
        nodes[1].send(1, i % 3, &i.to_le_bytes());
    }
    for node in &mut nodes {
        for i in 0..COUNT {
            let message = node.recv(i % 3).await;
            assert_eq!(
                (&message.payload[..], message.group),
                (&i.to_le_bytes()[..], GroupId(i % 3))
            );
        }
    }
}

#[tokio::test]
async fn messages_queued_before_the_link_is_up_go_out_in_one_write() {
    const COUNT: usize = 5_000;
    const FRAME_BYTES_MAX: usize = 64 * 1024;
    const PAYLOAD_BYTES: usize = 100;
    // Node 2's port is reserved but nothing answers on it yet.
    let listener_2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let small_frames = |node| TransportConfig { frame_bytes_max: FRAME_BYTES_MAX, ..config(node) };
    let node_1 = Node::start(small_frames(1)).await;
    node_1.transport.set_peer(NodeId(2), listener_2.local_addr().unwrap());
    for i in 0..COUNT {
        let mut payload = [0; PAYLOAD_BYTES];
        payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
        node_1.send(2, 5, &payload);
    }
    assert!(node_1.transport.connected().is_empty());

    let mut node_2 = Node::start_on(small_frames(2), listener_2);
    for i in 0..COUNT {
        let message = node_2.recv(5).await;
        assert_eq!(&message.payload[..8], &(i as u64).to_le_bytes());
    }
    // The whole queue went out in one flush, split only where a frame was full.
    let per_frame = (FRAME_BYTES_MAX - 10) / (MESSAGE_HEADER_BYTES + PAYLOAD_BYTES);
    assert_eq!(node_2.transport.stats().frames_received, COUNT.div_ceil(per_frame) as u64);
}

#[tokio::test]
async fn dialer_reconnects_after_the_acceptor_restarts() {
    let mut nodes = cluster(&[1, 2]).await;
    nodes[0].send(2, 1, b"before");
    expect(&nodes[1].recv(1).await, 1, 1, b"before");

    let mut old_2 = nodes.pop().unwrap();
    old_2.transport.shutdown().await;
    old_2.transport.shutdown().await; // idempotent
    let ended = old_2.inbound.get_mut(&1).unwrap().recv().await;
    assert!(ended.is_none(), "a group's inbound stream ends at shutdown");
    let node_1 = &mut nodes[0];
    node_1.wait_until("the link to node 2 is down", |t| t.connected().is_empty()).await;

    // Queued while the link is down, delivered by the new link.
    node_1.send(2, 1, b"after");
    let mut new_2 = Node::start_on(config(2), TcpListener::bind(old_2.addr).await.unwrap());
    expect(&new_2.recv(1).await, 1, 1, b"after");
    new_2.send(1, 1, b"back");
    expect(&node_1.recv(1).await, 2, 1, b"back");
    let stats = node_1.transport.stats();
    assert_eq!((stats.connects, stats.disconnects), (2, 1));
}

#[tokio::test]
async fn set_peer_with_a_new_address_moves_the_link() {
    let mut nodes = cluster(&[1, 2]).await;
    nodes[0].send(2, 1, b"first");
    expect(&nodes[1].recv(1).await, 1, 1, b"first");
    let mut moved_2 = Node::start(config(2)).await;
    nodes[0].transport.set_peer(NodeId(2), moved_2.addr);
    nodes[0].send(2, 1, b"second");
    expect(&moved_2.recv(1).await, 1, 1, b"second");
}

#[tokio::test]
async fn a_higher_node_learns_a_lower_peer_from_its_connection() {
    let node_1 = Node::start(config(1)).await;
    let mut node_2 = Node::start(config(2)).await;
    let unknown = node_2.transport.send(NodeId(1), GroupId(0), Bytes::new());
    assert_eq!(unknown, Err(SendError::UnknownPeer));

    node_1.transport.set_peer(NodeId(2), node_2.addr);
    node_1.send(2, 0, b"hello");
    expect(&node_2.recv(0).await, 1, 0, b"hello");
    node_2.send(1, 0, b"now I know you");
    let mut node_1 = node_1;
    expect(&node_1.recv(0).await, 2, 0, b"now I know you");
}

#[tokio::test]
async fn peer_info_returns_the_advertised_bytes() {
    let mut nodes = cluster(&[1, 2]).await;
    assert_eq!(nodes[0].transport.peer_info(NodeId(2)), None, "no handshake yet");
    nodes[0].send(2, 0, b"x");
    nodes[1].recv(0).await;
    assert_eq!(nodes[1].transport.peer_info(NodeId(1)), Some(Bytes::from("node-1")));
    assert_eq!(nodes[0].transport.peer_info(NodeId(2)), Some(Bytes::from("node-2")));
    assert_eq!(nodes[0].transport.peer_info(NodeId(9)), None);
}

#[tokio::test]
async fn unknown_peers_and_self_are_refused() {
    let node = Node::start(config(1)).await;
    node.transport.set_peer(NodeId(1), node.addr); // itself: ignored
    for to in [NodeId(1), NodeId(9)] {
        assert_eq!(node.transport.send(to, GroupId(0), Bytes::new()), Err(SendError::UnknownPeer));
    }
    assert_eq!(node.transport.stats().messages_dropped, 2);
}

#[tokio::test]
async fn a_full_queue_refuses_without_blocking() {
    // The peer's port accepts TCP connections but never answers the handshake, so the link never
    // comes up and nothing drains the queue.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Node::start(TransportConfig { queue_bytes_max: 1000, ..config(1) }).await;
    node.transport.set_peer(NodeId(2), silent.local_addr().unwrap());
    let payload = Bytes::from(vec![0; 100]); // 120 bytes queued each
    for _ in 0..8 {
        node.transport.send(NodeId(2), GroupId(0), payload.clone()).unwrap();
    }
    let full = node.transport.send(NodeId(2), GroupId(0), payload);
    assert_eq!(full, Err(SendError::QueueFull));
    assert_eq!(node.transport.stats().messages_dropped, 1);
}

#[tokio::test]
async fn oversized_messages_and_sends_after_shutdown_are_refused() {
    const FRAME_BYTES_MAX: usize = 4096;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Node::start(TransportConfig { frame_bytes_max: FRAME_BYTES_MAX, ..config(1) }).await;
    let transport = &node.transport;
    transport.set_peer(NodeId(2), silent.local_addr().unwrap());
    // 10 bytes of frame and 20 of message header around the payload.
    let just_fits = Bytes::from(vec![0; FRAME_BYTES_MAX - 30]);
    let too_large = Bytes::from(vec![0; FRAME_BYTES_MAX - 29]);
    assert_eq!(transport.send(NodeId(2), GroupId(0), just_fits), Ok(()));
    assert_eq!(transport.send(NodeId(2), GroupId(0), too_large), Err(SendError::TooLarge));
    transport.shutdown().await;
    assert_eq!(transport.send(NodeId(2), GroupId(0), Bytes::new()), Err(SendError::Closed));
    // The refused two, and the one still queued at shutdown.
    assert_eq!(transport.stats().messages_dropped, 3);
}

#[tokio::test]
async fn remove_peer_closes_the_link_and_forgets_the_peer() {
    let mut nodes = cluster(&[1, 2]).await;
    nodes[0].send(2, 0, b"x");
    nodes[1].recv(0).await;
    nodes[0].transport.remove_peer(NodeId(2));
    assert!(nodes[0].transport.connected().is_empty());
    let send = nodes[0].transport.send(NodeId(2), GroupId(0), Bytes::new());
    assert_eq!(send, Err(SendError::UnknownPeer));
    assert_eq!(nodes[0].transport.peer_info(NodeId(2)), None);
    nodes[1].wait_until("node 2 sees the link down", |t| t.connected().is_empty()).await;
}

#[tokio::test]
async fn a_busy_group_pushes_back_on_its_link_and_loses_no_message() {
    let node_1 = Node::start(config(1)).await;
    let mut node_2 = Node::start(TransportConfig { inbound_messages_max: 4, ..config(2) }).await;
    node_1.transport.set_peer(NodeId(2), node_2.addr);
    for i in 0..100u64 {
        node_1.send(2, 5, &i.to_le_bytes());
    }
    node_1.send(2, 7, b"behind group 5");
    // Nobody reads group 5: its channel fills, and the link stops at its next message. Group 7's
    // message comes after all of group 5's on the same link, so it waits too.
    let full = async {
        while node_2.inbound[&5].len() < 4 {
            tokio::task::yield_now().await;
        }
    };
    timeout(WAIT, full).await.expect("group 5's channel never filled");
    assert!(node_2.inbound[&7].is_empty(), "a link delivers in order: group 7 waits");
    assert_eq!(node_2.transport.stats().messages_dropped, 0);
    // Once group 5 catches up, everything arrives, in order, and nothing was dropped.
    for i in 0..100u64 {
        expect(&node_2.recv(5).await, 1, 5, &i.to_le_bytes());
    }
    expect(&node_2.recv(7).await, 1, 7, b"behind group 5");
    let stats = node_2.transport.stats();
    assert_eq!((stats.messages_received, stats.messages_dropped), (101, 0));
}

#[tokio::test]
async fn each_group_has_one_receiver_and_unreceived_groups_are_dropped() {
    let mut nodes = cluster(&[1, 2]).await;
    let taken = nodes[1].transport.receive(GroupId(0));
    assert!(matches!(taken, Err(crate::TransportError::GroupTaken(GroupId(0)))));
    nodes[0].send(2, 9, b"nobody receives group 9");
    nodes[0].send(2, 0, b"group 0 does");
    expect(&nodes[1].recv(0).await, 1, 0, b"group 0 does");
    assert_eq!(nodes[1].transport.stats().messages_dropped, 1);
    // A group whose receiver is gone (it stopped) can be received again.
    nodes[1].inbound.remove(&0);
    let mut again = nodes[1].transport.receive(GroupId(0)).unwrap();
    nodes[0].send(2, 0, b"restarted");
    let message = timeout(WAIT, again.recv()).await.unwrap().unwrap();
    expect(&message, 1, 0, b"restarted");
}

// --- Peers that break the protocol: a raw TCP client against a cluster of nodes 2 and 3. ---

/// A raw client's hello, as node `node` of `cluster`.
fn raw_hello(node: u64, cluster: u64) -> Vec<u8> {
    let hello = Hello {
        cluster_id: cluster,
        node: NodeId(node),
        frame_bytes_max: u32::MAX,
        nonce: [7; 32],
        advertise: Bytes::new(),
    };
    let mut out = Vec::new();
    encode_hello(&hello, &mut out);
    out
}

/// A batch frame of one message from the raw client to `to`.
fn raw_batch(to: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = BatchEncoder::new(&mut out, NodeId(to), usize::MAX);
    encoder.push(GroupId(0), payload);
    encoder.finish();
    out
}

/// Connects to `addr` and completes a handshake as node 1 with the cluster's secret.
async fn raw_link(addr: SocketAddr) -> TcpStream {
    raw_link_with(addr, &ClusterSecret::new(SECRET)).await
}

/// Connects to `addr` and runs the dialer's side of the handshake as node 1, proving `secret`
/// (whether or not it is the node's); checks the node's proof only if the secrets agree.
async fn raw_link_with(addr: SocketAddr, secret: &ClusterSecret) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let ours = raw_hello(1, CLUSTER);
    stream.write_all(&ours).await.unwrap();
    let hello = read_frame(&mut stream, 1 << 16).await.unwrap();
    assert_eq!(hello.kind, KIND_HELLO);
    let theirs = hello.body.clone();
    assert_eq!(decode_hello(hello).unwrap().cluster_id, CLUSTER);
    let proof = decode_proof(read_frame(&mut stream, PROOF_FRAME_BYTES).await.unwrap()).unwrap();
    let ours = frame_body(&ours);
    let valid = auth::verify(secret, Direction::Acceptor, ours, &theirs, &proof);
    assert_eq!(valid, *secret == ClusterSecret::new(SECRET), "the node's proof");
    let mut out = Vec::new();
    encode_proof(&auth::prove(secret, Direction::Dialer, ours, &theirs), &mut out);
    stream.write_all(&out).await.unwrap();
    stream
}

/// Waits until the other end closes `stream` (or resets it).
async fn closed_by_peer(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = timeout(WAIT, stream.read_to_end(&mut rest)).await;
    read.expect("the node did not close the connection").ok();
}

/// Collects the warnings logged on this thread (a current-thread runtime runs every task of a test
/// there), so that tests check what an operator would read.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Sends `bytes` to node 2 from a raw client (after a handshake if `handshake`) and checks that
/// node 2 refuses it, resets the connection, and keeps serving node 3 both ways.
async fn assert_refused(handshake: bool, bytes: &[u8], reason: &str) {
    let warnings = Warnings::default();
    let _logging = tracing::subscriber::set_default(warnings.clone());
    let mut nodes = cluster(&[2, 3]).await;
    let mut stream = if handshake {
        raw_link(nodes[0].addr).await
    } else {
        TcpStream::connect(nodes[0].addr).await.unwrap()
    };
    let client = stream.local_addr().unwrap().to_string();
    stream.write_all(bytes).await.unwrap();
    closed_by_peer(&mut stream).await;
    assert_eq!(nodes[0].transport.stats().frames_refused, 1);
    let logged = warnings.all();
    assert!(
        logged.iter().any(|line| line.contains(&client) && line.contains(reason)),
        "no warning naming {client} and {reason:?} in {logged:?}"
    );

    nodes[0].send(3, 0, b"still serving");
    expect(&nodes[1].recv(0).await, 2, 0, b"still serving");
    nodes[1].send(2, 0, b"and listening");
    expect(&nodes[0].recv(0).await, 3, 0, b"and listening");
}

#[tokio::test]
async fn a_wrong_version_is_refused() {
    // Version 1 is the hello before peers authenticated: a node that speaks it is refused.
    let mut hello = raw_hello(1, CLUSTER);
    hello[4] = 1;
    assert_refused(false, &hello, "unsupported format version 1").await;
}

#[tokio::test]
async fn an_oversized_length_is_refused_before_the_handshake() {
    assert_refused(false, &u32::MAX.to_le_bytes(), "over the limit of 65536 bytes").await;
}

#[tokio::test]
async fn an_oversized_length_is_refused_on_a_link() {
    // A frame of 64 MiB after the length field: 4 bytes over the default limit. Only announced;
    // the node must refuse it before reading (or allocating) the body.
    let length = (64u32 << 20).to_le_bytes();
    assert_refused(true, &length, "over the limit of 67108864 bytes").await;
}

#[tokio::test]
async fn a_bad_checksum_is_refused() {
    let mut hello = raw_hello(1, CLUSTER);
    hello[10] ^= 0x20;
    assert_refused(false, &hello, "checksum mismatch").await;
    let mut batch = raw_batch(2, b"payload");
    let last = batch.len() - 5;
    batch[last] ^= 1;
    assert_refused(true, &batch, "checksum mismatch").await;
}

#[tokio::test]
async fn a_wrong_cluster_id_is_refused() {
    let reason = "cluster id 43 does not match this cluster's 42";
    assert_refused(false, &raw_hello(1, CLUSTER + 1), reason).await;
}

#[tokio::test]
async fn a_misrouted_message_and_a_higher_dialer_are_refused() {
    let reason = "message for node 9 arrived at node 2";
    assert_refused(true, &raw_batch(9, b"for someone else"), reason).await;
    assert_refused(false, &raw_hello(4, CLUSTER), "peer says it is node 4").await;
}

#[tokio::test]
async fn a_newer_connection_from_a_node_replaces_its_older_one() {
    let mut node_2 = Node::start(config(2)).await;
    let mut old = raw_link(node_2.addr).await;
    let mut new = raw_link(node_2.addr).await;
    closed_by_peer(&mut old).await;
    let stats = node_2.transport.stats();
    assert_eq!((stats.connects, stats.disconnects), (2, 1));
    assert_eq!(node_2.transport.connected(), [NodeId(1)]);

    // Both directions work on the new connection.
    node_2.send(1, 4, b"to the new one");
    let frame = timeout(WAIT, read_frame(&mut new, 1 << 16)).await.unwrap().unwrap();
    let messages = decode_batch(frame, NodeId(1)).unwrap();
    assert_eq!(messages, [(GroupId(4), Bytes::from("to the new one"))]);
    new.write_all(&raw_batch(2, b"from the new one")).await.unwrap();
    expect(&node_2.recv(0).await, 1, 0, b"from the new one");
}

// --- Authentication. ---

/// Waits until `done` holds for `node`'s counters, re-checking every millisecond: the counters
/// have no change signal, and a refused handshake changes no link.
async fn wait_for_stats(node: &Node, what: &str, done: impl Fn(crate::TransportStats) -> bool) {
    let waited = timeout(WAIT, async {
        while !done(node.transport.stats()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    waited.await.unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_nothing_after_it_is_read() {
    let warnings = Warnings::default();
    let _logging = tracing::subscriber::set_default(warnings.clone());
    let mut nodes = cluster(&[2, 3]).await;
    for attempt in 0..2 {
        let mut stream = raw_link_with(nodes[0].addr, &ClusterSecret::new(*b"a guess")).await;
        // A batch right after the bad proof, as a forger would send: it must never be read.
        stream.write_all(&raw_batch(2, b"forged")).await.unwrap();
        closed_by_peer(&mut stream).await;
        let stats = nodes[0].transport.stats();
        assert_eq!((stats.auth_failures, stats.frames_refused), (attempt + 1, attempt + 1));
    }
    assert_eq!(nodes[0].transport.connected(), [NodeId(3)]);
    // Logged once for the host, with the address, however often it knocks.
    let logged: Vec<String> =
        warnings.all().into_iter().filter(|line| line.contains("authentication failed")).collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("127.0.0.1:"), "{logged:?}");
    // The link to node 3 still works, and the forged message was never delivered: the first
    // message on group 0 is node 3's.
    nodes[1].send(2, 0, b"genuine");
    expect(&nodes[0].recv(0).await, 3, 0, b"genuine");
}

#[tokio::test]
async fn a_batch_in_place_of_the_proof_is_refused_unread() {
    let mut nodes = cluster(&[2, 3]).await;
    // A small batch (it fits where the 42-byte proof goes) and a large one (it does not).
    for (attempt, payload) in [&b"forged"[..], &[0; 1000][..]].into_iter().enumerate() {
        let mut stream = TcpStream::connect(nodes[0].addr).await.unwrap();
        stream.write_all(&raw_hello(1, CLUSTER)).await.unwrap();
        stream.write_all(&raw_batch(2, payload)).await.unwrap();
        closed_by_peer(&mut stream).await;
        assert_eq!(nodes[0].transport.stats().auth_failures, attempt as u64 + 1);
    }
    nodes[1].send(2, 0, b"genuine");
    expect(&nodes[0].recv(0).await, 3, 0, b"genuine");
}

#[tokio::test]
async fn nodes_with_different_secrets_never_link() {
    for (secret_1, secret_2) in [
        (ClusterSecret::new(*b"one"), ClusterSecret::new(*b"two")),
        (ClusterSecret::none(), ClusterSecret::new(*b"two")),
        (ClusterSecret::new(*b"one"), ClusterSecret::none()),
    ] {
        let mut config_1 = config(1);
        config_1.secret = secret_1;
        let mut config_2 = config(2);
        config_2.secret = secret_2;
        let node_1 = Node::start(config_1).await;
        let node_2 = Node::start(config_2).await;
        node_1.transport.set_peer(NodeId(2), node_2.addr);
        // The dialer checks the acceptor's proof first, so it is the one that refuses.
        wait_for_stats(&node_1, "the dialer refused", |stats| stats.auth_failures >= 2).await;
        assert!(node_1.transport.connected().is_empty());
        assert!(node_2.transport.connected().is_empty());
        assert_eq!(node_2.transport.stats().connects, 0);
    }
}

#[tokio::test]
async fn nodes_without_a_secret_link_with_each_other() {
    let mut config_1 = config(1);
    config_1.secret = ClusterSecret::none();
    let mut config_2 = config(2);
    config_2.secret = ClusterSecret::none();
    let node_1 = Node::start(config_1).await;
    let mut node_2 = Node::start(config_2).await;
    node_1.transport.set_peer(NodeId(2), node_2.addr);
    node_1.send(2, 1, b"no secret here");
    expect(&node_2.recv(1).await, 1, 1, b"no secret here");
}

// --- Mutual TLS: certificates of the cluster CA, and the secret's handshake inside. ---

/// A CA: its certificate (DER) and what signs with it.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        TestCa { cert: params.self_signed(&key).unwrap(), key }
    }

    /// Peer TLS for a node whose certificate this CA signs, naming 127.0.0.1, and which trusts
    /// `trusted`'s certificates.
    fn peer_tls(&self, trusted: &TestCa) -> Arc<crate::PeerTls> {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(trusted.cert.der().to_vec())).unwrap();
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private.clone_key())
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)
            .unwrap();
        Arc::new(crate::PeerTls::new(Arc::new(server), Arc::new(client)))
    }
}

fn tls_config(node: u64, tls: Arc<crate::PeerTls>) -> TransportConfig {
    let mut config = config(node);
    config.tls = Some(tls);
    config
}

#[tokio::test]
async fn nodes_with_certificates_of_the_cluster_ca_talk_over_tls() {
    let ca = TestCa::new();
    let node_1 = Node::start(tls_config(1, ca.peer_tls(&ca))).await;
    let mut node_2 = Node::start(tls_config(2, ca.peer_tls(&ca))).await;
    node_1.transport.set_peer(NodeId(2), node_2.addr);
    node_1.send(2, 1, b"over tls");
    expect(&node_2.recv(1).await, 1, 1, b"over tls");
    let mut node_1 = node_1;
    node_2.send(1, 1, b"and back");
    expect(&node_1.recv(1).await, 2, 1, b"and back");
}

/// A certificate of another CA, no TLS at all, or a valid certificate with the wrong secret:
/// each is refused, and the nodes never link.
#[tokio::test]
async fn tls_refuses_strangers_and_the_secret_still_counts() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let mut wrong_secret = tls_config(1, ca.peer_tls(&ca));
    wrong_secret.secret = ClusterSecret::new(*b"another secret");
    let cases = [
        ("another CA's certificate", tls_config(1, other.peer_tls(&other)), false),
        ("a certificate it does not trust", tls_config(1, ca.peer_tls(&other)), false),
        ("plain TCP", config(1), false),
        ("the wrong secret", wrong_secret, true),
    ];
    for (what, dialer, dialer_refuses) in cases {
        let node_1 = Node::start(dialer).await;
        let node_2 = Node::start(tls_config(2, ca.peer_tls(&ca))).await;
        node_1.transport.set_peer(NodeId(2), node_2.addr);
        if dialer_refuses {
            // The dialer checks the acceptor's proof first, so it is the one that refuses.
            wait_for_stats(&node_1, what, |stats| stats.auth_failures >= 2).await;
        } else {
            // Counted as failed authentications (conclave_auth_failures_total{port="peer"}).
            wait_for_stats(&node_2, what, |stats| stats.auth_failures >= 2).await;
        }
        assert!(node_1.transport.connected().is_empty(), "{what}");
        assert!(node_2.transport.connected().is_empty(), "{what}");
        assert_eq!(node_2.transport.stats().connects, 0, "{what}");
    }
}
