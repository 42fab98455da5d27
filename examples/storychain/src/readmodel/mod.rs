//! SQL read models, each written once for SQLite and PostgreSQL ([`recount::sql`]) and fed
//! by a [`SqlProjection`] that writes its tables and its checkpoint in one transaction, and
//! the queries that read them.
//!
//! Every model names its tables by version (`catalogue_v1`, …) so that `rebuild` can build
//! version v+1 beside the live v and switch readers over (see the README's rebuild workflow).

mod catalogue;
mod chapters;
mod inbox;
mod profiles;
mod progress;
mod queries;
mod stats;

pub use progress::{
    level_for, Badge, BADGES, BRANCH_XP, CHAPTER_XP, MERGED_PR_XP, STORY_XP, UPVOTE_XP,
};
pub use queries::{
    CatalogueQuery, ChapterRow, Notification, ProfileRow, ReadModels, Sort, StatRow, StoryRow,
};

use crate::app::Store;
use recount::projection::{active_version, Consumer};
use recount::sql::{IntoSqlParams, SqlProjection, SqlReadModel, SqlRow, SqlTx, SqlValue};
use recount::{Error, EventStore, LogFilter, RecordedEvent};
use std::collections::{BTreeSet, HashMap};

/// The projections StoryChain keeps, by name.
pub const PROJECTIONS: [&str; 5] = ["catalogue", "chapters", "profiles", "stats", "inbox"];

/// A projection of any model, as the runners and `rebuild` take it.
pub type AnyProjection = Box<dyn Consumer>;

/// Projection `name` at `version` (its tables are `<name>_v<version>…`).
pub fn projection(store: &Store, name: &str, version: u32) -> Result<AnyProjection, Error> {
    fn batched<M: SqlReadModel + Filtered>(
        store: &Store,
        name: &str,
        version: u32,
        model: M,
    ) -> AnyProjection {
        let filter = model.filter();
        Box::new(
            SqlProjection::new(store.clone(), name, model)
                .with_version(version)
                .with_filter(filter),
        )
    }
    Ok(match name {
        "catalogue" => batched(store, name, version, catalogue::Catalogue::new(version)),
        "chapters" => batched(store, name, version, chapters::Chapters::new(version)),
        "profiles" => batched(store, name, version, profiles::Profiles::new(version)),
        "stats" => batched(store, name, version, stats::Stats::new(version)),
        "inbox" => batched(store, name, version, inbox::InboxModel::new(version)),
        other => {
            return Err(Error::invalid(
                "projection",
                format!(
                    "unknown projection `{other}` (one of {})",
                    PROJECTIONS.join(", ")
                ),
            ))
        }
    })
}

/// The version readers use: the one a rebuild last switched to, else 1.
pub async fn active(store: &impl EventStore, name: &str) -> Result<u32, Error> {
    Ok(active_version(store, name).await?.unwrap_or(1))
}

/// The checkpoint of projection `name` at its active version (`None`: never run).
pub async fn position(
    store: &impl EventStore,
    name: &str,
) -> Result<Option<recount::Cursor>, Error> {
    let version = active(store, name).await?;
    store
        .load_checkpoint(&recount::projection::checkpoint_name(name, version, None))
        .await
}

/// Waits until every projection in `names` (at its active version) has passed `cursor`, up
/// to `timeout`; `false` when one had not by then. Readers that must see their own writes,
/// and process managers that read a model, wait with this.
pub async fn reached(
    store: &impl EventStore,
    names: &[&str],
    cursor: recount::Cursor,
    timeout: std::time::Duration,
) -> Result<bool, Error> {
    let deadline = std::time::Instant::now() + timeout;
    'wait: loop {
        for name in names {
            let at = position(store, name).await?;
            if at.is_none_or(|at| at < cursor) {
                if std::time::Instant::now() >= deadline {
                    return Ok(false);
                }
                store
                    .wait_for_append(cursor, std::time::Duration::from_millis(10))
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue 'wait;
            }
        }
        return Ok(true);
    }
}

/// The events a model reads: only these are fed to it (and counted in its lag).
pub(crate) trait Filtered {
    /// The event types it handles.
    const EVENT_TYPES: &'static [&'static str];

    fn filter(&self) -> LogFilter {
        Self::EVENT_TYPES
            .iter()
            .fold(LogFilter::all(), |f, t| f.event_type(*t))
    }
}

/// Rows of one table keyed by a text id: loaded for a batch in one query, changed in memory
/// event by event, the changed ones written back in one upsert.
pub(crate) struct Keyed<R> {
    rows: HashMap<String, R>,
    dirty: BTreeSet<String>,
}

