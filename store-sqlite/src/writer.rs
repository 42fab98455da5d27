//! The writer thread: owns the write connection and commits queued operations in groups.
//!
//! Every write (append, delete, snapshot, checkpoint, projection transaction) is a [`Unit`]
//! sent over a channel. The thread takes what is queued (up to `max_group`), opens one
//! `BEGIN IMMEDIATE` transaction, runs each unit inside its own savepoint, rolls back only the
//! savepoint of a rejected unit, commits once, then answers every caller. If the commit
//! fails, every unit of the group gets a retriable error and nothing of the group is stored.

use crate::checkpoint::NUDGE_EVERY;
use crate::error;
use crate::queries;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// The longest the writer waits for the callers of its last group to come back before it
/// commits a smaller group.
const GROUP_LINGER: Duration = Duration::from_micros(200);

/// Counters of the writer, readable through
/// [`SqliteEventStore::stats`](crate::SqliteEventStore::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteStats {
    /// Transactions the writer committed.
    pub commits: u64,
    /// Appends the writer answered, accepted or rejected (not counting those of a group
    /// whose commit failed).
    pub appends: u64,
    /// Operations of every kind the writer answered (the same way).
    pub operations: u64,
    /// The most operations run in one transaction.
    pub largest_group: u64,
    /// Times the checkpoint thread copied the whole WAL back and started it over: after the
    /// WAL had grown past [`SqliteOptions::wal_limit_bytes`](crate::SqliteOptions::wal_limit_bytes)
    /// (the file keeps its size and is overwritten), or when the store was idle (the file is
    /// truncated).
    pub wal_restarts: u64,
    /// The longest a group took on the writer, from `BEGIN IMMEDIATE` (including any wait
    /// for the checkpoint thread's lock) to the end of its commit, in microseconds.
    pub longest_commit_us: u64,
    /// The largest WAL the checkpoint thread has seen, in bytes (it looks after each commit
    /// burst and every 250 ms, so a WAL may have been a little larger in between).
    pub largest_wal_bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    appends: AtomicU64,
    operations: AtomicU64,
    largest_group: AtomicU64,
    wal_restarts: AtomicU64,
    longest_commit_us: AtomicU64,
    largest_wal_bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SqliteStats {
        SqliteStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            largest_group: self.largest_group.load(Ordering::Relaxed),
            wal_restarts: self.wal_restarts.load(Ordering::Relaxed),
            longest_commit_us: self.longest_commit_us.load(Ordering::Relaxed),
            largest_wal_bytes: self.largest_wal_bytes.load(Ordering::Relaxed),
        }
    }

    /// The checkpoint thread saw a WAL of `bytes`.
    pub(crate) fn wal_seen(&self, bytes: u64) {
        self.largest_wal_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Transactions committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The checkpoint thread started the WAL over.
    pub(crate) fn wal_restarted(&self) {
        self.wal_restarts.fetch_add(1, Ordering::Relaxed);
    }

    fn took(&self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.longest_commit_us.fetch_max(us, Ordering::Relaxed);
    }

    fn finished(&self, operations: u64, appends: u64, committed: bool) {
        self.commits
            .fetch_add(u64::from(committed), Ordering::Relaxed);
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.operations.fetch_add(operations, Ordering::Relaxed);
        self.largest_group.fetch_max(operations, Ordering::Relaxed);
    }
}

/// How a unit's transaction ended.
#[derive(Clone, Copy)]
pub(crate) enum Fate<'a> {
    /// The transaction ended as planned: committed, or (for a group of one rejected unit)
    /// rolled back on purpose. The unit's own outcome stands.
    Decided,
    /// The group could not be committed; nothing of it is stored.
    Failed(&'a recount::Error),
}

/// One operation of a group commit.
pub(crate) trait Unit: Send {
    /// Runs inside the group's transaction; `false` when rejected (its writes are rolled back).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// The log position of the last event the unit wrote, if it wrote events.
    fn position(&self) -> Option<u64>;
    /// Whether the unit is an append (for [`SqliteStats::appends`]).
    fn is_append(&self) -> bool;
    /// Answers the caller.
    fn answer(self: Box<Self>, fate: Fate<'_>);
}

/// A [`Unit`] made of a closure and the channel its result goes back on.
pub(crate) struct Job<T, F> {
    work: Option<F>,
    outcome: Option<recount::Result<T>>,
    reply: oneshot::Sender<recount::Result<T>>,
    position_of: fn(&T) -> Option<u64>,
    append: bool,
}

impl<T, F> Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> recount::Result<T> + Send + 'static,
{
    /// A job, and where its answer will arrive.
    pub(crate) fn new(work: F) -> (Self, oneshot::Receiver<recount::Result<T>>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Some(work),
            outcome: None,
            reply,
            position_of: |_| None,
            append: false,
        };
        (job, answer)
    }

    /// Marks the job as an append whose result carries the last position it wrote.
    pub(crate) fn appending(mut self, position_of: fn(&T) -> Option<u64>) -> Self {
        self.append = true;
        self.position_of = position_of;
        self
    }
}

