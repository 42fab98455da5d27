//! SQL read models written once for every SQL store.
//!
//! A [`SqlReadModel`] keeps its state in tables of the event store's own database and writes
//! them through a [`SqlTx`]: statements with `$1`, `$2`, … placeholders and [`SqlValue`]
//! parameters, which the SQLite store (rusqlite) and the PostgreSQL store (sqlx) both run.
//! [`SqlProjection`] makes a model a [`Consumer`]: every batch and the projection's
//! checkpoint commit in one transaction of the store, or neither does. Readers query the
//! tables with [`query`] on the same store.
//!
//! # Writing SQL both engines accept
//!
//! - Placeholders are `$1`, `$2`, …, numbered from 1 (the SQLite store rewrites them to its
//!   `?1` form outside quoted text).
//! - Column types: `BIGINT` for integers and booleans (0 and 1), `DOUBLE PRECISION` for reals,
//!   `TEXT` for text (timestamps too, as RFC 3339), `BYTEA`/`BLOB` differ (a named exception).
//! - Upserts: `INSERT … ON CONFLICT (key) DO UPDATE SET n = t.n + excluded.n` and
//!   `ON CONFLICT DO NOTHING` (not `INSERT OR IGNORE`). One statement must not touch a key
//!   twice on PostgreSQL: sum a batch per key first (see [`placeholders`]).
//! - PostgreSQL's `SUM` and `AVG` of integers are `NUMERIC`: `CAST(… AS BIGINT)` them;
//!   reading a `NUMERIC` column is refused with a message that says so.
//! - Where one statement must differ, branch on [`SqlTx::engine`] for that statement only.
//!
//! # Example
//!
//! A model counting events per type, with the batch summed per key and written in one
//! multi-row upsert, and a query that reads it:
//!
//! ```
//! use recount::sql::{placeholders, SqlReadModel, SqlTx, SqlValue};
//! use recount::RecordedEvent;
//! use std::collections::BTreeMap;
//!
//! struct Counts;
//! impl SqlReadModel for Counts {
//!     fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
//!         tx.execute_batch("CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n BIGINT NOT NULL)")
//!     }
//!     fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
//!         let mut per_type = BTreeMap::<&str, i64>::new();
//!         for e in events {
//!             *per_type.entry(e.event_type.as_str()).or_default() += 1;
//!         }
//!         let params: Vec<SqlValue<'_>> =
//!             per_type.iter().flat_map(|(t, n)| [SqlValue::from(*t), SqlValue::from(*n)]).collect();
//!         let sql = format!(
//!             "INSERT INTO counts (type, n) VALUES {} \
//!              ON CONFLICT (type) DO UPDATE SET n = counts.n + excluded.n",
//!             placeholders(per_type.len(), 2)
//!         );
//!         tx.execute(&sql, &params).map(drop)
//!     }
//!     fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
//!         tx.execute_batch("DROP TABLE IF EXISTS counts")
//!     }
//! }
//! ```
//!
//! `SqlProjection::new(store, "counts", Counts)` makes it a consumer on any [`SqlStore`] (the
//! SQLite and PostgreSQL stores; the in-memory store keeps no tables), and
//! `query(&store, "SELECT type, n FROM counts", vec![])` reads it.
//! `recount::sql_tests!` (feature `testing`) checks a store's implementation.

use crate::projection::{checkpoint_name, CheckpointMove, Consumer};
use crate::{Cursor, Error, EventStore, LogFilter, RecordedEvent, Result};
use async_trait::async_trait;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Which SQL engine runs a statement: for the one statement that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlEngine {
    /// SQLite (the `recount-sqlite` store).
    Sqlite,
    /// PostgreSQL (the `recount-postgres` store).
    Postgres,
}

impl SqlEngine {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlEngine::Sqlite => "sqlite",
            SqlEngine::Postgres => "postgres",
        }
    }

    /// The most parameters one statement may bind (SQLite 32,766; PostgreSQL 65,535).
    pub fn max_params(self) -> usize {
        match self {
            SqlEngine::Sqlite => 32_766,
            SqlEngine::Postgres => 65_535,
        }
    }
}

