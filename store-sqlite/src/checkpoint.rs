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

/// The checkpoint thread's handle.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread on `conn`.
    pub(crate) fn spawn(conn: Connection) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("recount-sqlite-checkpoint".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    // Busy (another process is checkpointing) or failed: the next round retries,
                    // and nothing depends on a checkpoint but the WAL's size.
                    if let Err(e) = conn.query_row(queries::CHECKPOINT_PASSIVE, [], |_| Ok(())) {
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
