//! Counters, updated by every link without a lock, and the signal that a link came up or went down.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// Declares the public snapshot and the atomic counters behind it from one list, so that adding a
/// counter cannot forget one of the three places (field, counter, snapshot).
macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// What a [`Transport`](crate::Transport) has done since it started, for metrics and
        /// tests. Counts only grow; take two snapshots and subtract for rates.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct TransportStats {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        /// The live counters behind [`TransportStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)+
        }

        impl Counters {
            /// A copy of every counter. Each is read on its own, so a snapshot taken while links
            /// are busy may be a few events apart between counters.
            pub(crate) fn snapshot(&self) -> TransportStats {
                TransportStats { $($name: self.$name.load(Ordering::Relaxed),)+ }
            }
        }
    };
}

counters! {
    /// Bytes of batch frames written to sockets (handshakes are not counted).
    bytes_sent,
    /// Bytes of batch frames read from sockets.
    bytes_received,
    /// Batch frames written.
    frames_sent,
    /// Batch frames read and accepted.
    frames_received,
    /// Messages written to a socket (a successful write, not proof of delivery).
    messages_sent,
    /// Messages handed to their group's inbound channel.
    messages_received,
    /// Messages lost on this side: refused by `send` (queue full, too large, unknown peer,
    /// transport closed), discarded with a removed peer's queue or at shutdown, in a flush whose
    /// write failed (the link went down; some may have arrived), too large for the peer's limit,
    /// or received for a group that no one on this node receives.
    messages_dropped,
    /// Links established (handshake completed), dialed or accepted.
    connects,
    /// Links ended, for any reason: failure, replacement by a newer connection, removal, shutdown.
    disconnects,
    /// Frames and handshakes refused because the peer broke the protocol: bad version, over the
    /// size limit, bad checksum, bad handshake (magic, cluster id, node id), misrouted or
    /// malformed messages, failed authentication. Each one reset its connection.
    frames_refused,
    /// Connections refused because the peer did not prove it knows the cluster secret (a
    /// stranger, or a node configured with another secret). Also counted in `frames_refused`.
    auth_failures,
}

/// Adds `n` to `counter`. Relaxed ordering: the counters order nothing, they only count.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The counters and the link-change signal, shared by the transport and each live link.
#[derive(Debug)]
pub(crate) struct Telemetry {
    pub(crate) counters: Counters,
    /// Bumped whenever a link comes up or goes down, so that tests wait on link state instead of
    /// sleeping.
    links_changed: watch::Sender<u64>,
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        Telemetry { counters: Counters::default(), links_changed: watch::Sender::new(0) }
    }

    /// Records that a link came up or went down.
    pub(crate) fn link_changed(&self) {
        self.links_changed.send_modify(|changes| *changes += 1);
    }

    /// A receiver that is told of every link change from now on.
    #[cfg(test)]
    pub(crate) fn watch_links(&self) -> watch::Receiver<u64> {
        self.links_changed.subscribe()
    }
}
