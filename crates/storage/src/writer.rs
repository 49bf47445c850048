//! The log writer: a thread that carries out a node's writes in order and makes each batch of
//! them durable with one `fdatasync`.
//!
//! A consensus loop must not block on the disk, and it produces its writes as a sequence of
//! `Ready`s, each with a hard state, maybe a snapshot, entries and a compaction point. It hands
//! each `Ready`'s writes to the writer as a [`WriteJob`] and goes on (sending the messages that
//! need no durability, taking more proposals). The writer takes every job queued while it was
//! busy, writes them all, syncs once, and reports the last job it made durable; the loop then
//! releases what waited on those writes. Under load many jobs, and so many client commands, share
//! one fdatasync, with no lock shared between the loop and the disk: the only hand-over is a
//! queue in each direction.
//!
//! This is the one durable write path of a node: the runtime, the WAL benchmark and the SIGKILL
//! crash test all write through it.
//!
//! A snapshot the log already holds (one the node took of its own state) is saved on a thread of
//! its own while the writer goes on appending and syncing: a large image would otherwise hold up
//! every later append, and with it every acknowledgement (heartbeat answers included) for as long
//! as the image takes to write. Such a save promises nothing to anyone (the log still holds what
//! it covers), so jobs are reported durable without waiting for it; the compaction behind it
//! waits until it is durable. A newer such snapshot arriving meanwhile is queued (replacing an
//! older queued one, which it supersedes) and started once the current save ends, so saves land
//! in order and the writer never waits for one. A snapshot the log does not hold (a leader's,
//! replacing the log) is saved in line, after any background save, before the job is reported.
//!
//! A failed write or sync is final: the writer reports it and stops, later submissions fail with
//! [`StorageError::WriterStopped`], and the node must stop rather than acknowledge anything it
//! can no longer vouch for.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use conclave_core::{Entry, HardState, Index, Snapshot};

use crate::error::{Result, StorageError};
use crate::store::{holds_entry, FileStore, LogStore, SnapshotSave};

/// The writes of one `Ready`, in the order the persistence contract wants them carried out:
/// hard state, snapshot, entries, compaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteJob {
    /// The new hard state, if it changed. Only a change of term or vote is written at once (see
    /// [`LogWriter`]); the commit index alone is an optimisation for recovery.
    pub hard_state: Option<HardState>,
    /// A snapshot to install (`Ready::snapshot`); the log is reconciled by Raft's rule.
    pub snapshot: Option<Snapshot>,
    /// Entries to append (`Ready::entries`: from the first index on, the log is replaced).
    pub entries: Vec<Entry>,
    /// Discard the log up to here, which a saved snapshot covers (`Ready::compact_log_to`).
    pub compact_log_to: Option<Index>,
}

impl WriteJob {
    /// True when the job writes nothing, so a driver need not submit it (nor wait for it).
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.compact_log_to.is_none()
    }
}

/// A job's place in submission order, starting at 1. Jobs become durable in this order, so
/// "job N is durable" means every job up to N is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// What the writer reports after each batch: every job up to `upto` is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The last job of the batch; it and every job before it are durable.
    pub upto: JobId,
    /// Jobs in the batch.
    pub jobs: u64,
    /// Entries the batch appended.
    pub entries: u64,
    /// How long the batch's fdatasync took; `None` when the batch appended no entries (hard
    /// state and snapshot saves, truncation and compaction are durable when they return, so such
    /// a batch needs no sync of its own).
    pub sync: Option<Duration>,
}

