//! Group commit: many threads append and wait for durability, and one `fdatasync` covers every
//! append queued before it.
//!
//! The protocol is leader/follower batching (as in database WALs): an appender buffers its records
//! under the lock and takes a ticket. If its ticket is not yet durable and no sync is running, it
//! becomes the leader: it writes the buffer (one `pwrite` for everyone), releases the lock, runs
//! the `fdatasync`, and on return marks every ticket up to the one current when it started as
//! durable. Appenders that arrive meanwhile queue behind it; when it finishes it first wakes one
//! of them to lead the next sync (so the disk is busy again at once), then wakes the ones it
//! covered. A lone writer pays one fdatasync per append, as without batching; N writers pay about
//! one per N appends.
//!
//! Waiters park on their own slot rather than on a condition variable: a condition variable
//! makes every woken thread re-take the lock just to learn it may return, and with hundreds of
//! writers on two cores that lock convoy, not the disk, set the pace.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::Instant;

use bytes::Bytes;
use conclave_core::{Entry, Index, Term};

use crate::error::{Result, StorageError};
use crate::store::{FileStore, LogStore};

/// A place in the order of changes made through a [`GroupCommit`]; see
/// [`GroupCommit::submit`] and [`GroupCommit::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// A cheaply cloneable, thread-safe handle to a [`FileStore`] whose appends return once durable.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

/// A parked writer, and what the sync leader decided for it.
#[derive(Debug)]
struct Waiter {
    thread: Thread,
    verdict: AtomicU8,
}

const WAITING: u8 = 0;
/// The writer's ticket is durable.
const DURABLE: u8 = 1;
/// The writer should take the lock and lead the next sync (or, if someone beat it to it, wait).
const LEAD: u8 = 2;
/// A sync failed; the store is failed.
const FAILED: u8 = 3;

impl Waiter {
    fn tell(&self, verdict: u8) {
        self.verdict.store(verdict, Ordering::Release);
        self.thread.unpark();
    }
}

#[derive(Debug)]
struct State {
    store: FileStore,
    /// The ticket of the latest change to the log.
    ticket_appended: u64,
    /// Every change with a ticket up to this one is durable.
    ticket_durable: u64,
    /// True while a leader runs an fdatasync with the lock released.
    sync_running: bool,
    /// The ticket the running (or last) sync covers up to.
    ticket_syncing: u64,
    /// Syncs started so far; the running one is number `syncs_started`.
    syncs_started: u64,
    /// Writers parked until sync number `n` finishes are in `waiters[n % 2]`: only the running
    /// sync and the next one ever have waiters.
    waiters: [Vec<Arc<Waiter>>; 2],
    stats: GroupCommitStats,
}

/// Counters that show how well batching works: `appends / syncs` is the mean batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Durable appends requested.
    pub appends: u64,
    /// fdatasyncs run for them.
    pub syncs: u64,
    /// Wall time spent inside those fdatasyncs, in nanoseconds (`sync_nanos / syncs` is the mean
    /// fsync latency under this load).
    pub sync_nanos: u64,
}

impl GroupCommit {
    /// Wraps an open store.
    pub fn new(store: FileStore) -> GroupCommit {
        let state = State {
            store,
            ticket_appended: 0,
            ticket_durable: 0,
            sync_running: false,
            ticket_syncing: 0,
            syncs_started: 0,
            waiters: [Vec::new(), Vec::new()],
            stats: GroupCommitStats::default(),
        };
        GroupCommit { shared: Arc::new(Shared { state: Mutex::new(state) }) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        // A panic while holding the lock may have left the store half-changed: refuse, as for
        // any other failure.
        self.shared.state.lock().map_err(|_| StorageError::Failed {
            cause: "a thread panicked while holding the store".to_owned(),
        })
    }

    /// Appends `entries` (the `Ready::entries` rule: from the first index on, the log is
    /// replaced) and returns the last index once they are durable.
    pub fn append_durable(&self, entries: &[Entry]) -> Result<Index> {
        let (ticket, last) = self.submit(entries)?;
        self.wait(ticket)?;
        Ok(last)
    }

    /// Appends `entries` like [`GroupCommit::append_durable`] but returns at once, with the
    /// ticket to [`wait`](GroupCommit::wait) on and the last index. This is how an asynchronous
    /// driver keeps many appends in flight from few threads: each request is acknowledged once
    /// its own ticket is durable, and one fdatasync covers every ticket taken before it.
    pub fn submit(&self, entries: &[Entry]) -> Result<(Ticket, Index)> {
        let mut state = self.lock()?;
        state.store.append(entries)?;
        let last = state.store.last_index();
        Ok((Self::take_ticket(&mut state), last))
    }

    /// [`GroupCommit::submit`] for new commands at the end of the log (see
    /// [`GroupCommit::append_commands_durable`]).
    pub fn submit_commands(&self, term: Term, commands: &[Bytes]) -> Result<(Ticket, Index)> {
        let mut state = self.lock()?;
        let last = Self::append_commands(&mut state, term, commands)?;
        Ok((Self::take_ticket(&mut state), last))
    }

    /// Returns once everything up to `ticket` is durable, leading an fdatasync when none is
    /// running. Tickets are ordered: a durable ticket makes every earlier one durable.
    pub fn wait(&self, ticket: Ticket) -> Result<()> {
        let state = self.lock()?;
        self.wait_ticket(state, ticket.0)
    }

    /// Appends one command entry per element of `commands` at the end of the log, in `term`, and
    /// returns the last index they got once they are durable. This is how a leader (or a
    /// benchmark) appends new proposals from many threads without agreeing on indices first.
    pub fn append_commands_durable(&self, term: Term, commands: &[Bytes]) -> Result<Index> {
        let (ticket, last) = self.submit_commands(term, commands)?;
        self.wait(ticket)?;
        Ok(last)
    }

    fn append_commands(state: &mut State, term: Term, commands: &[Bytes]) -> Result<Index> {
        let mut next = state.store.last_index().next();
        let entries: Vec<Entry> = commands
            .iter()
            .map(|data| {
                let entry = Entry::command(next, term, data.clone());
                next = next.next();
                entry
            })
            .collect();
        state.store.append(&entries)?;
        Ok(state.store.last_index())
    }

    /// Waits until everything appended so far (by anyone) is durable.
    pub fn sync(&self) -> Result<()> {
        let mut state = self.lock()?;
        let ticket = Self::take_ticket(&mut state);
        self.wait_ticket(state, ticket.0)
    }

    /// Runs `f` on the store under the lock: reads, hard state and snapshot saves, truncation.
    /// Appends made here are durable after the next [`GroupCommit::sync`] or durable append.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut FileStore) -> R) -> Result<R> {
        let mut state = self.lock()?;
        let result = f(&mut state.store);
        state.ticket_appended += 1;
        Ok(result)
    }

