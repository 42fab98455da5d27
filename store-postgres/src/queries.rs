//! Every SQL statement the store sends, in one place. Tables and functions are created
//! by `migrations/`; here `{schema}` stands for the configured, validated, quoted schema.

/// The class key of every advisory lock the store takes (the per-stream locks of the functions
/// in `migrations/` use it too, written there as a number).
pub(crate) const LOCK_CLASS: i32 = 1919250021;

/// The columns of an event row, in the order `read::decode_event` reads them.
const EVENT_COLUMNS: &str = "e.transaction_id, e.global_position, e.stream_id, e.stream_version, \
     e.event_id, e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at";

/// One append, one round trip: the function checks the version, then inserts all events.
const APPEND: &str = "SELECT outcome, stream_version, transaction_id, global_position, event_id \
     FROM {schema}.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A single-event append, one round trip: the same checks with plain values for the event.
const APPEND_ONE: &str =
    "SELECT outcome, stream_version, transaction_id, global_position, event_id \
     FROM {schema}.append_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The fast path of `append_event` for an exact expected version of an existing stream: the
/// same checks as one statement instead of a function call (the call alone costs more than the
/// stream row's update). Returns no row when the check did not pass; nothing was written then,
/// and the caller asks `append_event`, which tells a conflict from a deleted stream or an exact
/// retry.
///
/// It takes no advisory lock: the stream row's lock orders it. Its transaction gets an id when
/// the `UPDATE` starts, perhaps before it waits for the row; but if the writer it waited for
/// changed the row (a new version, a tombstone), read committed's recheck finds the version
/// no longer equal to `$3` and nothing is written. So when it writes, every earlier writer of
/// the stream had committed before its statement began, with a smaller transaction id. The
/// functions lock the row before anything gives their transaction an id (migration 0003), so
/// they too get a larger id than a fast-path writer they waited for: within a stream, log
/// order is version order.
const APPEND_EXACT: &str = "WITH bumped AS ( \
         UPDATE {schema}.streams s SET version = s.version + 1 \
         WHERE s.stream_id = $1::text AND s.version = $3::int8 AND NOT s.deleted \
         RETURNING s.version) \
     INSERT INTO {schema}.events AS e (stream_id, stream_version, category, event_id, \
         event_type, schema_version, payload, metadata, correlation_id, causation_id) \
     SELECT $1::text, b.version, $2::text, $4::uuid, $5::text, $6::int4, $7::text::json, \
         $8::text::json, $9::uuid, $10::uuid \
     FROM bumped b \
     RETURNING 0::int4, e.stream_version, e.transaction_id, e.global_position, e.event_id";

/// After a unique violation: is the append an exact retry?
const CLASSIFY_RETRY: &str = "SELECT outcome, stream_version, transaction_id, global_position, \
     event_id FROM {schema}.classify_retry($1, $2) WHERE outcome IS NOT NULL";

const DELETE_STREAM: &str =
    "SELECT outcome, stream_version FROM {schema}.delete_stream($1, $2, $3)";

/// The stream's tombstone flag and the requested events, in one statement (so a snapshot
/// load is one round trip for the snapshot and one for the tail).
const READ_STREAM: &str = "SELECT s.deleted, {columns} FROM {schema}.streams s \
     LEFT JOIN LATERAL (SELECT * FROM {schema}.events e \
         WHERE e.stream_id = s.stream_id AND e.stream_version >= $2 \
         ORDER BY e.stream_version LIMIT $3) e ON true \
     WHERE s.stream_id = $1 ORDER BY e.stream_version";

const STREAM_VERSION: &str = "SELECT version, deleted FROM {schema}.streams WHERE stream_id = $1";

/// One event by id (the `events_event_id` unique index).
const READ_EVENT: &str = "SELECT {columns} FROM {schema}.events e WHERE e.event_id = $1";

