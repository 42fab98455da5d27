//! # PostgreSQL event store for Recount
//!
//! [`PgEventStore`] implements [`recount::EventStore`] on PostgreSQL (13 or newer) through
//! sqlx: the store for deployments where many application instances write and many projection
//! workers read. It passes the whole conformance suite of `recount::testing`.
//!
//! ```no_run
//! # async fn example() -> recount::Result<()> {
//! use recount::{EventStore, ExpectedVersion, NewEvent, StreamId};
//! use recount_postgres::PgEventStore;
//!
//! let store = PgEventStore::connect("postgres://postgres@127.0.0.1:5432/app").await?;
//! store.migrate().await?; // once at start-up; safe when several processes start together
//! let stream = StreamId::new("story", "42")?;
//! let event = NewEvent::new("story.created", &serde_json::json!({ "title": "Dune" }))?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
//! # Ok(()) }
//! ```
//!
//! ## Schema
//!
//! Everything lives in one schema, `recount` unless [`PgOptions::schema`] says otherwise,
//! created by [`PgEventStore::migrate`] from the embedded `migrations/` (recorded in that
//! schema's `_sqlx_migrations` table):
//! - `streams (stream_id, category, version, deleted)`: one row per stream; a deleted stream
//!   keeps its row as a tombstone, so its id is never reused.
//! - `events (global_position, transaction_id, stream_id, stream_version, category,
//!   event_id, event_type, schema_version, payload, metadata, correlation_id, causation_id,
//!   recorded_at)`: `payload` and `metadata` are `json`, stored and returned as the text
//!   written (never re-encoded, unlike `jsonb`); correlation and causation ids have their own
//!   indexed columns. Unique `(stream_id, stream_version)` and `event_id`; primary key
//!   `(transaction_id, global_position)`, the log order; indexes by category and by event
//!   type for filtered reads.
//! - `snapshots (stream_id, version, tag, state)` and `checkpoints (name, major, minor)`.
//! - Functions `append_events`, `append_event`, `classify_retry` and `delete_stream`.
//!
//! `streams` has fillfactor 50 (migration 5): every append to an existing stream updates its
//! row, and the room keeps those updates HOT (the row stays on its page, the primary key is
//! not touched), so after a checkpoint a stream written again and again does not write a
//! full-page image of a new page per append.
//!
//! ## Sessions
//!
//! The store's connections run with `jit = off` ([`PgEventStore::session_options`], applied
//! by [`PgEventStore::connect`]; give a pool for [`PgEventStore::from_pool`] the same
//! options). A prepared statement may switch to a generic plan, costed without its
//! parameters' values; on a large log the generic plan of a `read_all` page crosses
//! `jit_above_cost` and would be compiled on every run, several times the cost of the read.
//!
//! ## Appends
//!
//! An append of any size is one round trip: one call of `append_events` with the batch as
//! arrays, or, for the common single event, of `append_event` with plain values (the same
//! steps, without the arrays). It takes a per-stream advisory lock and the stream row's lock
//! (writers of different streams never wait for each other), checks the expected version by
//! inserting or conditionally updating the stream's row before any global position is drawn,
//! then inserts all events with one `INSERT ... SELECT FROM unnest(...)` (one
//! `INSERT ... VALUES` for a single event). A conflict comes back as the function's result,
//! an already stored event id as the SQLSTATE `unique_violation`, which triggers the
//! exact-retry check of store contract item 4; never from an error's text.
//!
//! The most common append of all, one event at an exact version of a stream that exists (an
//! aggregate's next event), is sent as one plain statement: the conditional update of the
//! stream row, then the insert, without the function call (which on its own costs more than
//! the stream row's update) and without the advisory lock (the row's lock orders it; see
//! below). When that statement writes nothing (a conflict, a deleted stream, a retry),
//! `append_event` is called to say which; the common case stays one round trip.
//!
//! Within a stream, the log order is version order: a later version always has a later
//! transaction id. The functions lock the stream row right after the advisory lock, before
//! anything gives their transaction an id, and a row lock assigns the id only once it is
//! granted; the fast path's update may get its id before it waits, but writes only if the row
//! is unchanged after the wait.
//!
//! ## The global log, and what delays its readers
//!
//! Global positions come from an identity sequence, drawn when a transaction inserts, but
//! transactions commit in any order: position 8 may become visible before position 7. A reader
//! that followed positions alone would pass 7 and never see it. So every event also records
//! its transaction id (`xid8`, assigned by `pg_current_xact_id()`), and
//! [`read_all`](recount::EventStore::read_all) returns only events whose transaction id is
//! below `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running
//! when the read started, ordered by `(transaction_id, global_position)`. The cursor is that
//! pair. Every transaction below the horizon has finished, so no event can ever appear at or
//! before a cursor a reader has passed: **nothing is skipped, ever**.
//!
//! The price is latency: a read stops at the oldest transaction that is still open and has
//! written something (has a transaction id), **anywhere in the PostgreSQL cluster**, in any
//! database and any schema, Recount's or not. A long-running write transaction, a session
//! left `idle in transaction` after a write, or a forgotten prepared transaction holds every
//! follower back (they see no newer events) until it ends; nothing is lost meanwhile. Keep
//! write transactions short on a cluster that serves Recount, and watch for old transactions
//! in `pg_stat_activity` (`backend_xid`) and `pg_prepared_xacts`. Read-only transactions do
//! not hold the horizon back.
//!
//! Filtered reads keep the same rule and return, as `last_seen`, how far they looked: the
//! last event below the horizon when the batch was not full, never beyond it.
//!
//! ## Wake-ups
//!
//! After appends commit, the store sends `NOTIFY` on
//! [`PgEventStore::notification_channel`], coalesced to at most one per
//! [`PgOptions::notify_interval`] (10 ms by default) per store handle, and never inside the
//! append's transaction.
//! [`wait_for_append`](recount::EventStore::wait_for_append) waits on one shared `LISTEN`
//! connection per store, so a projection runner sleeps until something happened instead of
//! polling in a tight loop. Notifications are hints: always read again, and poll on a timeout.
//!
//! ## Projections
//!
//! [`PgEventStore::commit_with_checkpoint`] runs a projection's own writes and the
//! checkpoint's compare-and-set in one transaction: both commit or neither does.

