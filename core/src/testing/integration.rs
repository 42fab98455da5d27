//! Given these domain events, expect these integration events: a harness for [`Mapping`]s.

use crate::integration::{IntegrationEvent, Mapping};
use crate::{Aggregate, Cursor, Event, Metadata, RecordedEvent, StreamId};
use serde_json::Value;
use uuid::Uuid;

/// Checks a [`Mapping`]: given domain events (typed, as an aggregate decides them, or as
/// recorded), it asserts which integration events leave the service, in order.
///
/// ```
/// use recount::integration::IntegrationMap;
/// use recount::testing::MappingTest;
/// use serde_json::json;
///
/// #[derive(Debug, Default)]
/// struct Note;
/// #[recount::aggregate(category = "note", error = std::convert::Infallible)]
/// impl Note {
///     #[event]
///     fn written(&mut self, text: String, secret: bool) {}
///     #[event]
///     fn archived(&mut self) {}
/// }
///
/// let map = IntegrationMap::new().on("note.written", "note.written", 1, |e| {
///     let NoteEvent::Written { text, secret } = e.decode()? else { return Ok(None) };
///     Ok((!secret).then(|| json!({ "note": e.stream.id(), "text": text })))
/// });
///
/// MappingTest::new(map)
///     .given::<Note>("n1", [
///         NoteEvent::Written { text: "hi".into(), secret: false },
///         NoteEvent::Written { text: "pin 1234".into(), secret: true },
///         NoteEvent::Archived {},
///     ])
///     .then_published([("note.written", 1, json!({ "note": "n1", "text": "hi" }))]);
/// ```
#[derive(Debug)]
pub struct MappingTest<M> {
    mapping: M,
    given: Vec<RecordedEvent>,
    metadata: Metadata,
}

impl<M: Mapping> MappingTest<M> {
    /// A test of `mapping` with no events yet.
    pub fn new(mapping: M) -> Self {
        MappingTest {
            mapping,
            given: Vec::new(),
            metadata: Metadata {
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                user_id: Some("test-user".to_owned()),
                extra: Default::default(),
            },
        }
    }

    /// Appends `events` of aggregate `A` to its stream `id`, as a store would record them
    /// (next versions, next log positions, the test's correlation and causation ids).
    ///
    /// # Panics
    ///
    /// When `id` is not a valid stream id or an event does not encode.
    #[track_caller]
    pub fn given<A: Aggregate>(
        mut self,
        id: &str,
        events: impl IntoIterator<Item = A::Event>,
    ) -> Self {
        let stream = StreamId::new(A::CATEGORY, id).expect("a valid stream id");
        let before = self.given.iter().filter(|e| e.stream == stream).count() as u64;
        for (version, event) in (before + 1..).zip(events) {
            let payload = event.encode().expect("event encodes");
            self.given.push(RecordedEvent {
                id: Uuid::now_v7(),
                stream: stream.clone(),
                version,
                cursor: Cursor::from_position(self.given.len() as u64 + 1),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                payload: payload.get().to_owned(),
                metadata: self.metadata.to_json(),
                recorded_at: chrono::Utc::now(),
            });
        }
        self
    }

    /// Appends already recorded events (from a store, or with an old schema version).
    pub fn given_recorded(mut self, events: impl IntoIterator<Item = RecordedEvent>) -> Self {
        self.given.extend(events);
        self
    }

    /// Maps every given event and returns the integration events, after checking what every
    /// mapping must do: the id, stream, position and correlation of each published event are
    /// its domain event's.
    #[track_caller]
    pub fn published(&self) -> Vec<IntegrationEvent> {
        let mut out = Vec::new();
        for domain in &self.given {
            let mapped = self.mapping.map(domain).unwrap_or_else(|e| {
                panic!("mapping {} `{}` failed: {e}", domain.id, domain.event_type)
            });
            let Some(event) = mapped else { continue };
            assert_eq!(
                event.id, domain.id,
                "an integration event keeps the domain id"
            );
            assert_eq!(
                event.source, domain.stream,
                "an integration event keeps its stream"
            );
            assert_eq!(
                event.cursor, domain.cursor,
                "an integration event keeps its cursor"
            );
            let meta = domain.metadata().expect("domain metadata decodes");
            assert_eq!(
                event.correlation_id, meta.correlation_id,
                "correlation kept"
            );
            let filter = self.mapping.filter();
            assert!(
                filter.matches(domain.stream.category(), &domain.event_type),
                "`{}` is published but the mapping's filter does not read it",
                domain.event_type
            );
            out.push(event);
        }
        out
    }

    /// Asserts exactly `expected` (public name, version, payload) are published, in order.
    #[track_caller]
    pub fn then_published<'a>(self, expected: impl IntoIterator<Item = (&'a str, u32, Value)>) {
        let got: Vec<(String, u32, Value)> = self
            .published()
            .into_iter()
            .map(|e| {
                let payload = serde_json::from_str(&e.payload).expect("payload is JSON");
                (e.name, e.version, payload)
            })
            .collect();
        let expected: Vec<(String, u32, Value)> = expected
            .into_iter()
            .map(|(n, v, p)| (n.to_owned(), v, p))
            .collect();
        assert_eq!(got, expected, "other integration events were published");
    }

    /// Asserts nothing given leaves the service.
    #[track_caller]
    pub fn then_nothing_published(self) {
        let got = self.published();
        assert!(got.is_empty(), "expected nothing published, got {got:?}");
    }
}

impl<M> MappingTest<M> {
    /// The given events, as recorded.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.given
    }
}