impl fmt::Display for SqlEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter of a statement, or a column of a row read back.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue<'a> {
    /// `NULL`.
    Null,
    /// An integer (`BIGINT`; booleans are 0 and 1).
    Integer(i64),
    /// A real (`DOUBLE PRECISION`).
    Real(f64),
    /// Text.
    Text(Cow<'a, str>),
    /// Bytes.
    Blob(Cow<'a, [u8]>),
}

impl SqlValue<'_> {
    /// The value with everything it borrows copied.
    pub fn into_owned(self) -> SqlValue<'static> {
        match self {
            SqlValue::Null => SqlValue::Null,
            SqlValue::Integer(i) => SqlValue::Integer(i),
            SqlValue::Real(r) => SqlValue::Real(r),
            SqlValue::Text(t) => SqlValue::Text(Cow::Owned(t.into_owned())),
            SqlValue::Blob(b) => SqlValue::Blob(Cow::Owned(b.into_owned())),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            SqlValue::Null => "NULL",
            SqlValue::Integer(_) => "an integer",
            SqlValue::Real(_) => "a real",
            SqlValue::Text(_) => "text",
            SqlValue::Blob(_) => "bytes",
        }
    }
}

impl From<i64> for SqlValue<'_> {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}

impl From<i32> for SqlValue<'_> {
    fn from(v: i32) -> Self {
        SqlValue::Integer(v.into())
    }
}

impl From<u32> for SqlValue<'_> {
    fn from(v: u32) -> Self {
        SqlValue::Integer(v.into())
    }
}

impl From<bool> for SqlValue<'_> {
    fn from(v: bool) -> Self {
        SqlValue::Integer(v.into())
    }
}

impl From<f64> for SqlValue<'_> {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}

impl<'a> From<&'a str> for SqlValue<'a> {
    fn from(v: &'a str) -> Self {
        SqlValue::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for SqlValue<'a> {
    fn from(v: &'a String) -> Self {
        SqlValue::Text(Cow::Borrowed(v))
    }
}

impl From<String> for SqlValue<'_> {
    fn from(v: String) -> Self {
        SqlValue::Text(Cow::Owned(v))
    }
}

impl<'a> From<&'a [u8]> for SqlValue<'a> {
    fn from(v: &'a [u8]) -> Self {
        SqlValue::Blob(Cow::Borrowed(v))
    }
}

impl<'a, T: Into<SqlValue<'a>>> From<Option<T>> for SqlValue<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for SqlValue<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_ref().map_or(SqlValue::Null, Into::into)
    }
}

impl From<&Option<i64>> for SqlValue<'_> {
    fn from(v: &Option<i64>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// A Rust type a column of a [`SqlRow`] reads into.
pub trait FromSqlValue: Sized {
    /// The column's value as `Self`, or a message saying what it held instead.
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String>;
}

fn expected<T>(what: &str, found: &SqlValue<'_>) -> std::result::Result<T, String> {
    Err(format!("expected {what}, found {}", found.kind()))
}

impl FromSqlValue for i64 {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        match value {
            SqlValue::Integer(i) => Ok(*i),
            other => expected("an integer", other),
        }
    }
}

impl FromSqlValue for u64 {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        let i = i64::from_sql(value)?;
        u64::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}

impl FromSqlValue for u32 {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        let i = i64::from_sql(value)?;
        u32::try_from(i).map_err(|_| format!("{i} is out of range for u32"))
    }
}

impl FromSqlValue for bool {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        Ok(i64::from_sql(value)? != 0)
    }
}

impl FromSqlValue for f64 {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        match value {
            SqlValue::Real(r) => Ok(*r),
            SqlValue::Integer(i) => Ok(*i as f64),
            other => expected("a real", other),
        }
    }
}

