//! The benchmark harness: scenarios run through Recount and through a raw baseline.

pub mod growth;
mod memory;
pub mod postgres;
pub mod push;
pub mod relay;
mod report;
mod scenarios;
pub mod sqlite;

pub use memory::MemoryRaw;

pub use report::{print_table, write_json, Row};
pub use scenarios::{run_scenarios, SCENARIOS};

use async_trait::async_trait;
use recount::{EventStore, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One stored row as a raw baseline reads it: the same fields Recount reads.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// Event id.
    pub id: uuid::Uuid,
    /// Stream id.
    pub stream: String,
    /// Stream version.
    pub version: i64,
    /// Position in the log (both parts; single-position stores leave the first 0).
    pub position: (i64, i64),
    /// Event type.
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// Payload JSON text.
    pub payload: String,
    /// Metadata JSON text.
    pub metadata: String,
}

/// An event as a raw baseline writes it.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// Event id.
    pub id: uuid::Uuid,
    /// Event type.
    pub event_type: &'static str,
    /// Payload JSON text.
    pub payload: String,
    /// Metadata JSON text.
    pub metadata: String,
}

/// The raw baseline of one store: the same work as Recount's store, done directly with the
/// same engine and driver, on the same tables, indexes and settings.
#[async_trait]
pub trait RawStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if it is at `version_before`, the way the raw side of the
    /// store's benchmark contract says (one transaction per call); `false`, having written
    /// nothing, when another writer got there first (a raw event store's concurrency check:
    /// the unique `(stream, version)` index, or the version read in the transaction).
    async fn append_expecting(
        &self,
        stream: &str,
        version_before: u64,
        events: &[RawEvent],
    ) -> Result<bool>;

    /// [`RawStore::append_expecting`], with a conflict as an error.
    async fn append(&self, stream: &str, version_before: u64, events: &[RawEvent]) -> Result<()> {
        match self
            .append_expecting(stream, version_before, events)
            .await?
        {
            true => Ok(()),
            false => Err(recount::Error::store(format!(
                "raw conflict: {stream} is not at version {version_before}"
            ))),
        }
    }

    /// Every row of `stream` from version `from` in version order.
    async fn read_stream(&self, stream: &str, from: u64) -> Result<Vec<RawRow>>;

    /// The stored snapshot of `stream` (version, state JSON), if any.
    async fn load_snapshot(&self, stream: &str) -> Result<Option<(u64, String)>>;

    /// Up to `limit` rows of the global log after `after`, in log order.
    async fn read_log(&self, after: (i64, i64), limit: usize) -> Result<Vec<RawRow>>;

    /// Called with every batch the scenario seeds through Recount. A baseline on the same
    /// storage (SQLite, PostgreSQL) sees those rows already and does nothing; one with its own
    /// storage (memory) stores them too.
    async fn seed(&self, _stream: &str, _version_before: u64, _events: &[RawEvent]) -> Result<()> {
        Ok(())
    }

    /// Brings the storage to the same state before every round of either side, so work left
    /// over by one round is not paid for by the next (PostgreSQL: a `CHECKPOINT`, else a
    /// round that starts when the WAL fills up pays for the checkpoint and the full-page
    /// images after it).
    async fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// A SQL read model for the `rebuild` scenario, written in the store's own transactions
    /// (`None`: the store has no SQL read models).
    fn sql_projection(&self, _version: u32) -> Option<Box<dyn recount::projection::Consumer>> {
        None
    }

    /// Like [`RawStore::seed`], for a snapshot saved through Recount.
    async fn seed_snapshot(&self, _stream: &str, _version: u64, _state: &str) -> Result<()> {
        Ok(())
    }

    /// What the storage looks like now, for the `growth` scenario (what a store cannot tell
    /// stays `None`).
    async fn storage(&self) -> Result<Storage> {
        Ok(Storage::default())
    }

    /// Other Recount stores on the same storage, each with other session settings, named
    /// (PostgreSQL: plan-cache modes, for the `growth` scenario's plan comparison).
    async fn plan_variants(&self) -> Result<Vec<(&'static str, Arc<dyn EventStore>)>> {
        Ok(Vec::new())
    }
}

