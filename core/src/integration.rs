//! Integration events: what a service tells the world, mapped explicitly from its domain
//! events.
//!
//! Domain events are the service's private history: their types, fields and versions change
//! with the model. Integration events are a public contract with a name and version of their
//! own. A [`Mapping`] says, event by event, what (if anything) leaves the service: an event it
//! does not map never does. A relay (crate `recount-relay`) publishes the mapped events to a
//! broker.
//!
//! ```
//! use recount::integration::{IntegrationMap, Mapping};
//! use recount::{Cursor, RecordedEvent, StreamId};
//! use serde_json::json;
//!
//! let map = IntegrationMap::new()
//!     // `story.published` leaves as `story.published` v1 with a public payload of its own.
//!     .on("story.published", "story.published", 1, |e: &RecordedEvent| {
//!         let title: String = e.payload_as::<serde_json::Value>()?["title"]
//!             .as_str().unwrap_or_default().to_owned();
//!         Ok(Some(json!({ "story": e.stream.id(), "title": title })))
//!     });
//!
//! # let at = |t: &str, p: serde_json::Value| RecordedEvent {
//! #     id: uuid::Uuid::now_v7(), stream: StreamId::new("story", "s1").unwrap(), version: 1,
//! #     cursor: Cursor::from_position(1), event_type: t.into(), schema_version: 1,
//! #     payload: p.to_string(), metadata: "{}".into(), recorded_at: chrono::Utc::now() };
//! let published = at("story.published", json!({ "title": "Dune", "draft_notes": "private" }));
//! let out = map.map(&published).unwrap().unwrap();
//! assert_eq!((out.name.as_str(), out.version), ("story.published", 1));
//! assert_eq!(out.payload, r#"{"story":"s1","title":"Dune"}"#);
//! assert_eq!(out.id, published.id);
//!
//! // An event without a mapping never leaves the service.
//! assert!(map.map(&at("story.renamed", json!({}))).unwrap().is_none());
//! ```

use crate::{Cursor, Error, LogFilter, RecordedEvent, Result, StreamId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The longest public name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// An event as published to other services: a public name and version, a JSON payload, and
/// where it came from.
///
/// Its `id` is the domain event's id, so a receiver that records processed ids (an inbox)
/// handles a redelivered event once, and a broker that deduplicates by message id drops a
/// republished one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationEvent {
    /// The domain event's id.
    pub id: Uuid,
    /// The public name, `<topic>.<type>` (e.g. `story.published`): lowercase ASCII letters,
    /// digits, `_` and `-`, in two or more parts joined by `.`. Brokers route by it.
    pub name: String,
    /// The public schema version (1 and up), independent of the domain event's.
    pub version: u32,
    /// The payload: JSON object text.
    pub payload: String,
    /// The request this event follows from (the domain event's correlation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// What caused it: the domain event's causation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The domain stream it came from.
    pub source: StreamId,
    /// The domain event's version in that stream.
    pub source_version: u64,
    /// The domain event's position in the global log.
    pub cursor: Cursor,
    /// When the domain event was recorded.
    pub occurred_at: DateTime<Utc>,
}

impl IntegrationEvent {
    /// The integration event for `domain` under `name` and `version` with `payload`, keeping
    /// its id, correlation, causation, stream and position. The user id is not carried: who
    /// did something is the payload's business, if the contract says so.
    ///
    /// Fails with [`Error::InvalidInput`] on a bad name or a payload that is not an object,
    /// and with [`Error::Corrupt`] when the domain metadata does not decode.
    pub fn from_domain(
        domain: &RecordedEvent,
        name: &str,
        version: u32,
        payload: &impl Serialize,
    ) -> Result<Self> {
        let payload =
            serde_json::to_string(payload).map_err(|e| Error::invalid("payload", e.to_string()))?;
        Self::from_domain_text(domain, name, version, payload)
    }

