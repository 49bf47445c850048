//! The transport's tunables and their validation.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conclave_core::NodeId;

use crate::auth::ClusterSecret;
use crate::error::TransportError;
use crate::frame::{hello_frame_bytes, FRAME_BYTES_MIN, HELLO_FRAME_BYTES_MAX};
use crate::tls::PeerTls;

/// How a node takes part in the cluster's links. Build it with [`TransportConfig::new`] and
/// change fields as needed; [`Transport::start`](crate::Transport::start) checks it.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    // Identity.
    /// This node's id. Sent in the handshake; between two nodes, the lower id dials.
    pub node: NodeId,
    /// Both ends of a link must agree on it, so that a node pointed at another cluster's address
    /// (a stale configuration, a reused port) is refused with a log line instead of joining it.
    pub cluster_id: u64,
    /// Opaque bytes sent in the handshake, which peers read with
    /// [`Transport::peer_info`](crate::Transport::peer_info). The runtime puts this node's client
    /// and admin addresses here, so that a follower can redirect clients to the leader without a
    /// second configuration source. At most 64 KiB minus the hello's 70 bytes of framing.
    pub advertise: Bytes,
    /// The secret every node of the cluster shares, which each side of a connection proves it
    /// knows before anything else is read from it; default none. Without a secret, anyone who
    /// reaches the listener can authenticate (see [`ClusterSecret::none`]).
    pub secret: ClusterSecret,
    /// Mutual TLS on every link, with certificates signed by the cluster CA; default none
    /// (plain TCP). The secret's handshake runs inside TLS all the same.
    pub tls: Option<Arc<PeerTls>>,

    // Limits.
    /// The largest frame this node writes or reads, length field included; default 64 MiB, at
    /// most 4 GiB. A message that does not fit in a frame alone is refused by `send`
    /// ([`SendError::TooLarge`](crate::SendError::TooLarge)); a peer announcing a larger frame
    /// has its connection reset. Each side also tells the other its limit in the handshake and
    /// writes nothing larger than the reader's.
    pub frame_bytes_max: usize,
    /// The bound on each peer's outbound queue (payloads plus 20 bytes a message); default
    /// 32 MiB. A send beyond it is refused with
    /// [`SendError::QueueFull`](crate::SendError::QueueFull) rather than buffered, so a dead peer
    /// costs bounded memory. A flush being written is no longer counted, so a peer can hold up to
    /// twice this in the worst case.
    pub queue_bytes_max: usize,
    /// The capacity of each group's inbound channel, in messages; default 1024. When a group
    /// falls behind, links stop reading their sockets and TCP flow control slows the senders:
    /// the transport never buffers inbound messages without bound, and never drops them.
    pub inbound_messages_max: usize,

    // Timing.
    /// The first reconnect delay after a failure; default 20 ms. Must be above zero, so that a
    /// peer that refuses every connection never makes the dialer spin.
    pub reconnect_min: Duration,
    /// The delay doubles after each failure up to this; default 1 s. A link that lived at least
    /// this long starts again from `reconnect_min` when it fails. Each delay is drawn between half
    /// and all of the current value (jitter), so that nodes restarted together do not reconnect
    /// in lockstep.
    pub reconnect_max: Duration,
    /// How long a dialer waits for the TCP connection and the peer's hello and proof, and how
    /// long an acceptor waits for a new connection's hello and proof; default 1 s.
    pub connect_timeout: Duration,
}

impl TransportConfig {
    /// The defaults above, for `node` in cluster `cluster_id`, advertising nothing.
    pub fn new(node: NodeId, cluster_id: u64) -> Self {
        TransportConfig {
            node,
            cluster_id,
            advertise: Bytes::new(),
            secret: ClusterSecret::none(),
            tls: None,
            frame_bytes_max: 64 << 20,
            queue_bytes_max: 32 << 20,
            inbound_messages_max: 1024,
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// Checks every field against its documented range.
    pub(crate) fn validate(&self) -> Result<(), TransportError> {
        let fail = |what: String| Err(TransportError::Config(what));
        // The length field is a u32 counting the bytes after it.
        let frame_bytes_limit = u64::from(u32::MAX) + 4;
        if self.frame_bytes_max < FRAME_BYTES_MIN || self.frame_bytes_max as u64 > frame_bytes_limit
        {
            return fail(format!(
                "frame_bytes_max {} is outside {FRAME_BYTES_MIN}..={frame_bytes_limit}",
                self.frame_bytes_max
            ));
        }
        let hello_bytes = hello_frame_bytes(self.advertise.len());
        if hello_bytes > HELLO_FRAME_BYTES_MAX.min(self.frame_bytes_max) {
            return fail(format!(
                "advertise is {} bytes; its hello frame ({hello_bytes} bytes) must fit in {} bytes",
                self.advertise.len(),
                HELLO_FRAME_BYTES_MAX.min(self.frame_bytes_max)
            ));
        }
        if self.queue_bytes_max == 0 || self.inbound_messages_max == 0 {
            return fail("queue_bytes_max and inbound_messages_max must be above zero".into());
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return fail(format!(
                "reconnect delays must satisfy 0 < reconnect_min ({:?}) <= reconnect_max ({:?})",
                self.reconnect_min, self.reconnect_max
            ));
        }
        if self.connect_timeout.is_zero() {
            return fail("connect_timeout must be above zero".into());
        }
        Ok(())
    }

    /// The largest frame this node reads, as the handshake announces it.
    pub(crate) fn frame_bytes_max_u32(&self) -> u32 {
        u32::try_from(self.frame_bytes_max).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_value_is_named() {
        let config = TransportConfig::new(NodeId(1), 9);
        assert!(config.validate().is_ok());
        type BreakIt = fn(&mut TransportConfig);
        let cases: [(&str, BreakIt); 6] = [
            ("frame_bytes_max", |c| c.frame_bytes_max = 8),
            ("advertise", |c| c.advertise = Bytes::from(vec![0; 64 * 1024])),
            ("queue_bytes_max", |c| c.queue_bytes_max = 0),
            ("inbound_messages_max", |c| c.inbound_messages_max = 0),
            ("reconnect", |c| c.reconnect_min = Duration::ZERO),
            ("connect_timeout", |c| c.connect_timeout = Duration::ZERO),
        ];
        for (name, break_it) in cases {
            let mut config = TransportConfig::new(NodeId(1), 9);
            break_it(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }
}
