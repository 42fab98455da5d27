//! The checkpoint thread: copies the WAL back into the database file off the commit path.
//!
//! With SQLite's default, the connection whose commit pushes the WAL past 1,000 pages runs
//! the checkpoint inside that commit, fsyncs included: every so often one append (and with
//! group commit, every append of its group) waits milliseconds. Here the writer's connection
//! never checkpoints; this thread does, with its own connection. The writer nudges it every
//! [`NUDGE_EVERY`] commits; it also runs every [`INTERVAL`] on its own.
//!
//! # Never stalling the writer
//!
//! A `PASSIVE` checkpoint blocks nobody, but under a steady stream of appends it never catches
//! up with the writer, and SQLite only starts the WAL over after a checkpoint that did: left
//! to passive checkpoints, the WAL grows for as long as appends keep coming (seen at 2.3 GB in
//! a 100,000-command run). Only a checkpoint that takes the write lock (`RESTART`,
//! `TRUNCATE`) can finish, and while it holds the lock no append commits. Taken on a WAL of
//! tens of megabytes, with the store's busy timeout (seconds) for waiting on readers, that
//! froze batch appends for 1.5–3.8 s (issue 24).
//!
//! So a round first runs passive checkpoints, back to back, until what is left to copy is
//! small ([`CAUGHT_UP_BYTES`]) or stops shrinking (a reader holds it back). Only then, when
//! the WAL is past [`SqliteOptions::wal_limit_bytes`](crate::SqliteOptions::wal_limit_bytes),
//! does it flush both files to disk (no lock held, so the checkpoint's own fsyncs have little
//! left to do) and try a `RESTART` checkpoint on a connection whose busy timeout is
//! [`LOCK_WAIT`]: it copies the little that is left, and gives up (to try again a moment
//! later) rather than wait longer than that for the writer or for a reader; after failed
//! attempts in a row the wait doubles, up to [`LONGEST_LOCK_WAIT`], so a machine too busy to
//! end its reads within 5 ms still gets its WAL started over. An append waits for it a few
//! milliseconds, tens at worst. The WAL file keeps its size (bounded by the limit plus
//! what is written while a round runs) and is overwritten from its start; a round that finds
//! nothing committed since the last one truncates it with `TRUNCATE`, delaying no one.

use crate::queries;
use crate::writer::Counters;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// Commits between two nudges of the checkpoint thread.
pub(crate) const NUDGE_EVERY: u64 = 128;
/// The longest the checkpoint thread sleeps.
const INTERVAL: Duration = Duration::from_millis(250);
/// How soon a round that left the WAL past its limit is followed by the next.
const RETRY: Duration = Duration::from_millis(20);
/// The busy timeout of the checkpoint thread's connection: the longest a `RESTART`
/// checkpoint waits for the writer's transaction or for a reader before it gives up. It holds
/// the write lock while it waits for readers, so this is also about the longest it can keep
/// an append waiting, besides the copy of what the passive passes left.
pub(crate) const LOCK_WAIT: Duration = Duration::from_millis(5);
/// The longest wait after failed attempts: each failure doubles the wait, up to this, so a
/// machine too busy to end its reads within [`LOCK_WAIT`] still gets its WAL started over.
const LONGEST_LOCK_WAIT: Duration = Duration::from_millis(40);

/// The lock wait after `failures` failed attempts in a row.
fn lock_wait(failures: u32) -> Duration {
    LOCK_WAIT
        .saturating_mul(1 << failures.min(8))
        .min(LONGEST_LOCK_WAIT)
}
/// Below this much WAL not yet copied, the passive passes stop and a restarting checkpoint may
/// copy the rest under the write lock.
const CAUGHT_UP_BYTES: u64 = 1 << 20;
/// The most passive passes of one round.
const MAX_PASSES: u32 = 16;

/// What a checkpoint reports: `(busy, frames in the WAL, frames copied)`.
#[derive(Debug, Clone, Copy)]
struct Progress {
    log: u64,
    copied: u64,
    /// Set by [`passive_passes`]: the last pass copied nothing new (a reader holds it back).
    stuck: bool,
}

fn run(conn: &Connection, sql: &str) -> rusqlite::Result<Progress> {
    conn.query_row(sql, [], |r| {
        let frames = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(Progress {
            log: frames(1)?,
            copied: frames(2)?,
            stuck: false,
        })
    })
}

/// What a round did, for the thread's schedule and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// The WAL is under its limit (or has just been started over).
    Within,
    /// The WAL is past its limit and could not be started over yet (a reader or the writer
    /// was busy).
    Over,
}

/// Passive checkpoints, back to back, until what is left to copy is under
/// [`CAUGHT_UP_BYTES`] or stops shrinking; the last one's progress.
fn passive_passes(conn: &Connection, page: u64) -> rusqlite::Result<Progress> {
    let mut last = run(conn, queries::CHECKPOINT_PASSIVE)?;
    for _ in 1..MAX_PASSES {
        let left = last.log.saturating_sub(last.copied).saturating_mul(page);
        if left <= CAUGHT_UP_BYTES {
            break;
        }
        let mut next = run(conn, queries::CHECKPOINT_PASSIVE)?;
        next.stuck = next.log >= last.log && next.copied <= last.copied;
        last = next;
        if last.stuck {
            break;
        }
    }
    Ok(last)
}

