//! Measures the write-ahead log on this machine's disk.
//!
//! ```text
//! # fsync'd appends/s through the log writer (the server's write path) with 1, 16 and 256
//! # writers (as requests in flight from one loop, and as threads), raw write+fdatasync p50,
//! # single-writer p50/p99
//! cargo run --release -p conclave-storage --example wal_bench -- appends --seconds 5
//! # time to open (recover) a 1 GiB log, building it first if the directory has none
//! cargo run --release -p conclave-storage --example wal_bench -- recovery --gib 1
//! ```
//!
//! Options: `--dir DIR` keeps the data in DIR (default: a temporary directory under the current
//! one, removed at the end, because /tmp may be a tmpfs whose fsync costs nothing);
//! `--writers 1,16,256`; `--samples N` latency samples; `--size BYTES` entry size (default 100);
//! `--opens N` recovery repetitions; `--preallocate BYTES` how far ahead segments are zero-filled
//! (default 1 MiB, 0 = off); `--drop-caches` (root only) empties the page cache before each
//! recovery open, to time a cold read from disk.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_core::{Entry, Index, Term};
use conclave_storage::{Durable, FileStore, JobId, LogStore, LogWriter, Options, WriteJob};

/// What `--help` prints: the commands and options described above.
const USAGE: &str = "\
usage: wal_bench [appends | recovery] [options]
  appends    fsync'd appends/s through the log writer with each --writers count, as requests in
             flight from one loop (how the server writes) and as blocking threads; raw
             write+fdatasync and single-writer latency (the default command)
  recovery   time to open (recover) a log of --gib GiB, building it first if DIR has none
options:
  --dir DIR            keep the data in DIR (default: a temporary directory under the current one)
  --seconds S          seconds per measurement (default 5)
  --writers 1,16,256   writer counts
  --samples N          latency samples (default 2000)
  --size BYTES         entry size (default 100)
  --preallocate BYTES  how far ahead segments are zero-filled (default 1 MiB, 0 = off)
  --gib G              recovery log size (default 1)
  --opens N            recovery repetitions (default 3)
  --drop-caches        empty the page cache before each recovery open (root only)";

