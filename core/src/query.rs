//! Queries of the global log for people: an admin API, an operator's tool.

use crate::{Cursor, LogFilter, RecordedEvent, StreamId};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// Which events [`EventStore::query`](crate::EventStore::query) returns: everything a
/// consumer's [`LogFilter`] says, narrowed by stream, correlation id and time. Every condition
/// set must hold.
///
/// ```
/// use recount::{Cursor, EventQuery, LogFilter};
/// let q = EventQuery::after(Cursor::START)
///     .filter(LogFilter::all().category("story"))
///     .correlation_id(uuid::Uuid::nil());
/// assert_eq!(q.filter.categories, ["story"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events after this position (default: from the start).
    pub after: Cursor,
    /// Categories and types, as a consumer reads them (default: all).
    pub filter: LogFilter,
    /// Only events of this stream.
    pub stream: Option<StreamId>,
    /// Only events whose metadata carries this correlation id.
    pub correlation_id: Option<Uuid>,
    /// Only events recorded at or after this time.
    pub recorded_from: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub recorded_before: Option<DateTime<Utc>>,
}

/// The part of an event's metadata a query may match on.
#[derive(Deserialize)]
struct Correlation {
    #[serde(default)]
    correlation_id: Option<Uuid>,
}

impl EventQuery {
    /// Every event after `after`.
    pub fn after(after: Cursor) -> Self {
        EventQuery {
            after,
            ..Self::default()
        }
    }

    /// Only events that pass `filter`.
    pub fn filter(mut self, filter: LogFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Only events of `stream`.
    pub fn stream(mut self, stream: StreamId) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Only events with correlation id `id`.
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Only events recorded in `[from, before)`; either end may be open.
    pub fn recorded(mut self, from: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>) -> Self {
        self.recorded_from = from;
        self.recorded_before = before;
        self
    }

    /// Whether `event` passes every condition but `after` (metadata that does not decode has
    /// no correlation id).
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.filter
            .matches(event.stream.category(), &event.event_type)
            && self.stream.as_ref().is_none_or(|s| *s == event.stream)
            && self.recorded_from.is_none_or(|t| event.recorded_at >= t)
            && self.recorded_before.is_none_or(|t| event.recorded_at < t)
            && self.correlation_id.is_none_or(|id| {
                serde_json::from_str::<Correlation>(&event.metadata)
                    .is_ok_and(|m| m.correlation_id == Some(id))
            })
    }
}