/// The submitting end of a log writer thread. Dropping it lets the thread finish every job
/// already submitted and waits for it, so a clean shutdown loses nothing that was handed over.
#[derive(Debug)]
pub struct LogWriter {
    jobs: Option<mpsc::Sender<(JobId, WriteJob)>>,
    last_submitted: JobId,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Starts a thread named `name` that owns `store` and writes the submitted jobs.
    ///
    /// `report` runs on that thread after each batch with the jobs now durable, or once with the
    /// error that stopped the writer. It must be quick and must not block on the submitter (a
    /// channel send, a counter update): the next batch waits for it.
    pub fn start(
        name: String,
        store: FileStore,
        report: impl FnMut(Result<Durable>) + Send + 'static,
    ) -> Result<LogWriter> {
        let (jobs, queued) = mpsc::channel();
        let dir = store.log().dir().to_path_buf();
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || run(store, queued, report))
            .map_err(|source| StorageError::io("start the log writer thread for", &dir, source))?;
        Ok(LogWriter { jobs: Some(jobs), last_submitted: JobId(0), thread: Some(thread) })
    }

    /// Queues `job` behind every job submitted before it and returns its id at once; the report
    /// says when it is durable. Fails with [`StorageError::WriterStopped`] once the writer has
    /// stopped after a failure (which it reported).
    pub fn submit(&mut self, job: WriteJob) -> Result<JobId> {
        let id = JobId(self.last_submitted.0 + 1);
        let jobs = self.jobs.as_ref().ok_or(StorageError::WriterStopped)?;
        jobs.send((id, job)).map_err(|_| StorageError::WriterStopped)?;
        self.last_submitted = id;
        Ok(id)
    }

    /// The id of the last job submitted (0 before the first).
    pub fn last_submitted(&self) -> JobId {
        self.last_submitted
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: one batch per wake-up, everything queued meanwhile in it.
fn run(
    mut store: FileStore,
    queued: mpsc::Receiver<(JobId, WriteJob)>,
    mut report: impl FnMut(Result<Durable>),
) {
    let mut saved = store.hard_state();
    let mut background = None;
    while let Ok(first) = queued.recv() {
        let mut batch = vec![first];
        batch.extend(queued.try_iter());
        let result = write_batch(&mut store, &mut saved, &mut background, batch);
        if result.is_err() {
            // The queue closes before the failure is reported, so whoever hears of it can rely
            // on every later submission failing.
            drop(queued);
            report(result);
            return;
        }
        report(result);
    }
    // Shutting down: the last save and its compaction still land.
    if let Err(error) = finish_background(&mut store, &mut background) {
        report(Err(error));
    }
}

/// A snapshot being saved in the background, the compaction that waits for it, and the newer
/// snapshot to save after it.
struct Background {
    save: SnapshotSave,
    compact_to: Option<Index>,
    next: Option<Snapshot>,
}

/// Ends the current background save (waiting for it if it is still running), carries out the
/// compaction it covers, and starts the queued snapshot, if any.
fn end_current_save(store: &mut FileStore, background: &mut Option<Background>) -> Result<()> {
    let Some(Background { save, mut compact_to, next }) = background.take() else { return Ok(()) };
    store.finish_snapshot_save(save)?;
    let covered = store.snapshot().map_or(Index(0), |s| s.index);
    if let Some(upto) = compact_to.filter(|&upto| upto <= covered) {
        store.compact_prefix(upto)?;
        compact_to = None;
    }
    // A compaction beyond what is now saved belongs to the queued snapshot (every compaction
    // comes with or after the snapshot that covers it), so it waits for that one.
    if let Some(snapshot) = next {
        let save = store.start_snapshot_save(snapshot)?;
        *background = Some(Background { save, compact_to, next: None });
    }
    Ok(())
}

/// Waits for every background save, queued ones included, and the compaction behind them.
fn finish_background(store: &mut FileStore, background: &mut Option<Background>) -> Result<()> {
    while background.is_some() {
        end_current_save(store, background)?;
    }
    Ok(())
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
    background: &mut Option<Background>,
    batch: Vec<(JobId, WriteJob)>,
) -> Result<Durable> {
    if background.as_ref().is_some_and(|b| b.save.is_finished()) {
        end_current_save(store, background)?;
    }
    let upto = batch.last().map_or(JobId(0), |(id, _)| *id);
    let jobs = batch.len() as u64;
    if let Some(newest) = batch.iter().rev().find_map(|(_, job)| job.hard_state) {
        if newest.term != saved.term || newest.vote != saved.vote {
            let durable_last = store.last_index();
            let hard_state = HardState { commit: newest.commit.min(durable_last), ..newest };
            store.save_hard_state(&hard_state)?;
            *saved = hard_state;
        }
    }
    let mut entries = 0;
    for (_, job) in batch {
        if let Some(snapshot) = job.snapshot {
            if !holds_entry(store, snapshot.index, snapshot.term)? {
                // It replaces the log: every save before it first, then this one in line.
                finish_background(store, background)?;
                store.install_snapshot(&snapshot)?;
            } else if let Some(running) = background {
                // Installing it would leave the log as it is: only the file is to be written,
                // after the one being written now.
                running.next = Some(snapshot);
            } else {
                let save = store.start_snapshot_save(snapshot)?;
                *background = Some(Background { save, compact_to: None, next: None });
            }
        }
        if !job.entries.is_empty() {
            entries += job.entries.len() as u64;
            store.append(&job.entries)?;
        }
        if let Some(upto) = job.compact_log_to {
            match background {
                // Compacting waits until the snapshot that covers it is durable.
                Some(waiting) => {
                    waiting.compact_to = Some(waiting.compact_to.map_or(upto, |c| c.max(upto)));
                }
                None => store.compact_prefix(upto)?,
            }
        }
    }
    let sync = if entries > 0 {
        let started = Instant::now();
        store.sync()?;
        Some(started.elapsed())
    } else {
        None
    };
    Ok(Durable { upto, jobs, entries, sync })
}
