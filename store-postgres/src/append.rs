//! Appends and deletes: one call of a SQL function each (store contract, items 1–4 and 8);
//! a single event goes through `append_event`, a batch through `append_events`.

use crate::error::{classify, store_error, stored, DbErrorKind};
use crate::pgtypes::Xid8;
use crate::read::cursor_of;
use crate::store::PgEventStore;
use recount::{AppendResult, Error, ExpectedVersion, NewEvent, Result, StreamId, ValidEvent};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

/// The `outcome` codes of `append_events`, `classify_retry` and `delete_stream`.
const WRITTEN: i32 = 0;
const RETRIED: i32 = 1;
const CONFLICT: i32 = 2;
const DELETED: i32 = 3;
const DUPLICATE: i32 = 4;

/// An expected version as the SQL functions take it: -1 any, -2 the stream exists, n exact.
fn expected_code(expected: ExpectedVersion) -> i64 {
    match expected {
        ExpectedVersion::Any => -1,
        ExpectedVersion::StreamExists => -2,
        ExpectedVersion::NoStream => 0,
        // No stream reaches i64::MAX events, so a larger expectation simply never matches.
        ExpectedVersion::Exact(n) => i64::try_from(n).unwrap_or(i64::MAX),
    }
}

/// A batch as parallel arrays, bound as ten parameters whatever its size.
struct Columns {
    ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    payloads: Vec<String>,
    metadata: Vec<String>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
}

impl Columns {
    fn new(
        events: Vec<ValidEvent>,
        correlation: Vec<(Option<Uuid>, Option<Uuid>)>,
    ) -> Result<Self> {
        let n = events.len();
        let mut c = Columns {
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            correlation_ids: Vec::with_capacity(n),
            causation_ids: Vec::with_capacity(n),
        };
        for (e, (correlation_id, causation_id)) in events.into_iter().zip(correlation) {
            let version = i32::try_from(e.schema_version)
                .map_err(|_| Error::invalid("schema version", "larger than 2147483647"))?;
            c.ids.push(e.id);
            c.types.push(e.event_type);
            c.schema_versions.push(version);
            c.payloads.push(String::from(Box::<str>::from(e.payload)));
            c.metadata.push(e.metadata);
            c.correlation_ids.push(correlation_id);
            c.causation_ids.push(causation_id);
        }
        Ok(c)
    }
}

/// One event's append, as the single-event statements bind it.
struct One<'a> {
    stream: &'a StreamId,
    expected: ExpectedVersion,
    event: &'a ValidEvent,
    schema_version: i32,
    /// Correlation and causation ids.
    ids: (Option<Uuid>, Option<Uuid>),
}