/// The global log after a cursor, only below the snapshot's xmin: every transaction with a
/// smaller id has finished, so no row can appear there later (store contract, item 5).
///
/// The page is taken in log order first and cut at the horizon afterwards. Rows below the
/// horizon sort before all rows above it, so the cut keeps a prefix: exactly the first rows
/// below the horizon. Written this way the planner always walks the primary key in order (the
/// raw read's plan); with the horizon inside the scan it may misjudge how many rows match and
/// sort a bitmap scan of the whole tail instead, several times slower.
const READ_ALL: &str = "SELECT {columns} FROM ( \
         SELECT * FROM {schema}.events e \
         WHERE (e.transaction_id, e.global_position) > ($1, $2) \
         ORDER BY e.transaction_id, e.global_position LIMIT $3) e \
     WHERE e.transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
     ORDER BY e.transaction_id, e.global_position";

/// A filtered read: the matching events after the cursor below the horizon (cut as in
/// `READ_ALL`), and, from the same snapshot, the last event below the horizon (how far the
/// read has looked).
const READ_ALL_FILTERED: &str = "WITH horizon AS MATERIALIZED ( \
         SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin), \
     matched AS ( \
         SELECT m.* FROM ( \
             SELECT e.* FROM {schema}.events e \
             WHERE (e.transaction_id, e.global_position) > ($1, $2) \
               AND (e.category = ANY($4) OR e.event_type = ANY($5)) \
             ORDER BY e.transaction_id, e.global_position LIMIT $3) m, horizon h \
         WHERE m.transaction_id < h.xmin), \
     last_visible AS ( \
         SELECT e.transaction_id, e.global_position FROM {schema}.events e, horizon h \
         WHERE e.transaction_id < h.xmin \
         ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1) \
     SELECT l.transaction_id AS horizon_tx, l.global_position AS horizon_pos, {columns} \
     FROM (SELECT 1) one \
     LEFT JOIN last_visible l ON true \
     LEFT JOIN matched e ON true \
     ORDER BY e.transaction_id, e.global_position";

/// The newest transaction with committed events that a read cannot return yet, because an
/// older transaction is still running somewhere in the cluster (NULL when there is none).
const HELD_BACK: &str = "SELECT e.transaction_id FROM {schema}.events e \
     WHERE e.transaction_id >= pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY e.transaction_id DESC LIMIT 1";

/// How many committed events after a cursor pass a filter (`$3`: no filter). Events held
/// back by an older open transaction are counted too: a follower will be handed them (every
/// transaction older than the cursor's has ended, so none can appear before it).
const COUNT_AFTER: &str = "SELECT count(*) FROM {schema}.events e \
     WHERE (e.transaction_id, e.global_position) > ($1, $2) \
       AND ($3 OR e.category = ANY($4) OR e.event_type = ANY($5))";

/// Whether the horizon has passed a transaction.
pub(crate) const HORIZON_PASSED: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1";

/// Whether anything is readable after a cursor (checked before waiting for a wake-up).
const HAS_EVENTS_AFTER: &str = "SELECT EXISTS (SELECT 1 FROM {schema}.events e \
     WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
       AND (e.transaction_id, e.global_position) > ($1, $2))";

/// Same or newer version replaces (store contract, item 9); only a snapshot that fits the
/// stream is written (`Snapshot::check_fits`: version 1 ..= the stream's, any version for a
/// stream with no events; not deleted). Returns the stream's `(version, deleted)`, no row for
/// a stream never written.
const SAVE_SNAPSHOT: &str = "WITH stream AS (\
         SELECT version, deleted FROM {schema}.streams WHERE stream_id = $1), \
     saved AS (\
         INSERT INTO {schema}.snapshots AS s (stream_id, version, tag, state) \
         SELECT $1, $2, $3, $4 \
         FROM (SELECT 1) AS one LEFT JOIN stream ON true \
         WHERE NOT coalesce(stream.deleted, false) \
           AND (coalesce(stream.version, 0) = 0 OR ($2 >= 1 AND $2 <= stream.version)) \
         ON CONFLICT (stream_id) DO UPDATE \
             SET version = excluded.version, tag = excluded.tag, state = excluded.state \
             WHERE s.version <= excluded.version \
         RETURNING 1) \
     SELECT version, deleted FROM stream";

