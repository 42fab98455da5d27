//! [`SqliteEventStore`]: the handle, opening, and the [`EventStore`] implementation.

use crate::checkpoint::Checkpointer;
use crate::connect;
use crate::error;
use crate::reader::{self, ReadPool};
use crate::write::{self, Append};
use crate::writer::{Counters, Job, Unit, WriterLoop};
use crate::{SqliteOptions, SqliteStats};
use async_trait::async_trait;
use recount::{
    AppendResult, Cursor, EventStore, ExpectedVersion, Limits, LogBatch, LogFilter, NewEvent,
    RecordedEvent, Result, Snapshot, StreamId,
};
use rusqlite::Transaction;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// The SQLite event store: one database file, WAL, one writer thread committing in groups,
/// a pool of read-only connections. Cloning gives another handle to the same store.
///
/// See the [crate documentation](crate) for the threads, the durability setting and the
/// schema.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    queue: Option<mpsc::Sender<Box<dyn Unit>>>,
    writer: Option<JoinHandle<()>>,
    // Stopped after the writer (field order: it is dropped after `Drop for Inner` ran).
    _checkpointer: Checkpointer,
    readers: ReadPool,
    counters: Arc<Counters>,
    committed: Arc<watch::Sender<u64>>,
    limits: Limits,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the group it is committing; waiting for it
        // means the file is closed once the last handle is gone. The last handle may be
        // dropped on the writer thread itself (held by a projection closure): never join
        // oneself.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            if writer.thread().id() != std::thread::current().id() {
                let _ = writer.join();
            }
        }
    }
}