/// Flushes the WAL and the database file to disk without holding any lock.
///
/// A checkpoint syncs the WAL before it copies and the database file when it has copied
/// everything. Passive passes that never catch up leave both to the one that finishes, the
/// `RESTART` checkpoint, which would then flush tens of megabytes while it holds the write
/// lock: that alone stalled appends for hundreds of milliseconds. `fsync` on any handle of a
/// file flushes all of it, so doing it here first leaves that checkpoint only what was
/// written since.
fn flush_files(db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for path in [PathBuf::from(wal), db.to_owned()] {
        if let Err(e) = std::fs::File::open(&path).and_then(|f| f.sync_data()) {
            tracing::debug!(error = %e, path = %path.display(), "flush before checkpoint");
        }
    }
}

/// The size of the WAL file (0 when there is none).
fn wal_file_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
}

/// Runs a checkpoint that takes the write lock (`RESTART` or `TRUNCATE`), waiting at most
/// `wait` for the writer or a reader: whether it finished.
fn exclusive(conn: &Connection, sql: &str, wait: Duration) -> rusqlite::Result<bool> {
    conn.busy_timeout(wait)?;
    match conn.query_row(sql, [], |r| r.get::<_, i64>(0)) {
        // 0: everything was copied and the WAL starts over; 1: a reader or the writer was busy.
        Ok(busy) => Ok(busy == 0),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One round: passive passes until caught up; then, when the WAL is past `wal_limit_bytes`,
/// a flush of both files and a short-tempered `RESTART`; when nothing was committed since the
/// last round (`idle`), a `TRUNCATE` that gives the WAL file's space back.
fn checkpoint(
    conn: &Connection,
    db: &Path,
    wal_limit_bytes: u64,
    idle: bool,
    failures: u32,
    counters: &Counters,
) -> rusqlite::Result<Round> {
    let page_size: i64 = conn.query_row(queries::PAGE_SIZE, [], |r| r.get(0))?;
    let page = page_size.max(1) as u64;
    let last = passive_passes(conn, page)?;
    let bytes = last.log.saturating_mul(page);
    counters.wal_seen(bytes);
    let left = last.log.saturating_sub(last.copied).saturating_mul(page);
    if idle && left == 0 && wal_file_len(db) > 0 {
        // Nobody is writing: truncating the file (freeing its blocks) delays no one.
        if exclusive(conn, queries::CHECKPOINT_TRUNCATE, LOCK_WAIT)? {
            counters.wal_restarted();
        }
        return Ok(Round::Within);
    }
    if bytes > wal_limit_bytes / 4 {
        // A WAL this large comes of a steady stream of appends: flush what the passive passes
        // copied now, a round's worth at a time, rather than all at once before the restart
        // (a flush of a hundred megabytes slows the writer's own writes for as long).
        flush_files(db);
    }
    if bytes <= wal_limit_bytes {
        return Ok(Round::Within);
    }
    // Past four times the limit the writer is outrunning the passive passes: restart anyway,
    // and let the writer wait for the copy of what is left (the only brake on the WAL).
    let outrun = bytes > wal_limit_bytes.saturating_mul(4) && !last.stuck;
    if left > CAUGHT_UP_BYTES && !outrun {
        // A reader holds the passive checkpoint back: a restart could not finish either, and
        // would only keep the writer waiting while it found that out.
        return Ok(Round::Over);
    }
    // Each flush has only what was written during the one before: twice leaves the restart's
    // own fsyncs, taken under the write lock, a few milliseconds' worth.
    for _ in 0..2 {
        flush_files(db);
        run(conn, queries::CHECKPOINT_PASSIVE)?;
    }
    // `RESTART`, not `TRUNCATE`: the writer goes on overwriting the file's blocks from the
    // start, instead of waiting while the file's blocks are freed and then allocating them
    // again as it grows (both cost tens to hundreds of milliseconds on a large WAL).
    if exclusive(
        conn,
        queries::CHECKPOINT_RESTART,
        lock_wait(failures + 3 * u32::from(outrun)),
    )? {
        counters.wal_restarted();
        Ok(Round::Within)
    } else {
        Ok(Round::Over)
    }
}

/// The checkpoint thread's handle.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread on `conn` (opened with a busy timeout of [`LOCK_WAIT`]).
    pub(crate) fn spawn(
        conn: Connection,
        db: PathBuf,
        wal_limit_bytes: u64,
        counters: Arc<Counters>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("recount-sqlite-checkpoint".into())
            .spawn(move || {
                let (mut sleep, mut commits, mut failures) = (INTERVAL, counters.commits(), 0);
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(sleep);
                    let now = counters.commits();
                    let idle = now == commits;
                    commits = now;
                    let round = checkpoint(&conn, &db, wal_limit_bytes, idle, failures, &counters);
                    failures = match round {
                        Ok(Round::Over) => failures.saturating_add(1),
                        _ => 0,
                    };
                    sleep = match round {
                        Ok(Round::Over) => RETRY,
                        Ok(Round::Within) => INTERVAL,
                        // Failed: the next round retries, and nothing depends on a checkpoint
                        // but the WAL's size.
                        Err(e) => {
                            tracing::debug!(error = %e, "wal checkpoint did not run");
                            INTERVAL
                        }
                    };
                }
            })?;
        Ok(Checkpointer {
            thread: Some(thread),
            stop,
        })
    }

    /// The thread, for the writer to nudge.
    pub(crate) fn thread(&self) -> Option<Thread> {
        self.thread.as_ref().map(|t| t.thread().clone())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
