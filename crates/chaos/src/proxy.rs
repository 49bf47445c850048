//! A fault-injecting proxy for one peer link.
//!
//! The runner places one proxy between every pair of nodes: the lower id (the dialer, see
//! docs/TRANSPORT.md) is configured with the proxy's address instead of its peer's. The proxy
//! reads whole transport frames (a little-endian `u32` length, then that many bytes) and, for each
//! direction on its own, forwards them, drops them, or holds them back for a delay. Working on
//! frames rather than bytes means a dropped frame is a lost batch of messages, as on a lossy
//! network, and never a corrupt stream that only tests the checksum.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::{NodeId, RandomSource, SeededRng};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest frame the proxy passes (the transport's default limit plus room); a longer length
/// field means the stream is not a transport link, and the connection is closed.
const FRAME_MAX: usize = 80 << 20;
/// Frames held back per direction before the reader waits (back-pressure, not memory).
const DELAY_QUEUE: usize = 4096;

/// What happens to frames going one way over a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Weather {
    /// Drop every frame: the link is cut this way.
    pub cut: bool,
    /// Drop each frame with this probability (0 to 1).
    pub drop: f64,
    /// Hold each frame back this long (order is kept).
    pub delay_ms: u64,
}

impl Weather {
    /// Frames pass untouched.
    pub const CLEAR: Weather = Weather { cut: false, drop: 0.0, delay_ms: 0 };
}

/// The two directions of one link, shared by the proxy's tasks and the nemesis.
#[derive(Debug, Default)]
struct Faults {
    /// From the dialer (lower id) to the acceptor.
    up: Weather,
    /// From the acceptor back to the dialer.
    down: Weather,
}

/// One link's proxy: a listener that forwards to the acceptor's real peer address.
pub struct LinkProxy {
    /// The lower node (it dials the proxy).
    pub low: NodeId,
    /// The higher node (the proxy dials it).
    pub high: NodeId,
    addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Binds a proxy on an ephemeral loopback port that forwards to `target` (the high node's
    /// peer address). `seed` drives its drop decisions.
    pub async fn start(
        low: NodeId,
        high: NodeId,
        target: SocketAddr,
        seed: u64,
    ) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            let mut connection = 0u64;
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                connection += 1;
                let faults = shared.clone();
                let seed = seed ^ connection.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                tokio::spawn(async move {
                    // The acceptor may be down (killed): then the dialer sees the connection
                    // close and retries, as it would without a proxy.
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let up = pump(in_read, out_write, faults.clone(), true, seed);
                    let down = pump(out_read, in_write, faults, false, seed.rotate_left(17));
                    // Either direction ending ends the connection, as a reset would.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Ok(LinkProxy { low, high, addr, faults, task })
    }

    /// The address the low node must dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the weather of frames from `from` to the other node of this link.
    pub fn set(&self, from: NodeId, weather: Weather) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if from == self.low {
            faults.up = weather;
        } else {
            faults.down = weather;
        }
    }

    /// Clears both directions.
    pub fn heal(&self) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        *faults = Faults::default();
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards frames one way until either side fails.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: Arc<Mutex<Faults>>,
    up: bool,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_QUEUE);
    let writer = async move {
        while let Some((due, frame)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut rng = SeededRng::new(seed);
        loop {
            let mut length = [0u8; 4];
            if from.read_exact(&mut length).await.is_err() {
                return;
            }
            let body = u32::from_le_bytes(length) as usize;
            if body > FRAME_MAX {
                return;
            }
            let mut frame = vec![0u8; 4 + body];
            frame[..4].copy_from_slice(&length);
            if from.read_exact(&mut frame[4..]).await.is_err() {
                return;
            }
            let weather = {
                let faults = faults.lock().unwrap_or_else(|p| p.into_inner());
                if up {
                    faults.up
                } else {
                    faults.down
                }
            };
            if weather.cut || (weather.drop > 0.0 && rng.chance(weather.drop)) {
                continue;
            }
            let due = Instant::now() + Duration::from_millis(weather.delay_ms);
            if tx.send((due, frame)).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}
