//! An inbox in PostgreSQL (sqlx): the handler's writes and the processed id in one
//! transaction.

use super::{Handled, Inbox};
use async_trait::async_trait;
use recount::integration::IntegrationEvent;
use recount::BoxError;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// A handler that writes to PostgreSQL inside the inbox's transaction.
#[async_trait]
pub trait PgHandler: Send + Sync + 'static {
    /// Stable name: processed ids are kept per handler.
    fn name(&self) -> &str;
    /// Handles one event on `tx` (a transaction); an error rolls back everything, the id
    /// included.
    async fn handle(&self, tx: &mut PgConnection, event: &IntegrationEvent)
        -> Result<(), BoxError>;
}

/// An [`Inbox`] in a PostgreSQL database: table `recount_inbox(handler, event_id)` beside the
/// handler's own tables.
pub struct PgInbox<H> {
    pool: PgPool,
    handler: Arc<H>,
}

impl<H> std::fmt::Debug for PgInbox<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgInbox").finish_non_exhaustive()
    }
}

impl<H> Clone for PgInbox<H> {
    fn clone(&self) -> Self {
        PgInbox {
            pool: self.pool.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<H: PgHandler> PgInbox<H> {
    /// An inbox on `pool`, creating its table if missing (under an advisory lock, so
    /// concurrent starts are safe).
    pub async fn new(pool: PgPool, handler: H) -> Result<Self, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7247106576)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS recount_inbox (
                 handler text NOT NULL,
                 event_id uuid NOT NULL,
                 name text NOT NULL,
                 processed_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (handler, event_id))",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PgInbox {
            pool,
            handler: Arc::new(handler),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the handler has processed `event_id`.
    pub async fn processed(&self, event_id: uuid::Uuid) -> Result<bool, sqlx::Error> {
        sqlx::query("SELECT 1 FROM recount_inbox WHERE handler = $1 AND event_id = $2")
            .bind(self.handler.name())
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.is_some())
    }
}

#[async_trait]
impl<H: PgHandler> Inbox for PgInbox<H> {
    async fn receive(&self, event: &IntegrationEvent) -> Result<Handled, BoxError> {
        let mut tx = self.pool.begin().await?;
        // A concurrent delivery of the same id waits here for the first to commit or roll
        // back, then sees the id or takes it.
        let fresh = sqlx::query(
            "INSERT INTO recount_inbox (handler, event_id, name) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(self.handler.name())
        .bind(event.id)
        .bind(&event.name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Ok(Handled::Duplicate);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Handled::Done)
    }
}