    /// Like [`IntegrationEvent::from_domain`], with the payload already encoded as JSON text
    /// (it must be an object).
    pub fn from_domain_text(
        domain: &RecordedEvent,
        name: &str,
        version: u32,
        payload: String,
    ) -> Result<Self> {
        check_name(name)?;
        if version == 0 {
            return Err(Error::invalid("version", "integration versions start at 1"));
        }
        Self::build(domain, name, version, payload)
    }

    /// [`IntegrationEvent::from_domain_text`] for a name and version already checked.
    fn build(domain: &RecordedEvent, name: &str, version: u32, payload: String) -> Result<Self> {
        if !payload.starts_with('{') {
            return Err(Error::invalid("payload", "not a JSON object"));
        }
        // Only the two ids: cheaper than the whole `Metadata` (its free keys are a flattened
        // map), and this runs once per published event.
        let meta: Lineage = serde_json::from_str(&domain.metadata)
            .map_err(|e| domain.corrupt(format!("metadata: {e}")))?;
        Ok(IntegrationEvent {
            id: domain.id,
            name: name.to_owned(),
            version,
            payload,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            source: domain.stream.clone(),
            source_version: domain.version,
            cursor: domain.cursor,
            occurred_at: domain.recorded_at,
        })
    }

    /// The first part of the name (`story` in `story.published`): brokers route and keep
    /// streams by it.
    pub fn topic(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }

    /// The name after the topic (`published` in `story.published`).
    pub fn kind(&self) -> &str {
        self.name.split_once('.').map_or("", |(_, rest)| rest)
    }

    /// Decodes the payload into `T`.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.payload)
            .map_err(|e| Error::invalid("payload", format!("integration event {}: {e}", self.id)))
    }

    /// The event as one JSON object (what receivers decode with `serde_json`).
    pub fn to_json(&self) -> String {
        // Strings, numbers, uuids and a timestamp always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The part of a domain event's metadata an integration event carries.
#[derive(Deserialize)]
struct Lineage {
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
}

/// Checks a public name: two or more non-empty parts of `[a-z0-9_-]` joined by `.`, at most
/// [`MAX_NAME_LEN`] bytes. A name becomes a NATS subject, a Redis key and an AMQP routing key,
/// so it holds nothing any of them treats specially (`*`, `>`, `#`, spaces).
pub fn check_name(name: &str) -> Result<()> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    if name.len() > MAX_NAME_LEN || !name.contains('.') || !name.split('.').all(part_ok) {
        return Err(Error::invalid(
            "name",
            format!("`{name}` is not `<topic>.<type>` in lowercase letters, digits, `_`, `-`"),
        ));
    }
    Ok(())
}

/// Decides which domain events leave the service, and as what.
///
/// A mapping is explicit: [`Mapping::map`] returns `None` for anything it does not publish,
/// so a new domain event stays private until someone maps it.
pub trait Mapping: Send + Sync + 'static {
    /// The domain events the mapping may publish; a relay reads only these. Default: every
    /// event (then `map` alone decides).
    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    /// The integration event for `event`, or `None` when it does not leave the service. An
    /// error is the consumer's: the relay retries, then parks the event.
    fn map(&self, event: &RecordedEvent) -> Result<Option<IntegrationEvent>>;
}

impl<M: Mapping + ?Sized> Mapping for Arc<M> {
    fn filter(&self) -> LogFilter {
        (**self).filter()
    }
    fn map(&self, event: &RecordedEvent) -> Result<Option<IntegrationEvent>> {
        (**self).map(event)
    }
}

type MapFn = dyn Fn(&RecordedEvent) -> Result<Option<String>> + Send + Sync;

struct Rule {
    name: String,
    version: u32,
    map: Box<MapFn>,
}

/// A [`Mapping`] built from one rule per domain event type: the public name, the public
/// version, and a function from the domain event to the public payload (`None`: this one
/// stays private). Its filter is exactly the mapped types. See the [module docs](self).
#[derive(Default)]
pub struct IntegrationMap {
    rules: HashMap<String, Rule>,
    order: Vec<String>,
}