impl<T, F> Unit for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> recount::Result<T> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking projection closure must not take the writer thread down with it.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(tx)))
            .unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
        let kept = outcome.is_ok();
        self.outcome = Some(outcome);
        kept
    }

    fn position(&self) -> Option<u64> {
        match &self.outcome {
            Some(Ok(t)) => (self.position_of)(t),
            _ => None,
        }
    }

    fn is_append(&self) -> bool {
        self.append
    }

    fn answer(self: Box<Self>, fate: Fate<'_>) {
        let result = match fate {
            Fate::Decided => self.outcome.unwrap_or_else(|| Err(error::writer_gone())),
            Fate::Failed(e) => Err(error::group_commit_failed(e)),
        };
        // The caller may have stopped waiting (its future was dropped); nothing to do then.
        let _ = self.reply.send(result);
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> recount::Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    recount::Error::store(crate::SqliteError::Panicked { message })
}

/// The writer thread's state.
pub(crate) struct WriterLoop {
    pub(crate) conn: Connection,
    pub(crate) queue: mpsc::Receiver<Box<dyn Unit>>,
    pub(crate) max_group: usize,
    pub(crate) counters: Arc<Counters>,
    /// The last position committed by this store, for `wait_for_append`.
    pub(crate) committed: Arc<watch::Sender<u64>>,
    /// The checkpoint thread, nudged every [`NUDGE_EVERY`] commits.
    pub(crate) checkpointer: Option<std::thread::Thread>,
    pub(crate) commits: u64,
}

impl WriterLoop {
    /// Runs until every sender is gone.
    pub(crate) fn run(mut self) {
        let mut group: Vec<Box<dyn Unit>> = Vec::with_capacity(self.max_group);
        // How many writers were active last time: the callers of the last group, answered
        // together, tend to come back together.
        let mut expected = 1;
        while let Ok(first) = self.queue.recv() {
            group.push(first);
            self.drain(&mut group);
            if group.len() < expected {
                // Give the callers of the last group a moment to send their next operation,
                // so they share one commit instead of each paying for their own. A single
                // writer (expected = 1) never waits.
                let deadline = Instant::now() + GROUP_LINGER;
                while group.len() < expected {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.queue.recv_timeout(left) {
                        Ok(unit) => {
                            group.push(unit);
                            self.drain(&mut group);
                        }
                        Err(_) => break,
                    }
                }
            }
            expected = group.len();
            self.commit_group(&mut group);
        }
    }

    /// Adds what is queued to `group`, up to `max_group`.
    fn drain(&self, group: &mut Vec<Box<dyn Unit>>) {
        while group.len() < self.max_group {
            match self.queue.try_recv() {
                Ok(unit) => group.push(unit),
                Err(_) => break,
            }
        }
    }

    fn commit_group(&mut self, group: &mut Vec<Box<dyn Unit>>) {
        let started = Instant::now();
        self.try_commit_group(group);
        self.counters.took(started);
    }

    fn try_commit_group(&mut self, group: &mut Vec<Box<dyn Unit>>) {
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return answer_all(group, Fate::Failed(&error::db(e))),
        };
        if let [unit] = group.as_mut_slice() {
            // A group of one needs no savepoint: a rejected unit rolls back the transaction.
            if !unit.run(&tx) {
                return match tx.rollback() {
                    Ok(()) => {
                        self.counters
                            .finished(1, u64::from(unit.is_append()), false);
                        answer_all(group, Fate::Decided)
                    }
                    Err(e) => answer_all(group, Fate::Failed(&error::db(e))),
                };
            }
        } else {
            for unit in group.iter_mut() {
                if let Err(e) = run_in_savepoint(&tx, unit.as_mut()) {
                    drop(tx);
                    return answer_all(group, Fate::Failed(&e));
                }
            }
        }
        let newest = group.iter().filter_map(|u| u.position()).max();
        let appends = group.iter().filter(|u| u.is_append()).count() as u64;
        match tx.commit() {
            Ok(()) => {
                self.counters.finished(group.len() as u64, appends, true);
                self.commits += 1;
                if self.commits % NUDGE_EVERY == 0 {
                    if let Some(t) = &self.checkpointer {
                        t.unpark();
                    }
                }
                if let Some(p) = newest {
                    self.committed.send_if_modified(|last| {
                        let newer = p > *last;
                        *last = (*last).max(p);
                        newer
                    });
                }
                answer_all(group, Fate::Decided);
            }
            Err(e) => answer_all(group, Fate::Failed(&error::db(e))),
        }
    }
}

/// Runs `unit` inside a savepoint, rolling back only its own writes when it is rejected.
fn run_in_savepoint(tx: &Transaction<'_>, unit: &mut dyn Unit) -> recount::Result<()> {
    let exec = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(error::db)
    };
    exec(queries::SAVEPOINT)?;
    if !unit.run(tx) {
        exec(queries::ROLLBACK_TO)?;
    }
    exec(queries::RELEASE)?;
    Ok(())
}

fn answer_all(group: &mut Vec<Box<dyn Unit>>, fate: Fate<'_>) {
    for unit in group.drain(..) {
        unit.answer(fate);
    }
}
