//! Events as written and as stored.

use crate::input::is_json_object;
use crate::{Cursor, Error, StreamId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Context carried by every event: who caused it and as part of what.
///
/// Stored as a JSON object beside the payload. `correlation_id` ties together everything that
/// follows from one request; `causation_id` names the event or command that caused this one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The id shared by everything that follows from one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The command or event that caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The user on whose behalf the event was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Free key/values.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The keys of the metadata's JSON object that its typed fields use. A free key/value
/// ([`Metadata::extra`]) with one of these names would collide with the typed field when
/// stored, so appends refuse it ([`Error::InvalidInput`] naming the key).
pub const RESERVED_METADATA_KEYS: &[&str] = &["correlation_id", "causation_id", "user_id"];

impl Metadata {
    /// `true` when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.user_id.is_none()
            && self.extra.is_empty()
    }

    /// The metadata as JSON object text.
    pub fn to_json(&self) -> String {
        // A struct of strings, uuids and a JSON map always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// An event to append: identity, type, schema version, JSON object payload and metadata.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique in the store; a retry with the same id is idempotent (store contract, item 4).
    pub id: Uuid,
    /// The stable event type string, e.g. `story.created`.
    pub event_type: String,
    /// The payload's schema version (1 and up).
    pub schema_version: u32,
    /// The payload: a JSON object.
    pub payload: Box<RawValue>,
    /// Who caused it and as part of what.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event with a fresh time-ordered id (UUID v7), schema version 1 and empty metadata.
    ///
    /// Fails when `payload` does not serialize to a JSON object.
    ///
    /// ```
    /// let e = recount::NewEvent::new("counter.added", &serde_json::json!({"by": 2})).unwrap();
    /// assert_eq!(e.payload.get(), r#"{"by":2}"#);
    /// assert!(recount::NewEvent::new("counter.added", &5).is_err());
    /// ```
    pub fn new(event_type: impl Into<String>, payload: &impl Serialize) -> Result<Self, Error> {
        let text =
            serde_json::to_string(payload).map_err(|e| Error::invalid("payload", e.to_string()))?;
        Self::from_json_text(event_type, text)
    }

    /// An event from JSON text, which must be a JSON object (else [`Error::InvalidInput`]).
    pub fn from_json_text(
        event_type: impl Into<String>,
        payload: impl Into<String>,
    ) -> Result<Self, Error> {
        let raw = RawValue::from_string(payload.into())
            .map_err(|e| Error::invalid("payload", e.to_string()))?;
        if !is_json_object(raw.get()) {
            return Err(Error::invalid("payload", "not a JSON object"));
        }
        Ok(Self::from_raw(event_type, 1, raw))
    }

    /// An event from an already encoded payload, not checked here: the store checks it when
    /// appended (it must be a JSON object).
    pub fn from_raw(
        event_type: impl Into<String>,
        schema_version: u32,
        payload: Box<RawValue>,
    ) -> Self {
        NewEvent {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored: what was appended plus its place in the stream and in the log.
///
/// Payload and metadata are kept as the stored JSON text, so typed decoding reads straight
/// from it and a projection that does not look at them pays nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The event id.
    pub id: Uuid,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version in the stream (1, 2, 3, …).
    pub version: u64,
    /// Its position in the global log.
    pub cursor: Cursor,
    /// The stable event type string.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload, JSON object text.
    pub payload: String,
    /// The metadata, JSON object text.
    pub metadata: String,
    /// When the store recorded it (the store's clock).
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Decodes the metadata; an undecodable one is [`Error::Corrupt`] naming this event.
    pub fn metadata(&self) -> Result<Metadata, Error> {
        serde_json::from_str(&self.metadata).map_err(|e| self.corrupt(format!("metadata: {e}")))
    }

    /// Decodes the payload into `T`; failure is [`Error::Corrupt`] naming this event.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload).map_err(|e| self.corrupt(format!("payload: {e}")))
    }

    /// An [`Error::Corrupt`] naming this event.
    pub fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            event_id: self.id,
            stream: self.stream.to_string(),
            event_type: self.event_type.clone(),
            reason: reason.into(),
        }
    }
}

/// What an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub version: u64,
    /// The cursor of the last event written.
    pub cursor: Cursor,
}

/// Which events a global-log read returns. Empty lists mean "all".
///
/// ```
/// use recount::LogFilter;
/// let f = LogFilter::all().category("story").event_type("user.registered");
/// assert!(f.matches("story", "story.created"));
/// assert!(f.matches("user", "user.registered"));
/// assert!(!f.matches("user", "user.followed"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Stream categories to keep.
    pub categories: Vec<String>,
    /// Event types to keep.
    pub event_types: Vec<String>,
}

impl LogFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also keep events of streams in `category`.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Also keep events of type `event_type`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// `true` when the filter keeps everything.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty()
    }

    /// Whether an event of `event_type` in a stream of `category` passes. An event passes when
    /// it matches either list (categories and types are alternatives, not both required).
    pub fn matches(&self, category: &str, event_type: &str) -> bool {
        self.is_all()
            || self.categories.iter().any(|c| c == category)
            || self.event_types.iter().any(|t| t == event_type)
    }
}

/// One batch of a global-log read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    /// Matching events in log order.
    pub events: Vec<RecordedEvent>,
    /// How far the store has looked: every event at or before this cursor that the filter
    /// keeps is in this batch or an earlier one. Read on from here (store contract, item 6).
    pub last_seen: Cursor,
}

/// A saved aggregate state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream.
    pub stream: StreamId,
    /// The stream version the state includes.
    pub version: u64,
    /// The snapshot schema tag; a snapshot whose tag differs from the aggregate's is ignored.
    pub tag: String,
    /// The state, JSON text.
    pub state: String,
}
