//! A real-process crash test: a child process writes through the log writer exactly as a node's
//! group loop does (jobs of entries, with a new term and vote every few jobs, many jobs in flight)
//! and prints every entry once the writer reported it durable; the parent SIGKILLs it at seeded
//! random moments, reopens the store and checks that every acknowledged entry is there, intact,
//! and that the hard state was never overtaken by the log.
//!
//! The child is this same test binary, re-run with `--ignored --exact crash_child_writer` and the
//! store directory in an environment variable, so no extra binary target is needed and it works
//! under both `cargo test` and `cargo nextest`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_core::{Entry, HardState, Index, NodeId, RandomSource, SeededRng, Term};
use conclave_storage::{verify, FileStore, JobId, LogStore, LogWriter, Options, WriteJob};

const DIR_VARIABLE: &str = "CONCLAVE_STORAGE_CRASH_CHILD_DIR";
/// Jobs submitted and not yet reported durable, as a busy group loop keeps them.
const JOBS_IN_FLIGHT: usize = 32;
/// Small segments, so kills also land during rotations.
const SEGMENT_BYTES: u64 = 16 << 10;

fn options() -> Options {
    Options { segment_bytes_max: SEGMENT_BYTES, ..Options::default() }
}

/// The child: writes until killed (or, as a safety net, for at most 30 seconds), printing
/// `ack <index> <term> <data>` for each entry only after the writer reported its job durable.
#[test]
#[ignore = "run as a child process by crash_recovery_keeps_every_acknowledged_append"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(DIR_VARIABLE) else { return };
    let store = FileStore::open(&dir, &options()).unwrap();
    let mut next = store.last_index().next();
    let mut hard_state = store.hard_state();
    let (reports, received) = std::sync::mpsc::channel();
    let mut writer = LogWriter::start("crash-child".into(), store, move |report| {
        let _ = reports.send(report);
    })
    .unwrap();
    let started = Instant::now();
    let mut in_flight: VecDeque<(JobId, Vec<Entry>)> = VecDeque::new();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(30) {
        while in_flight.len() < JOBS_IN_FLIGHT {
            let mut job = WriteJob::default();
            if n.is_multiple_of(16) {
                // A new term and vote, as after an election; the commit trails the log.
                hard_state = HardState {
                    term: hard_state.term.next(),
                    vote: Some(NodeId(1)),
                    commit: next.prev(),
                };
                job.hard_state = Some(hard_state);
            }
            for _ in 0..=n % 4 {
                let data =
                    format!("p{}-n{n}-{}", std::process::id(), "x".repeat((n % 50) as usize));
                job.entries.push(Entry::command(next, hard_state.term, Bytes::from(data)));
                next = next.next();
            }
            let entries = job.entries.clone();
            in_flight.push_back((writer.submit(job).unwrap(), entries));
            n += 1;
        }
        let durable = received.recv().unwrap().unwrap();
        while in_flight.front().is_some_and(|(id, _)| *id <= durable.upto) {
            let (_, entries) = in_flight.pop_front().unwrap();
            for entry in entries {
                let data = String::from_utf8(entry.data.to_vec()).unwrap();
                println!("ack {} {} {data}", entry.index, entry.term);
            }
        }
    }
}

/// Runs the child until a random moment, kills it with SIGKILL, and returns its acknowledgements.
fn run_and_kill(dir: &Path, rng: &mut SeededRng) -> Vec<(Index, Term, String)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child_writer", "--nocapture", "--test-threads", "1"])
        .env(DIR_VARIABLE, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // A line cut by the kill has no newline; it was never fully acknowledged.
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ack ")) {
                let mut fields = rest.splitn(3, ' ');
                let mut number = || fields.next().unwrap().parse::<u64>().unwrap();
                let (index, term) = (Index(number()), Term(number()));
                acks.push((index, term, fields.next().unwrap().to_owned()));
            }
            line.clear();
        }
        acks
    });
    // Let the child get past start-up (and some appends) before the kill window opens.
    std::thread::sleep(Duration::from_millis(rng.between(50, 400)));
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn crash_recovery_keeps_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SeededRng::new(0x5eed);
    let mut acknowledged: Vec<(Index, Term, String)> = Vec::new();
    let mut iterations_with_acks = 0;
    for _ in 0..10 {
        let acks = run_and_kill(dir.path(), &mut rng);
        iterations_with_acks += usize::from(!acks.is_empty());
        acknowledged.extend(acks);

        // Every torn tail is harmless; anything else would be a recovery bug.
        let report = verify(dir.path()).unwrap_or_else(|e| panic!("corruption after a kill: {e}"));
        let store = FileStore::open(dir.path(), &options()).unwrap();
        let recovered = store.load().unwrap().state;
        let (hard_state, entries) = (recovered.hard_state, recovered.entries);
        for (index, term, data) in &acknowledged {
            let entry = entries.get((index.0 - 1) as usize).unwrap_or_else(|| {
                panic!(
                    "acknowledged index {index} is missing; the log ends at {}\n{report}",
                    entries.len()
                )
            });
            assert_eq!((entry.index, entry.term), (*index, *term));
            assert_eq!(entry.data, Bytes::from(data.clone()), "index {index}");
        }
        // The hard state is written before the entries of its term, and its commit never runs
        // ahead of the durable log.
        if let Some(last) = entries.last() {
            assert!(last.term <= hard_state.term, "{last:?} is ahead of {hard_state:?}");
        }
        assert!(hard_state.commit.0 <= entries.len() as u64, "{hard_state:?}\n{report}");
    }
    assert!(iterations_with_acks >= 5, "the child acknowledged too little to test anything");
}
