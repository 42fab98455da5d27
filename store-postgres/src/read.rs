//! Reading events: row decoding, stream reads and the gap-safe global log.

use crate::error::store_error;
use crate::pgtypes::{JsonText, Xid8};
use crate::queries::HORIZON_PASSED;
use crate::store::PgEventStore;
use chrono::{DateTime, Utc};
use recount::{Cursor, Error, LogBatch, LogFilter, RecordedEvent, Result, StreamId};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a read waits for an older open transaction that holds back committed events
/// before returning what is readable (see the crate docs: what delays readers).
pub(crate) const HOLD_BACK_WAIT: Duration = Duration::from_secs(5);

/// Turns a limit into a SQL `LIMIT` (`usize::MAX` means "all").
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The two halves of a cursor as SQL parameters.
pub(crate) fn cursor_params(cursor: Cursor) -> (Xid8, i64) {
    let (major, minor) = cursor.parts();
    (Xid8(major), i64::try_from(minor).unwrap_or(i64::MAX))
}

/// A cursor from a row's transaction id and global position.
pub(crate) fn cursor_of(transaction_id: Xid8, global_position: i64) -> Result<Cursor> {
    let position = crate::error::stored("global position", global_position)?;
    Ok(Cursor::from_parts(transaction_id.0, position))
}

/// Decodes the event columns starting at column `at` (see `queries::EVENT_COLUMNS`). A row
/// that does not decode is [`Error::Corrupt`] naming the event and its stream, as far as they
/// are readable.
pub(crate) fn decode_event(row: &PgRow, at: usize) -> Result<RecordedEvent> {
    let get = |e: sqlx::Error| e.to_string();
    EventColumns {
        transaction_id: row.try_get::<Xid8, _>(at).map(|x| x.0).map_err(get),
        global_position: row.try_get(at + 1).map_err(get),
        stream_id: row.try_get(at + 2).map_err(get),
        stream_version: row.try_get(at + 3).map_err(get),
        event_id: row.try_get(at + 4).map_err(get),
        event_type: row.try_get(at + 5).map_err(get),
        schema_version: row.try_get(at + 6).map_err(get),
        payload: row.try_get(at + 7).map(|JsonText(t)| t).map_err(get),
        metadata: row.try_get(at + 8).map(|JsonText(t)| t).map_err(get),
        recorded_at: row.try_get(at + 9).map_err(get),
    }
    .decode()
}

/// One event row's columns as the driver decoded them, each its value or why it did not
/// decode. Checking them needs no server, so the fuzz targets reach it directly.
#[derive(Debug, Clone)]
pub(crate) struct EventColumns<'r> {
    pub(crate) transaction_id: std::result::Result<u64, String>,
    pub(crate) global_position: std::result::Result<i64, String>,
    pub(crate) stream_id: std::result::Result<&'r str, String>,
    pub(crate) stream_version: std::result::Result<i64, String>,
    pub(crate) event_id: std::result::Result<Uuid, String>,
    pub(crate) event_type: std::result::Result<&'r str, String>,
    pub(crate) schema_version: std::result::Result<i32, String>,
    pub(crate) payload: std::result::Result<String, String>,
    pub(crate) metadata: std::result::Result<String, String>,
    pub(crate) recorded_at: std::result::Result<DateTime<Utc>, String>,
}

impl EventColumns<'_> {
    /// The event, or [`Error::Corrupt`] naming it as far as it is readable.
    pub(crate) fn decode(self) -> Result<RecordedEvent> {
        let event_id = self.event_id.as_ref().ok().copied();
        let stream = self.stream_id.as_ref().ok().copied();
        let event_type = self.event_type.as_ref().ok().copied();
        let corrupt = |reason: String| Error::Corrupt {
            event_id: event_id.unwrap_or(Uuid::nil()),
            stream: stream.unwrap_or("<unreadable>").to_owned(),
            event_type: event_type.unwrap_or("<unreadable>").to_owned(),
            reason,
        };
        let field = |name: &str, e: String| corrupt(format!("{name}: {e}"));
        let id = event_id.ok_or_else(|| corrupt("the event id does not decode".to_owned()))?;
        let stream = stream.ok_or_else(|| corrupt("the stream id does not decode".to_owned()))?;
        let stream = StreamId::parse(stream).map_err(|e| corrupt(format!("stream id: {e}")))?;
        let transaction_id = self
            .transaction_id
            .map_err(|e| field("transaction id", e))?;
        let position = self
            .global_position
            .map_err(|e| field("global position", e))?;
        let version = self
            .stream_version
            .map_err(|e| field("stream version", e))?;
        let event_type = self.event_type.map_err(|e| field("event type", e))?;
        let schema_version = self
            .schema_version
            .map_err(|e| field("schema version", e))?;
        let payload = self.payload.map_err(|e| field("payload", e))?;
        let metadata = self.metadata.map_err(|e| field("metadata", e))?;
        let recorded_at = self.recorded_at.map_err(|e| field("recorded at", e))?;
        let (Some(version), Some(position)) = (
            u64::try_from(version).ok().filter(|v| *v > 0),
            u64::try_from(position).ok().filter(|p| *p > 0),
        ) else {
            return Err(corrupt(format!(
                "stream version {version} at global position {position}"
            )));
        };
        let schema_version = u32::try_from(schema_version)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| corrupt(format!("schema version {schema_version}")))?;
        Ok(RecordedEvent {
            id,
            stream,
            version,
            cursor: Cursor::from_parts(transaction_id, position),
            event_type: event_type.to_owned(),
            schema_version,
            payload,
            metadata,
            recorded_at,
        })
    }
}

