//! The checkpoint thread: copies the WAL back into the database file off the commit path.
//!
//! With SQLite's default, the connection whose commit pushes the WAL past 1,000 pages runs
//! the checkpoint inside that commit, fsyncs included: every so often one append (and with
//! group commit, every append of its group) waits milliseconds. Here the writer's connection
//! never checkpoints; this thread does, with its own connection, in `PASSIVE` mode, which
//! blocks neither the writer nor the readers. The writer nudges it every
//! [`NUDGE_EVERY`] commits; it also runs every [`INTERVAL`] on its own.

use crate::queries;
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// Commits between two nudges of the checkpoint thread.
pub(crate) const NUDGE_EVERY: u64 = 128;
/// The longest the checkpoint thread sleeps.
const INTERVAL: Duration = Duration::from_millis(250);

/// One round: a `PASSIVE` checkpoint, then a `TRUNCATE` one when the WAL is past the limit.
///
/// Under a steady stream of appends a passive checkpoint never catches up with the writer, and
/// SQLite only starts the WAL over after a checkpoint that did: without the truncating round,
/// the WAL grows for as long as appends keep coming (seen at 2.3 GB in a 100,000-command run).
fn checkpoint(conn: &Connection, wal_limit_bytes: u64) -> rusqlite::Result<()> {
    let wal_pages: i64 = conn.query_row(queries::CHECKPOINT_PASSIVE, [], |r| r.get(1))?;
    let page_size: i64 = conn.query_row(queries::PAGE_SIZE, [], |r| r.get(0))?;
    if (wal_pages.max(0) as u64).saturating_mul(page_size.max(0) as u64) > wal_limit_bytes {
        conn.query_row(queries::CHECKPOINT_TRUNCATE, [], |_| Ok(()))?;
    }
    Ok(())
}

/// The checkpoint thread's handle.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread on `conn`.
    pub(crate) fn spawn(conn: Connection, wal_limit_bytes: u64) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("recount-sqlite-checkpoint".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    // Busy (another process is checkpointing) or failed: the next round retries,
                    // and nothing depends on a checkpoint but the WAL's size.
                    if let Err(e) = checkpoint(&conn, wal_limit_bytes) {
                        tracing::debug!(error = %e, "wal checkpoint did not run");
                    }
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