impl SqliteEventStore {
    /// Opens the database at `path`, creating the file when missing, with default
    /// [`SqliteOptions`].
    ///
    /// Fails with [`recount::Error::Store`] naming the path when the file cannot be created
    /// or opened, and with [`recount::Error::SchemaTooNew`] when a newer Recount migrated it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options` (see [`SqliteEventStore::open`]).
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, options))
            .await
            .map_err(recount::Error::store)?
    }

    fn open_blocking(path: PathBuf, options: SqliteOptions) -> Result<Self> {
        let conn = connect::open_writer(&path, &options)?;
        let readers = (0..options.readers.max(1))
            .map(|_| connect::open_reader(&path, options.busy_timeout))
            .collect::<Result<Vec<_>>>()?;
        let last: i64 = conn
            .query_row(crate::queries::MAX_POSITION, [], |r| r.get(0))
            .map_err(error::db)?;
        let counters = Arc::new(Counters::default());
        let checkpointer = connect::open_checkpointer(&path, crate::checkpoint::LOCK_WAIT)?;
        let checkpointer = Checkpointer::spawn(
            checkpointer,
            path.clone(),
            options.wal_limit_bytes,
            counters.clone(),
        )
        .map_err(recount::Error::store)?;
        let committed = Arc::new(watch::Sender::new(error::stored("position", last)?));
        let (queue, receiver) = mpsc::channel();
        let writer_loop = WriterLoop {
            conn,
            queue: receiver,
            max_group: options.max_group.max(1),
            counters: counters.clone(),
            committed: committed.clone(),
            checkpointer: checkpointer.thread(),
            commits: 0,
        };
        let writer = std::thread::Builder::new()
            .name("recount-sqlite-writer".into())
            .spawn(move || writer_loop.run())
            .map_err(recount::Error::store)?;
        let inner = Inner {
            path,
            queue: Some(queue),
            writer: Some(writer),
            _checkpointer: checkpointer,
            readers: ReadPool::new(readers),
            counters,
            committed,
            limits: options.limits,
        };
        Ok(SqliteEventStore {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The writer's counters: commits, appends, the largest group. With several appends in
    /// flight, `commits` grows slower than `appends`: that is group commit at work.
    pub fn stats(&self) -> SqliteStats {
        self.inner.counters.snapshot()
    }

    /// Runs a projection's writes and its checkpoint's compare-and-set in one transaction on
    /// the writer thread: both commit, or neither does (store contract, item 10).
    ///
    /// The checkpoint `name` must be at `expected` (`None`: not stored yet), else the call
    /// fails with [`recount::Error::CheckpointConflict`] and `f` does not run. Then `f` gets
    /// the open transaction and writes the projection's own tables; when it returns `Ok`, the
    /// checkpoint is set to `new` and everything commits together. When `f` returns `Err` (or
    /// panics), everything it wrote is rolled back, the checkpoint is unchanged, and the error
    /// is returned.
    ///
    /// `f` runs on the writer thread, inside a savepoint of a group commit shared with other
    /// writes: keep it short (no network calls, no waiting on other tasks), and never end the
    /// transaction yourself (`COMMIT`, `ROLLBACK`, `RELEASE`): the writer does. If the group's
    /// commit fails, the call returns a retriable [`recount::Error::Store`] and nothing is
    /// stored. Use `prepare_cached` for statements run on every batch.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use recount::Cursor;
    /// use recount_sqlite::SqliteEventStore;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    /// store
    ///     .commit_with_checkpoint("totals", None, Cursor::from_position(0), |tx| {
    ///         tx.execute_batch("CREATE TABLE IF NOT EXISTS totals (n INTEGER NOT NULL)")
    ///             .map_err(recount::Error::store)
    ///     })
    ///     .await
    ///     .unwrap();
    /// let written = store
    ///     .commit_with_checkpoint("totals", Some(Cursor::from_position(0)), Cursor::from_position(7), |tx| {
    ///         tx.execute("INSERT INTO totals (n) VALUES (?1)", [7]).map_err(recount::Error::store)
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(written, 1);
    /// # });
    /// ```
    pub async fn commit_with_checkpoint<T, F>(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        recount::check_checkpoint_name(name)?;
        let name = name.to_owned();
        self.write(move |tx| {
            write::save_checkpoint(tx, &name, expected, new, None)?;
            f(tx)
        })
        .await
    }

    /// Runs `read` on a pooled read-only connection.
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.run(read).await
    }

    /// Sends `work` to the writer and waits for its answer.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (job, answer) = Job::new(work);
        self.submit(Box::new(job))?;
        answer.await.map_err(|_| error::writer_gone())?
    }

    fn submit(&self, unit: Box<dyn Unit>) -> Result<()> {
        let queue = self.inner.queue.as_ref().ok_or_else(error::writer_gone)?;
        queue.send(unit).map_err(|_| error::writer_gone())
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let events = self.inner.limits.validate(events)?;
        let req = Append {
            stream: stream.clone(),
            expected,
            events,
        };
        let (job, answer) = Job::new(move |tx: &Transaction<'_>| write::append(tx, &req));
        let job = job.appending(|r: &(AppendResult, u64)| Some(r.0.cursor.position()));
        self.submit(Box::new(job))?;
        // Answered once committed: the events are durable when counted.
        let (done, written) = answer.await.map_err(|_| error::writer_gone())??;
        recount::telemetry::appended(stream, written);
        Ok(done)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| reader::read_stream(conn, &stream, from_version, limit))
            .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| match write::stream_state(conn, &stream)? {
                (_, true) => Err(recount::Error::StreamDeleted { stream }),
                (version, false) => Ok(version),
            })
            .await
    }

    async fn read_all(&self, after: Cursor, filter: &LogFilter, limit: usize) -> Result<LogBatch> {
        let filter = filter.clone();
        self.inner
            .readers
            .run(move |conn| reader::read_all(conn, after, &filter, limit))
            .await
    }

    async fn read_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>> {
        self.inner
            .readers
            .run(move |conn| reader::read_event(conn, id))
            .await
    }

    async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
        let filter = filter.clone();
        self.inner
            .readers
            .run(move |conn| reader::count_after(conn, after, &filter))
            .await
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let stream = stream.clone();
        self.write(move |tx| write::delete(tx, &stream, expected))
            .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.write(move |tx| write::save_snapshot(tx, &snapshot))
            .await
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| reader::load_snapshot(conn, stream))
            .await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>> {
        recount::check_checkpoint_name(name)?;
        let name = name.to_owned();
        self.inner
            .readers
            .run(move |conn| write::load_checkpoint(conn, &name))
            .await
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<()> {
        recount::check_checkpoint_name(name)?;
        let name = name.to_owned();
        self.write(move |tx| write::save_checkpoint(tx, &name, expected, new, None))
            .await
    }

    async fn load_checkpoint_state(&self, name: &str) -> Result<Option<(Cursor, Option<String>)>> {
        recount::check_checkpoint_name(name)?;
        let name = name.to_owned();
        self.inner
            .readers
            .run(move |conn| write::load_checkpoint_state(conn, &name))
            .await
    }

    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> Result<()> {
        recount::check_checkpoint_name(name)?;
        let name = name.to_owned();
        self.write(move |tx| {
            write::save_checkpoint(tx, &name, expected, new, Some(state.as_deref()))
        })
        .await
    }

    /// Returns as soon as this store (this process) commits an event after `after`, or when
    /// `timeout` passes. Appends by other processes on the same file are seen at the timeout.
    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        let mut committed = self.inner.committed.subscribe();
        let newer = |last: &u64| *last > after.position();
        let _ = tokio::time::timeout(timeout, committed.wait_for(newer)).await;
    }
}