impl std::fmt::Debug for IntegrationMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for t in &self.order {
            let r = &self.rules[t];
            m.entry(t, &format_args!("{} v{}", r.name, r.version));
        }
        m.finish()
    }
}

impl IntegrationMap {
    /// A map that publishes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes domain events of type `domain_type` as `name` version `version`, with the
    /// payload `payload(event)` returns (`Ok(None)`: this event stays private). Decode the
    /// domain payload inside with [`RecordedEvent::decode`] (upcasts old versions) or
    /// [`RecordedEvent::payload_as`].
    ///
    /// # Panics
    ///
    /// When `name` is not a valid public name ([`check_name`]), `version` is 0, or
    /// `domain_type` already has a rule: the map is the program's, not input.
    pub fn on<P, F>(mut self, domain_type: &str, name: &str, version: u32, payload: F) -> Self
    where
        P: Serialize,
        F: Fn(&RecordedEvent) -> Result<Option<P>> + Send + Sync + 'static,
    {
        if let Err(e) = check_name(name) {
            panic!("integration map: {e}");
        }
        assert!(version > 0, "integration map: `{name}` version 0");
        let map: Box<MapFn> = Box::new(move |e| match payload(e)? {
            None => Ok(None),
            // Straight to text: the payload is encoded once.
            Some(p) => serde_json::to_string(&p)
                .map(Some)
                .map_err(|err| Error::invalid("payload", err.to_string())),
        });
        let rule = Rule {
            name: name.to_owned(),
            version,
            map,
        };
        let previous = self.rules.insert(domain_type.to_owned(), rule);
        assert!(
            previous.is_none(),
            "integration map: `{domain_type}` mapped twice"
        );
        self.order.push(domain_type.to_owned());
        self
    }

    /// The public `(name, version)` of each mapped domain type, in the order they were added.
    pub fn published(&self) -> Vec<(&str, &str, u32)> {
        self.order
            .iter()
            .map(|t| {
                (
                    t.as_str(),
                    self.rules[t].name.as_str(),
                    self.rules[t].version,
                )
            })
            .collect()
    }

    /// Only the rules whose public name is in `names`: a relay configured to publish some of
    /// the integration events.
    pub fn only(mut self, names: &[&str]) -> Self {
        self.rules.retain(|_, r| names.contains(&r.name.as_str()));
        let rules = &self.rules;
        self.order.retain(|t| rules.contains_key(t));
        self
    }
}

impl Mapping for IntegrationMap {
    fn filter(&self) -> LogFilter {
        LogFilter {
            categories: Vec::new(),
            event_types: self.order.clone(),
        }
    }

    fn map(&self, event: &RecordedEvent) -> Result<Option<IntegrationEvent>> {
        let Some(rule) = self.rules.get(&event.event_type) else {
            return Ok(None);
        };
        match (rule.map)(event)? {
            None => Ok(None),
            // The rule's name and version were checked when it was added.
            Some(payload) => {
                IntegrationEvent::build(event, &rule.name, rule.version, payload).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_names_are_topic_dot_type_and_nothing_brokers_treat_specially() {
        for ok in ["story.published", "pr.merged", "a.b.c", "user_x.v-2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "story",
            "Story.published",
            "story.*",
            "story.>",
            "a..b",
            ".a",
            "a b.c",
            "a.#",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_keeps_the_configured_public_names_and_narrows_the_filter() {
        let map = IntegrationMap::new()
            .on("story.published", "story.published", 1, |_| {
                Ok(Some(serde_json::json!({})))
            })
            .on("user.registered", "user.registered", 2, |_| {
                Ok(Some(serde_json::json!({})))
            })
            .only(&["user.registered"]);
        assert_eq!(
            map.published(),
            vec![("user.registered", "user.registered", 2)]
        );
        assert_eq!(map.filter().event_types, vec!["user.registered".to_owned()]);
    }
}
