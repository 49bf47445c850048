//! A real-process crash test: a child process appends with group commit from several threads and
//! prints every acknowledged index; the parent SIGKILLs it at seeded random moments, reopens the
//! store and checks that every acknowledged entry is there, intact.
//!
//! The child is this same test binary, re-run with `--ignored --exact crash_child_writer` and the
//! store directory in an environment variable, so no extra binary target is needed and it works
//! under both `cargo test` and `cargo nextest`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_core::{HardState, Index, RandomSource, SeededRng, Term};
use conclave_storage::{verify, FileStore, GroupCommit, LogStore, Options};

const DIR_VARIABLE: &str = "CONCLAVE_STORAGE_CRASH_CHILD_DIR";
const WRITER_THREADS: usize = 4;
/// Small segments, so kills also land during rotations.
const SEGMENT_BYTES: u64 = 16 << 10;

fn options() -> Options {
    Options { segment_bytes_max: SEGMENT_BYTES, ..Options::default() }
}

/// The child: appends until killed (or, as a safety net, for at most 30 seconds), printing
/// `ack <index> <data>` only after `append_commands_durable` returned.
#[test]
#[ignore = "run as a child process by crash_recovery_keeps_every_acknowledged_append"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(DIR_VARIABLE) else { return };
    let group = GroupCommit::new(FileStore::open(&dir, &options()).unwrap());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..WRITER_THREADS {
            let group = group.clone();
            scope.spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < Duration::from_secs(30) {
                    let data = format!(
                        "p{}-t{thread}-n{n}-{}",
                        std::process::id(),
                        "x".repeat((n % 50) as usize)
                    );
                    let index = group
                        .append_commands_durable(Term(1), &[Bytes::from(data.clone())])
                        .unwrap();
                    println!("ack {index} {data}");
                    if n.is_multiple_of(16) {
                        let commit = index.prev();
                        let hard_state = HardState { term: Term(1), vote: None, commit };
                        group.with_store(|s| s.save_hard_state(&hard_state)).unwrap().unwrap();
                    }
                    n += 1;
                }
            });
        }
    });
}

/// Runs the child until a random moment, kills it with SIGKILL, and returns its acknowledgements.
fn run_and_kill(dir: &Path, rng: &mut SeededRng) -> Vec<(Index, String)> {
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
                let (index, data) = rest.split_once(' ').unwrap();
                acks.push((Index(index.parse().unwrap()), data.to_owned()));
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
    let mut acknowledged: Vec<(Index, String)> = Vec::new();
    let mut iterations_with_acks = 0;
    for _ in 0..10 {
        let acks = run_and_kill(dir.path(), &mut rng);
        iterations_with_acks += usize::from(!acks.is_empty());
        acknowledged.extend(acks);

        // Every torn tail is harmless; anything else would be a recovery bug.
        let report = verify(dir.path()).unwrap_or_else(|e| panic!("corruption after a kill: {e}"));
        let store = FileStore::open(dir.path(), &options()).unwrap();
        let entries = store.load().unwrap().state.entries;
        for (index, data) in &acknowledged {
            let entry = entries.get((index.0 - 1) as usize).unwrap_or_else(|| {
                panic!(
                    "acknowledged index {index} is missing; the log ends at {}\n{report}",
                    entries.len()
                )
            });
            assert_eq!(entry.index, *index);
            assert_eq!(entry.data, Bytes::from(data.clone()), "index {index}");
        }
    }
    assert!(iterations_with_acks >= 5, "the child acknowledged too little to test anything");
}
