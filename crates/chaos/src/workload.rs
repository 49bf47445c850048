//! The clients: each one runs operations on a small set of keys over the Redis protocol, one at a
//! time, and records what it asked and what it was told.
//!
//! Outcomes follow Jepsen's rules. A read that gets an error or no answer did not change
//! anything, so it is recorded as `fail` and dropped by the checker. A write that gets an error
//! or no answer may still take effect later (it may sit in a leader's log), so it is recorded as
//! `info`, and the client continues as a new process, since the old one's operation never ends.
//! Only a write that was never sent (no connection) is a `fail`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave_check::{Event, Value};
use conclave_core::{RandomSource, ReadConsistency, SeededRng};
use conclave_resp::Frame;
use conclave_server::client::RespClient;

use crate::recorder::Recorder;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: usize,
    /// Keys the operations spread over (few keys: more contention, more to check).
    pub keys: usize,
    /// The share of operations that are reads.
    pub read_ratio: f64,
    /// `READMODE` for the clients' reads.
    pub read_mode: ReadConsistency,
    /// How long a client waits for one reply.
    pub timeout: Duration,
    /// Most time a client waits between two operations (drawn uniformly), which paces the load
    /// so the history stays checkable.
    pub think: Duration,
}

/// The key named by index `k`.
pub fn key_name(k: u64) -> String {
    format!("chaos:{k}")
}

/// Process ids the final reader uses (far above any client's).
pub const FINAL_READER: u64 = 1 << 40;

/// Runs client `index` until `stop`, spreading its connections over `addrs`.
pub async fn client(
    index: usize,
    addrs: Vec<SocketAddr>,
    workload: Workload,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = SeededRng::new(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut process = index as u64;
    let mut node = index % addrs.len();
    let mut connection: Option<RespClient> = None;
    let mut written = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let think = workload.think.as_micros() as u64;
        if think > 0 {
            tokio::time::sleep(Duration::from_micros(rng.between(0, think + 1))).await;
        }
        if connection.is_none() {
            match connect(addrs[node], workload.read_mode, workload.timeout).await {
                Some(c) => connection = Some(c),
                None => {
                    node = (node + 1) % addrs.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(con) = connection.as_mut() else { continue };
        let key = key_name(rng.between(0, workload.keys.max(1) as u64));
        if rng.chance(workload.read_ratio) {
            recorder.record(Event::invoke(process, "get").with_key(key.as_str()));
            match con.call(&[b"GET", key.as_bytes()], workload.timeout).await {
                Ok(Frame::Bulk(value)) => {
                    let text = String::from_utf8_lossy(&value).into_owned();
                    recorder
                        .record(Event::ok(process, "get").with_key(key.as_str()).with_result(text));
                }
                Ok(Frame::Null) => recorder.record(
                    Event::ok(process, "get").with_key(key.as_str()).with_result(Value::Nil),
                ),
                Ok(_) => recorder.record(Event::fail(process, "get").with_key(key.as_str())),
                Err(_) => {
                    recorder.record(Event::fail(process, "get").with_key(key.as_str()));
                    connection = None;
                    node = (node + 1) % addrs.len();
                }
            }
        } else {
            written += 1;
            let value = format!("{process}:{written}");
            recorder.record(
                Event::invoke(process, "put").with_key(key.as_str()).with_value(value.as_str()),
            );
            let reply =
                con.call(&[b"SET", key.as_bytes(), value.as_bytes()], workload.timeout).await;
            let done = |event: Event| event.with_key(key.as_str()).with_value(value.as_str());
            match reply {
                Ok(Frame::Simple(ok)) if &ok[..] == b"OK" => {
                    recorder.record(done(Event::ok(process, "put")));
                }
                other => {
                    recorder.record(done(Event::info(process, "put")));
                    process += workload.clients as u64;
                    if other.is_err() {
                        connection = None;
                        node = (node + 1) % addrs.len();
                    }
                }
            }
        }
    }
}

/// Connects and sets the read mode; `None` if either fails.
async fn connect(
    addr: SocketAddr,
    read_mode: ReadConsistency,
    timeout: Duration,
) -> Option<RespClient> {
    let mut client = RespClient::connect(addr, timeout).await.ok()?;
    match client.call(&[b"READMODE", read_mode.as_str().as_bytes()], timeout).await {
        Ok(Frame::Simple(_)) => Some(client),
        _ => None,
    }
}

/// After the faults are healed: reads every key once through `addrs` (linearizably), retrying
/// until each read succeeds or `wait` passes. These reads are part of the history, so a write
/// that was acknowledged and then lost shows up as a read the checker cannot place.
pub async fn final_reads(
    addrs: &[SocketAddr],
    keys: usize,
    recorder: &Recorder,
    timeout: Duration,
    wait: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + wait;
    let mut read = 0;
    let mut node = 0;
    let mut connection: Option<RespClient> = None;
    for k in 0..keys as u64 {
        let key = key_name(k);
        while tokio::time::Instant::now() < deadline {
            if connection.is_none() {
                connection = connect(addrs[node], ReadConsistency::Linearizable, timeout).await;
                if connection.is_none() {
                    node = (node + 1) % addrs.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
            let Some(con) = connection.as_mut() else { continue };
            recorder.record(Event::invoke(FINAL_READER, "get").with_key(key.as_str()));
            let result = match con.call(&[b"GET", key.as_bytes()], timeout).await {
                Ok(Frame::Bulk(value)) => {
                    Some(Value::from(String::from_utf8_lossy(&value).into_owned()))
                }
                Ok(Frame::Null) => Some(Value::Nil),
                Ok(_) => None,
                Err(_) => {
                    connection = None;
                    node = (node + 1) % addrs.len();
                    None
                }
            };
            match result {
                Some(value) => {
                    recorder.record(
                        Event::ok(FINAL_READER, "get").with_key(key.as_str()).with_result(value),
                    );
                    read += 1;
                    break;
                }
                None => {
                    recorder.record(Event::fail(FINAL_READER, "get").with_key(key.as_str()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    read
}
