//! `conclave bench kv`: a closed-loop load generator for the key-value server (or any Redis
//! server), with a progress bar, latency percentiles and optional JSON output.

use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use conclave_core::ReadConsistency;
use conclave_resp::Frame;
use conclave_server::client::RespClient;
use serde_json::json;

use crate::choices::read_modes;
use crate::tls_args::{self, TlsClientArgs};

/// The operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Op {
    /// SET key value.
    Set,
    /// GET key.
    Get,
    /// GET with probability --read-ratio, else SET.
    Mixed,
}

/// Flags of `conclave bench kv`.
#[derive(Args, Debug)]
pub struct KvBenchArgs {
    /// Server client addresses, comma-separated; clients are spread over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7000")]
    pub addr: Vec<SocketAddr>,
    /// Concurrent clients, one connection each, each with one pipeline in flight.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Total requests (ignored with --duration).
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    /// Run for this many seconds instead of a request count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Op::Set)]
    pub op: Op,
    /// With --op mixed: the fraction of GETs.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys are drawn uniformly from this many.
    #[arg(long, default_value_t = 100_000)]
    pub keyspace: u64,
    /// Commands per pipeline (1: no pipelining).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Read mode for GETs.
    #[arg(long, default_value_t = ReadConsistency::Linearizable, value_parser = read_modes())]
    pub read_mode: ReadConsistency,
    /// Password, if the cluster requires one.
    #[arg(long, env = "CONCLAVE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// TLS to the nodes' TLS client ports.
    #[command(flatten)]
    pub tls: TlsClientArgs,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seed of the key and operation choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What one client measured.
#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// When this client flushed its first pipeline.
    first_sent: Option<Instant>,
    /// When this client read its last reply.
    last_reply: Option<Instant>,
}

/// The time the load took: from the first request any client sent to the last reply any client
/// read. Measured by the clients, not by the progress loop, whose 250 ms tick would add up to a
/// tick to a short run and understate its rate.
fn load_span(results: &[ClientResult]) -> Duration {
    let first = results.iter().filter_map(|r| r.first_sent).min();
    let last = results.iter().filter_map(|r| r.last_reply).max();
    match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    }
}

