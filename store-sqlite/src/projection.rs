//! Read models in SQLite tables, committed with their checkpoint.

use crate::SqliteEventStore;
use async_trait::async_trait;
use recount::projection::{CheckpointMove, Consumer};
use recount::{Cursor, LogFilter, RecordedEvent, Result};
use rusqlite::Transaction;
use std::sync::Arc;

/// How a read model kept in SQLite tables changes with each event, through rusqlite itself.
///
/// For a read model written once for SQLite and PostgreSQL, implement
/// [`recount::sql::SqlReadModel`] and run it with [`recount::sql::SqlProjection`]; this trait
/// is for a model that needs rusqlite's own API.
///
/// Every method runs on the store's writer thread inside the transaction that also moves the
/// projection's checkpoint: the model's rows and its checkpoint commit together or not at all.
pub trait SqliteReadModel: Send + Sync + 'static {
    /// Creates the model's tables if they do not exist (runs with every batch, so use
    /// `CREATE TABLE IF NOT EXISTS`). Name tables by version to rebuild beside a live one.
    fn setup(&self, tx: &Transaction<'_>) -> Result<()>;

    /// Applies one event.
    fn apply(&self, tx: &Transaction<'_>, event: &RecordedEvent) -> Result<()>;

    /// Drops the model's tables (after a rebuild switched readers to a newer version).
    fn drop_tables(&self, tx: &Transaction<'_>) -> Result<()>;
}

/// A [`Consumer`] whose read model is SQLite tables in the event store's own file.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use recount::projection::Runner;
/// use recount::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
/// use recount_sqlite::rusqlite::Transaction;
/// use recount_sqlite::{SqliteEventStore, SqliteProjection, SqliteReadModel};
///
/// struct Counts;
/// impl SqliteReadModel for Counts {
///     fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
///         tx.execute_batch("CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL)")
///             .map_err(recount::Error::store)
///     }
///     fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
///         tx.prepare_cached("INSERT INTO counts VALUES (?1, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1")
///             .and_then(|mut s| s.execute([&e.event_type]))
///             .map(drop)
///             .map_err(recount::Error::store)
///     }
///     fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
///         tx.execute_batch("DROP TABLE IF EXISTS counts").map_err(recount::Error::store)
///     }
/// }
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
/// let s = StreamId::new("story", "1").unwrap();
/// let e = NewEvent::new("story.created", &serde_json::json!({})).unwrap();
/// store.append(&s, ExpectedVersion::NoStream, vec![e]).await.unwrap();
/// let runner = Runner::new(store.clone(), SqliteProjection::new(store.clone(), "counts", Counts));
/// assert_eq!(runner.catch_up().await.unwrap(), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct SqliteProjection<M> {
    store: SqliteEventStore,
    name: String,
    version: u32,
    filter: LogFilter,
    model: Arc<M>,
}

impl<M> Clone for SqliteProjection<M> {
    fn clone(&self) -> Self {
        SqliteProjection {
            store: self.store.clone(),
            name: self.name.clone(),
            version: self.version,
            filter: self.filter.clone(),
            model: self.model.clone(),
        }
    }
}

impl<M: SqliteReadModel> SqliteProjection<M> {
    /// Projection `name`, version 1, fed every event.
    pub fn new(store: SqliteEventStore, name: impl Into<String>, model: M) -> Self {
        SqliteProjection {
            store,
            name: name.into(),
            version: 1,
            filter: LogFilter::all(),
            model: Arc::new(model),
        }
    }

    /// Sets the version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: LogFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The read model.
    pub fn model(&self) -> &M {
        &self.model
    }
}

#[async_trait]
impl<M: SqliteReadModel> Consumer for SqliteProjection<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }

    async fn position(&self, name: &str) -> Result<Option<Cursor>> {
        recount::EventStore::load_checkpoint(&self.store, name).await
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let model = self.model.clone();
        self.store
            .commit_with_checkpoint(
                &checkpoint.name,
                checkpoint.expected,
                checkpoint.new,
                move |tx| {
                    model.setup(tx)?;
                    events.iter().try_for_each(|e| model.apply(tx, e))
                },
            )
            .await
    }

    async fn drop_storage(&self) -> Result<()> {
        // Dropping rides on a checkpoint compare-and-set that leaves the checkpoint where it
        // is, so it runs on the writer like every other write.
        let name = recount::projection::checkpoint_name(&self.name, self.version, None);
        let at = self.position(&name).await?;
        let model = self.model.clone();
        self.store
            .commit_with_checkpoint(&name, at, at.unwrap_or(Cursor::START), move |tx| {
                model.drop_tables(tx)
            })
            .await
    }
}
