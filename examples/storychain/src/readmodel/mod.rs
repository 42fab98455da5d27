//! SQL read models on SQLite, each fed by a [`SqliteProjection`] that writes its tables and
//! its checkpoint in one transaction, and the queries that read them.
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
    level_for, Award, Badge, BADGES, BRANCH_XP, CHAPTER_XP, MERGED_PR_XP, STORY_XP, UPVOTE_XP,
};
pub use queries::{
    CatalogueQuery, ChapterRow, Notification, ProfileRow, ReadModels, Sort, StatRow, StoryRow,
};

use recount::projection::{active_version, Consumer};
use recount::{Error, EventStore, LogFilter, RecordedEvent};
use recount_sqlite::rusqlite::{Params, Transaction};
use recount_sqlite::{SqliteEventStore, SqliteProjection, SqliteReadModel};

/// The projections StoryChain keeps, by name.
pub const PROJECTIONS: [&str; 5] = ["catalogue", "chapters", "profiles", "stats", "inbox"];

/// A projection of any model, as the runners and `rebuild` take it.
pub type AnyProjection = Box<dyn Consumer>;

/// Projection `name` at `version` (its tables are `<name>_v<version>…`).
pub fn projection(
    store: &SqliteEventStore,
    name: &str,
    version: u32,
) -> Result<AnyProjection, Error> {
    fn boxed<M: SqliteReadModel + Filtered>(
        store: &SqliteEventStore,
        name: &str,
        version: u32,
        model: M,
    ) -> AnyProjection {
        let filter = model.filter();
        Box::new(
            SqliteProjection::new(store.clone(), name, model)
                .with_version(version)
                .with_filter(filter),
        )
    }
    Ok(match name {
        "catalogue" => boxed(store, name, version, catalogue::Catalogue::new(version)),
        "chapters" => boxed(store, name, version, chapters::Chapters::new(version)),
        "profiles" => boxed(store, name, version, profiles::Profiles::new(version)),
        "stats" => boxed(store, name, version, stats::Stats::new(version)),
        "inbox" => boxed(store, name, version, inbox::InboxModel::new(version)),
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

/// Waits until every projection in `names` (at its active version) has passed `cursor`, up
/// to `timeout`; `false` when one had not by then. Readers that must see their own writes,
/// and process managers that read a model, wait with this.
pub async fn reached(
    store: &SqliteEventStore,
    names: &[&str],
    cursor: recount::Cursor,
    timeout: std::time::Duration,
) -> Result<bool, Error> {
    let deadline = std::time::Instant::now() + timeout;
    'wait: loop {
        for name in names {
            let version = active(store, name).await?;
            let at = store
                .load_checkpoint(&recount::projection::checkpoint_name(name, version, None))
                .await?;
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

/// Runs a cached statement.
pub(crate) fn run(tx: &Transaction<'_>, sql: &str, params: impl Params) -> Result<usize, Error> {
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(Error::store)
}

/// Runs a batch of DDL.
pub(crate) fn ddl(tx: &Transaction<'_>, sql: &str) -> Result<(), Error> {
    tx.execute_batch(sql).map_err(Error::store)
}

/// The event's `at` as text, for deterministic ordering by time in every build of a model.
pub(crate) fn at_text(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Decodes an event into the aggregate event enum of its category.
pub(crate) fn decode<E: recount::Event>(event: &RecordedEvent) -> Result<E, Error> {
    event.decode::<E>()
}
