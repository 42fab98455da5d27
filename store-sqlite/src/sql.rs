//! [`SqlStore`] on SQLite: SQL read models in the event store's own file.

use crate::error;
use crate::SqliteEventStore;
use async_trait::async_trait;
use recount::projection::CheckpointMove;
use recount::sql::{numbered_to_question, SqlEngine, SqlRow, SqlStore, SqlTx, SqlValue, SqlWork};
use recount::Result;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};
use std::borrow::Cow;

/// A [`SqlTx`] on a rusqlite connection: the writer's transaction, or a reader.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        SqliteTx { conn }
    }

    fn prepare(&self, sql: &str) -> Result<rusqlite::CachedStatement<'c>> {
        self.conn
            .prepare_cached(&numbered_to_question(sql))
            .map_err(error::db)
    }
}

/// A parameter as rusqlite binds it.
struct Param<'v, 'a>(&'v SqlValue<'a>);

impl ToSql for Param<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Real(r) => ValueRef::Real(*r),
            SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn params<'v, 'a>(values: &'v [SqlValue<'a>]) -> impl Iterator<Item = Param<'v, 'a>> {
    values.iter().map(Param)
}

fn owned(value: ValueRef<'_>) -> Result<SqlValue<'static>> {
    Ok(match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(Cow::Owned(
            std::str::from_utf8(t)
                .map_err(recount::Error::store)?
                .to_owned(),
        )),
        ValueRef::Blob(b) => SqlValue::Blob(Cow::Owned(b.to_vec())),
    })
}

impl SqlTx for SqliteTx<'_> {
    fn engine(&self) -> SqlEngine {
        SqlEngine::Sqlite
    }

    fn execute(&mut self, sql: &str, values: &[SqlValue<'_>]) -> Result<u64> {
        let mut stmt = self.prepare(sql)?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(params(values)))
            .map_err(error::db)?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, values: &[SqlValue<'_>]) -> Result<Vec<SqlRow>> {
        let mut stmt = self.prepare(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params(values)))
            .map_err(error::db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error::db)? {
            let values = (0..width)
                .map(|i| owned(row.get_ref(i).map_err(error::db)?))
                .collect::<Result<Vec<_>>>()?;
            out.push(SqlRow::new(values));
        }
        Ok(out)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(error::db)
    }

    fn table_exists(&mut self, name: &str) -> Result<bool> {
        let found = self.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
            &[SqlValue::from(name)],
        )?;
        Ok(!found.is_empty())
    }
}

#[async_trait]
impl SqlStore for SqliteEventStore {
    fn sql_engine(&self) -> SqlEngine {
        SqlEngine::Sqlite
    }

    /// Runs on the writer thread, inside the group commit's transaction (its own savepoint:
    /// a failing `work` rolls back only itself).
    async fn commit_sql(&self, checkpoint: CheckpointMove, work: SqlWork) -> Result<()> {
        self.commit_with_checkpoint(
            &checkpoint.name,
            checkpoint.expected,
            checkpoint.new,
            move |tx| work(&mut SqliteTx::new(tx)),
        )
        .await
    }

    /// Runs on a read-only connection of the store's pool, in tokio's blocking pool.
    async fn read_sql(&self, work: SqlWork) -> Result<()> {
        self.read(move |conn| work(&mut SqliteTx::new(conn))).await
    }
}