impl<R> Keyed<R> {
    /// The rows of `select` (a `SELECT … FROM …` whose first column is the key `key`) for
    /// `keys`.
    pub(crate) fn load(
        tx: &mut dyn SqlTx,
        select: &str,
        key: &str,
        keys: &[&str],
        from_row: impl Fn(&SqlRow) -> Result<(String, R), Error>,
    ) -> Result<Self, Error> {
        let keys: BTreeSet<&str> = keys.iter().copied().collect();
        let mut rows = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            let keys: Vec<SqlValue<'_>> = keys.into_iter().map(Into::into).collect();
            for row in recount::sql::select_in(tx, select, key, &keys)? {
                let (k, r) = from_row(&row)?;
                rows.insert(k, r);
            }
        }
        Ok(Keyed {
            rows,
            dirty: BTreeSet::new(),
        })
    }

    /// The row of `key` (loaded or inserted in this batch), to change.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut R> {
        let row = self.rows.get_mut(key)?;
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_owned());
        }
        Some(row)
    }

    /// The row of `key`, to read.
    pub(crate) fn get(&self, key: &str) -> Option<&R> {
        self.rows.get(key)
    }

    /// A row read outside [`load`](Self::load), kept as it is (not written back).
    pub(crate) fn remember(&mut self, key: String, row: R) {
        self.rows.entry(key).or_insert(row);
    }

    /// Inserts a row unless one with its key exists (`INSERT … ON CONFLICT DO NOTHING`).
    pub(crate) fn insert_new(&mut self, key: String, row: R) {
        if !self.rows.contains_key(&key) {
            self.dirty.insert(key.clone());
            self.rows.insert(key, row);
        }
    }

    /// Writes the changed rows into `table` (`columns[0]` is the key).
    pub(crate) fn write(
        &self,
        tx: &mut dyn SqlTx,
        table: &str,
        columns: &[&str],
        values: impl for<'a> Fn(&'a R, &'a str) -> Vec<SqlValue<'a>>,
    ) -> Result<(), Error> {
        let rows: Vec<Vec<SqlValue<'_>>> = self
            .dirty
            .iter()
            .filter_map(|k| self.rows.get(k).map(|r| values(r, k)))
            .collect();
        recount::sql::upsert(tx, table, columns, &columns[..1], &rows).map(drop)
    }
}

/// A `(user_id, username)` table: the names a batch needs, loaded in one query; those it
/// registers, written in one statement.
pub(crate) struct Usernames {
    table: String,
    known: HashMap<String, String>,
    new: Vec<(String, String)>,
}

impl Usernames {
    /// The names of `ids` in `table`.
    pub(crate) fn load(tx: &mut dyn SqlTx, table: &str, ids: &[&str]) -> Result<Self, Error> {
        let select = format!("SELECT user_id, username FROM {table}");
        let known = Keyed::load(tx, &select, "user_id", ids, |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(Usernames {
            table: table.to_owned(),
            known: known.rows,
            new: Vec::new(),
        })
    }

    /// A registration (the first of a user's wins).
    pub(crate) fn register(&mut self, user_id: String, username: String) {
        if !self.known.contains_key(&user_id) {
            self.known.insert(user_id.clone(), username.clone());
            self.new.push((user_id, username));
        }
    }

    /// A name read outside [`load`](Self::load), kept as it is (not written back).
    pub(crate) fn remember(&mut self, user_id: String, username: String) {
        self.known.entry(user_id).or_insert(username);
    }

    /// The username of `user_id`, if known.
    pub(crate) fn get(&self, user_id: &str) -> Option<&str> {
        self.known.get(user_id).map(String::as_str)
    }

    /// Writes the registrations.
    pub(crate) fn write(&self, tx: &mut dyn SqlTx) -> Result<(), Error> {
        let rows: Vec<Vec<SqlValue<'_>>> = self
            .new
            .iter()
            .map(|(id, name)| vec![id.into(), name.into()])
            .collect();
        recount::sql::insert_new(tx, &self.table, &["user_id", "username"], &rows).map(drop)
    }
}

/// Runs a statement (prepared once per connection).
pub(crate) fn run<'a>(
    tx: &mut dyn SqlTx,
    sql: &str,
    params: impl IntoSqlParams<'a>,
) -> Result<u64, Error> {
    tx.exec(sql, params)
}

/// Runs a batch of DDL.
pub(crate) fn ddl(tx: &mut dyn SqlTx, sql: &str) -> Result<(), Error> {
    tx.execute_batch(sql)
}

/// The event's `at` as text, for deterministic ordering by time in every build of a model.
pub(crate) fn at_text(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Decodes an event into the aggregate event enum of its category.
pub(crate) fn decode<E: recount::Event>(event: &RecordedEvent) -> Result<E, Error> {
    event.decode::<E>()
}
