//! Every SQL statement of the store, in one place (the schema itself is in `migrations/`).
//!
//! Statements run through rusqlite's per-connection cache (`prepare_cached`), so each is
//! compiled once per connection.

/// Migrations, in order; the schema version is their count.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_checkpoint_state.sql"),
];

// --- connection setup -------------------------------------------------------------------

/// WAL: readers never block the writer and see whole transactions.
pub(crate) const PRAGMA_WAL: &str = "PRAGMA journal_mode = WAL";
/// `synchronous = NORMAL`: survives a process crash, not a power cut.
pub(crate) const PRAGMA_SYNC_NORMAL: &str = "PRAGMA synchronous = NORMAL";
/// `synchronous = FULL`: survives a power cut too, at about 4× the cost per commit.
pub(crate) const PRAGMA_SYNC_FULL: &str = "PRAGMA synchronous = FULL";
/// No checkpoint at commit: the checkpoint thread does them (see `checkpoint.rs`).
pub(crate) const PRAGMA_NO_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0";
/// Copies committed WAL frames into the database file without blocking writers or readers.
pub(crate) const CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// Takes the write lock, checkpoints everything and, once no reader uses the WAL, makes the
/// next write start it over from its beginning (waits are bounded by the busy timeout).
pub(crate) const CHECKPOINT_RESTART: &str = "PRAGMA wal_checkpoint(RESTART)";
/// As [`CHECKPOINT_RESTART`], and truncates the WAL file to nothing.
pub(crate) const CHECKPOINT_TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";
/// The page size, to turn the WAL's page count into bytes.
pub(crate) const PAGE_SIZE: &str = "PRAGMA page_size";
/// Temporary b-trees (sorting) in memory.
pub(crate) const PRAGMA_TEMP_MEMORY: &str = "PRAGMA temp_store = MEMORY";

// --- transactions on the writer ---------------------------------------------------------

/// One savepoint per unit of a group commit.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT recount_unit";
/// Keeps a unit's writes.
pub(crate) const RELEASE: &str = "RELEASE recount_unit";
/// Drops a rejected unit's writes, leaving the rest of the group alone.
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO recount_unit";

// --- streams ----------------------------------------------------------------------------

/// `(version, deleted)` of a stream.
pub(crate) const STREAM_STATE: &str = "SELECT version, deleted FROM streams WHERE stream_id = ?1";

/// Sets a stream's version after an append.
pub(crate) const STREAM_SET_VERSION: &str =
    "INSERT INTO streams (stream_id, version, deleted) VALUES (?1, ?2, 0) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";

/// Tombstones a stream, creating its row when it was never written (its id is then never used).
pub(crate) const STREAM_DELETE: &str =
    "INSERT INTO streams (stream_id, version, deleted) VALUES (?1, ?2, 1) \
     ON CONFLICT (stream_id) DO UPDATE SET deleted = 1";

// --- events -----------------------------------------------------------------------------

/// Appends one event; its position is the new rowid.
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (stream_id, category, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Where an event id is stored: `(stream_id, stream_version, position)`.
pub(crate) const EVENT_BY_ID: &str =
    "SELECT stream_id, stream_version, position FROM events WHERE event_id = ?1";

/// The columns [`crate::reader`] decodes, in its order.
macro_rules! event_columns {
    () => {
        "position, stream_id, stream_version, event_id, event_type, schema_version, payload, \
         metadata, recorded_at"
    };
}

/// A stream's events from a version on, in version order.
pub(crate) const READ_STREAM: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version LIMIT ?3"
);

/// One event by its id (the `events_event_id` index).
pub(crate) const READ_EVENT: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE event_id = ?1"
);

/// The global log after a position.
pub(crate) const READ_LOG: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
);

/// The global log after a position, one category (range scan of `events_category`).
pub(crate) const READ_LOG_CATEGORY: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE category = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
);

/// The global log after a position, one event type (range scan of `events_type`).
pub(crate) const READ_LOG_TYPE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE event_type = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
);

/// The last committed position (0 for an empty log).
/// Events after a position (for progress and lag).
pub(crate) const COUNT_AFTER: &str = "SELECT count(*) FROM events WHERE position > ?1";

/// Events after a position in any of the categories or of any of the types (JSON arrays).
pub(crate) const COUNT_AFTER_FILTERED: &str = concat!(
    "SELECT count(*) FROM events WHERE position > ?1 AND (",
    "category IN (SELECT value FROM json_each(?2)) OR event_type IN (SELECT value FROM json_each(?3)))"
);

pub(crate) const MAX_POSITION: &str = "SELECT coalesce(max(position), 0) FROM events";

// --- snapshots --------------------------------------------------------------------------

/// Saves a snapshot unless a newer one is stored (same or newer version replaces).
pub(crate) const SAVE_SNAPSHOT: &str =
    "INSERT INTO snapshots (stream_id, version, tag, state) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, tag = excluded.tag, \
     state = excluded.state WHERE excluded.version >= snapshots.version";

/// The stored snapshot: `(version, tag, state)`.
pub(crate) const LOAD_SNAPSHOT: &str =
    "SELECT version, tag, state FROM snapshots WHERE stream_id = ?1";

/// Drops a deleted stream's snapshot.
pub(crate) const DELETE_SNAPSHOT: &str = "DELETE FROM snapshots WHERE stream_id = ?1";

// --- checkpoints ------------------------------------------------------------------------

/// A checkpoint: `(cursor_major, cursor_minor)`.
pub(crate) const LOAD_CHECKPOINT: &str =
    "SELECT cursor_major, cursor_minor FROM checkpoints WHERE name = ?1";

/// A checkpoint with its state: `(cursor_major, cursor_minor, state)`.
pub(crate) const LOAD_CHECKPOINT_STATE: &str =
    "SELECT cursor_major, cursor_minor, state FROM checkpoints WHERE name = ?1";

/// Sets a checkpoint and its state (after the compare).
pub(crate) const SET_CHECKPOINT_STATE: &str =
    "INSERT INTO checkpoints (name, cursor_major, cursor_minor, state) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (name) DO UPDATE SET cursor_major = excluded.cursor_major, \
     cursor_minor = excluded.cursor_minor, state = excluded.state";

/// Sets a checkpoint, keeping its state (after the compare).
pub(crate) const SET_CHECKPOINT: &str =
    "INSERT INTO checkpoints (name, cursor_major, cursor_minor) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name) DO UPDATE SET cursor_major = excluded.cursor_major, \
     cursor_minor = excluded.cursor_minor";
