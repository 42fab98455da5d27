//! Reads: a small pool of read-only connections used off the async runtime, and the queries
//! that decode stored rows into [`RecordedEvent`]s.

use crate::error;
use crate::queries;
use crate::write::stream_state;
use chrono::DateTime;
use recount::{Cursor, Error, LogBatch, LogFilter, RecordedEvent, Result, Snapshot, StreamId};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Read-only connections, each lent to one blocking read at a time.
#[derive(Debug)]
pub(crate) struct ReadPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

/// A connection on loan; given back when dropped, even when the read panicked.
struct Loan {
    conn: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
    // Dropped after the connection is back in `idle`, so a permit always finds one there.
    _permit: OwnedSemaphorePermit,
}

impl Drop for Loan {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}

impl ReadPool {
    pub(crate) fn new(conns: Vec<Connection>) -> Self {
        let permits = Arc::new(Semaphore::new(conns.len()));
        ReadPool {
            idle: Arc::new(Mutex::new(conns)),
            permits,
        }
    }

    /// Runs `read` on a pooled connection in tokio's blocking pool, so the runtime never
    /// waits on SQLite.
    pub(crate) async fn run<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| error::writer_gone())?;
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let loan = Loan {
            conn,
            idle: self.idle.clone(),
            _permit: permit,
        };
        tokio::task::spawn_blocking(move || {
            let conn = loan
                .conn
                .as_ref()
                .expect("a permit always finds an idle connection");
            read(conn)
        })
        .await
        .map_err(recount::Error::store)?
    }
}

/// Clamps a limit for SQLite's `LIMIT` (an i64).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Events of a stream from a version on (store contract, item 7).
pub(crate) fn read_stream(
    conn: &Connection,
    stream: &StreamId,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>> {
    if stream_state(conn, stream)?.1 {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(queries::READ_STREAM)
        .map_err(error::db)?;
    let mut rows = stmt
        .query(rusqlite::params![stream.as_str(), from, sql_limit(limit)])
        .map_err(error::db)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    let mut decoder = Decoder::default();
    while let Some(row) = rows.next().map_err(error::db)? {
        out.push(decoder.decode(row)?);
    }
    Ok(out)
}

/// A page of the global log (store contract, items 5 and 6).
///
/// Everything runs in one read transaction, so the page and `last_seen` describe the same
/// committed prefix of the log; SQLite commits positions in order, so that prefix has no
/// holes and nothing uncommitted is ever visible.
pub(crate) fn read_all(
    conn: &Connection,
    after: Cursor,
    filter: &LogFilter,
    limit: usize,
) -> Result<LogBatch> {
    let after_pos = i64::try_from(after.position()).unwrap_or(i64::MAX);
    if limit == 0 {
        return Ok(LogBatch {
            events: Vec::new(),
            last_seen: after,
        });
    }
    if filter.is_all() {
        let mut events = Vec::with_capacity(limit.min(1024));
        query_into(
            conn,
            queries::READ_LOG,
            rusqlite::params![after_pos, sql_limit(limit)],
            &mut events,
        )?;
        // With no filter, every committed event after `after` up to the last one returned is
        // in the page.
        let last_seen = events.last().map_or(after, |e| e.cursor);
        return Ok(LogBatch { events, last_seen });
    }
    let tx = conn.unchecked_transaction().map_err(error::db)?;
    // One ordered range scan per category and per type, merged by position: each uses its
    // index, and an event matching several (a category and a type) is kept once.
    let mut events = Vec::new();
    for category in &filter.categories {
        query_into(
            &tx,
            queries::READ_LOG_CATEGORY,
            rusqlite::params![category, after_pos, sql_limit(limit)],
            &mut events,
        )?;
    }
    for event_type in &filter.event_types {
        query_into(
            &tx,
            queries::READ_LOG_TYPE,
            rusqlite::params![event_type, after_pos, sql_limit(limit)],
            &mut events,
        )?;
    }
    events.sort_by_key(|e| e.cursor);
    events.dedup_by_key(|e| e.cursor);
    let last_seen = if events.len() >= limit {
        events.truncate(limit);
        events[limit - 1].cursor
    } else {
        // Fewer matches than asked for: every match up to the end of the committed log is
        // here, so the follower may move to that end (never beyond it).
        let max: i64 = tx
            .prepare_cached(queries::MAX_POSITION)
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(error::db)?;
        after.max(Cursor::from_position(error::stored("position", max)?))
    };
    tx.commit().map_err(error::db)?;
    Ok(LogBatch { events, last_seen })
}

/// How many events after `after` pass `filter`, counted by the database.
pub(crate) fn count_after(conn: &Connection, after: Cursor, filter: &LogFilter) -> Result<u64> {
    let after_pos = i64::try_from(after.position()).unwrap_or(i64::MAX);
    let n: i64 = if filter.is_all() {
        conn.prepare_cached(queries::COUNT_AFTER)
            .and_then(|mut s| s.query_row([after_pos], |r| r.get(0)))
    } else {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        conn.prepare_cached(queries::COUNT_AFTER_FILTERED)
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![
                        after_pos,
                        json(&filter.categories),
                        json(&filter.event_types)
                    ],
                    |r| r.get(0),
                )
            })
    }
    .map_err(error::db)?;
    error::stored("count", n)
}