impl FromSqlValue for String {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        match value {
            SqlValue::Text(t) => Ok(t.clone().into_owned()),
            other => expected("text", other),
        }
    }
}

impl FromSqlValue for Vec<u8> {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        match value {
            SqlValue::Blob(b) => Ok(b.clone().into_owned()),
            other => expected("bytes", other),
        }
    }
}

impl<T: FromSqlValue> FromSqlValue for Option<T> {
    fn from_sql(value: &SqlValue<'_>) -> std::result::Result<Self, String> {
        match value {
            SqlValue::Null => Ok(None),
            other => T::from_sql(other).map(Some),
        }
    }
}

/// One row a query returned, its columns in the order selected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlRow {
    values: Vec<SqlValue<'static>>,
}

impl SqlRow {
    /// A row of these values (what the stores build).
    pub fn new(values: Vec<SqlValue<'static>>) -> Self {
        SqlRow { values }
    }

    /// Column `index` (from 0) as a `T`: a typed error naming the column when it is missing
    /// or holds another type.
    pub fn get<T: FromSqlValue>(&self, index: usize) -> Result<T> {
        let value = self.values.get(index).ok_or_else(|| {
            Error::store(SqlTypeError(format!(
                "column {index} of a row of {}",
                self.values.len()
            )))
        })?;
        T::from_sql(value).map_err(|m| Error::store(SqlTypeError(format!("column {index}: {m}"))))
    }

    /// The columns.
    pub fn values(&self) -> &[SqlValue<'static>] {
        &self.values
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A column read as the wrong type, or one not there.
#[derive(Debug)]
pub struct SqlTypeError(pub String);

impl fmt::Display for SqlTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading a SQL row: {}", self.0)
    }
}

impl std::error::Error for SqlTypeError {}

/// Statements in one transaction of a SQL store (or, for [`query`], on one read connection).
///
/// Calls are synchronous: the SQLite store runs them on its writer thread (or a reader in
/// tokio's blocking pool), the PostgreSQL store in tokio's blocking pool, each waiting for
/// its round trip. A read model does its work between them, so it never holds up the async
/// runtime.
pub trait SqlTx {
    /// The engine that runs the statements.
    fn engine(&self) -> SqlEngine;

    /// Runs one statement with `params` for `$1`, `$2`, …; returns the rows it changed. The
    /// statement is prepared once per connection and reused.
    fn execute(&mut self, sql: &str, params: &[SqlValue<'_>]) -> Result<u64>;

    /// Runs one query with `params`; returns its rows.
    fn query(&mut self, sql: &str, params: &[SqlValue<'_>]) -> Result<Vec<SqlRow>>;

    /// Runs statements separated by `;`, without parameters (for DDL).
    fn execute_batch(&mut self, sql: &str) -> Result<()>;

    /// Whether table `name` exists (where unqualified names resolve).
    fn table_exists(&mut self, name: &str) -> Result<bool>;

    /// The first row of a query, if any.
    fn query_row(&mut self, sql: &str, params: &[SqlValue<'_>]) -> Result<Option<SqlRow>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// Parameters given as a tuple or an array of values that convert to [`SqlValue`]s, for
/// `exec`, `rows` and `row` (methods of `dyn SqlTx`):
/// `tx.exec(sql, (&id, 3, "text"))`.
pub trait IntoSqlParams<'a> {
    /// The values, in placeholder order.
    fn into_params(self) -> Vec<SqlValue<'a>>;
}

impl<'a> IntoSqlParams<'a> for () {
    fn into_params(self) -> Vec<SqlValue<'a>> {
        Vec::new()
    }
}

impl<'a, T: Into<SqlValue<'a>>, const N: usize> IntoSqlParams<'a> for [T; N] {
    fn into_params(self) -> Vec<SqlValue<'a>> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<'a> IntoSqlParams<'a> for Vec<SqlValue<'a>> {
    fn into_params(self) -> Vec<SqlValue<'a>> {
        self
    }
}

macro_rules! tuple_params {
    ($($t:ident),+) => {
        impl<'a, $($t: Into<SqlValue<'a>>),+> IntoSqlParams<'a> for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_params(self) -> Vec<SqlValue<'a>> {
                let ($($t,)+) = self;
                vec![$($t.into()),+]
            }
        }
    };
}

tuple_params!(A);
tuple_params!(A, B);
tuple_params!(A, B, C);
tuple_params!(A, B, C, D);
tuple_params!(A, B, C, D, E);
tuple_params!(A, B, C, D, E, F);
tuple_params!(A, B, C, D, E, F, G);
tuple_params!(A, B, C, D, E, F, G, H);

impl dyn SqlTx + '_ {
    /// [`execute`](SqlTx::execute) with parameters as a tuple or an array.
    pub fn exec<'a>(&mut self, sql: &str, params: impl IntoSqlParams<'a>) -> Result<u64> {
        self.execute(sql, &params.into_params())
    }

