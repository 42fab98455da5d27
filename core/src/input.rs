//! The input rules of the store contract, in one place: every store calls these before it
//! touches its storage, so what one store refuses, every store refuses, and nothing is
//! written that Recount could not read back.

mod json;

pub use json::MAX_JSON_DEPTH;

use crate::event::RESERVED_METADATA_KEYS;
use crate::{Error, NewEvent, Snapshot};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Size limits checked before anything is written. Stores may be configured with other limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload, in bytes (default 1 MiB).
    pub max_payload_bytes: usize,
    /// Largest metadata, in bytes of JSON (default 16 KiB).
    pub max_metadata_bytes: usize,
}

/// Longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 200;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 1 << 20,
            max_metadata_bytes: 16 << 10,
        }
    }
}

/// An event checked against the input rules and with its metadata encoded, ready to store.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    /// The event id.
    pub id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The schema version.
    pub schema_version: u32,
    /// Payload JSON object text.
    pub payload: Box<RawValue>,
    /// Metadata JSON object text.
    pub metadata: String,
}

impl Limits {
    /// Checks a batch against the input rules of the store contract and encodes metadata.
    /// Every store calls this before it touches its storage, so invalid input writes nothing.
    pub fn validate(&self, events: Vec<NewEvent>) -> Result<Vec<ValidEvent>, Error> {
        if events.is_empty() {
            return Err(Error::invalid(
                "events",
                "an append needs at least one event",
            ));
        }
        let mut ids = std::collections::HashSet::with_capacity(events.len());
        events
            .into_iter()
            .map(|e| {
                if !ids.insert(e.id) {
                    return Err(Error::invalid(
                        "event id",
                        format!("{} appears twice in the batch", e.id),
                    ));
                }
                self.validate_one(e)
            })
            .collect()
    }

    fn validate_one(&self, e: NewEvent) -> Result<ValidEvent, Error> {
        check_event_type(&e.event_type)?;
        check_schema_version(e.schema_version)?;
        if !is_json_object(e.payload.get()) {
            return Err(Error::invalid("payload", "not a JSON object"));
        }
        if e.payload.get().len() > self.max_payload_bytes {
            return Err(Error::invalid(
                "payload",
                format!(
                    "{} bytes, more than the limit of {}",
                    e.payload.get().len(),
                    self.max_payload_bytes
                ),
            ));
        }
        // A free key named like a typed field is written twice into one object (or read back
        // as the typed field): the stored metadata would then not decode.
        if let Some(key) = RESERVED_METADATA_KEYS
            .iter()
            .find(|k| e.metadata.extra.contains_key(**k))
        {
            return Err(Error::invalid(
                "metadata",
                format!("the free key `{key}` is reserved for the typed field of that name"),
            ));
        }
        let metadata = e.metadata.to_json();
        if metadata.len() > self.max_metadata_bytes {
            return Err(Error::invalid(
                "metadata",
                format!(
                    "{} bytes, more than the limit of {}",
                    metadata.len(),
                    self.max_metadata_bytes
                ),
            ));
        }
        // Last, as the costliest check: a full parse of both, by the parser that reads them.
        json::check_readable(e.payload.get()).map_err(|why| Error::invalid("payload", why))?;
        json::check_readable(&metadata).map_err(|why| Error::invalid("metadata", why))?;
        Ok(ValidEvent {
            id: e.id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
            metadata,
        })
    }
}

/// The largest schema version any store can hold (PostgreSQL keeps it in an `integer`).
pub const MAX_SCHEMA_VERSION: u32 = i32::MAX as u32;

/// Checks an event type against the input rules: not empty, at most [`MAX_EVENT_TYPE_LEN`]
/// bytes, no whitespace or control characters (a NUL byte is refused by PostgreSQL, and an
/// event type is an identifier that filters and logs print). `#[aggregate]` applies the same
/// rule to event names at compile time.
///
/// ```
/// assert!(recount::check_event_type("story.created").is_ok());
/// assert!(recount::check_event_type("story created").is_err());
/// assert!(recount::check_event_type("story\0created").is_err());
/// ```
pub fn check_event_type(event_type: &str) -> Result<(), Error> {
    let refuse = |why: String| Err(Error::invalid("event type", why));
    if event_type.is_empty() {
        return refuse("empty".into());
    }
    if event_type.len() > MAX_EVENT_TYPE_LEN {
        return refuse(format!(
            "{} bytes, more than the limit of {MAX_EVENT_TYPE_LEN}",
            event_type.len()
        ));
    }
    if let Some(c) = event_type
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return refuse(format!(
            "`{}` contains {c:?}: no whitespace or control characters",
            event_type.escape_debug()
        ));
    }
    Ok(())
}

