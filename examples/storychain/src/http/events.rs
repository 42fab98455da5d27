//! The events API (admin token only: it shows every user's data): the log filtered and paged,
//! one event, statistics, and a request's whole causal chain.

use super::{Admin, ApiError, ApiState, AppJson};
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use recount::{Cursor, EventQuery, EventStore, LogFilter, RecordedEvent, StreamId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The largest page of `GET /events`.
pub const MAX_EVENTS: usize = 1_000;
/// The page when `limit` is not given.
const DEFAULT_EVENTS: usize = 100;
/// The most events `GET /events/correlation/{id}` returns.
pub const MAX_CHAIN: usize = 10_000;

/// One event of the log, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventItem {
    /// Its id.
    pub id: String,
    /// Its stream, e.g. `story-0193…`.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its position in the global log.
    pub cursor: String,
    /// Its type, e.g. `story.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The metadata (correlation and causation ids, user id, free keys).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The request it follows from.
    pub correlation_id: Option<String>,
    /// The command or event that caused it.
    pub causation_id: Option<String>,
    /// When it was recorded (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
}

impl From<RecordedEvent> for EventItem {
    fn from(e: RecordedEvent) -> Self {
        let meta = e.metadata().unwrap_or_default();
        let json = |text: &str| {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into()))
        };
        let mut payload = json(&e.payload);
        hide_secrets(&e.event_type, &mut payload);
        EventItem {
            id: e.id.to_string(),
            stream: e.stream.to_string(),
            version: e.version,
            cursor: e.cursor.to_string(),
            payload,
            metadata: json(&e.metadata),
            correlation_id: meta.correlation_id.map(|c| c.to_string()),
            causation_id: meta.causation_id.map(|c| c.to_string()),
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at: e.recorded_at,
        }
    }
}

/// Replaces the secrets an event carries (a webhook's signing secret) with `"<hidden>"`: the
/// events API shows the log to operators, not the secrets users gave.
fn hide_secrets(event_type: &str, payload: &mut serde_json::Value) {
    for (t, field) in crate::domain::SECRET_FIELDS {
        if t == event_type {
            if let Some(v) = payload.get_mut(field) {
                *v = serde_json::Value::String("<hidden>".into());
            }
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// Matching events in log order.
    pub events: Vec<EventItem>,
    /// Pass as `after` for the next page; absent when the log holds no more matching events
    /// now.
    pub next: Option<String>,
}

/// Filters of `GET /events`; every one given must hold.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsParams {
    /// Only this stream, e.g. `story-0193…`.
    pub stream: Option<String>,
    /// Only streams of this category, e.g. `story`.
    pub category: Option<String>,
    /// Only this event type, e.g. `chapter.branched`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events with this correlation id.
    pub correlation_id: Option<String>,
    /// Only events recorded at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only events recorded before this time (RFC 3339).
    pub to: Option<String>,
    /// Only events after this cursor (a page's `next`).
    pub after: Option<String>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<String>,
}

pub(super) fn parse<T: std::str::FromStr>(
    field: &str,
    text: Option<&str>,
) -> Result<Option<T>, ApiError> {
    text.map(|t| {
        t.parse()
            .map_err(|_| ApiError::invalid(format!("`{field}` is not valid: `{t}`")))
    })
    .transpose()
}

/// A path segment that must parse as a UUID.
fn uuid(field: &str, text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(format!("`{field}` is not valid: `{text}`")))
}

pub(super) fn time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| ApiError::invalid(format!("`{field}` is not an RFC 3339 time: `{t}`")))
    })
    .transpose()
}

impl EventsParams {
    fn query(&self) -> Result<(EventQuery, usize), ApiError> {
        let limit = parse::<usize>("limit", self.limit.as_deref())?.unwrap_or(DEFAULT_EVENTS);
        if !(1..=MAX_EVENTS).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "`limit` must be 1 to {MAX_EVENTS}, not {limit}"
            )));
        }
        // The store's filter keeps events of any of its categories or types; with both
        // given, both must hold, so the store reads the type and `events` checks the category.
        let filter = match (&self.category, &self.event_type) {
            (_, Some(t)) => LogFilter::all().event_type(t),
            (Some(c), None) => LogFilter::all().category(c),
            (None, None) => LogFilter::all(),
        };
        let after = parse::<Cursor>("after", self.after.as_deref())?.unwrap_or(Cursor::START);
        let mut query = EventQuery::after(after).filter(filter);
        if let Some(s) = &self.stream {
            let stream =
                StreamId::parse(s).map_err(|e| ApiError::invalid(format!("`stream`: {e}")))?;
            query = query.stream(stream);
        }
        if let Some(id) = parse::<Uuid>("correlation_id", self.correlation_id.as_deref())? {
            query = query.correlation_id(id);
        }
        let (from, to) = (
            time("from", self.from.as_deref())?,
            time("to", self.to.as_deref())?,
        );
        Ok((query.recorded(from, to), limit))
    }
}

