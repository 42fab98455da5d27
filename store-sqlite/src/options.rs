//! How a store is opened.

use recount::Limits;
use std::time::Duration;

/// Options of [`SqliteEventStore::open_with`](crate::SqliteEventStore::open_with).
///
/// ```
/// use recount_sqlite::{SqliteOptions, SqliteSynchronous};
/// let opts = SqliteOptions { synchronous: SqliteSynchronous::Full, ..SqliteOptions::default() };
/// assert_eq!(opts.readers, 4);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of a commit (default [`SqliteSynchronous::Normal`]).
    pub synchronous: SqliteSynchronous,
    /// How long a connection waits for a lock held by another connection or process before
    /// the operation fails with a retriable [`recount::Error::Store`] (default 5 s).
    pub busy_timeout: Duration,
    /// Read-only connections in the read pool, each used by one read at a time (default 4,
    /// at least 1).
    pub readers: usize,
    /// The most operations the writer commits in one transaction (default 128, at least 1).
    pub max_group: usize,
    /// Input limits checked before anything is written (default [`Limits::default`]).
    pub limits: Limits,
    /// The WAL size past which the checkpoint thread starts the WAL over (default 64 MiB).
    ///
    /// Its usual `PASSIVE` checkpoint never completes while appends keep coming, so the WAL
    /// would grow without bound. Past this size, once passive checkpoints have copied nearly
    /// all of it and the files are flushed, the thread runs a `RESTART` checkpoint that waits
    /// 5 ms for the writer or a reader (never the busy timeout; doubling up to 40 ms after
    /// failed attempts) and tries again soon when it could not finish. The WAL file keeps its
    /// size while appends go on and is truncated once the store is idle. A reader that keeps
    /// one read transaction open holds the WAL back until it ends.
    pub wal_limit_bytes: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: SqliteSynchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_group: 128,
            limits: Limits::default(),
            wal_limit_bytes: 64 << 20,
        }
    }
}

/// SQLite's `synchronous` setting, with the database in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// `NORMAL`: a commit survives a crash of the process, but the last commits may be lost
    /// in a power cut or an operating-system crash. The database is never corrupted.
    #[default]
    Normal,
    /// `FULL`: a commit survives a power cut too; about 4× slower for single-event appends.
    Full,
}
