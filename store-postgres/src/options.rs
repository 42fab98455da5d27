//! Store options.

use recount::{Error, Limits};
use std::time::Duration;

/// How a [`PgEventStore`](crate::PgEventStore) is set up.
///
/// ```
/// use recount_postgres::PgOptions;
/// use std::time::Duration;
/// let options = PgOptions::default()
///     .with_schema("events_v2")
///     .with_notify_interval(Duration::from_millis(50));
/// assert_eq!(options.schema, "events_v2");
/// assert_eq!(PgOptions::default().notify_interval, Duration::from_millis(10));
/// assert!(options.validate().is_ok());
/// assert!(PgOptions::default().with_schema("Robert'); DROP TABLE").validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The schema holding every table, function and the migrations table (default
    /// `recount`): 1 to 63 characters of `a-z`, `0-9` and `_`, not starting with a digit and
    /// not starting with `pg_`.
    pub schema: String,
    /// Input limits checked before every append (default: [`Limits::default`], 1 MiB payloads
    /// and 16 KiB metadata).
    pub limits: Limits,
    /// The shortest time between two wake-up notifications (`NOTIFY`) sent by one store
    /// handle (default 10 ms). Appends within it share one notification, sent after they
    /// commit. Shorter wakes waiting followers sooner; each notification is a small
    /// transaction of its own, so a busy writer pays for every one. Followers also poll, so
    /// this bounds a wake-up's delay, never whether events are seen.
    pub notify_interval: Duration,
    /// Connections in the pool [`PgEventStore::connect_with`](crate::PgEventStore::connect_with)
    /// makes (default 16; at least 1). Several processes on one server share its
    /// `max_connections` (PostgreSQL's default is 100): four processes of 16 already take 64.
    /// A pool given to [`from_pool`](crate::PgEventStore::from_pool) keeps its own size.
    pub pool_size: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: "recount".to_owned(),
            limits: Limits::default(),
            notify_interval: Duration::from_millis(10),
            pool_size: 16,
        }
    }
}

impl PgOptions {
    /// Sets the schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the input limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the pool's size for [`connect_with`](crate::PgEventStore::connect_with).
    pub fn with_pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections;
        self
    }

    /// Sets the shortest time between two wake-up notifications.
    pub fn with_notify_interval(mut self, interval: Duration) -> Self {
        self.notify_interval = interval;
        self
    }

    /// Checks the schema name. It is written into SQL text (a schema cannot be a query
    /// parameter), so only plain lower-case identifiers are accepted.
    pub fn validate(&self) -> Result<(), Error> {
        if self.pool_size == 0 {
            return Err(Error::invalid(
                "pool_size",
                "a pool needs at least one connection",
            ));
        }
        let s = self.schema.as_str();
        let bad = |why: &str| Err(Error::invalid("schema", format!("`{s}`: {why}")));
        if s.is_empty() || s.len() > 63 {
            return bad("must be 1 to 63 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad("only a-z, 0-9 and _ are allowed");
        }
        if s.as_bytes()[0].is_ascii_digit() {
            return bad("must not start with a digit");
        }
        if s.starts_with("pg_") {
            return bad("names starting with pg_ are reserved by PostgreSQL");
        }
        Ok(())
    }
}