mod append;
mod checkpoint;
mod error;
mod notify;
mod options;
mod pgtypes;
mod projection;
mod queries;
mod read;
mod sql;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use options::PgOptions;
pub use projection::{PgProjection, PgReadModel};
pub use store::PgEventStore;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use chrono::{DateTime, Utc};
    use recount::{RecordedEvent, Result};
    use uuid::Uuid;

    /// One event row's columns as the driver decoded them: each its value or the driver's
    /// error text (`transaction_id, global_position, stream_id, stream_version, event_id,
    /// event_type, schema_version, payload, metadata, recorded_at`).
    #[derive(Debug, Clone)]
    #[allow(missing_docs)]
    pub struct EventColumns<'r> {
        pub transaction_id: std::result::Result<u64, String>,
        pub global_position: std::result::Result<i64, String>,
        pub stream_id: std::result::Result<&'r str, String>,
        pub stream_version: std::result::Result<i64, String>,
        pub event_id: std::result::Result<Uuid, String>,
        pub event_type: std::result::Result<&'r str, String>,
        pub schema_version: std::result::Result<i32, String>,
        pub payload: std::result::Result<String, String>,
        pub metadata: std::result::Result<String, String>,
        pub recorded_at: std::result::Result<DateTime<Utc>, String>,
    }

    /// Checks decoded columns as every read does: the event or `Error::Corrupt`.
    pub fn decode_event_columns(c: EventColumns<'_>) -> Result<RecordedEvent> {
        crate::read::EventColumns {
            transaction_id: c.transaction_id,
            global_position: c.global_position,
            stream_id: c.stream_id,
            stream_version: c.stream_version,
            event_id: c.event_id,
            event_type: c.event_type,
            schema_version: c.schema_version,
            payload: c.payload,
            metadata: c.metadata,
            recorded_at: c.recorded_at,
        }
        .decode()
    }

    /// An `xid8` column in the binary format (8 bytes, big-endian), as the driver reads it.
    pub fn xid8_from_binary(bytes: &[u8]) -> std::result::Result<u64, String> {
        crate::pgtypes::xid8_from_binary(bytes)
            .map(|x| x.0)
            .map_err(|e| e.to_string())
    }

    /// An `xid8` column in the text format, as the driver reads it.
    pub fn xid8_from_text(text: &str) -> std::result::Result<u64, String> {
        crate::pgtypes::xid8_from_text(text)
            .map(|x| x.0)
            .map_err(|e| e.to_string())
    }
}