/// Facts about a store's storage at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Storage {
    /// Bytes of the store's tables and indexes (SQLite: the database file and its WAL).
    pub bytes: Option<u64>,
    /// The size of the WAL file (SQLite).
    pub wal_file_bytes: Option<u64>,
    /// The server's current WAL position, in bytes (PostgreSQL).
    pub wal_position: Option<u64>,
    /// The longest group commit of the store's writer so far, in ms (SQLite).
    pub longest_commit_ms: Option<f64>,
}

/// A fresh Recount store and its raw baseline over the same storage.
pub struct StorePair {
    /// The store's name in reports: `memory`, `sqlite`, `postgres`.
    pub name: &'static str,
    /// Recount's store.
    pub store: Arc<dyn EventStore>,
    /// The raw baseline on the same storage.
    pub raw: Arc<dyn RawStore>,
}

impl std::fmt::Debug for StorePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePair")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Makes a fresh [`StorePair`] (empty storage) for each scenario.
pub type PairFactory =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<StorePair>> + Send>> + Send + Sync>;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Shrink every size for a quick check (CI).
    pub quick: bool,
    /// Run only this scenario.
    pub scenario: Option<String>,
    /// Log sizes the `growth` scenario measures at (empty: its default).
    pub sizes: Vec<u64>,
}

impl BenchOptions {
    /// `full` normally, `quick` with `--quick`.
    pub fn size(&self, full: u64, quick: u64) -> u64 {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// Whether `scenario` is selected. `growth` (minutes of filling) runs only when named.
    pub fn wants(&self, scenario: &str) -> bool {
        match self.scenario.as_deref() {
            Some(s) => s == scenario,
            None => scenario != growth::SCENARIO,
        }
    }
}

/// The SQL read model of the `rebuild` scenario, one definition for both SQL stores: deposits
/// and their sum per stream. A batch is summed per stream in Rust and written with one
/// multi-row upsert, in the projection's transaction.
#[derive(Debug)]
struct Totals {
    table: String,
}

impl recount::sql::SqlReadModel for Totals {
    fn setup(&self, tx: &mut dyn recount::sql::SqlTx) -> Result<()> {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (stream TEXT PRIMARY KEY, deposits BIGINT NOT NULL, total BIGINT NOT NULL)",
            self.table
        ))
    }

    fn apply_batch(
        &self,
        tx: &mut dyn recount::sql::SqlTx,
        events: &[recount::RecordedEvent],
    ) -> Result<()> {
        use recount::sql::SqlValue;
        let mut sums = std::collections::HashMap::<&str, (i64, i64)>::new();
        for e in events {
            let deposit: crate::fixtures::BenchEvent = e.payload_as()?;
            let s = sums.entry(e.stream.as_str()).or_default();
            s.0 += 1;
            s.1 += deposit.amount as i64;
        }
        let rows: Vec<Vec<SqlValue<'_>>> = sums
            .into_iter()
            .map(|(stream, (n, total))| vec![stream.into(), n.into(), total.into()])
            .collect();
        let t = &self.table;
        recount::sql::execute_rows(tx, 3, &rows, |k| {
            format!(
                "INSERT INTO {t} (stream, deposits, total) VALUES {} ON CONFLICT (stream) DO UPDATE \
                 SET deposits = {t}.deposits + excluded.deposits, total = {t}.total + excluded.total",
                recount::sql::placeholders(k, 3)
            )
        })
        .map(drop)
    }

    fn drop_tables(&self, tx: &mut dyn recount::sql::SqlTx) -> Result<()> {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", self.table))
    }
}

/// The `rebuild` scenario's SQL projection on `store`, at `version`.
fn sql_totals<S>(store: S, version: u32) -> Box<dyn recount::projection::Consumer>
where
    S: recount::sql::SqlStore + Clone,
{
    let model = Totals {
        table: format!("bench_totals_v{version}"),
    };
    Box::new(recount::sql::SqlProjection::new(store, "bench-totals", model).with_version(version))
}
