//! Read models in PostgreSQL tables, committed with their checkpoint.

use crate::PgEventStore;
use async_trait::async_trait;
use futures::FutureExt;
use recount::projection::{checkpoint_name, CheckpointMove, Consumer};
use recount::{Cursor, EventStore, LogFilter, RecordedEvent, Result};
use sqlx::PgConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a read model kept in PostgreSQL tables changes with each batch, through sqlx itself.
///
/// For a read model written once for PostgreSQL and SQLite, implement
/// [`recount::sql::SqlReadModel`] and run it with [`recount::sql::SqlProjection`]; this trait
/// is for a model that needs PostgreSQL's own API (arrays and `UNNEST`, `COPY`).
///
/// Every method runs inside the transaction that also moves the projection's checkpoint: the
/// model's rows and its checkpoint commit together or not at all.
#[async_trait]
pub trait PgReadModel: Send + Sync + 'static {
    /// Creates the model's tables if they do not exist (`CREATE TABLE IF NOT EXISTS`); runs
    /// before the first batch a process commits. Name tables by version to rebuild beside a
    /// live one.
    async fn setup(&self, conn: &mut PgConnection) -> Result<()>;

    /// Applies one event.
    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<()>;

    /// Applies a batch, in log order. The default applies each event in turn; override it to
    /// write a batch in one statement (`UNNEST`) and save a round trip per event.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.apply(conn, e).await?;
        }
        Ok(())
    }

    /// Drops the model's tables (after a rebuild switched readers to a newer version).
    async fn drop_tables(&self, conn: &mut PgConnection) -> Result<()>;
}

/// A [`Consumer`] whose read model is tables in the event store's database.
#[derive(Debug)]
pub struct PgProjection<M> {
    store: PgEventStore,
    name: String,
    version: u32,
    filter: LogFilter,
    model: Arc<M>,
    ready: Arc<AtomicBool>,
}

impl<M> Clone for PgProjection<M> {
    fn clone(&self) -> Self {
        PgProjection {
            store: self.store.clone(),
            name: self.name.clone(),
            version: self.version,
            filter: self.filter.clone(),
            model: self.model.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<M: PgReadModel> PgProjection<M> {
    /// Projection `name`, version 1, fed every event.
    pub fn new(store: PgEventStore, name: impl Into<String>, model: M) -> Self {
        PgProjection {
            store,
            name: name.into(),
            version: 1,
            filter: LogFilter::all(),
            model: Arc::new(model),
            ready: Arc::default(),
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
impl<M: PgReadModel> Consumer for PgProjection<M> {
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
        self.store.load_checkpoint(name).await
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let (model, ready) = (self.model.clone(), self.ready.clone());
        let set_up = !ready.load(Ordering::Acquire);
        self.store
            .commit_with_checkpoint(
                &checkpoint.name,
                checkpoint.expected,
                checkpoint.new,
                move |conn| {
                    async move {
                        if set_up {
                            model.setup(conn).await?;
                        }
                        model.apply_batch(conn, &events).await
                    }
                    .boxed()
                },
            )
            .await?;
        if set_up {
            ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn drop_storage(&self) -> Result<()> {
        // Rides on a checkpoint compare-and-set that leaves the checkpoint where it is.
        let name = checkpoint_name(&self.name, self.version, None);
        let at = self.position(&name).await?;
        let model = self.model.clone();
        self.store
            .commit_with_checkpoint(&name, at, at.unwrap_or(Cursor::START), move |conn| {
                async move { model.drop_tables(conn).await }.boxed()
            })
            .await?;
        self.ready.store(false, Ordering::Release);
        Ok(())
    }
}
