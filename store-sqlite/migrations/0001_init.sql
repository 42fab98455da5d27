-- Recount SQLite schema, version 1.
--
-- `IF NOT EXISTS` everywhere: two processes opening a fresh file at once may both run this
-- migration; the second one then changes nothing.

-- The global log. `position` is the rowid: SQLite serializes writers, so positions commit in
-- order and a reader's snapshot always holds a prefix of the log (store contract, item 5).
-- Events are never deleted, so a position is never reused.
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,  -- 16 bytes; time-ordered (UUID v7) keeps its index append-only
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,  -- JSON object text, returned as stored
    metadata       TEXT    NOT NULL,  -- JSON object text
    recorded_at    INTEGER NOT NULL   -- microseconds since the Unix epoch, UTC
);

-- Event ids are unique in the store (item 4); a violation is how an append learns that it may
-- be a retry.
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id);
-- Stream reads, and the last line of defence for item 1: one row per (stream, version).
CREATE UNIQUE INDEX IF NOT EXISTS events_stream ON events (stream_id, stream_version);
-- Filtered reads of the global log (item 6): one ordered range scan per category or type.
CREATE INDEX IF NOT EXISTS events_category ON events (category, position);
CREATE INDEX IF NOT EXISTS events_type ON events (event_type, position);

-- One row per stream ever written or deleted: its version and tombstone (items 1, 2, 8).
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The newest snapshot per stream (item 9).
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL,
    tag       TEXT    NOT NULL,
    state     TEXT    NOT NULL
) WITHOUT ROWID;

-- Named cursors, compare-and-set (item 10). A cursor is stored as its two parts, each a
-- u64 kept bit for bit in an INTEGER.
CREATE TABLE IF NOT EXISTS checkpoints (
    name         TEXT    PRIMARY KEY,
    cursor_major INTEGER NOT NULL,
    cursor_minor INTEGER NOT NULL
) WITHOUT ROWID;