impl PgEventStore {
    pub(crate) async fn read_stream_impl(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let rows = sqlx::query(&self.sql().read_stream)
            .bind(stream.as_str())
            .bind(from)
            .bind(sql_limit(limit))
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let deleted: bool = row.try_get(0).map_err(store_error)?;
            if deleted {
                return Err(Error::StreamDeleted {
                    stream: stream.clone(),
                });
            }
            // The LEFT JOIN yields one row of NULLs when no event matched.
            if row
                .try_get::<Option<i64>, _>(2)
                .map_err(store_error)?
                .is_none()
            {
                continue;
            }
            events.push(decode_event(row, 1)?);
        }
        Ok(events)
    }

    pub(crate) async fn read_event_impl(&self, id: Uuid) -> Result<Option<RecordedEvent>> {
        let row = sqlx::query(&self.sql().read_event)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        row.map(|row| decode_event(&row, 0)).transpose()
    }

    /// One read of the global log; when it comes back short while committed events are held
    /// back behind an older open transaction, waits (bounded) for that transaction to end
    /// and reads again, so a read returns everything committed before it was called.
    pub(crate) async fn read_all_impl(
        &self,
        after: Cursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<LogBatch> {
        let batch = self.read_all_once(after, filter, limit).await?;
        if batch.events.len() >= limit {
            return Ok(batch);
        }
        let held: Option<Xid8> = sqlx::query_scalar(&self.sql().held_back)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        if let Some(held) = held {
            if !self.wait_for_horizon(held).await? {
                return Ok(batch);
            }
        }
        // Read again even when nothing is held back now: the horizon may have passed the
        // events this read missed between the first read and the check.
        self.read_all_once(after, filter, limit).await
    }

    /// Polls until the horizon (the oldest running transaction) has passed `tx`; `false`
    /// when it has not within [`HOLD_BACK_WAIT`].
    async fn wait_for_horizon(&self, tx: Xid8) -> Result<bool> {
        let deadline = Instant::now() + HOLD_BACK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            tokio::time::sleep(pause).await;
            let passed: bool = sqlx::query_scalar(HORIZON_PASSED)
                .bind(tx)
                .fetch_one(self.pool())
                .await
                .map_err(store_error)?;
            if passed {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            pause = (pause * 2).min(Duration::from_millis(16));
        }
    }

    async fn read_all_once(
        &self,
        after: Cursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<LogBatch> {
        if filter.is_all() {
            return self.read_all_unfiltered(after, limit).await;
        }
        let (tx, pos) = cursor_params(after);
        let rows = sqlx::query(&self.sql().read_all_filtered)
            .bind(tx)
            .bind(pos)
            .bind(sql_limit(limit))
            .bind(&filter.categories)
            .bind(&filter.event_types)
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        let mut events = Vec::with_capacity(rows.len());
        let mut horizon = None;
        for row in &rows {
            let htx: Option<Xid8> = row.try_get(0).map_err(store_error)?;
            let hpos: Option<i64> = row.try_get(1).map_err(store_error)?;
            if let (Some(htx), Some(hpos)) = (htx, hpos) {
                horizon = Some(cursor_of(htx, hpos)?);
            }
            if row
                .try_get::<Option<i64>, _>(3)
                .map_err(store_error)?
                .is_some()
            {
                events.push(decode_event(row, 2)?);
            }
        }
        // A full batch has looked as far as its last event; a short one has looked at every
        // event below the horizon (store contract, item 6). Never move back.
        let looked = match events.last() {
            Some(last) if events.len() >= limit => last.cursor,
            _ => horizon.unwrap_or(after),
        };
        Ok(LogBatch {
            events,
            last_seen: looked.max(after),
        })
    }

    async fn read_all_unfiltered(&self, after: Cursor, limit: usize) -> Result<LogBatch> {
        let (tx, pos) = cursor_params(after);
        let rows = sqlx::query(&self.sql().read_all)
            .bind(tx)
            .bind(pos)
            .bind(sql_limit(limit))
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        let events = rows
            .iter()
            .map(|row| decode_event(row, 0))
            .collect::<Result<Vec<_>>>()?;
        let last_seen = events.last().map_or(after, |e| e.cursor);
        Ok(LogBatch { events, last_seen })
    }

    pub(crate) async fn has_events_after(&self, after: Cursor) -> Result<bool> {
        let (tx, pos) = cursor_params(after);
        sqlx::query_scalar(&self.sql().has_events_after)
            .bind(tx)
            .bind(pos)
            .fetch_one(self.pool())
            .await
            .map_err(store_error)
    }
}