/// The stored snapshot of a stream (item 9).
pub(crate) fn load_snapshot(conn: &Connection, stream: StreamId) -> Result<Option<Snapshot>> {
    let mut stmt = conn
        .prepare_cached(queries::LOAD_SNAPSHOT)
        .map_err(error::db)?;
    stmt.query_row([stream.as_str()], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .optional()
    .map_err(error::db)?
    .map(|(version, tag, state)| {
        Ok(Snapshot {
            version: error::stored("snapshot version", version)?,
            stream,
            tag,
            state,
        })
    })
    .transpose()
}

fn query_into(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    out: &mut Vec<RecordedEvent>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(error::db)?;
    let mut rows = stmt.query(params).map_err(error::db)?;
    let mut decoder = Decoder::default();
    while let Some(row) = rows.next().map_err(error::db)? {
        out.push(decoder.decode(row)?);
    }
    Ok(())
}

/// Decodes rows of `queries::event_columns!`, reusing the last stream id: a page of the log
/// mostly holds runs of one stream, and parsing a stream id checks every character.
#[derive(Default)]
pub(crate) struct Decoder {
    last_stream: Option<StreamId>,
}

/// How many columns `queries::event_columns!` selects.
pub(crate) const EVENT_COLUMNS: usize = 9;

impl Decoder {
    fn decode(&mut self, row: &Row<'_>) -> Result<RecordedEvent> {
        let mut cols = [ValueRef::Null; EVENT_COLUMNS];
        for (i, col) in cols.iter_mut().enumerate() {
            *col = row.get_ref(i).map_err(error::db)?;
        }
        self.decode_values(&cols)
    }

    /// Decodes one row's values, in the order of `queries::event_columns!`. Whatever the
    /// values are, the answer is an event or [`Error::Corrupt`], never a panic: the file may
    /// have been written by anything.
    pub(crate) fn decode_values(
        &mut self,
        cols: &[ValueRef<'_>; EVENT_COLUMNS],
    ) -> Result<RecordedEvent> {
        let [position, stream_ref, version, id_ref, type_ref, schema_version, payload, metadata, recorded_at] =
            *cols;
        // A row that does not decode names itself as well as it can (item 6 of the issue).
        let corrupt = |reason: String| Error::Corrupt {
            event_id: uuid_of(id_ref).unwrap_or(Uuid::nil()),
            stream: lossy(stream_ref),
            event_type: lossy(type_ref),
            reason,
        };
        let id = uuid_of(id_ref).ok_or_else(|| corrupt("event id is not a 16-byte UUID".into()))?;
        let stream_text =
            text(stream_ref).ok_or_else(|| corrupt("stream id is not UTF-8 text".into()))?;
        let stream = match &self.last_stream {
            Some(s) if s.as_str() == stream_text => s.clone(),
            _ => {
                let s =
                    StreamId::parse(stream_text).map_err(|e| corrupt(format!("stream id: {e}")))?;
                self.last_stream = Some(s.clone());
                s
            }
        };
        let event_type =
            text(type_ref).ok_or_else(|| corrupt("event type is not UTF-8 text".into()))?;
        let payload = json_object(payload)
            .ok_or_else(|| corrupt("payload is not a JSON object text".into()))?;
        let metadata = json_object(metadata)
            .ok_or_else(|| corrupt("metadata is not a JSON object text".into()))?;
        let position = int(position)
            .and_then(|p| u64::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| corrupt("bad position".into()))?;
        let version = int(version)
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| corrupt("bad stream version".into()))?;
        // The bounds an append checks (1 ..= MAX_SCHEMA_VERSION), as PostgreSQL reads do: a
        // version 0 would otherwise reach the event's decoder as if a store had accepted it.
        let schema_version = int(schema_version)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| recount::check_schema_version(*v).is_ok())
            .ok_or_else(|| corrupt("bad schema version".into()))?;
        let recorded_at = int(recorded_at)
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(|| corrupt("bad recorded_at".into()))?;
        Ok(RecordedEvent {
            id,
            stream,
            version,
            cursor: Cursor::from_position(position),
            event_type: event_type.to_owned(),
            schema_version,
            payload: payload.to_owned(),
            metadata: metadata.to_owned(),
            recorded_at,
        })
    }
}

fn uuid_of(v: ValueRef<'_>) -> Option<Uuid> {
    match v {
        ValueRef::Blob(b) => Uuid::from_slice(b).ok(),
        _ => None,
    }
}

fn text(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

/// The stored JSON text, when it is text that looks like an object. The full parse is left to
/// typed decoding, which reports its failures as [`Error::Corrupt`] too; parsing here would
/// cost a replay about as much as reading the row.
fn json_object(v: ValueRef<'_>) -> Option<&str> {
    text(v).filter(|t| {
        let t = t.trim_ascii();
        t.starts_with('{') && t.ends_with('}')
    })
}

fn lossy(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Null => String::new(),
    }
}

/// One event by its id.
pub(crate) fn read_event(conn: &Connection, id: uuid::Uuid) -> Result<Option<RecordedEvent>> {
    let mut stmt = conn
        .prepare_cached(queries::READ_EVENT)
        .map_err(error::db)?;
    let mut rows = stmt.query([id.as_bytes()]).map_err(error::db)?;
    match rows.next().map_err(error::db)? {
        Some(row) => Decoder::default().decode(row).map(Some),
        None => Ok(None),
    }
}
