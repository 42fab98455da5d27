//! The sqlite store's raw baseline: rusqlite straight on the store's own file, tables, indexes
//! and pragmas, one transaction per append, prepared (cached) statements.

use super::{PairFactory, RawEvent, RawRow, RawStore, StorePair};
use async_trait::async_trait;
use recount::{Error, Result};
use recount_sqlite::SqliteEventStore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const INSERT_EVENT: &str =
    "INSERT INTO events (stream_id, category, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const STREAM_STATE: &str = "SELECT version, deleted FROM streams WHERE stream_id = ?1";
const STREAM_SET_VERSION: &str =
    "INSERT INTO streams (stream_id, version, deleted) VALUES (?1, ?2, 0) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";
const COLUMNS: &str =
    "position, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata";
const LOAD_SNAPSHOT: &str = "SELECT version, state FROM snapshots WHERE stream_id = ?1";

/// A factory of fresh sqlite pairs: a new temporary file per scenario, opened by the store
/// first (so its migrations ran), then by the raw baseline.
pub fn factory() -> Option<PairFactory> {
    Some(Box::new(|| {
        Box::pin(async {
            let dir = tempfile::tempdir().map_err(Error::store)?;
            let path = dir.path().join("bench.db");
            let store = SqliteEventStore::open(&path).await?;
            let raw = SqliteRaw {
                store: store.clone(),
                path,
                writers: Pool::default(),
                readers: Pool::default(),
                _dir: dir,
            };
            Ok(StorePair {
                name: "sqlite",
                store: Arc::new(store),
                raw: Arc::new(raw),
            })
        })
    }))
}

/// Raw rusqlite on the store's file. Every concurrent caller gets its own connection, the
/// way independent writers (threads or processes) share one SQLite file: they take turns on
/// its write lock, waiting through the busy timeout.
#[derive(Debug)]
struct SqliteRaw {
    store: SqliteEventStore,
    path: PathBuf,
    writers: Pool,
    readers: Pool,
    // Last: the file outlives the connections.
    _dir: tempfile::TempDir,
}

/// Idle connections; a caller finding none opens another.
#[derive(Debug, Default)]
struct Pool(Arc<Mutex<Vec<Connection>>>);

impl Pool {
    /// Runs `work` on a pooled connection in tokio's blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        path: &std::path::Path,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (idle, path) = (self.0.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let taken = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut conn = match taken {
                Some(c) => c,
                None => open(&path)?,
            };
            let out = work(&mut conn);
            idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            out
        })
        .await
        .map_err(Error::store)?
        .map_err(Error::store)
    }
}

/// The store's settings: WAL (kept in the file), `synchronous = NORMAL`, in-memory temp
/// b-trees, a 5 s busy timeout, cached statements.
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    let id: [u8; 16] = r.get(3)?;
    Ok(RawRow {
        id: uuid::Uuid::from_bytes(id),
        stream: r.get(1)?,
        version: r.get(2)?,
        position: (0, r.get(0)?),
        event_type: r.get(4)?,
        schema_version: r.get(5)?,
        payload: r.get(6)?,
        metadata: r.get(7)?,
    })
}

#[async_trait]
impl RawStore for SqliteRaw {
    async fn storage(&self) -> Result<super::Storage> {
        let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = len(&self.path.with_extension("db-wal"));
        Ok(super::Storage {
            bytes: Some(len(&self.path) + wal),
            wal_file_bytes: Some(wal),
            wal_position: None,
            longest_commit_ms: Some(self.store.stats().longest_commit_us as f64 / 1e3),
        })
    }

    fn sql_projection(&self, version: u32) -> Option<Box<dyn recount::projection::Consumer>> {
        Some(super::sql_totals(self.store.clone(), version))
    }

    async fn append_expecting(
        &self,
        stream: &str,
        version_before: u64,
        events: &[RawEvent],
    ) -> Result<bool> {
        let (stream, events) = (stream.to_owned(), events.to_vec());
        self.writers
            .run(&self.path, move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let state: Option<(i64, bool)> = tx
                    .prepare_cached(STREAM_STATE)?
                    .query_row([&stream], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (version, deleted) = state.unwrap_or((0, false));
                if deleted || version as u64 != version_before {
                    return Ok(false);
                }
                let category = stream.split_once('-').map_or(stream.as_str(), |(c, _)| c);
                let now = chrono::Utc::now().timestamp_micros();
                {
                    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
                    for (k, e) in events.iter().enumerate() {
                        insert.insert(rusqlite::params![
                            stream,
                            category,
                            version + 1 + k as i64,
                            e.id.as_bytes(),
                            e.event_type,
                            1,
                            e.payload,
                            e.metadata,
                            now,
                        ])?;
                    }
                    tx.prepare_cached(STREAM_SET_VERSION)?
                        .execute(rusqlite::params![stream, version + events.len() as i64])?;
                }
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn read_stream(&self, stream: &str, from: u64) -> Result<Vec<RawRow>> {
        let stream = stream.to_owned();
        self.readers
            .run(&self.path, move |conn| {
                let sql = format!("SELECT {COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params![stream, from as i64], row)?;
                rows.collect()
            })
            .await
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<(u64, String)>> {
        let stream = stream.to_owned();
        self.readers
            .run(&self.path, move |conn| {
                conn.prepare_cached(LOAD_SNAPSHOT)?
                    .query_row([&stream], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                    .optional()
            })
            .await
    }

    async fn read_log(&self, after: (i64, i64), limit: usize) -> Result<Vec<RawRow>> {
        self.readers
            .run(&self.path, move |conn| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params![after.1, limit as i64], row)?;
                rows.collect()
            })
            .await
    }
}