    /// [`query`](SqlTx::query) with parameters as a tuple or an array.
    pub fn rows<'a>(&mut self, sql: &str, params: impl IntoSqlParams<'a>) -> Result<Vec<SqlRow>> {
        self.query(sql, &params.into_params())
    }

    /// [`query_row`](SqlTx::query_row) with parameters as a tuple or an array.
    pub fn row<'a>(&mut self, sql: &str, params: impl IntoSqlParams<'a>) -> Result<Option<SqlRow>> {
        self.query_row(sql, &params.into_params())
    }
}

/// A read model in SQL tables, written once for every SQL store; see the [module
/// documentation](self) for the SQL both engines accept.
///
/// Each method runs inside the transaction that also moves the projection's checkpoint.
pub trait SqlReadModel: Send + Sync + 'static {
    /// Creates the model's tables if they do not exist (`CREATE TABLE IF NOT EXISTS`); runs
    /// before the first batch a process commits. Name tables by version to rebuild beside a
    /// live one.
    fn setup(&self, tx: &mut dyn SqlTx) -> Result<()>;

    /// Applies a batch of events, in log order. Write it as few statements as the model
    /// allows (sum per key, one multi-row upsert): a rebuild is this, many times over.
    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> Result<()>;

    /// Drops the model's tables (after a rebuild switched readers to a newer version).
    fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<()>;
}

impl<M: SqlReadModel + ?Sized> SqlReadModel for Arc<M> {
    fn setup(&self, tx: &mut dyn SqlTx) -> Result<()> {
        (**self).setup(tx)
    }

    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> Result<()> {
        (**self).apply_batch(tx, events)
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<()> {
        (**self).drop_tables(tx)
    }
}

/// Work a [`SqlStore`] runs in one transaction (or on one read connection).
pub type SqlWork = Box<dyn FnOnce(&mut dyn SqlTx) -> Result<()> + Send>;

/// An event store whose database also holds SQL read models.
#[async_trait]
pub trait SqlStore: EventStore {
    /// The engine.
    fn sql_engine(&self) -> SqlEngine;

    /// Moves checkpoint `checkpoint.name` from `expected` to `new` (compare-and-set, as
    /// [`EventStore::save_checkpoint`]) and runs `work`, in one transaction: both commit or
    /// neither does. A moved checkpoint fails with [`Error::CheckpointConflict`] and runs
    /// nothing.
    async fn commit_sql(&self, checkpoint: CheckpointMove, work: SqlWork) -> Result<()>;

    /// Runs `work` on a connection for reads: it sees what is committed (write with
    /// [`commit_sql`](Self::commit_sql)).
    async fn read_sql(&self, work: SqlWork) -> Result<()>;

    /// Runs one query on a connection for reads. The default runs it through
    /// [`read_sql`](Self::read_sql); a store with an async driver runs it without leaving
    /// the runtime.
    async fn query_sql(&self, sql: &str, params: Vec<SqlValue<'static>>) -> Result<Vec<SqlRow>> {
        let sql = sql.to_owned();
        read(self, move |tx| tx.query(&sql, &params)).await
    }