/// Checks a schema version: 1 ..= [`MAX_SCHEMA_VERSION`], the same bounds on every store.
pub fn check_schema_version(version: u32) -> Result<(), Error> {
    if version == 0 {
        return Err(Error::invalid("schema version", "versions start at 1"));
    }
    if version > MAX_SCHEMA_VERSION {
        return Err(Error::invalid(
            "schema version",
            format!("{version} is larger than the limit of {MAX_SCHEMA_VERSION}"),
        ));
    }
    Ok(())
}

/// Checks a checkpoint name: not empty, no control characters (a NUL byte is refused by
/// PostgreSQL; what one store refuses, all refuse).
pub fn check_checkpoint_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid("checkpoint name", "empty"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(
            "checkpoint name",
            format!(
                "`{}` contains the control character {c:?}",
                name.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// The largest stream version any store can hold (SQL stores keep versions in `i64`).
pub const MAX_STREAM_VERSION: u64 = i64::MAX as u64;

impl Snapshot {
    /// Checks that a store may save this snapshot for a stream whose current version is
    /// `stream_version` (store contract, item 9). Stores call it before saving, with the
    /// stream's version read in the same transaction (versions only grow, so a snapshot that
    /// fits then fits for ever), and refuse what it refuses.
    ///
    /// - No version beyond [`MAX_STREAM_VERSION`] is possible for any stream.
    /// - A snapshot of a stream that has events includes at least its first event (version 0
    ///   describes nothing) and never more events than the stream holds.
    /// - A stream with no events accepts any other version: process managers
    ///   ([`recount::projection`](crate::projection)) keep their state and position as the
    ///   snapshot of an event-less stream. The repository never uses such a snapshot: it
    ///   checks every snapshot it loads against the stream and replays when it does not fit.
    ///
    /// ```
    /// use recount::{Snapshot, StreamId};
    /// let snap = |version| Snapshot {
    ///     stream: StreamId::new("counter", "1").unwrap(),
    ///     version,
    ///     tag: "v1".into(),
    ///     state: "{}".into(),
    /// };
    /// assert!(snap(3).check_fits(3).is_ok());
    /// assert!(snap(4).check_fits(3).is_err());
    /// assert!(snap(0).check_fits(3).is_err());
    /// assert!(snap(u64::MAX).check_fits(0).is_err());
    /// ```
    pub fn check_fits(&self, stream_version: u64) -> Result<(), Error> {
        let refuse = |why: String| Err(Error::invalid("snapshot version", why));
        let (version, stream) = (self.version, &self.stream);
        if version > MAX_STREAM_VERSION {
            return refuse(format!(
                "{version} for `{stream}` is beyond the largest stream version, {MAX_STREAM_VERSION}"
            ));
        }
        if stream_version == 0 {
            return Ok(());
        }
        if version == 0 {
            return refuse(format!(
                "0 for `{stream}`: a snapshot includes at least version 1"
            ));
        }
        if version > stream_version {
            return refuse(format!(
                "{version} is beyond the current version {stream_version} of `{stream}`"
            ));
        }
        Ok(())
    }
}

/// `true` when `json` (already valid JSON) is an object.
pub(crate) fn is_json_object(json: &str) -> bool {
    json.trim_start().starts_with('{')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metadata;

    /// The reserved list must name every key the typed fields write, or a new typed field
    /// would reopen the collision.
    #[test]
    fn reserved_metadata_keys_are_exactly_the_typed_fields_keys() {
        let full = Metadata {
            correlation_id: Some(Uuid::nil()),
            causation_id: Some(Uuid::nil()),
            user_id: Some("u".into()),
            extra: serde_json::Map::new(),
        };
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&full.to_json()).unwrap();
        let mut typed: Vec<&str> = json.keys().map(String::as_str).collect();
        let mut reserved = RESERVED_METADATA_KEYS.to_vec();
        typed.sort_unstable();
        reserved.sort_unstable();
        assert_eq!(typed, reserved);
    }
}
