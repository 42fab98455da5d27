//! The store handle: construction, migrations, and the `EventStore` implementation.

use crate::error::store_error;
use crate::notify::{Listener, Notifier};
use crate::queries::Queries;
use crate::PgOptions;
use async_trait::async_trait;
use recount::{
    AppendResult, Cursor, Error, EventStore, ExpectedVersion, Limits, LogBatch, LogFilter,
    NewEvent, RecordedEvent, Result, Snapshot, StreamId,
};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The embedded migrations (`migrations/NNNN_*.sql`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Serializes `CREATE SCHEMA` between processes migrating at once (an arbitrary key in the
/// two-key advisory lock space, which sqlx's own migration lock does not use).
const MIGRATE_LOCK: (i32, i32) = (crate::queries::LOCK_CLASS, 0);

/// A Recount event store in PostgreSQL. Cloning gives another handle to the same store.
///
/// Build it with [`connect`](Self::connect) or [`from_pool`](Self::from_pool), then call
/// [`migrate`](Self::migrate) once at start-up. See the crate documentation for the schema,
/// the global log's guarantees and what delays its readers.
#[derive(Clone)]
pub struct PgEventStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    schema: String,
    limits: Limits,
    sql: Queries,
    channel: String,
    notifier: Notifier,
    listener: Listener,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore")
            .field("schema", &self.shared.schema)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl PgEventStore {
    /// Connects to `url` (`postgres://user@host:port/database`) with a pool of 16 connections
    /// and the default [`PgOptions`] (schema `recount`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Like [`connect`](Self::connect), with other options.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self> {
        options.validate()?;
        let connect = PgConnectOptions::from_str(url).map_err(store_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            // A liveness ping before every checkout would cost a round trip per operation; a
            // dead connection fails its query instead, which is classified as retriable.
            .test_before_acquire(false)
            .connect_with(
                // SQL read models (`recount::sql`) name their tables unqualified: they live in
                // the store's schema.
                Self::session_options(connect)
                    .options([("search_path", format!("{},public", options.schema))]),
            )
            .await
            .map_err(store_error)?;
        Self::from_pool(pool, options)
    }

    /// `options` with the session settings the store's connections need; give a pool for
    /// [`from_pool`](Self::from_pool) these options (as [`connect`](Self::connect) does).
    ///
    /// Today that is `jit = off`. The store runs few statements, many times each, as prepared
    /// statements; after five runs PostgreSQL may switch one to a generic plan, whose cost is
    /// estimated without the parameters' values. On a large log the generic plan of a
    /// `read_all` page is estimated to read a tenth of the table, crosses `jit_above_cost`,
    /// and is compiled on every run: 12 ms of JIT for a page that takes 1.5 ms to read (seen
    /// at 10 million events). Nothing the store sends gains from JIT.
    ///
    /// ```
    /// use recount_postgres::PgEventStore;
    /// use sqlx::postgres::PgConnectOptions;
    /// let options = PgEventStore::session_options(PgConnectOptions::new());
    /// assert!(options.get_options().is_some_and(|o| o.contains("jit=off")));
    /// ```
    pub fn session_options(options: PgConnectOptions) -> PgConnectOptions {
        options.options([("jit", "off")])
    }

    /// A store on an existing pool. Every object of the store lives in `options.schema`,
    /// named explicitly in each statement. SQL read models (`recount::sql`) name their tables
    /// unqualified: they resolve through the pool's `search_path` ([`connect`](Self::connect)
    /// sets it to the schema, then `public`). Does not migrate.
    ///
    /// Build the pool's connect options with [`session_options`](Self::session_options), or
    /// the store's reads may pay for JIT compilation on a large log.
    ///
    /// Fails only when the schema name is invalid.
    pub fn from_pool(pool: PgPool, options: PgOptions) -> Result<Self> {
        options.validate()?;
        let PgOptions {
            schema,
            limits,
            notify_interval,
            pool_size: _,
        } = options;
        Ok(PgEventStore {
            shared: Arc::new(Shared {
                sql: Queries::new(&schema),
                channel: format!("{schema}_appended"),
                pool,
                schema,
                limits,
                notifier: Notifier::new(notify_interval),
                listener: Listener::default(),
            }),
        })
    }

    /// Creates or upgrades the store's schema, tables and functions; call it once at start-up
    /// before using the store. Safe when several processes start at once: they take turns on
    /// an advisory lock, and migrations already applied are skipped.
    ///
    /// The migrations are embedded (`migrations/` in this crate) and recorded in the
    /// `_sqlx_migrations` table of the configured schema. A database migrated by a newer
    /// Recount is [`Error::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<()> {
        // Migration files name no schema; they run with the schema as the only search_path
        // entry, so objects (and sqlx's bookkeeping table) land there.
        let schema = &self.shared.schema;
        let options: PgConnectOptions = (*self.pool().connect_options())
            .clone()
            .options([("search_path", schema.as_str())])
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(store_error)?;
        let result = migrate_on(&mut conn, schema).await;
        let _ = conn.close().await;
        result
    }

    /// The connection pool (for a projection's own queries, or a raw baseline).
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The schema holding the store's objects.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The `LISTEN/NOTIFY` channel on which appends are announced: `<schema>_appended`.
    ///
    /// A notification is sent at most every few milliseconds per store handle, after the
    /// append committed; it carries no payload. It is a hint: read the log after it, and
    /// also poll now and then, since notifications are lost while a listener reconnects and
    /// events can become readable without one (see the crate docs on the horizon).
    pub fn notification_channel(&self) -> &str {
        &self.shared.channel
    }

    pub(crate) fn sql(&self) -> &Queries {
        &self.shared.sql
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Called after an append committed: schedule a coalesced `NOTIFY`.
    pub(crate) fn appended(&self) {
        self.shared
            .notifier
            .appended(&self.shared.pool, &self.shared.channel);
    }
}

async fn migrate_on(conn: &mut PgConnection, schema: &str) -> Result<()> {
    let (k1, k2) = MIGRATE_LOCK;
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(k1)
        .bind(k2)
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    // `schema` is validated (a plain lower-case identifier); it cannot be a parameter here.
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut *conn)
        .await
        .map_err(store_error);
    let migrated = match created {
        Ok(_) => MIGRATOR.run_direct(&mut *conn).await.map_err(migrate_error),
        Err(e) => Err(e),
    };
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(k1)
        .bind(k2)
        .execute(&mut *conn)
        .await
        .map_err(store_error);
    migrated.and(unlocked.map(drop))
}

fn migrate_error(e: MigrateError) -> Error {
    match e {
        MigrateError::VersionMissing(found) => Error::SchemaTooNew {
            found,
            supported: MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0),
        },
        MigrateError::Execute(e) => store_error(e),
        other => Error::store(other),
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.append_impl(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.read_stream_impl(stream, from_version, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        let row = sqlx::query(&self.sql().stream_version)
            .bind(stream.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(0) };
        let (version, deleted): (i64, bool) = (
            row.try_get(0).map_err(store_error)?,
            row.try_get(1).map_err(store_error)?,
        );
        if deleted {
            return Err(Error::StreamDeleted {
                stream: stream.clone(),
            });
        }
        crate::error::stored("stream version", version)
    }

    async fn read_all(&self, after: Cursor, filter: &LogFilter, limit: usize) -> Result<LogBatch> {
        self.read_all_impl(after, filter, limit).await
    }

    async fn read_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>> {
        self.read_event_impl(id).await
    }

    async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
        let (tx, pos) = crate::read::cursor_params(after);
        let n: i64 = sqlx::query_scalar(&self.sql().count_after)
            .bind(tx)
            .bind(pos)
            .bind(filter.is_all())
            .bind(&filter.categories)
            .bind(&filter.event_types)
            .fetch_one(self.pool())
            .await
            .map_err(store_error)?;
        crate::error::stored("count", n)
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.delete_stream_impl(stream, expected).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        // Beyond i64::MAX is beyond every stream: refused by the rule every store applies.
        let Ok(version) = i64::try_from(snapshot.version) else {
            return snapshot.check_fits(0);
        };
        // The statement saves only a snapshot that fits the stream it reads in the same
        // statement, and returns that stream's state; the reason for a refusal is worked out
        // here, by the rule every store applies (`Snapshot::check_fits`).
        let row = sqlx::query(&self.sql().save_snapshot)
            .bind(snapshot.stream.as_str())
            .bind(version)
            .bind(&snapshot.tag)
            .bind(&snapshot.state)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        let (actual, deleted) = match row {
            Some(row) => (
                crate::error::stored("stream version", row.try_get(0).map_err(store_error)?)?,
                row.try_get::<bool, _>(1).map_err(store_error)?,
            ),
            None => (0, false),
        };
        if deleted {
            return Err(Error::StreamDeleted {
                stream: snapshot.stream,
            });
        }
        snapshot.check_fits(actual)
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>> {
        let row = sqlx::query(&self.sql().load_snapshot)
            .bind(stream.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get(0).map_err(store_error)?;
        Ok(Some(Snapshot {
            stream: stream.clone(),
            version: crate::error::stored("snapshot version", version)?,
            tag: row.try_get(1).map_err(store_error)?,
            state: row.try_get(2).map_err(store_error)?,
        }))
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>> {
        recount::check_checkpoint_name(name)?;
        self.load_checkpoint_impl(name).await
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<()> {
        recount::check_checkpoint_name(name)?;
        self.save_checkpoint_impl(name, expected, new, None).await
    }

    async fn load_checkpoint_state(&self, name: &str) -> Result<Option<(Cursor, Option<String>)>> {
        recount::check_checkpoint_name(name)?;
        self.load_checkpoint_state_impl(name).await
    }

    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> Result<()> {
        recount::check_checkpoint_name(name)?;
        self.save_checkpoint_impl(name, expected, new, Some(state.as_deref()))
            .await
    }

    /// Returns when a notification arrives on [`notification_channel`](Self::notification_channel)
    /// (from any process appending to this store), when events after `after` are already
    /// readable, or after `timeout`. The first call starts one listening connection for this
    /// store (and its clones), shared by every waiter.
    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        let mut wakeups = self
            .shared
            .listener
            .subscribe(self.pool(), &self.shared.channel);
        wakeups.borrow_and_update();
        // Events may have been appended before this waiter subscribed.
        if self.has_events_after(after).await.unwrap_or(false) {
            return;
        }
        let _ = tokio::time::timeout(timeout, wakeups.changed()).await;
    }
}
