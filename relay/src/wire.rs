//! How an integration event travels: the JSON body, and the parts brokers carry as fields or
//! headers.

use chrono::{DateTime, Utc};
use recount::integration::IntegrationEvent;
use recount::{Cursor, Error, Result, StreamId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a message carries beside id, name and payload (Redis `metadata` field).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) source: StreamId,
    pub(crate) source_version: u64,
    pub(crate) cursor: Cursor,
    pub(crate) occurred_at: DateTime<Utc>,
}

/// [`Meta`] borrowed from an event, to write it without copying the stream id.
#[derive(Serialize)]
struct MetaRef<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<Uuid>,
    source: &'a StreamId,
    source_version: u64,
    cursor: Cursor,
    occurred_at: DateTime<Utc>,
}

pub(crate) fn meta_json(e: &IntegrationEvent) -> String {
    let meta = MetaRef {
        version: e.version,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        source: &e.source,
        source_version: e.source_version,
        cursor: e.cursor,
        occurred_at: e.occurred_at,
    };
    // Numbers, ids, a stream id and a time always serialize.
    serde_json::to_string(&meta).unwrap_or_default()
}

pub(crate) fn from_fields(
    id: &str,
    name: &str,
    payload: &str,
    meta: &str,
) -> Result<IntegrationEvent> {
    let bad = |what: &str, e: String| Error::invalid("message", format!("{what}: {e}"));
    let meta: Meta = serde_json::from_str(meta).map_err(|e| bad("metadata", e.to_string()))?;
    Ok(IntegrationEvent {
        id: id
            .parse()
            .map_err(|e: uuid::Error| bad("id", e.to_string()))?,
        name: name.to_owned(),
        version: meta.version,
        payload: payload.to_owned(),
        correlation_id: meta.correlation_id,
        causation_id: meta.causation_id,
        source: meta.source,
        source_version: meta.source_version,
        cursor: meta.cursor,
        occurred_at: meta.occurred_at,
    })
}

/// Decodes a message body (the event as one JSON object).
pub(crate) fn from_body(body: &[u8]) -> Result<IntegrationEvent> {
    serde_json::from_slice(body).map_err(|e| Error::invalid("message", e.to_string()))
}

/// The cursor of the last event of a batch, or `current` if that is later (a parked event
/// published again never moves a sink's position back).
pub(crate) fn through(current: Option<Cursor>, events: &[IntegrationEvent]) -> Option<Cursor> {
    let last = events.iter().map(|e| e.cursor).max();
    match (current, last) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A broker error that retrying may fix.
pub(crate) fn retriable(broker: &str, e: impl std::fmt::Display) -> Error {
    Error::retriable(format!("{broker}: {e}"))
}
