//! The postgres store's raw baseline: sqlx straight on the store's own database, tables and
//! indexes (created by the store's migrations), through a pool with the same settings.
//!
//! - append: one plain `INSERT` per call in its own transaction: a single-row `VALUES` insert
//!   for one event, one multi-row `INSERT ... SELECT FROM unnest(...)` for a batch. No stream
//!   row, no version check beyond the unique `(stream_id, stream_version)` index.
//! - reads: plain `SELECT`s of the columns Recount reads; the log in pages by
//!   `(transaction_id, global_position)` with no horizon.

use super::{PairFactory, RawEvent, RawRow, RawStore, StorePair};
use async_trait::async_trait;
use recount::{Error, EventStore, Result};
use recount_postgres::PgEventStore;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgTypeInfo, PgValueFormat,
    PgValueRef,
};
use sqlx::{ConnectOptions, Connection, Decode, Encode, PgConnection, Postgres, Row, Type};
use std::str::FromStr;
use std::sync::Arc;

const INSERT_ONE: &str = "INSERT INTO recount.events (stream_id, stream_version, category, event_id, \
     event_type, schema_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, 1, $6::json, $7::json)";
const INSERT_MANY: &str =
    "INSERT INTO recount.events (stream_id, stream_version, category, event_id, \
     event_type, schema_version, payload, metadata) \
     SELECT $1, $2 + u.ord, $3, u.id, u.event_type, 1, u.payload::json, u.metadata::json \
     FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[]) \
         WITH ORDINALITY AS u(id, event_type, payload, metadata, ord)";
const COLUMNS: &str =
    "transaction_id, global_position, stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at";
const READ_STREAM: &str =
    "FROM recount.events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version";
const READ_LOG: &str = "FROM recount.events WHERE (transaction_id, global_position) > ($1, $2) \
     ORDER BY transaction_id, global_position LIMIT $3";
const LOAD_SNAPSHOT: &str = "SELECT version, state FROM recount.snapshots WHERE stream_id = $1";
const STORAGE_BYTES: &str = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = 'recount' AND c.relkind = 'r'";
const WAL_POSITION: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8";

/// Connections per pool, for the store and the baseline alike (as `PgEventStore::connect`).
const POOL_SIZE: u32 = 16;

/// A factory of fresh postgres pairs when `DATABASE_URL` is set: a new database per scenario,
/// migrated by the store, dropped when the pair is dropped.
pub fn factory() -> Option<PairFactory> {
    let url = std::env::var("DATABASE_URL").ok()?;
    Some(Box::new(move || {
        let url = url.clone();
        Box::pin(async move {
            let server = PgConnectOptions::from_str(&url)
                .map_err(Error::store)?
                .disable_statement_logging();
            let name = format!("recount_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::connect_with(&server)
                .await
                .map_err(Error::store)?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .map_err(Error::store)?;
            let _ = admin.close().await;
            let guard = DropDatabase {
                server: server.clone(),
                name: name.clone(),
            };
            let options = server.database(&name);
            // Both sides get the store's session settings (`jit = off`).
            let session = PgEventStore::session_options(options.clone());
            let pool = || {
                PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .test_before_acquire(false)
                    .connect_with(session.clone())
            };
            let store =
                PgEventStore::from_pool(pool().await.map_err(Error::store)?, Default::default())?;
            store.migrate().await?;
            let raw = PgRaw {
                store: store.clone(),
                pool: pool().await.map_err(Error::store)?,
                _guard: guard,
            };
            Ok(StorePair {
                name: "postgres",
                store: Arc::new(store),
                raw: Arc::new(raw),
            })
        })
    }))
}

/// Raw sqlx on the store's database.
#[derive(Debug)]
struct PgRaw {
    store: PgEventStore,
    pool: PgPool,
    // Last: drops the database once the pools are gone.
    _guard: DropDatabase,
}

/// Drops the scenario's database (with `FORCE`, so connections still closing do not matter),
/// unless `RECOUNT_BENCH_KEEP_DB` is set.
#[derive(Debug)]
struct DropDatabase {
    server: PgConnectOptions,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        // For a look at a filled store afterwards (pg_walinspect, EXPLAIN).
        if std::env::var_os("RECOUNT_BENCH_KEEP_DB").is_some() {
            eprintln!("bench: kept database {}", self.name);
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the async runtime and cannot await: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect_with(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        });
        if dropped.join().ok().flatten().is_none() {
            eprintln!("bench: could not drop database {}", self.name);
        }
    }
}

/// `xid8`, which sqlx does not know: 8 bytes, big-endian.
#[derive(Debug, Clone, Copy)]
struct Xid8(u64);

impl Type<Postgres> for Xid8 {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(5069))
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(Oid(5069))
    }
}

impl Encode<'_, Postgres> for Xid8 {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> std::result::Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for Xid8 {
    fn decode(value: PgValueRef<'_>) -> std::result::Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(Xid8(u64::from_be_bytes(value.as_bytes()?.try_into()?))),
            PgValueFormat::Text => Ok(Xid8(value.as_str()?.parse()?)),
        }
    }
}

/// A `json` column as its text.
struct JsonText(String);