/// A tiny xorshift generator: the benchmark's choices need speed, not quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs the benchmark and prints its summary.
pub fn run(args: &KvBenchArgs) -> Result<()> {
    if args.clients == 0 || args.pipeline == 0 || args.keyspace == 0 {
        bail!("--clients, --pipeline and --keyspace must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &KvBenchArgs) -> Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let per_client = args.requests.div_ceil(args.clients as u64);
    let mut connections = Vec::new();
    let tls = args.tls.config()?;
    for i in 0..args.clients {
        let addr = args.addr[i % args.addr.len()];
        let mut client = tls_args::connect(addr, Duration::from_secs(5), tls.as_ref())
            .await
            .with_context(|| format!("connecting client {i} to {addr}"))?;
        let timeout = Duration::from_secs(10);
        if let Some(password) = &args.password {
            client.call(&[b"AUTH", password.as_bytes()], timeout).await?;
        }
        let reply =
            client.call(&[b"READMODE", args.read_mode.as_str().as_bytes()], timeout).await?;
        if matches!(reply, Frame::Error(_)) && args.read_mode != ReadConsistency::Linearizable {
            bail!("{addr} does not support READMODE; use --read-mode linearizable");
        }
        connections.push(client);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, client) in connections.into_iter().enumerate() {
        let (done, stop) = (done.clone(), stop.clone());
        let (op, ratio, size, keyspace, pipeline) =
            (args.op, args.read_ratio, args.value_size, args.keyspace, args.pipeline);
        let quota = if args.duration.is_some() { u64::MAX } else { per_client };
        let seed = args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1);
        tasks.push(tokio::spawn(async move {
            drive(client, op, ratio, size, keyspace, pipeline, quota, seed, &done, &stop).await
        }));
    }
    let total = if args.duration.is_some() { None } else { Some(per_client * args.clients as u64) };
    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let progress = std::io::stderr().is_terminal();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let count = done.load(Ordering::Relaxed);
        if progress {
            let elapsed = started.elapsed().as_secs_f64();
            let fraction = match (total, args.duration) {
                (Some(t), _) => count as f64 / t as f64,
                (None, Some(d)) => elapsed / d,
                _ => 0.0,
            }
            .min(1.0);
            let bar = (fraction * 30.0) as usize;
            eprint!(
                "\r[{}{}] {:5.1}%  {} ops  {:.0} ops/s   ",
                "=".repeat(bar),
                " ".repeat(30 - bar),
                fraction * 100.0,
                count,
                count as f64 / elapsed.max(1e-9)
            );
            let _ = std::io::stderr().flush();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    if progress {
        eprintln!();
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("a client task failed")??);
    }
    let elapsed = load_span(&results).as_secs_f64();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for result in results {
        latencies.extend(result.latencies_us);
        errors += result.errors;
        first_error = first_error.or(result.first_error);
    }
    latencies.sort_unstable();
    let ops = latencies.len() as u64;
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        f64::from(latencies[rank.clamp(1, latencies.len()) - 1]) / 1000.0
    };
    let mean = latencies.iter().map(|&l| f64::from(l)).sum::<f64>()
        / latencies.len().max(1) as f64
        / 1000.0;
    let rate = if elapsed > 0.0 { ops as f64 / elapsed } else { 0.0 };
    let op = format!("{:?}", args.op).to_lowercase();
    outln!(
        "{op}: {ops} ops in {elapsed:.2} s = {rate:.0} ops/s | clients {} pipeline {} value {} B | latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} mean {:.3} | errors {errors}",
        args.clients, args.pipeline, args.value_size, pct(50.0), pct(90.0), pct(99.0), pct(99.9), pct(100.0), mean
    );
    let buckets = histogram(&latencies);
    out!("{}", render_histogram(&buckets, ops));
    if let Some(error) = &first_error {
        outln!("first error: {error}");
    }
    if let Some(path) = &args.json {
        let value = json!({
            "op": op, "clients": args.clients, "pipeline": args.pipeline, "value_size": args.value_size,
            "keyspace": args.keyspace, "read_mode": args.read_mode.as_str(), "ops": ops, "errors": errors,
            "seconds": elapsed, "ops_per_sec": rate,
            "latency_ms": { "p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "p999": pct(99.9), "max": pct(100.0), "mean": mean },
            "histogram": buckets.iter().map(|&(le_us, count)| json!({ "le_ms": f64::from(le_us) / 1000.0, "count": count })).collect::<Vec<_>>(),
        });
        std::fs::write(path, format!("{value:#}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Counts sorted latencies (µs) into buckets whose upper bounds double from 50 µs, up to the
/// one holding the maximum: a latency distribution at a glance, tail included.
fn histogram(sorted_us: &[u32]) -> Vec<(u32, u64)> {
    let Some(&max) = sorted_us.last() else { return Vec::new() };
    let mut buckets = Vec::new();
    let mut bound: u32 = 50;
    let mut start = 0;
    loop {
        let end = sorted_us.partition_point(|&l| l <= bound);
        buckets.push((bound, (end - start) as u64));
        start = end;
        if bound >= max {
            return buckets;
        }
        bound = bound.saturating_mul(2);
    }
}

/// Draws the histogram as text: bound, share and a bar scaled to the fullest bucket.
fn render_histogram(buckets: &[(u32, u64)], total: u64) -> String {
    const WIDTH: u64 = 40;
    let fullest = buckets.iter().map(|&(_, count)| count).max().unwrap_or(0).max(1);
    let mut out = String::from("latency histogram (ms, upper bound):\n");
    for &(bound, count) in buckets {
        let share = 100.0 * count as f64 / total.max(1) as f64;
        let bar = "#".repeat(((count * WIDTH).div_ceil(fullest)) as usize);
        out.push_str(&format!(
            "  <= {:>9.3}  {share:>5.1}%  {count:>9}  {bar}\n",
            f64::from(bound) / 1000.0
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    mut client: RespClient,
    op: Op,
    read_ratio: f64,
    value_size: usize,
    keyspace: u64,
    pipeline: usize,
    quota: u64,
    seed: u64,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Result<ClientResult> {
    let mut rng = XorShift(seed | 1);
    let value = vec![b'x'; value_size];
    let mut result = ClientResult::default();
    let mut sent = 0;
    while sent < quota && !stop.load(Ordering::Relaxed) {
        let batch = pipeline.min((quota - sent) as usize);
        for _ in 0..batch {
            let key = format!("key:{:012}", rng.next() % keyspace);
            let read = match op {
                Op::Get => true,
                Op::Set => false,
                Op::Mixed => (rng.next() % 1_000_000) as f64 / 1_000_000.0 < read_ratio,
            };
            if read {
                client.send(&[b"GET", key.as_bytes()]);
            } else {
                client.send(&[b"SET", key.as_bytes(), &value]);
            }
        }
        let began = Instant::now();
        result.first_sent.get_or_insert(began);
        client.flush().await?;
        for _ in 0..batch {
            let reply = client.recv().await?;
            if let Frame::Error(e) = reply {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| String::from_utf8_lossy(&e).into_owned());
            }
        }
        let replied = Instant::now();
        result.last_reply = Some(replied);
        let took = (replied - began).as_micros().min(u128::from(u32::MAX)) as u32;
        result.latencies_us.extend(std::iter::repeat_n(took, batch));
        sent += batch as u64;
        done.fetch_add(batch as u64, Ordering::Relaxed);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_runs_from_the_first_request_to_the_last_reply() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let client = |first, last| ClientResult {
            first_sent: at(first),
            last_reply: at(last),
            ..ClientResult::default()
        };
        let results = [client(5, 30), client(2, 12), ClientResult::default()];
        assert_eq!(load_span(&results), Duration::from_millis(28));
        assert_eq!(load_span(&[ClientResult::default()]), Duration::ZERO);
    }

    #[test]
    fn histogram_buckets_cover_every_latency_once() {
        let latencies = [10, 50, 51, 100, 101, 399, 5_000];
        let buckets = histogram(&latencies);
        assert_eq!(buckets.first(), Some(&(50, 2)));
        assert_eq!(buckets[1], (100, 2));
        assert_eq!(buckets[2], (200, 1));
        assert_eq!(buckets[3], (400, 1));
        assert_eq!(buckets.last(), Some(&(6_400, 1)));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), latencies.len() as u64);
        let text = render_histogram(&buckets, latencies.len() as u64);
        assert!(text.contains("<=     0.050   28.6%          2  ####"), "{text}");
        assert!(histogram(&[]).is_empty());
    }
}