    /// Whether table `name` exists, as [`SqlTx::table_exists`] on a connection for reads.
    async fn sql_table_exists(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        read(self, move |tx| tx.table_exists(&name)).await
    }
}

impl fmt::Debug for dyn SqlStore + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("engine", &self.sql_engine())
            .finish_non_exhaustive()
    }
}

macro_rules! forward_sql_store {
    ($ty:ty) => {
        #[async_trait]
        impl<S: SqlStore + ?Sized> SqlStore for $ty {
            fn sql_engine(&self) -> SqlEngine {
                (**self).sql_engine()
            }
            async fn commit_sql(&self, checkpoint: CheckpointMove, work: SqlWork) -> Result<()> {
                (**self).commit_sql(checkpoint, work).await
            }
            async fn read_sql(&self, work: SqlWork) -> Result<()> {
                (**self).read_sql(work).await
            }
            async fn query_sql(
                &self,
                sql: &str,
                params: Vec<SqlValue<'static>>,
            ) -> Result<Vec<SqlRow>> {
                (**self).query_sql(sql, params).await
            }
            async fn sql_table_exists(&self, name: &str) -> Result<bool> {
                (**self).sql_table_exists(name).await
            }
        }
    };
}

forward_sql_store!(Arc<S>);
forward_sql_store!(Box<S>);

/// Runs `read` on one of `store`'s read connections and returns what it returned.
///
/// ```no_run
/// # async fn f(store: &impl recount::sql::SqlStore) -> recount::Result<()> {
/// let n: i64 = recount::sql::read(store, |tx| {
///     Ok(tx.query_row("SELECT COUNT(*) FROM counts", &[])?.map_or(Ok(0), |r| r.get(0))?)
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn read<S, T, F>(store: &S, read: F) -> Result<T>
where
    S: SqlStore + ?Sized,
    T: Send + 'static,
    F: FnOnce(&mut dyn SqlTx) -> Result<T> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    store
        .read_sql(Box::new(move |tx| {
            let value = read(tx)?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
            Ok(())
        }))
        .await?;
    let value = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    value.ok_or_else(|| Error::store(SqlTypeError("the read returned nothing".into())))
}

/// Runs one query with owned parameters on a read connection of `store`
/// ([`SqlStore::query_sql`]).
pub async fn query<S: SqlStore + ?Sized>(
    store: &S,
    sql: impl AsRef<str>,
    params: Vec<SqlValue<'static>>,
) -> Result<Vec<SqlRow>> {
    store.query_sql(sql.as_ref(), params).await
}

/// `($1, $2), ($3, $4), …`: `rows` groups of `width` placeholders, for a multi-row `VALUES`.
///
/// ```
/// assert_eq!(recount::sql::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
/// ```
pub fn placeholders(rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        }
        out.push(')');
    }
    out
}

/// Runs a multi-row statement over `rows`: `sql(k)` is the statement for `k` rows (built with
/// [`placeholders`]), and each row gives `width` parameters. Returns the rows changed.
///
/// How the rows are split suits each engine. PostgreSQL pays a round trip per statement:
/// as few statements as its parameter limit allows (up to 1,000 rows each). SQLite runs
/// statements in process but compiles each distinct text once per cached statement: chunks of
/// 256, 64, 16, 4 and 1 rows, so that every batch reuses at most five compiled statements
/// whatever its size.
pub fn execute_rows<'p>(
    tx: &mut dyn SqlTx,
    width: usize,
    rows: &[Vec<SqlValue<'p>>],
    sql: impl Fn(usize) -> String,
) -> Result<u64> {
    let max = (tx.engine().max_params() / width.max(1)).clamp(1, 1000);
    let mut changed = 0;
    let mut params = Vec::with_capacity(max.min(rows.len()) * width);
    let mut rest = rows;
    while !rest.is_empty() {
        let k = match tx.engine() {
            SqlEngine::Sqlite => [256, 64, 16, 4, 1]
                .into_iter()
                .find(|k| *k <= rest.len() && *k <= max)
                .unwrap_or(1),
            _ => rest.len().min(max),
        };
        let (chunk, more) = rest.split_at(k);
        params.clear();
        params.extend(chunk.iter().flat_map(|r| r.iter().cloned()));
        changed += tx.execute(&sql(k), &params)?;
        rest = more;
    }
    Ok(changed)
}