/// Reads a function's result row into an append outcome.
fn append_outcome(
    row: &PgRow,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<(i32, AppendResult)> {
    let outcome: i32 = row.try_get(0).map_err(store_error)?;
    let version: Option<i64> = row.try_get(1).map_err(store_error)?;
    let version = stored("stream version", version.unwrap_or(0))?;
    match outcome {
        WRITTEN | RETRIED => {
            let tx: Xid8 = row.try_get(2).map_err(store_error)?;
            let pos: i64 = row.try_get(3).map_err(store_error)?;
            Ok((
                outcome,
                AppendResult {
                    version,
                    cursor: cursor_of(tx, pos)?,
                },
            ))
        }
        CONFLICT => Err(Error::Conflict {
            stream: stream.clone(),
            expected,
            actual: version,
        }),
        DELETED => Err(Error::StreamDeleted {
            stream: stream.clone(),
        }),
        DUPLICATE => {
            let event_id: Uuid = row.try_get(4).map_err(store_error)?;
            Err(Error::DuplicateEvent {
                event_id,
                stream: stream.clone(),
            })
        }
        other => Err(Error::store(format!(
            "append_events returned unknown outcome {other}"
        ))),
    }
}

impl PgEventStore {
    pub(crate) async fn append_impl(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let correlation: Vec<_> = events
            .iter()
            .map(|e| (e.metadata.correlation_id, e.metadata.causation_id))
            .collect();
        let mut events = self.limits().validate(events)?;
        if events.len() == 1 {
            if let (Some(event), Some(&ids)) = (events.pop(), correlation.first()) {
                return self.append_one(stream, expected, event, ids).await;
            }
        }
        let c = Columns::new(events, correlation)?;
        let result = sqlx::query(&self.sql().append)
            .bind(stream.as_str())
            .bind(stream.category())
            .bind(expected_code(expected))
            .bind(&c.ids)
            .bind(&c.types)
            .bind(&c.schema_versions)
            .bind(&c.payloads)
            .bind(&c.metadata)
            .bind(&c.correlation_ids)
            .bind(&c.causation_ids)
            .fetch_one(self.pool())
            .await;
        let row = match result {
            Ok(row) => row,
            // An id of the batch is stored already, and the version check passed: an exact
            // retry (return the original result) or a duplicate (store contract, item 4). The
            // failed statement wrote nothing.
            Err(e) if classify(&e) == DbErrorKind::UniqueViolation => {
                return self.classify_retry(stream, expected, &c.ids, e).await;
            }
            Err(e) => return Err(store_error(e)),
        };
        let (outcome, done) = append_outcome(&row, stream, expected)?;
        if outcome == WRITTEN {
            self.appended();
            recount::telemetry::appended(stream, c.ids.len() as u64);
        }
        Ok(done)
    }

    /// The single-event path: `append_event`, the same checks as `append_events` with the
    /// event bound as plain values instead of one-element arrays. An exact version of an
    /// existing stream (most appends of an aggregate) first tries the fast path, one plain
    /// statement; when that writes nothing, `append_event` says why.
    async fn append_one(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        event: ValidEvent,
        ids: (Option<Uuid>, Option<Uuid>),
    ) -> Result<AppendResult> {
        let schema_version = i32::try_from(event.schema_version)
            .map_err(|_| Error::invalid("schema version", "larger than 2147483647"))?;
        let one = One {
            stream,
            expected,
            event: &event,
            schema_version,
            ids,
        };
        if matches!(expected, ExpectedVersion::Exact(n) if n > 0) {
            if let Some(done) = self.send_one(&self.sql().append_exact, &one).await? {
                return Ok(done);
            }
        }
        self.send_one(&self.sql().append_one, &one)
            .await?
            .ok_or_else(|| Error::store("append_event returned no row"))
    }

    /// Sends a single-event append statement; `None` when it returned no row (the fast path's
    /// check did not pass, nothing was written).
    async fn send_one(&self, sql: &str, one: &One<'_>) -> Result<Option<AppendResult>> {
        let (correlation_id, causation_id) = one.ids;
        let result = sqlx::query(sql)
            .bind(one.stream.as_str())
            .bind(one.stream.category())
            .bind(expected_code(one.expected))
            .bind(one.event.id)
            .bind(one.event.event_type.as_str())
            .bind(one.schema_version)
            .bind(one.event.payload.get())
            .bind(one.event.metadata.as_str())
            .bind(correlation_id)
            .bind(causation_id)
            .fetch_optional(self.pool())
            .await;
        let row = match result {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(None),
            // As in `append_impl`: an exact retry or a duplicate id.
            Err(e) if classify(&e) == DbErrorKind::UniqueViolation => {
                let ids = [one.event.id];
                return self
                    .classify_retry(one.stream, one.expected, &ids, e)
                    .await
                    .map(Some);
            }
            Err(e) => return Err(store_error(e)),
        };
        let (outcome, done) = append_outcome(&row, one.stream, one.expected)?;
        if outcome == WRITTEN {
            self.appended();
            recount::telemetry::appended(one.stream, 1);
        }
        Ok(Some(done))
    }

    async fn classify_retry(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        ids: &[Uuid],
        violation: sqlx::Error,
    ) -> Result<AppendResult> {
        let row = sqlx::query(&self.sql().classify_retry)
            .bind(stream.as_str())
            .bind(ids)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        match row {
            Some(row) => append_outcome(&row, stream, expected).map(|(_, done)| done),
            // Not an id after all (another unique constraint): report the database's error.
            None => Err(store_error(violation)),
        }
    }

    pub(crate) async fn delete_stream_impl(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<()> {
        let row = sqlx::query(&self.sql().delete_stream)
            .bind(stream.as_str())
            .bind(stream.category())
            .bind(expected_code(expected))
            .fetch_one(self.pool())
            .await
            .map_err(store_error)?;
        let outcome: i32 = row.try_get(0).map_err(store_error)?;
        let actual: Option<i64> = row.try_get(1).map_err(store_error)?;
        match outcome {
            WRITTEN => Ok(()),
            CONFLICT => Err(Error::Conflict {
                stream: stream.clone(),
                expected,
                actual: stored("stream version", actual.unwrap_or(0))?,
            }),
            DELETED => Err(Error::StreamDeleted {
                stream: stream.clone(),
            }),
            other => Err(Error::store(format!(
                "delete_stream returned unknown outcome {other}"
            ))),
        }
    }
}
