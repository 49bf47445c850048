//! Framed, versioned TCP links between the nodes of a Conclave cluster.
//!
//! Several consensus groups (multi-raft) run on each node, and they all share one [`Transport`]:
//! every message is addressed by [`GroupId`] and node, and its payload is opaque bytes that the
//! runtime encodes. The transport knows nothing of Raft; it moves bytes between nodes, in order,
//! with bounded memory, and reconnects when links fail.
//!
//! - **One TCP connection per pair of nodes**, used both ways. The node with the lower id dials
//!   (it must be given the higher node's address with [`Transport::set_peer`]); the higher one
//!   only accepts, and learns of lower nodes from their connections. A node accepts any lower id
//!   that presents the right cluster id and format version and proves it knows the secret; a
//!   newer connection from a node replaces its older one (the dialer reconnected). The dialer
//!   retries with capped, jittered exponential backoff for as long as the peer is set.
//! - **Sending never blocks.** [`Transport::send`] queues the message on the peer's bounded queue
//!   and returns; a writer task per link drains the whole queue into Batch frames and writes them
//!   with one write, so many small consensus messages cost one system call. Messages queued while
//!   a link is down wait for the next one. Errors drop the message ([`SendError`]); consensus
//!   protocols retransmit.
//! - **Receiving pushes back.** Each group takes its messages from a bounded channel of its own
//!   ([`Transport::receive`]), which the links fill directly; when a group is slow, links stop
//!   reading their sockets and TCP flow control slows the senders. Nothing is dropped on the way,
//!   except messages for a group that no one on the node receives.
//! - **Peers authenticate.** Each side of a connection proves it knows the cluster secret
//!   ([`ClusterSecret`]) with an HMAC over both sides' fresh nonces before anything else is read
//!   from it, so that a process that merely reaches the port cannot speak for a member.
//! - **Nothing a peer sends is trusted.** Frame lengths are checked before allocating, every frame
//!   carries a CRC32C, and a wrong version, size, checksum, cluster id or address is refused with
//!   a warning naming the peer's address, and the connection is reset.
//!
//! `docs/TRANSPORT.md` describes the wire format byte by byte.
//!
//! ```
//! use bytes::Bytes;
//! use conclave_core::NodeId;
//! use conclave_transport::{GroupId, Transport, TransportConfig};
//! use tokio::net::TcpListener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let listener_1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let listener_2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr_2 = listener_2.local_addr().unwrap();
//! let node_1 = Transport::start(TransportConfig::new(NodeId(1), 42), listener_1).unwrap();
//! let node_2 = Transport::start(TransportConfig::new(NodeId(2), 42), listener_2).unwrap();
//! let mut group_7 = node_2.receive(GroupId(7)).unwrap();
//!
//! node_1.set_peer(NodeId(2), addr_2); // the lower id dials
//! node_1.send(NodeId(2), GroupId(7), Bytes::from_static(b"vote?")).unwrap(); // queued
//! let message = group_7.recv().await.unwrap();
//! assert_eq!((message.from, message.group), (NodeId(1), GroupId(7)));
//! assert_eq!(&message.payload[..], b"vote?");
//! node_1.shutdown().await;
//! node_2.shutdown().await;
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod backoff;
mod config;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod link;
mod peer;
mod stats;
mod tls;
mod transport;
pub mod wire;

use std::fmt;

use bytes::Bytes;
use conclave_core::NodeId;

pub use auth::ClusterSecret;
pub use config::TransportConfig;
pub use error::{SendError, TransportError};
pub use stats::TransportStats;
pub use tls::PeerTls;
pub use transport::Transport;

/// Identifies one consensus group among those sharing a transport, so that one connection per
/// node pair serves every group and each inbound message reaches its group's receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message received from a peer, as the runtime needs it to hand it to the right group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The sender, as it identified itself in the handshake of the connection the message came
    /// on.
    pub from: NodeId,
    /// The consensus group the message belongs to.
    pub group: GroupId,
    /// The message itself, opaque to the transport. A message that had a frame to itself shares
    /// the frame's buffer; one that came in a batch with others has its own, so keeping it does
    /// not keep its neighbours in memory.
    pub payload: Bytes,
}

#[cfg(test)]
mod tests;