/// Rows of a query whose `key` column is one of `keys`: `{select} WHERE {key} IN ($1, …)`,
/// in as many statements as the engine's parameter limit needs (duplicate keys are fine).
/// For loading, in one round trip, the rows a batch of events touches.
///
/// `select` is a `SELECT … FROM …` with no `WHERE` of its own.
pub fn select_in(
    tx: &mut dyn SqlTx,
    select: &str,
    key: &str,
    keys: &[SqlValue<'_>],
) -> Result<Vec<SqlRow>> {
    let per = tx.engine().max_params().min(10_000);
    let mut rows = Vec::new();
    for chunk in keys.chunks(per) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.extend(tx.query(&format!("{select} WHERE {key} IN ({list})"), chunk)?);
    }
    Ok(rows)
}

/// Writes `rows` (values in `columns` order) into `table`: each inserted, or, when a row
/// with the same `key` columns exists, its other columns set to the new values. One
/// statement per chunk under the engine's parameter limit. Rows must not repeat a key (on
/// PostgreSQL one statement cannot change a row twice): keep the last state of each.
pub fn upsert(
    tx: &mut dyn SqlTx,
    table: &str,
    columns: &[&str],
    key: &[&str],
    rows: &[Vec<SqlValue<'_>>],
) -> Result<u64> {
    let set = columns
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>();
    let on_conflict = if set.is_empty() {
        format!("ON CONFLICT ({}) DO NOTHING", key.join(", "))
    } else {
        format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            set.join(", ")
        )
    };
    let cols = columns.join(", ");
    execute_rows(tx, columns.len(), rows, |k| {
        format!(
            "INSERT INTO {table} ({cols}) VALUES {} {on_conflict}",
            placeholders(k, columns.len())
        )
    })
}

