//! The storage thread of a group: carries out the writes of each `Ready` in order and makes them
//! durable with one fdatasync per batch.
//!
//! The group's event loop never blocks on the disk. It hands each `Ready`'s writes to this thread
//! as a [`Job`] and keeps going (sending messages that need no durability, taking more
//! proposals). The thread takes every job queued while it was busy, writes them all, syncs once,
//! and reports the last job it made durable; the loop then releases the messages that waited on
//! those writes. Under load many `Ready`s, and so many client commands, share one fdatasync.
//!
//! A failed write or sync is final: the thread reports it and stops, and the node stops with it
//! rather than acknowledge anything it cannot vouch for.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use conclave_core::{Entry, HardState, Index, Snapshot};
use conclave_storage::{FileStore, LogStore, StorageError};
use tokio::sync::mpsc;

use crate::metrics::{bump, Metrics};

/// The writes of one `Ready`, in the order they must happen.
#[derive(Debug, Default)]
pub(crate) struct Job {
    /// Numbered in submission order.
    pub id: u64,
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub compact_log_to: Option<Index>,
}

impl Job {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.compact_log_to.is_none()
    }
}

/// What the storage thread reports: every job up to this id is durable, or the store failed.
pub(crate) type Done = Result<u64, StorageError>;

/// The loop's end of the storage thread.
pub(crate) struct StorageThread {
    jobs: Option<std_mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl StorageThread {
    /// Starts the thread on `store`; completions arrive on `done`.
    pub fn start(
        name: String,
        store: FileStore,
        done: mpsc::UnboundedSender<Done>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<StorageThread> {
        let (jobs, rx) = std_mpsc::channel();
        let thread =
            thread::Builder::new().name(name).spawn(move || run(store, rx, done, metrics))?;
        Ok(StorageThread { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues a job. Fails only if the thread has stopped after a failure.
    pub fn submit(&self, job: Job) -> Result<(), ()> {
        self.jobs.as_ref().ok_or(())?.send(job).map_err(|_| ())
    }
}

impl Drop for StorageThread {
    /// Lets the thread finish the queued jobs and waits for it, so a clean shutdown loses
    /// nothing that was handed over.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut store: FileStore,
    jobs: std_mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Done>,
    metrics: Arc<Metrics>,
) {
    let mut saved = store.hard_state();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        let last = batch.last().map_or(0, |job| job.id);
        let result = write_batch(&mut store, &mut saved, batch, &metrics).map(|()| last);
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}

/// Writes a batch of jobs and syncs once.
///
/// The hard state goes first, and only when its term or vote changed: those two must be durable
/// before any message that relies on them, while the commit index is an optimisation for faster
/// recovery. Writing it first also means the log never holds a term later than the durable hard
/// state. The commit written is capped at what is already durable, so a crash before the sync
/// never leaves a commit index beyond the log (the core refuses such a state on restart).
fn write_batch(
    store: &mut FileStore,
    saved: &mut HardState,
    batch: Vec<Job>,
    metrics: &Metrics,
) -> Result<(), StorageError> {
    if let Some(newest) = batch.iter().rev().find_map(|job| job.hard_state) {
        if newest.term != saved.term || newest.vote != saved.vote {
            let durable_last = store.last_index();
            let hard_state = HardState { commit: newest.commit.min(durable_last), ..newest };
            store.save_hard_state(&hard_state)?;
            *saved = hard_state;
        }
    }
    let mut appended = 0;
    for job in batch {
        if let Some(snapshot) = &job.snapshot {
            store.install_snapshot(snapshot)?;
        }
        if !job.entries.is_empty() {
            appended += job.entries.len() as u64;
            store.append(&job.entries)?;
        }
        if let Some(upto) = job.compact_log_to {
            store.compact_prefix(upto)?;
        }
    }
    if appended > 0 {
        let started = Instant::now();
        store.sync()?;
        metrics.fsync.observe(started.elapsed());
        metrics.entries_written.fetch_add(appended, std::sync::atomic::Ordering::Relaxed);
        bump(&metrics.storage_batches);
    }
    Ok(())
}