/// The log, filtered and paged (admin).
#[utoipa::path(get, path = "/events", params(EventsParams), tag = "events", security(("admin" = [])),
    responses((status = 200, body = EventsPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn events(
    State(s): State<ApiState>,
    _: Admin,
    Query(p): Query<EventsParams>,
) -> Result<AppJson<EventsPage>, ApiError> {
    let (mut query, limit) = p.query()?;
    let category = p.category.as_deref().filter(|_| p.event_type.is_some());
    let mut page = Vec::new();
    let next = loop {
        let want = limit - page.len();
        let batch = s.app.store().query(&query, want).await?;
        let got = batch.events.len();
        page.extend(
            batch
                .events
                .into_iter()
                .filter(|e| category.is_none_or(|c| e.stream.category() == c)),
        );
        query.after = batch.last_seen;
        if got < want {
            break None; // the log holds no more matching events now
        }
        if page.len() == limit {
            break Some(query.after);
        }
    };
    Ok(AppJson(EventsPage {
        events: page.into_iter().map(EventItem::from).collect(),
        next: next.map(|c| c.to_string()),
    }))
}

/// One event by id (admin).
#[utoipa::path(get, path = "/events/{event_id}", tag = "events", security(("admin" = [])),
    params(("event_id" = String, Path, description = "The event's id")),
    responses((status = 200, body = EventItem), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn event(
    State(s): State<ApiState>,
    _: Admin,
    Path(event_id): Path<String>,
) -> Result<AppJson<EventItem>, ApiError> {
    let id = uuid("event_id", &event_id)?;
    match s.app.store().read_event(id).await? {
        Some(e) => Ok(AppJson(e.into())),
        None => Err(ApiError::not_found("event")),
    }
}

/// A request's whole causal chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Chain {
    /// The correlation id.
    pub correlation_id: String,
    /// Every event with it, in log order: the request's own, then what process managers and
    /// handlers did because of them (each names its cause in `causation_id`).
    pub events: Vec<EventItem>,
    /// `true` when the chain has more than the events returned (at most 10,000).
    pub truncated: bool,
}

/// Every event of one correlation, in log order, with causation links (admin).
#[utoipa::path(get, path = "/events/correlation/{correlation_id}", tag = "events", security(("admin" = [])),
    params(("correlation_id" = String, Path, description = "The correlation id (a request's `X-Correlation-Id`)")),
    responses((status = 200, body = Chain), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn correlation(
    State(s): State<ApiState>,
    _: Admin,
    Path(correlation_id): Path<String>,
) -> Result<AppJson<Chain>, ApiError> {
    let id = uuid("correlation_id", &correlation_id)?;
    let batch = s
        .app
        .store()
        .query(
            &EventQuery::after(Cursor::START).correlation_id(id),
            MAX_CHAIN + 1,
        )
        .await?;
    let truncated = batch.events.len() > MAX_CHAIN;
    Ok(AppJson(Chain {
        correlation_id: id.to_string(),
        events: batch
            .events
            .into_iter()
            .take(MAX_CHAIN)
            .map(EventItem::from)
            .collect(),
        truncated,
    }))
}

/// Events of one type in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeStats {
    /// The type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// How many.
    pub count: i64,
    /// When the first was recorded.
    pub first_at: String,
    /// When the last was recorded.
    pub last_at: String,
}

/// The log in numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventStats {
    /// Events in the log, as the statistics read model has counted them.
    pub total: i64,
    /// Per type, most frequent first.
    pub types: Vec<TypeStats>,
    /// How far the statistics read model has read the log (`null`: not started).
    pub through: Option<String>,
}

/// Event counts per type with first and last times (admin).
#[utoipa::path(get, path = "/events/stats", tag = "events", security(("admin" = [])),
    responses((status = 200, body = EventStats), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn stats(State(s): State<ApiState>, _: Admin) -> Result<AppJson<EventStats>, ApiError> {
    let store = s.app.store();
    let rows = crate::readmodel::ReadModels::open(store)
        .await?
        .stats()
        .await?;
    let version = crate::readmodel::active(store, "stats").await?;
    let through = store
        .load_checkpoint(&recount::projection::checkpoint_name(
            "stats", version, None,
        ))
        .await?;
    Ok(AppJson(EventStats {
        total: rows.iter().map(|r| r.count).sum(),
        types: rows
            .into_iter()
            .map(|r| TypeStats {
                event_type: r.event_type,
                count: r.count,
                first_at: r.first_at,
                last_at: r.last_at,
            })
            .collect(),
        through: through.map(|c| c.to_string()),
    }))
}
