//! Event statistics: how many events of each type, first and last recorded.

use super::{at_text, ddl, Filtered};
use recount::sql::{execute_rows, placeholders, SqlReadModel, SqlTx, SqlValue};
use recount::RecordedEvent;
use std::collections::BTreeMap;

/// Table `stats_v<n>`.
#[derive(Debug)]
pub(crate) struct Stats {
    t: String,
}

impl Stats {
    pub(crate) fn new(version: u32) -> Self {
        Stats {
            t: format!("stats_v{version}"),
        }
    }
}

impl Filtered for Stats {
    const EVENT_TYPES: &'static [&'static str] = &[];
}

impl SqlReadModel for Stats {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {} (event_type TEXT PRIMARY KEY, count BIGINT NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL)",
            self.t
        ))
    }

    /// One upsert for the batch: per type, how many, and the first and last time (events
    /// come in log order).
    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
        let mut per_type = BTreeMap::<&str, (i64, String, String)>::new();
        for e in events {
            let at = at_text(&e.recorded_at);
            per_type
                .entry(e.event_type.as_str())
                .and_modify(|(n, _, last)| {
                    *n += 1;
                    last.clone_from(&at);
                })
                .or_insert_with(|| (1, at.clone(), at));
        }
        let rows: Vec<Vec<SqlValue<'_>>> = per_type
            .into_iter()
            .map(|(t, (n, first, last))| vec![t.into(), n.into(), first.into(), last.into()])
            .collect();
        let t = &self.t;
        execute_rows(tx, 4, &rows, |k| {
            format!(
                "INSERT INTO {t} (event_type, count, first_at, last_at) VALUES {} \
                 ON CONFLICT (event_type) DO UPDATE SET count = {t}.count + excluded.count, last_at = excluded.last_at",
                placeholders(k, 4)
            )
        })
        .map(drop)
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        ddl(tx, &format!("DROP TABLE IF EXISTS {}", self.t))
    }
}