/// Inserts `rows` into `table`, skipping each that conflicts with one already there (or
/// earlier in `rows`): `INSERT … ON CONFLICT DO NOTHING`, chunked. Returns the rows
/// inserted.
pub fn insert_new(
    tx: &mut dyn SqlTx,
    table: &str,
    columns: &[&str],
    rows: &[Vec<SqlValue<'_>>],
) -> Result<u64> {
    let cols = columns.join(", ");
    execute_rows(tx, columns.len(), rows, |k| {
        format!(
            "INSERT INTO {table} ({cols}) VALUES {} ON CONFLICT DO NOTHING",
            placeholders(k, columns.len())
        )
    })
}

/// A [`Consumer`] whose read model is SQL tables in the store's own database, on either SQL
/// store.
pub struct SqlProjection<S, M> {
    store: S,
    name: String,
    version: u32,
    filter: LogFilter,
    model: Arc<M>,
    ready: Arc<AtomicBool>,
}

impl<S: fmt::Debug, M> fmt::Debug for SqlProjection<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlProjection")
            .field("store", &self.store)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, M> Clone for SqlProjection<S, M> {
    fn clone(&self) -> Self {
        SqlProjection {
            store: self.store.clone(),
            name: self.name.clone(),
            version: self.version,
            filter: self.filter.clone(),
            model: self.model.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<S: SqlStore, M: SqlReadModel> SqlProjection<S, M> {
    /// Projection `name`, version 1, fed every event.
    pub fn new(store: S, name: impl Into<String>, model: M) -> Self {
        SqlProjection {
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

    /// Sets the filter: only these events are fed to the model (and counted in its lag).
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
impl<S: SqlStore + Clone, M: SqlReadModel> Consumer for SqlProjection<S, M> {
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
        let model = self.model.clone();
        let set_up = !self.ready.load(Ordering::Acquire);
        self.store
            .commit_sql(
                checkpoint,
                Box::new(move |tx| {
                    if set_up {
                        model.setup(tx)?;
                    }
                    if events.is_empty() {
                        return Ok(());
                    }
                    model.apply_batch(tx, &events)
                }),
            )
            .await?;
        if set_up {
            self.ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn drop_storage(&self) -> Result<()> {
        // Rides on a checkpoint compare-and-set that leaves the checkpoint where it is.
        let name = checkpoint_name(&self.name, self.version, None);
        let at = self.position(&name).await?;
        let model = self.model.clone();
        self.store
            .commit_sql(
                CheckpointMove {
                    name,
                    expected: at,
                    new: at.unwrap_or(Cursor::START),
                },
                Box::new(move |tx| model.drop_tables(tx)),
            )
            .await?;
        self.ready.store(false, Ordering::Release);
        Ok(())
    }
}

/// Rewrites `$1`, `$2`, … to `?1`, `?2`, … outside quoted text and comments (SQLite numbers
/// `$name` parameters by first appearance, not by name). Used by the SQLite store.
pub fn numbered_to_question(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    // A line comment: copied to its end as it is.
                    out.push(c);
                    for c in chars.by_ref() {
                        out.push(c);
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '$' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
                c => out.push(c),
            },
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(1, 1), "($1)");
        assert_eq!(placeholders(3, 2), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(placeholders(0, 2), "");
    }

    #[test]
    fn numbered_placeholders_become_sqlite_numbered_ones_outside_quotes() {
        assert_eq!(
            numbered_to_question("SELECT $2, '$1', \"$3\", $10 -- $4\n, $1"),
            "SELECT ?2, '$1', \"$3\", ?10 -- $4\n, ?1"
        );
        assert!(matches!(numbered_to_question("SELECT 1"), Cow::Borrowed(_)));
        assert_eq!(
            numbered_to_question("SELECT 'it''s $1' || $1"),
            "SELECT 'it''s $1' || ?1"
        );
        assert_eq!(numbered_to_question("SELECT $a"), "SELECT $a");
    }

    #[test]
    fn rows_read_typed_and_refuse_the_wrong_type_by_column() {
        let row = SqlRow::new(vec![
            SqlValue::Integer(7),
            SqlValue::from("x".to_owned()),
            SqlValue::Null,
            SqlValue::Integer(-1),
        ]);
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<u32>(0).unwrap(), 7);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<String>(1).unwrap(), "x");
        assert_eq!(row.get::<Option<String>>(2).unwrap(), None);
        assert_eq!(row.get::<Option<i64>>(0).unwrap(), Some(7));
        let wrong = row.get::<i64>(1).unwrap_err().to_string();
        assert!(
            wrong.contains("column 1: expected an integer, found text"),
            "{wrong}"
        );
        let negative = row.get::<u64>(3).unwrap_err().to_string();
        assert!(
            negative.contains("expected a count, found -1"),
            "{negative}"
        );
        let missing = row.get::<i64>(9).unwrap_err().to_string();
        assert!(missing.contains("column 9 of a row of 4"), "{missing}");
        assert_eq!(row.len(), 4);
        assert!(!row.is_empty());
    }

    #[test]
    fn values_convert_from_rust_types() {
        assert_eq!(SqlValue::from(3u32), SqlValue::Integer(3));
        assert_eq!(SqlValue::from(true), SqlValue::Integer(1));
        assert_eq!(SqlValue::from(None::<i64>), SqlValue::Null);
        assert_eq!(SqlValue::from(Some("a")), SqlValue::Text("a".into()));
        let s = String::from("b");
        assert_eq!(SqlValue::from(&s).into_owned(), SqlValue::Text("b".into()));
        assert_eq!(SqlValue::from(1.5), SqlValue::Real(1.5));
    }
}
