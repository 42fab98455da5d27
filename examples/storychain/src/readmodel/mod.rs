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
    level_for, Award, Badge, BADGES, BRANCH_XP, CHAPTER_XP, MERGED_PR_XP, STORY_XP, UPVOTE_XP,
};
pub use queries::{
    CatalogueQuery, ChapterRow, Notification, ProfileRow, ReadModels, Sort, StatRow, StoryRow,
};

use crate::app::Store;
use recount::projection::{active_version, Consumer};
use recount::sql::{IntoSqlParams, SqlProjection, SqlReadModel, SqlTx};
use recount::{Error, EventStore, LogFilter, RecordedEvent};

/// The projections StoryChain keeps, by name.
pub const PROJECTIONS: [&str; 5] = ["catalogue", "chapters", "profiles", "stats", "inbox"];

/// A projection of any model, as the runners and `rebuild` take it.
pub type AnyProjection = Box<dyn Consumer>;

/// Projection `name` at `version` (its tables are `<name>_v<version>…`).
pub fn projection(store: &Store, name: &str, version: u32) -> Result<AnyProjection, Error> {
    fn boxed<M: EventByEvent + Filtered>(
        store: &Store,
        name: &str,
        version: u32,
        model: M,
    ) -> AnyProjection {
        let filter = model.filter();
        Box::new(
            SqlProjection::new(store.clone(), name, EachEvent(model))
                .with_version(version)
                .with_filter(filter),
        )
    }
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
        "catalogue" => boxed(store, name, version, catalogue::Catalogue::new(version)),
        "chapters" => boxed(store, name, version, chapters::Chapters::new(version)),
        "profiles" => boxed(store, name, version, profiles::Profiles::new(version)),
        "stats" => batched(store, name, version, stats::Stats::new(version)),
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
    store: &impl EventStore,
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

/// A read model that applies one event at a time.
pub(crate) trait EventByEvent: Send + Sync + 'static {
    /// Creates the model's tables if they do not exist.
    fn setup(&self, tx: &mut dyn SqlTx) -> Result<(), Error>;
    /// Applies one event.
    fn apply(&self, tx: &mut dyn SqlTx, event: &RecordedEvent) -> Result<(), Error>;
    /// Drops the model's tables.
    fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<(), Error>;
}

/// An [`EventByEvent`] model as a [`SqlReadModel`].
pub(crate) struct EachEvent<M>(M);

impl<M: EventByEvent> SqlReadModel for EachEvent<M> {
    fn setup(&self, tx: &mut dyn SqlTx) -> Result<(), Error> {
        self.0.setup(tx)
    }

    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> Result<(), Error> {
        events.iter().try_for_each(|e| self.0.apply(tx, e))
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<(), Error> {
        self.0.drop_tables(tx)
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
