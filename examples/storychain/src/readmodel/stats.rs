//! Event statistics: how many events of each type, first and last recorded.

use super::{at_text, ddl, run, Filtered};
use recount::RecordedEvent;
use recount_sqlite::rusqlite::Transaction;
use recount_sqlite::SqliteReadModel;

/// Table `stats_v<n>`.
#[derive(Debug)]
pub(crate) struct Stats {
    t: String,
    upsert: String,
}

impl Stats {
    pub(crate) fn new(version: u32) -> Self {
        let t = format!("stats_v{version}");
        let upsert = format!(
            "INSERT INTO {t} (event_type, count, first_at, last_at) VALUES (?1, 1, ?2, ?2)
             ON CONFLICT (event_type) DO UPDATE SET count = count + 1, last_at = ?2"
        );
        Stats { t, upsert }
    }
}

impl Filtered for Stats {
    const EVENT_TYPES: &'static [&'static str] = &[];
}

impl SqliteReadModel for Stats {
    fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {} (event_type TEXT PRIMARY KEY, count INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL)",
            self.t
        ))
    }

    fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
        run(tx, &self.upsert, (&e.event_type, at_text(&e.recorded_at))).map(drop)
    }

    fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        ddl(tx, &format!("DROP TABLE IF EXISTS {}", self.t))
    }
}