    /// Batching counters so far.
    pub fn stats(&self) -> Result<GroupCommitStats> {
        Ok(self.lock()?.stats)
    }

    /// A ticket for the change just made under `state`.
    fn take_ticket(state: &mut State) -> Ticket {
        state.ticket_appended += 1;
        state.stats.appends += 1;
        Ticket(state.ticket_appended)
    }

    /// Returns once `ticket` is durable, leading a sync when none is running.
    fn wait_ticket<'a>(&'a self, mut state: MutexGuard<'a, State>, ticket: u64) -> Result<()> {
        loop {
            if state.ticket_durable >= ticket {
                return Ok(());
            }
            state.store.log().check()?;
            if !state.sync_running {
                // The sync covers every ticket taken so far, this one included.
                return self.lead_sync(state);
            }
            // Park until the sync that covers this ticket ends: the running one if it does,
            // otherwise the next.
            let batch = if ticket <= state.ticket_syncing {
                state.syncs_started
            } else {
                state.syncs_started + 1
            };
            let waiter =
                Arc::new(Waiter { thread: thread::current(), verdict: AtomicU8::new(WAITING) });
            state.waiters[(batch % 2) as usize].push(Arc::clone(&waiter));
            drop(state);
            let verdict = loop {
                match waiter.verdict.load(Ordering::Acquire) {
                    WAITING => thread::park(),
                    verdict => break verdict,
                }
            };
            if verdict == DURABLE {
                return Ok(());
            }
            // LEAD or FAILED: look again under the lock.
            state = self.lock()?;
        }
    }

    /// Writes the buffer, fdatasyncs with the lock released, publishes the result and wakes the
    /// writers it covered.
    fn lead_sync(&self, mut state: MutexGuard<'_, State>) -> Result<()> {
        let target = state.ticket_appended;
        let handle = match state.store.log_mut().prepare_sync() {
            Ok(handle) => handle,
            Err(error) => {
                // The write failed and the store with it: nobody queued may wait for a sync
                // that will never come.
                let queued: Vec<_> = state.waiters.iter_mut().flat_map(std::mem::take).collect();
                queued.iter().for_each(|waiter| waiter.tell(FAILED));
                return Err(error);
            }
        };
        state.sync_running = true;
        state.ticket_syncing = target;
        state.syncs_started += 1;
        let batch = state.syncs_started;
        drop(state);
        let started = Instant::now();
        let result = handle.sync();
        let elapsed = started.elapsed().as_nanos() as u64;
        let mut state = self.lock()?;
        state.sync_running = false;
        let covered = std::mem::take(&mut state.waiters[(batch % 2) as usize]);
        match result {
            Ok(()) => {
                state.ticket_durable = state.ticket_durable.max(target);
                state.stats.syncs += 1;
                state.stats.sync_nanos += elapsed;
                let next_leader = state.waiters[((batch + 1) % 2) as usize].pop();
                drop(state);
                // The next sync first, so the disk is not idle while the others wake up.
                if let Some(leader) = next_leader {
                    leader.tell(LEAD);
                }
                covered.iter().for_each(|waiter| waiter.tell(DURABLE));
                Ok(())
            }
            Err(error) => {
                state.store.log_mut().fail(&error);
                let queued = std::mem::take(&mut state.waiters[((batch + 1) % 2) as usize]);
                covered.iter().chain(&queued).for_each(|waiter| waiter.tell(FAILED));
                Err(error)
            }
        }
    }
}
