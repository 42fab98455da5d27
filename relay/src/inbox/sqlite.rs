//! An inbox in SQLite (rusqlite): the handler's writes and the processed id in one
//! transaction.

use super::{Handled, Inbox};
use async_trait::async_trait;
use recount::integration::IntegrationEvent;
use recount::BoxError;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A handler that writes to SQLite inside the inbox's transaction.
pub trait SqliteHandler: Send + Sync + 'static {
    /// Stable name: processed ids are kept per handler.
    fn name(&self) -> &str;
    /// Handles one event with `tx`; an error rolls back everything, the id included.
    fn handle(&self, tx: &Transaction<'_>, event: &IntegrationEvent) -> Result<(), BoxError>;
}

/// An [`Inbox`] on a SQLite file: table `recount_inbox(handler, event_id)` beside the
/// handler's own tables.
pub struct SqliteInbox<H> {
    conn: Arc<Mutex<Connection>>,
    handler: Arc<H>,
}

impl<H> std::fmt::Debug for SqliteInbox<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteInbox").finish_non_exhaustive()
    }
}

impl<H> Clone for SqliteInbox<H> {
    fn clone(&self) -> Self {
        SqliteInbox {
            conn: self.conn.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<H: SqliteHandler> SqliteInbox<H> {
    /// Opens (or creates) the database at `path` (WAL, busy timeout 5 s) with the inbox table.
    pub fn open(path: impl AsRef<Path>, handler: H) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS recount_inbox (
                 handler TEXT NOT NULL,
                 event_id TEXT NOT NULL,
                 name TEXT NOT NULL,
                 processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                 PRIMARY KEY (handler, event_id)
             ) WITHOUT ROWID;",
        )?;
        Ok(SqliteInbox {
            conn: Arc::new(Mutex::new(conn)),
            handler: Arc::new(handler),
        })
    }

    /// Runs `f` on the connection (to read the handler's tables).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, BoxError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(BoxError::from)
        })
        .await?
    }

    /// Whether the handler has processed `event_id`.
    pub async fn processed(&self, event_id: uuid::Uuid) -> Result<bool, BoxError> {
        let name = self.handler.name().to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT 1 FROM recount_inbox WHERE handler = ?1 AND event_id = ?2",
                (name, event_id.to_string()),
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
        .await
    }
}

#[async_trait]
impl<H: SqliteHandler> Inbox for SqliteInbox<H> {
    async fn receive(&self, event: &IntegrationEvent) -> Result<Handled, BoxError> {
        let conn = self.conn.clone();
        let handler = self.handler.clone();
        let event = event.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO recount_inbox (handler, event_id, name) VALUES (?1, ?2, ?3)",
                (handler.name(), event.id.to_string(), &event.name),
            )?;
            if fresh == 0 {
                return Ok(Handled::Duplicate);
            }
            handler.handle(&tx, &event)?;
            tx.commit()?;
            Ok(Handled::Done)
        })
        .await?
    }
}
