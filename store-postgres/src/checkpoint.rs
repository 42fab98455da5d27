//! Checkpoints: named cursors with compare-and-set (store contract, item 10), alone or in one
//! transaction with a projection's own writes.

use crate::error::store_error;
use crate::store::PgEventStore;
use futures::future::BoxFuture;
use recount::{Cursor, Error, Result};
use sqlx::{Connection, PgConnection, Row};

/// A cursor's parts as stored: each `u64` bit for bit in a `bigint`.
fn to_sql(cursor: Cursor) -> (i64, i64) {
    let (major, minor) = cursor.parts();
    (major as i64, minor as i64)
}

fn from_sql(major: i64, minor: i64) -> Cursor {
    Cursor::from_parts(major as u64, minor as u64)
}

impl PgEventStore {
    pub(crate) async fn load_checkpoint_on(
        &self,
        conn: &mut PgConnection,
        name: &str,
    ) -> Result<Option<Cursor>> {
        let row = sqlx::query(&self.sql().load_checkpoint)
            .bind(name)
            .fetch_optional(conn)
            .await
            .map_err(store_error)?;
        row.map(|r| Ok(from_sql(r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(store_error)
    }

    /// The compare-and-set, on `conn` (a pooled connection or an open transaction); `state:
    /// Some` replaces the state kept beside the checkpoint, `None` leaves it. On failure it
    /// reads what is stored, for the error.
    pub(crate) async fn save_checkpoint_on(
        &self,
        conn: &mut PgConnection,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<Option<&str>>,
    ) -> Result<()> {
        let (new_major, new_minor) = to_sql(new);
        let sql = self.sql();
        let query = match (expected, state) {
            (None, None) => sqlx::query(&sql.insert_checkpoint)
                .bind(name)
                .bind(new_major)
                .bind(new_minor),
            (None, Some(state)) => sqlx::query(&sql.insert_checkpoint_state)
                .bind(name)
                .bind(new_major)
                .bind(new_minor)
                .bind(state),
            (Some(old), state) => {
                let (old_major, old_minor) = to_sql(old);
                let query = match state {
                    None => sqlx::query(&sql.update_checkpoint),
                    Some(_) => sqlx::query(&sql.update_checkpoint_state),
                };
                let query = query
                    .bind(name)
                    .bind(old_major)
                    .bind(old_minor)
                    .bind(new_major)
                    .bind(new_minor);
                match state {
                    None => query,
                    Some(state) => query.bind(state),
                }
            }
        };
        let done = query.execute(&mut *conn).await.map_err(store_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let actual = self.load_checkpoint_on(conn, name).await?;
        Err(Error::CheckpointConflict {
            name: name.to_owned(),
            expected,
            actual,
        })
    }

    pub(crate) async fn load_checkpoint_state_impl(
        &self,
        name: &str,
    ) -> Result<Option<(Cursor, Option<String>)>> {
        let mut conn = self.pool().acquire().await.map_err(store_error)?;
        let row = sqlx::query(&self.sql().load_checkpoint_state)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(store_error)?;
        row.map(|r| Ok((from_sql(r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
            .transpose()
            .map_err(store_error)
    }

    pub(crate) async fn save_checkpoint_impl(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<Option<&str>>,
    ) -> Result<()> {
        let mut conn = self.pool().acquire().await.map_err(store_error)?;
        self.save_checkpoint_on(&mut conn, name, expected, new, state)
            .await
    }

    pub(crate) async fn load_checkpoint_impl(&self, name: &str) -> Result<Option<Cursor>> {
        let mut conn = self.pool().acquire().await.map_err(store_error)?;
        self.load_checkpoint_on(&mut conn, name).await
    }

    /// Runs a projection's writes and moves its checkpoint in one transaction: both commit or
    /// neither does (store contract, item 10).
    ///
    /// In one transaction on one pooled connection:
    /// 1. the checkpoint `name` is compare-and-set from `expected` (`None`: not stored yet) to
    ///    `new`. If it is not at `expected`, nothing else runs, the transaction rolls back and
    ///    the result is [`Error::CheckpointConflict`] with what is stored. The row stays locked
    ///    until the end of the transaction, so a second runner of the same projection waits
    ///    here and then fails the compare-and-set: two runners never interleave their writes.
    /// 2. `write` runs with the transaction's connection and does the projection's own work
    ///    (any SQL on the same database, in any schema).
    /// 3. If `write` returns `Ok(value)` the transaction commits and `value` is returned; if it
    ///    returns an error (or panics, or the future is dropped), the transaction rolls back
    ///    and the checkpoint keeps its old value.
    ///
    /// `write` must not commit or roll back itself, and should not run for long: it holds a
    /// connection and the checkpoint row's lock. A failed commit is
    /// [`Error::Store`](recount::Error::Store), retriable when the outcome may be unknown.
    ///
    /// ```no_run
    /// # async fn example(store: recount_postgres::PgEventStore) -> recount::Result<()> {
    /// use recount::{EventStore, LogFilter};
    /// use futures::FutureExt;
    ///
    /// let expected = store.load_checkpoint("story_titles").await?;
    /// let batch = store
    ///     .read_all(expected.unwrap_or_default(), &LogFilter::all().category("story"), 500)
    ///     .await?;
    /// let titles: Vec<(String, String)> = batch
    ///     .events
    ///     .iter()
    ///     .map(|e| (e.stream.to_string(), e.payload.clone()))
    ///     .collect();
    /// store
    ///     .commit_with_checkpoint("story_titles", expected, batch.last_seen, move |conn| {
    ///         async move {
    ///             for (stream, payload) in &titles {
    ///                 sqlx::query("INSERT INTO story_titles (stream, payload) VALUES ($1, $2)")
    ///                     .bind(stream)
    ///                     .bind(payload)
    ///                     .execute(&mut *conn)
    ///                     .await
    ///                     .map_err(recount::Error::store)?;
    ///             }
    ///             Ok(())
    ///         }
    ///         .boxed()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit_with_checkpoint<T, F>(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        write: F,
    ) -> Result<T>
    where
        T: Send,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send,
    {
        let mut conn = self.pool().acquire().await.map_err(store_error)?;
        let mut tx = conn.begin().await.map_err(store_error)?;
        self.save_checkpoint_on(&mut tx, name, expected, new, None)
            .await?;
        let value = write(&mut tx).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(value)
    }
}
