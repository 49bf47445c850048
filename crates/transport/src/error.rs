//! The two operating errors of the transport: it cannot start, or a message cannot be queued.
//! Connection failures are not errors the caller sees: links reconnect on their own, and what a
//! peer does wrong is logged and counted (`TransportStats::frames_refused`).

use std::io;

use thiserror::Error;

/// Why [`Transport::start`](crate::Transport::start) refused to start, or
/// [`Transport::receive`](crate::Transport::receive) to hand out a group's messages.
#[derive(Debug, Error)]
pub enum TransportError {
    /// `start` spawns the accept loop and the links on the current tokio runtime, so it must be
    /// called from inside one.
    #[error("Transport::start must be called inside a tokio runtime")]
    NoRuntime,
    /// A configuration value is out of range; the message names it.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The listener's local address could not be read.
    #[error("cannot read the listener's address: {0}")]
    Io(#[from] io::Error),
    /// Someone already receives this group's messages: one stream per group, so that no message
    /// goes to the wrong consumer.
    #[error("group {0} is already received on this node")]
    GroupTaken(crate::GroupId),
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Closed,
}

/// Why [`Transport::send`](crate::Transport::send) dropped a message.
///
/// Every error drops the message and counts it in `TransportStats::messages_dropped`; none is
/// worth waiting on, because consensus protocols retransmit what was not acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SendError {
    /// The node has no address (`set_peer`) and has never connected to this one.
    #[error("unknown peer: no address set and no connection from it")]
    UnknownPeer,
    /// The peer's outbound queue is at `queue_bytes_max`: the link is down or slower than the
    /// sender. Back off rather than buffer without bound.
    #[error("the peer's outbound queue is full")]
    QueueFull,
    /// The message would not fit in one frame of `frame_bytes_max` bytes; the protocol must split
    /// it (snapshots are sent in chunks for this reason).
    #[error("message too large for one frame")]
    TooLarge,
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Closed,
}
