//! SQLite event store for Recount, on rusqlite with SQLite bundled: nothing to install.
//!
//! [`SqliteEventStore`] keeps a whole store in one database file and honours the whole store
//! contract of `recount` (the conformance suite runs against it).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use recount::{EventStore, ExpectedVersion, NewEvent, StreamId};
//! use recount_sqlite::SqliteEventStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
//! let s = StreamId::new("counter", "1").unwrap();
//! let e = NewEvent::new("counter.added", &serde_json::json!({"by": 1})).unwrap();
//! let r = store.append(&s, ExpectedVersion::NoStream, vec![e]).await.unwrap();
//! assert_eq!(r.version, 1);
//! assert_eq!(store.read_stream(&s, 1, 10).await.unwrap().len(), 1);
//! # });
//! ```
//!
//! # Threads
//!
//! The async runtime never waits on SQLite. One writer thread owns the only write connection.
//! Every write (append, delete, snapshot, checkpoint, [projection
//! transaction](SqliteEventStore::commit_with_checkpoint)) is queued to it; it takes what is
//! queued (up to [`SqliteOptions::max_group`]), runs each operation in its own savepoint of one
//! `BEGIN IMMEDIATE` transaction, rolls back only a rejected operation's savepoint, and commits
//! once: under concurrency many appends share one commit ([`SqliteStats`] counts them). Reads
//! run on a pool of read-only connections in tokio's blocking pool.
//!
//! # Durability
//!
//! The database is in WAL mode with `synchronous = NORMAL` by default: a committed append
//! survives a crash of the process, but the last commits may be lost in a power cut or an
//! operating-system crash (the file stays consistent). [`SqliteSynchronous::Full`] survives a
//! power cut too, at about 4× the cost of a single-event append.
//!
//! # Several processes
//!
//! Several processes may open the same file. `BEGIN IMMEDIATE` and the busy timeout serialize
//! their writers, and the expected-version check always runs inside the writing transaction.
//! A database locked past [`SqliteOptions::busy_timeout`] fails the operation with a retriable
//! [`recount::Error::Store`]. `wait_for_append` wakes on this process's appends only; others'
//! are seen when its timeout passes.
//!
//! # Schema
//!
//! Embedded migrations (`migrations/NNNN_*.sql`, applied on open by `rusqlite_migration`,
//! bookkept in SQLite's `user_version`) create `events` (the global log: `position INTEGER
//! PRIMARY KEY` is the [`Cursor`](recount::Cursor) position), `streams` (version and
//! tombstone), `snapshots` (the newest per stream) and `checkpoints`, with indexes for stream
//! reads and for reading the log by category and by event type. A file migrated by a newer
//! Recount is refused with [`recount::Error::SchemaTooNew`].
//!
//! Event ids are stored as 16-byte blobs; time-ordered ids (UUID v7, the default of
//! [`recount::NewEvent`]) keep their unique index append-only, which makes batches several
//! times faster than random ids.
//!
//! # Errors
//!
//! Engine failures are [`recount::Error::Store`] with a [`SqliteError`] source; a stored row
//! that does not decode is [`recount::Error::Corrupt`] naming its event id and stream.

mod checkpoint;
mod connect;
mod error;
mod options;
mod projection;
mod queries;
mod reader;
mod sql;
mod store;
mod write;
mod writer;

pub use error::SqliteError;
pub use options::{SqliteOptions, SqliteSynchronous};
pub use projection::{SqliteProjection, SqliteReadModel};
pub use store::SqliteEventStore;
pub use writer::SqliteStats;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use recount::{RecordedEvent, Result};
    pub use rusqlite::types::ValueRef;

    /// How many columns an event row has.
    pub const EVENT_COLUMNS: usize = crate::reader::EVENT_COLUMNS;

    /// Decodes the values of one event row (`position, stream_id, stream_version, event_id,
    /// event_type, schema_version, payload, metadata, recorded_at`) as every read does.
    pub fn decode_event_row(cols: &[ValueRef<'_>; EVENT_COLUMNS]) -> Result<RecordedEvent> {
        crate::reader::Decoder::default().decode_values(cols)
    }
}

/// The rusqlite this store is built on, for the closures of
/// [`SqliteEventStore::commit_with_checkpoint`].
pub use rusqlite;