impl Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(114))
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(Oid(114))
    }
}

impl Decode<'_, Postgres> for JsonText {
    fn decode(value: PgValueRef<'_>) -> std::result::Result<Self, BoxDynError> {
        Ok(JsonText(value.as_str()?.to_owned()))
    }
}

fn raw_row(row: &PgRow) -> std::result::Result<RawRow, sqlx::Error> {
    let tx: Xid8 = row.try_get(0)?;
    let _recorded_at: chrono::DateTime<chrono::Utc> = row.try_get(9)?;
    Ok(RawRow {
        position: (tx.0 as i64, row.try_get(1)?),
        stream: row.try_get(2)?,
        version: row.try_get(3)?,
        id: row.try_get(4)?,
        event_type: row.try_get(5)?,
        schema_version: row.try_get(6)?,
        payload: row.try_get::<JsonText, _>(7)?.0,
        metadata: row.try_get::<JsonText, _>(8)?.0,
    })
}

fn rows(rows: Vec<PgRow>) -> Result<Vec<RawRow>> {
    rows.iter()
        .map(raw_row)
        .collect::<std::result::Result<_, _>>()
        .map_err(Error::store)
}

fn category(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(c, _)| c)
}

#[async_trait]
impl RawStore for PgRaw {
    fn sql_projection(&self, version: u32) -> Option<Box<dyn recount::projection::Consumer>> {
        Some(super::sql_totals(self.store.clone(), version))
    }

    async fn storage(&self) -> Result<super::Storage> {
        let bytes: i64 = sqlx::query_scalar(STORAGE_BYTES)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::store)?;
        let wal: i64 = sqlx::query_scalar(WAL_POSITION)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::store)?;
        Ok(super::Storage {
            bytes: Some(bytes as u64),
            wal_file_bytes: None,
            wal_position: Some(wal as u64),
            longest_commit_ms: None,
        })
    }

    async fn plan_variants(&self) -> Result<Vec<(&'static str, Arc<dyn EventStore>)>> {
        let base = (*self.store.pool().connect_options()).clone();
        let custom = PgEventStore::session_options(base.clone())
            .options([("plan_cache_mode", "force_custom_plan")]);
        let generic = PgEventStore::session_options(base.clone())
            .options([("plan_cache_mode", "force_generic_plan")]);
        // Forced generic plans with JIT back on (the pool's options carry `jit = off`; a later
        // `-c` wins): the store's sessions before `session_options`.
        let generic_jit = base.options([("plan_cache_mode", "force_generic_plan"), ("jit", "on")]);
        let mut out: Vec<(&'static str, Arc<dyn EventStore>)> = Vec::new();
        for (name, options) in [
            ("custom", custom),
            ("generic", generic),
            ("generic+jit", generic_jit),
        ] {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .map_err(Error::store)?;
            out.push((
                name,
                Arc::new(PgEventStore::from_pool(pool, Default::default())?),
            ));
        }
        Ok(out)
    }

    async fn settle(&self) -> Result<()> {
        match sqlx::query("CHECKPOINT").execute(&self.pool).await {
            Ok(_) => Ok(()),
            // Only superusers and members of pg_checkpoint may: then rounds go unsettled.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => Ok(()),
            Err(e) => Err(Error::store(e)),
        }
    }

    async fn append_expecting(
        &self,
        stream: &str,
        version_before: u64,
        events: &[RawEvent],
    ) -> Result<bool> {
        let before = version_before as i64;
        let done = if let [e] = events {
            sqlx::query(INSERT_ONE)
                .bind(stream)
                .bind(before + 1)
                .bind(category(stream))
                .bind(e.id)
                .bind(e.event_type)
                .bind(&e.payload)
                .bind(&e.metadata)
                .execute(&self.pool)
                .await
        } else {
            let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
            let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
            let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
            let metadata: Vec<&str> = events.iter().map(|e| e.metadata.as_str()).collect();
            sqlx::query(INSERT_MANY)
                .bind(stream)
                .bind(before)
                .bind(category(stream))
                .bind(&ids)
                .bind(&types)
                .bind(&payloads)
                .bind(&metadata)
                .execute(&self.pool)
                .await
        };
        match done {
            Ok(_) => Ok(true),
            // The unique (stream, version) index: another writer took the version.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => Ok(false),
            Err(e) => Err(Error::store(e)),
        }
    }

    async fn read_stream(&self, stream: &str, from: u64) -> Result<Vec<RawRow>> {
        let found = sqlx::query(&format!("SELECT {COLUMNS} {READ_STREAM}"))
            .bind(stream)
            .bind(from as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::store)?;
        rows(found)
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<(u64, String)>> {
        let row = sqlx::query(LOAD_SNAPSHOT)
            .bind(stream)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::store)?;
        row.map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?)))
            .transpose()
            .map_err(Error::store)
    }

    async fn read_log(&self, after: (i64, i64), limit: usize) -> Result<Vec<RawRow>> {
        let found = sqlx::query(&format!("SELECT {COLUMNS} {READ_LOG}"))
            .bind(Xid8(after.0 as u64))
            .bind(after.1)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::store)?;
        rows(found)
    }
}