struct Args {
    command: String,
    dir: Option<PathBuf>,
    seconds: f64,
    writers: Vec<usize>,
    samples: usize,
    size: usize,
    gib: f64,
    opens: usize,
    preallocate: u64,
    drop_caches: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        command: "appends".to_owned(),
        dir: None,
        seconds: 5.0,
        writers: vec![1, 16, 256],
        samples: 2000,
        size: 100,
        gib: 1.0,
        opens: 3,
        preallocate: Options::default().segment_preallocate_bytes,
        drop_caches: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "appends" | "recovery" => args.command = arg.clone(),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--samples" => {
                args.samples = value()?.parse().map_err(|e| format!("--samples: {e}"))?
            }
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--gib" => args.gib = value()?.parse().map_err(|e| format!("--gib: {e}"))?,
            "--preallocate" => {
                args.preallocate = value()?.parse().map_err(|e| format!("--preallocate: {e}"))?
            }
            "--drop-caches" => args.drop_caches = true,
            "--opens" => args.opens = value()?.parse().map_err(|e| format!("--opens: {e}"))?,
            "--writers" => {
                args.writers = value()?
                    .split(',')
                    .map(|w| w.parse().map_err(|e| format!("--writers: {e}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("wal_bench: {message}");
            std::process::exit(2);
        }
    };
    // A temporary directory under the current one unless told otherwise: /tmp is often tmpfs.
    let temp = tempfile::Builder::new().prefix("wal-bench-").tempdir_in(".").expect("temp dir");
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("create --dir");
    println!("directory: {}", dir.display());
    match args.command.as_str() {
        "recovery" => recovery(&args, &dir),
        _ => appends(&args, &dir),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One record-sized pwrite followed by fdatasync: the floor any write-ahead log on this disk can
/// reach for one durable append. Either at the end of a growing file (each sync also writes the
/// new file size) or into a file zero-filled ahead of time (what a preallocating log does).
fn raw_write_fdatasync(
    dir: &Path,
    record_bytes: usize,
    samples: usize,
    zero_filled: bool,
) -> Vec<Duration> {
    let path = dir.join("raw-fdatasync.bin");
    let file =
        OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    if zero_filled {
        let bytes = (samples + samples / 10 + 1) * record_bytes;
        file.write_all_at(&vec![0; bytes], 0).unwrap();
        file.sync_all().unwrap();
    }
    let record = vec![0xabu8; record_bytes];
    let mut offset = 0u64;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples + samples / 10 {
        let started = Instant::now();
        file.write_all_at(&record, offset).unwrap();
        file.sync_data().unwrap();
        latencies.push(started.elapsed());
        offset += record_bytes as u64;
    }
    std::fs::remove_file(&path).unwrap();
    let mut measured = latencies.split_off(samples / 10); // the first tenth warms up
    measured.sort();
    measured
}

fn options(args: &Args) -> Options {
    Options { segment_preallocate_bytes: args.preallocate, ..Options::default() }
}

/// What the log writer has reported so far, for the threads that wait on it.
#[derive(Default)]
struct Reports {
    state: Mutex<Reported>,
    changed: Condvar,
}

#[derive(Default)]
struct Reported {
    durable: JobId,
    entries: u64,
    syncs: u64,
    sync_nanos: u64,
}

impl Reports {
    fn record(&self, report: conclave_storage::Result<Durable>) {
        let durable = report.expect("the log writer failed");
        let mut state = self.state.lock().unwrap();
        state.durable = durable.upto;
        state.entries += durable.entries;
        if let Some(sync) = durable.sync {
            state.syncs += 1;
            state.sync_nanos += sync.as_nanos() as u64;
        }
        self.changed.notify_all();
    }

    /// Waits until a job after `seen` is durable and returns the newest durable job.
    fn wait_past(&self, seen: JobId) -> JobId {
        let mut state = self.state.lock().unwrap();
        while state.durable <= seen {
            state = self.changed.wait(state).unwrap();
        }
        state.durable
    }

    /// Appends per second over `elapsed`, mean entries per fdatasync, mean fdatasync in us.
    fn summary(&self, acknowledged: u64, elapsed: f64) -> (f64, f64, f64) {
        let state = self.state.lock().unwrap();
        let syncs = state.syncs.max(1) as f64;
        (
            acknowledged as f64 / elapsed,
            state.entries as f64 / syncs,
            state.sync_nanos as f64 / syncs / 1e3,
        )
    }
}

fn start_writer(dir: &Path, options: &Options) -> (LogWriter, Arc<Reports>) {
    let reports = Arc::new(Reports::default());
    let sink = Arc::clone(&reports);
    let store = FileStore::open(dir, options).unwrap();
    let writer =
        LogWriter::start("wal-bench-writer".into(), store, move |r| sink.record(r)).unwrap();
    (writer, reports)
}

/// One job holding one command entry at `index`.
fn one_entry_job(index: u64, data: &Bytes) -> WriteJob {
    WriteJob {
        entries: vec![Entry::command(Index(index), Term(1), data.clone())],
        ..WriteJob::default()
    }
}

fn writer_single_latency(
    dir: &Path,
    options: &Options,
    size: usize,
    samples: usize,
) -> Vec<Duration> {
    let (mut writer, reports) = start_writer(dir, options);
    let data = Bytes::from(vec![b'x'; size]);
    let mut latencies = Vec::with_capacity(samples);
    for index in 1..=(samples + samples / 10) as u64 {
        let started = Instant::now();
        let id = writer.submit(one_entry_job(index, &data)).unwrap();
        reports.wait_past(JobId(id.0 - 1));
        latencies.push(started.elapsed());
    }
    let mut measured = latencies.split_off(samples / 10);
    measured.sort();
    measured
}

/// Durable appends per second through the log writer with `writers` threads, each submitting
/// one-entry jobs (indices handed out under the submission lock) and blocking until its own is
/// durable.
fn writer_threads(
    dir: &Path,
    options: &Options,
    writers: usize,
    size: usize,
    seconds: f64,
) -> (f64, f64, f64) {
    let (writer, reports) = start_writer(dir, options);
    let writer = Arc::new(Mutex::new(writer));
    let barrier = Arc::new(Barrier::new(writers + 1));
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let (writer, reports, barrier) =
                (Arc::clone(&writer), Arc::clone(&reports), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let data = Bytes::from(vec![b'x'; size]);
                barrier.wait();
                let started = Instant::now();
                let mut count = 0u64;
                while started.elapsed() < deadline {
                    let id = {
                        let mut writer = writer.lock().unwrap();
                        let index = writer.last_submitted().0 + 1;
                        writer.submit(one_entry_job(index, &data)).unwrap()
                    };
                    reports.wait_past(JobId(id.0 - 1));
                    count += 1;
                }
                count
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    reports.summary(total, started.elapsed().as_secs_f64())
}

/// Durable appends per second through the log writer as the server drives it: one loop keeps
/// `writers` requests in flight, one job (one entry) each, and on every report acknowledges the
/// requests it covers and submits their next appends at once.
fn writer_loop(
    dir: &Path,
    options: &Options,
    writers: usize,
    size: usize,
    seconds: f64,
) -> (f64, f64, f64) {
    let (mut writer, reports) = start_writer(dir, options);
    let data = Bytes::from(vec![b'x'; size]);
    let deadline = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let submit = |writer: &mut LogWriter, count: u64| {
        for _ in 0..count {
            let index = writer.last_submitted().0 + 1;
            writer.submit(one_entry_job(index, &data)).unwrap();
        }
    };
    submit(&mut writer, writers as u64);
    let (mut seen, mut acknowledged) = (JobId(0), 0u64);
    while started.elapsed() < deadline {
        let durable = reports.wait_past(seen);
        let newly = durable.0 - seen.0;
        acknowledged += newly;
        seen = durable;
        submit(&mut writer, newly);
    }
    let elapsed = started.elapsed().as_secs_f64();
    reports.summary(acknowledged, elapsed)
}

fn appends(args: &Args, dir: &Path) {
    let record_bytes = 25 + args.size;
    let options = options(args);
    let raw_at_end = raw_write_fdatasync(dir, record_bytes, args.samples, false);
    let raw_zeroed = raw_write_fdatasync(dir, record_bytes, args.samples, true);
    for (raw, what) in [(&raw_at_end, "at EOF"), (&raw_zeroed, "into zero-filled file")] {
        println!(
            "raw pwrite({record_bytes} B {what})+fdatasync: p50 {:.1} us, p99 {:.1} us ({} samples)",
            micros(percentile(raw, 0.5)),
            micros(percentile(raw, 0.99)),
            raw.len()
        );
    }
    // Compare like with like: a preallocating log against the zero-filled raw write.
    let raw_p50 = percentile(if args.preallocate > 0 { &raw_zeroed } else { &raw_at_end }, 0.5);
    let single = writer_single_latency(&dir.join("latency"), &options, args.size, args.samples);
    let single_p50 = percentile(&single, 0.5);
    println!(
        "log writer, one {} B entry at a time (preallocate {} B): p50 {:.1} us, p99 {:.1} us -> p50 is {:.2}x the matching raw p50",
        args.size,
        args.preallocate,
        micros(single_p50),
        micros(percentile(&single, 0.99)),
        single_p50.as_secs_f64() / raw_p50.as_secs_f64()
    );
    let header = format!(
        "{:>8} {:>12} {:>11} {:>15} {:>12}",
        "writers", "appends/s", "batch mean", "fdatasync mean", "vs 1 writer"
    );
    println!(
        "writers as requests in flight from one loop, one job each (how the server writes):\n{header}"
    );
    let mut baseline = None;
    for &writers in &args.writers {
        let dir = dir.join(format!("loop-{writers}"));
        let (rate, batch, sync_micros) =
            writer_loop(&dir, &options, writers, args.size, args.seconds);
        let base = *baseline.get_or_insert(rate);
        println!(
            "{writers:>8} {rate:>12.0} {batch:>11.1} {sync_micros:>12.0} us {:>11.1}x",
            rate / base
        );
    }
    println!("writers as threads, each blocked until its own job is durable:\n{header}");
    for &writers in &args.writers {
        let dir = dir.join(format!("threads-{writers}"));
        let (rate, batch, sync_micros) =
            writer_threads(&dir, &options, writers, args.size, args.seconds);
        let base = baseline.expect("the loop table ran first");
        println!(
            "{writers:>8} {rate:>12.0} {batch:>11.1} {sync_micros:>12.0} us {:>11.1}x",
            rate / base
        );
    }
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn recovery(args: &Args, dir: &Path) {
    let target = (args.gib * (1u64 << 30) as f64) as u64;
    if segment_bytes(dir) < target {
        let started = Instant::now();
        let mut store = FileStore::open(dir, &Options::default()).unwrap();
        let data = Bytes::from(vec![b'x'; args.size]);
        let batch_len = 10_000u64;
        while segment_bytes_estimate(&store, args.size) < target {
            let next = store.last_index().next().0;
            let batch: Vec<Entry> = (next..next + batch_len)
                .map(|i| Entry::command(Index(i), Term(1), data.clone()))
                .collect();
            store.append(&batch).unwrap();
        }
        store.sync().unwrap();
        drop(store);
        println!(
            "built a {:.2} GiB log in {:.1} s",
            segment_bytes(dir) as f64 / (1u64 << 30) as f64,
            started.elapsed().as_secs_f64()
        );
    }
    for attempt in 1..=args.opens {
        let cache = if args.drop_caches {
            std::fs::write("/proc/sys/vm/drop_caches", "3").expect("--drop-caches needs root");
            "page cache dropped"
        } else {
            "page cache warm"
        };
        let started = Instant::now();
        let store = FileStore::open(dir, &Options::default()).unwrap();
        let elapsed = started.elapsed();
        println!(
            "open #{attempt}: {:.3} s for {} entries in {:.2} GiB ({:.0} MiB/s; {cache})",
            elapsed.as_secs_f64(),
            store.last_index(),
            segment_bytes(dir) as f64 / (1u64 << 30) as f64,
            segment_bytes(dir) as f64 / (1u64 << 20) as f64 / elapsed.as_secs_f64()
        );
    }
}

fn segment_bytes_estimate(store: &FileStore, size: usize) -> u64 {
    store.last_index().0 * (25 + size as u64)
}