const LOAD_SNAPSHOT: &str =
    "SELECT version, tag, state FROM {schema}.snapshots WHERE stream_id = $1";

const LOAD_CHECKPOINT: &str = "SELECT major, minor FROM {schema}.checkpoints WHERE name = $1";

const LOAD_CHECKPOINT_STATE: &str =
    "SELECT major, minor, state FROM {schema}.checkpoints WHERE name = $1";

/// Compare-and-set from "not stored", with a state.
const INSERT_CHECKPOINT_STATE: &str =
    "INSERT INTO {schema}.checkpoints (name, major, minor, state) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";

/// Compare-and-set from a stored cursor, replacing the state.
const UPDATE_CHECKPOINT_STATE: &str = "UPDATE {schema}.checkpoints \
     SET major = $4, minor = $5, state = $6, updated_at = now() \
     WHERE name = $1 AND major = $2 AND minor = $3";

/// Compare-and-set from "not stored".
const INSERT_CHECKPOINT: &str = "INSERT INTO {schema}.checkpoints (name, major, minor) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";

/// Compare-and-set from a stored cursor.
const UPDATE_CHECKPOINT: &str = "UPDATE {schema}.checkpoints \
     SET major = $4, minor = $5, updated_at = now() \
     WHERE name = $1 AND major = $2 AND minor = $3";

/// The wake-up sent after appends commit (coalesced; see `notify.rs`). `NOTIFY` gives its
/// transaction an id, so it commits like a write; a hint needs no flush to disk, so its commit
/// does not wait for one (and takes no turn in the appenders' group commits).
pub(crate) const NOTIFY: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')";

/// Every statement, with the schema filled in once when the store is built.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) append: String,
    pub(crate) append_one: String,
    pub(crate) append_exact: String,
    pub(crate) classify_retry: String,
    pub(crate) delete_stream: String,
    pub(crate) read_stream: String,
    pub(crate) read_event: String,
    pub(crate) stream_version: String,
    pub(crate) read_all: String,
    pub(crate) read_all_filtered: String,
    pub(crate) has_events_after: String,
    pub(crate) count_after: String,
    pub(crate) held_back: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_snapshot: String,
    pub(crate) load_checkpoint: String,
    pub(crate) insert_checkpoint: String,
    pub(crate) update_checkpoint: String,
    pub(crate) load_checkpoint_state: String,
    pub(crate) insert_checkpoint_state: String,
    pub(crate) update_checkpoint_state: String,
}

impl Queries {
    /// The statements for `schema`, which must already be validated.
    pub(crate) fn new(schema: &str) -> Self {
        let quoted = format!("\"{schema}\"");
        let q = |template: &str| {
            template
                .replace("{columns}", EVENT_COLUMNS)
                .replace("{schema}", &quoted)
        };
        Queries {
            append: q(APPEND),
            append_one: q(APPEND_ONE),
            append_exact: q(APPEND_EXACT),
            classify_retry: q(CLASSIFY_RETRY),
            delete_stream: q(DELETE_STREAM),
            read_stream: q(READ_STREAM),
            read_event: q(READ_EVENT),
            stream_version: q(STREAM_VERSION),
            read_all: q(READ_ALL),
            read_all_filtered: q(READ_ALL_FILTERED),
            has_events_after: q(HAS_EVENTS_AFTER),
            count_after: q(COUNT_AFTER),
            held_back: q(HELD_BACK),
            save_snapshot: q(SAVE_SNAPSHOT),
            load_snapshot: q(LOAD_SNAPSHOT),
            load_checkpoint: q(LOAD_CHECKPOINT),
            insert_checkpoint: q(INSERT_CHECKPOINT),
            update_checkpoint: q(UPDATE_CHECKPOINT),
            load_checkpoint_state: q(LOAD_CHECKPOINT_STATE),
            insert_checkpoint_state: q(INSERT_CHECKPOINT_STATE),
            update_checkpoint_state: q(UPDATE_CHECKPOINT_STATE),
        }
    }
}
