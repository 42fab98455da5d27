//! [`SqlStore`] on PostgreSQL: SQL read models in the event store's database.

use crate::error::store_error;
use crate::PgEventStore;
use async_trait::async_trait;
use recount::projection::CheckpointMove;
use recount::sql::{SqlEngine, SqlRow, SqlStore, SqlTx, SqlTypeError, SqlValue, SqlWork};
use recount::{Error, Result};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgRow, PgTypeInfo};
use sqlx::query::Query;
use sqlx::{Column, Encode, PgConnection, Postgres, Row, TypeInfo, ValueRef};
use std::borrow::Cow;
use tokio::runtime::Handle;

/// A [`SqlTx`] on a PostgreSQL connection, run from a blocking thread: each statement waits
/// for its round trip on the runtime's handle.
pub(crate) struct PgTx<'c> {
    conn: &'c mut PgConnection,
    handle: Handle,
}

/// A `NULL` whose type the server infers from where it is used (a typed `NULL` of the wrong
/// type would be refused: text into a `BIGINT` column).
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> std::result::Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    values: &'q [SqlValue<'_>],
) -> Query<'q, Postgres, PgArguments> {
    for v in values {
        query = match v {
            SqlValue::Null => query.bind(UntypedNull),
            SqlValue::Integer(i) => query.bind(*i),
            SqlValue::Real(r) => query.bind(*r),
            SqlValue::Text(t) => query.bind(t.as_ref()),
            SqlValue::Blob(b) => query.bind(b.as_ref()),
        };
    }
    query
}

fn column(row: &PgRow, i: usize) -> Result<SqlValue<'static>> {
    let raw = row.try_get_raw(i).map_err(store_error)?;
    if raw.is_null() {
        return Ok(SqlValue::Null);
    }
    let get_err = |e: sqlx::Error| store_error(e);
    let col = &row.columns()[i];
    Ok(match col.type_info().name() {
        "INT8" => SqlValue::Integer(row.try_get::<i64, _>(i).map_err(get_err)?),
        "INT4" => SqlValue::Integer(row.try_get::<i32, _>(i).map_err(get_err)?.into()),
        "INT2" => SqlValue::Integer(row.try_get::<i16, _>(i).map_err(get_err)?.into()),
        "BOOL" => SqlValue::Integer(row.try_get::<bool, _>(i).map_err(get_err)?.into()),
        "FLOAT8" => SqlValue::Real(row.try_get::<f64, _>(i).map_err(get_err)?),
        "FLOAT4" => SqlValue::Real(row.try_get::<f32, _>(i).map_err(get_err)?.into()),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            SqlValue::Text(Cow::Owned(row.try_get::<String, _>(i).map_err(get_err)?))
        }
        "BYTEA" => SqlValue::Blob(Cow::Owned(row.try_get::<Vec<u8>, _>(i).map_err(get_err)?)),
        other => {
            return Err(Error::store(SqlTypeError(format!(
                "column {i} (`{}`) is {other}, which reads on no other engine: cast it to \
                 BIGINT, DOUBLE PRECISION or TEXT",
                col.name()
            ))))
        }
    })
}

fn row(r: &PgRow) -> Result<SqlRow> {
    (0..r.len())
        .map(|i| column(r, i))
        .collect::<Result<Vec<_>>>()
        .map(SqlRow::new)
}

impl SqlTx for PgTx<'_> {
    fn engine(&self) -> SqlEngine {
        SqlEngine::Postgres
    }

    fn execute(&mut self, sql: &str, values: &[SqlValue<'_>]) -> Result<u64> {
        let done = self
            .handle
            .block_on(bind(sqlx::query(sql), values).execute(&mut *self.conn))
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    fn query(&mut self, sql: &str, values: &[SqlValue<'_>]) -> Result<Vec<SqlRow>> {
        let rows = self
            .handle
            .block_on(bind(sqlx::query(sql), values).fetch_all(&mut *self.conn))
            .map_err(store_error)?;
        rows.iter().map(row).collect()
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.handle
            .block_on(sqlx::raw_sql(sql).execute(&mut *self.conn))
            .map(drop)
            .map_err(store_error)
    }

    fn table_exists(&mut self, name: &str) -> Result<bool> {
        let found = self.query(
            "SELECT to_regclass($1) IS NOT NULL",
            &[SqlValue::from(name)],
        )?;
        Ok(found
            .first()
            .is_some_and(|r| r.get::<bool>(0).unwrap_or(false)))
    }
}

/// Runs `work` on `conn` from tokio's blocking pool and gives the connection back.
async fn on_blocking_thread<C>(mut conn: C, work: SqlWork) -> Result<C>
where
    C: std::ops::DerefMut<Target = PgConnection> + Send + 'static,
{
    let handle = Handle::current();
    let (conn, done) = tokio::task::spawn_blocking(move || {
        let done = work(&mut PgTx {
            conn: &mut conn,
            handle,
        });
        (conn, done)
    })
    .await
    .map_err(Error::store)?;
    done.map(|()| conn)
}

#[async_trait]
impl SqlStore for PgEventStore {
    fn sql_engine(&self) -> SqlEngine {
        SqlEngine::Postgres
    }

    /// Runs in one transaction on a connection of the store's pool: the checkpoint's
    /// compare-and-set first, then `work` from tokio's blocking pool (each statement a round
    /// trip, prepared once per connection), then the commit. Unqualified table names resolve
    /// through the pool's `search_path`: [`PgEventStore::connect`] sets it to the store's
    /// schema, then `public`.
    async fn commit_sql(&self, checkpoint: CheckpointMove, work: SqlWork) -> Result<()> {
        recount::check_checkpoint_name(&checkpoint.name)?;
        let mut tx = self.pool().begin().await.map_err(store_error)?;
        self.save_checkpoint_on(
            &mut tx,
            &checkpoint.name,
            checkpoint.expected,
            checkpoint.new,
            None,
        )
        .await?;
        let tx = on_blocking_thread(tx, work).await?;
        tx.commit().await.map_err(store_error)
    }

    /// Runs on a connection of the store's pool, outside a transaction.
    async fn read_sql(&self, work: SqlWork) -> Result<()> {
        let conn = self.pool().acquire().await.map_err(store_error)?;
        on_blocking_thread(conn, work).await.map(drop)
    }

    /// Runs on the store's pool from the runtime (no blocking thread).
    async fn query_sql(&self, sql: &str, params: Vec<SqlValue<'static>>) -> Result<Vec<SqlRow>> {
        let rows = bind(sqlx::query(sql), &params)
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        rows.iter().map(row).collect()
    }

    async fn sql_table_exists(&self, name: &str) -> Result<bool> {
        let found = self
            .query_sql(
                "SELECT to_regclass($1) IS NOT NULL",
                vec![SqlValue::from(name.to_owned())],
            )
            .await?;
        Ok(found
            .first()
            .is_some_and(|r| r.get::<bool>(0).unwrap_or(false)))
    }
}
