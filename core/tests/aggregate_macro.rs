//! What `#[aggregate]` generates, seen from the outside: replay, event identity and versions,
//! upcasting, payload shape, snapshots, the given/when/then harness and a repository.
#![cfg(all(feature = "derive", feature = "testing"))]

use recount::aggregate::DecodeError;
use recount::testing::AggregateTest;
use recount::{aggregate, Aggregate, CommandContext, Event, EventStore, InMemoryStore, Repository};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Genre {
    Fantasy,
    Mystery,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum StoryError {
    #[error("the story is already published")]
    AlreadyPublished,
    #[error("the story does not exist")]
    NotCreated,
    #[error("chapter {0} is out of order")]
    ChapterOutOfOrder(u32),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Story {
    title: String,
    genre: Option<Genre>,
    author: String,
    chapters: Vec<(u32, String, u32)>,
    published_at: Option<u64>,
    tags: Vec<String>,
    archived: bool,
}

/// v1 chapters had only a number; v2 added the word count. Cannot fail: returns the value.
fn chapter_v1_to_v2(mut v: Value) -> Value {
    v["words"] = json!(0);
    v
}

/// v2 recorded when; v1 events are dated 0.
fn published_v1_to_v2(mut v: Value) -> Value {
    v["at"] = json!(0);
    v
}

/// v3 added the chapter title.
fn chapter_v2_to_v3(mut v: Value) -> Result<Value, String> {
    let number = v["number"].as_u64().ok_or("no chapter number")?;
    v["title"] = json!(format!("Chapter {number}"));
    Ok(v)
}

#[aggregate(
    category = "story",
    error = StoryError,
    snapshot_every = 3,
    snapshot_version = 2,
    vis = "pub(crate)"
)]
impl Story {
    /// The story was created.
    #[event(name = "story.created")]
    fn created(&mut self, title: String, genre: Genre, author: String) {
        self.title = title;
        self.genre = Some(genre);
        self.author = author;
    }

    /// The story got a new title.
    #[event]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }

    /// A chapter was added.
    #[event(
        name = "story.chapter_added",
        version = 3,
        upcast(from = 1, with = chapter_v1_to_v2),
        upcast(from = 2, with = chapter_v2_to_v3)
    )]
    fn chapter_added(&mut self, number: u32, words: u32, title: String) {
        self.chapters.push((number, title, words));
    }

    /// The story was tagged; `source` is kept for auditing only, not in the state.
    #[event]
    fn tagged(&mut self, tag: String, #[serde(default)] source: Option<String>) {
        self.tags.push(tag);
    }

    /// The story was published.
    #[event(name = "story.published", version = 2, upcast(from = 1, with = published_v1_to_v2))]
    fn published(&mut self, at: u64) {
        self.published_at = Some(at);
    }

    /// The story was archived.
    #[event]
    fn archived(&mut self) {
        self.archived = true;
    }

    /// Command: create the story.
    fn create(&self, title: &str, genre: Genre) -> Result<Vec<StoryEvent>, StoryError> {
        let author = "ada".to_owned();
        Ok(vec![StoryEvent::Created {
            title: title.to_owned(),
            genre,
            author,
        }])
    }

    /// Command: add the next chapter.
    fn add_chapter(
        &self,
        number: u32,
        title: &str,
        words: u32,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        if self.title.is_empty() {
            return Err(StoryError::NotCreated);
        }
        if number as usize != self.chapters.len() + 1 {
            return Err(StoryError::ChapterOutOfOrder(number));
        }
        Ok(vec![StoryEvent::ChapterAdded {
            number,
            words,
            title: title.to_owned(),
        }])
    }

    /// Command: publish, once.
    fn publish(&self, now: u64) -> Result<Vec<StoryEvent>, StoryError> {
        match self.published_at {
            Some(_) => Err(StoryError::AlreadyPublished),
            None => Ok(vec![StoryEvent::Published { at: now }]),
        }
    }

    /// Command: archive; archiving twice decides nothing.
    fn archive(&self) -> Result<Vec<StoryEvent>, StoryError> {
        Ok(if self.archived {
            vec![]
        } else {
            vec![StoryEvent::Archived]
        })
    }
}

fn every_variant() -> Vec<StoryEvent> {
    vec![
        StoryEvent::Created {
            title: "Dune".into(),
            genre: Genre::Fantasy,
            author: "frank".into(),
        },
        StoryEvent::Renamed {
            title: "Dune Messiah".into(),
        },
        StoryEvent::ChapterAdded {
            number: 1,
            words: 1200,
            title: "Arrakis".into(),
        },
        StoryEvent::Tagged {
            tag: "classic".into(),
            source: Some("editor".into()),
        },
        StoryEvent::Published { at: 42 },
        StoryEvent::Archived,
    ]
}

#[test]
fn replaying_events_builds_the_expected_state() {
    let story = Story::replayed(every_variant());
    assert_eq!(
        story,
        Story {
            title: "Dune Messiah".into(),
            genre: Some(Genre::Fantasy),
            author: "frank".into(),
            chapters: vec![(1, "Arrakis".into(), 1200)],
            published_at: Some(42),
            tags: vec!["classic".into()],
            archived: true,
        }
    );
}

#[test]
fn event_identity_comes_from_names_and_versions() {
    assert_eq!(Story::CATEGORY, "story");
    assert_eq!(
        StoryEvent::EVENT_TYPES,
        [
            "story.created",
            "story.renamed",
            "story.chapter_added",
            "story.tagged",
            "story.published",
            "story.archived"
        ]
    );
    let ids: Vec<_> = every_variant()
        .iter()
        .map(|e| (e.event_type(), e.schema_version()))
        .collect();
    assert_eq!(
        ids,
        [
            ("story.created", 1),
            ("story.renamed", 1),
            ("story.chapter_added", 3),
            ("story.tagged", 1),
            ("story.published", 2),
            ("story.archived", 1)
        ]
    );
}

#[test]
fn every_variant_round_trips_through_a_payload_without_rust_names() {
    let rust_names = [
        "StoryEvent",
        "Created",
        "Renamed",
        "ChapterAdded",
        "Tagged",
        "Published",
        "Archived",
        "Story",
    ];
    for event in every_variant() {
        let payload = event.encode().unwrap();
        let value: Value = serde_json::from_str(payload.get()).unwrap();
        assert!(value.is_object(), "{payload} is a JSON object");
        for name in rust_names {
            assert!(
                !payload.get().contains(name),
                "{payload} holds no Rust name like {name}"
            );
        }
        let back =
            StoryEvent::decode(event.event_type(), event.schema_version(), payload.get()).unwrap();
        assert_eq!(back, event);
    }
    let payload = StoryEvent::Renamed { title: "x".into() }.encode().unwrap();
    assert_eq!(payload.get(), r#"{"title":"x"}"#);
    assert_eq!(StoryEvent::Archived.encode().unwrap().get(), "{}");
}

#[test]
fn a_version_1_event_is_read_through_the_upcaster_chain_as_version_3() {
    let event = StoryEvent::decode("story.chapter_added", 1, r#"{"number":7}"#).unwrap();
    assert_eq!(
        event,
        StoryEvent::ChapterAdded {
            number: 7,
            words: 0,
            title: "Chapter 7".into()
        }
    );
    let event = StoryEvent::decode("story.chapter_added", 2, r#"{"number":2,"words":10}"#).unwrap();
    assert_eq!(
        event,
        StoryEvent::ChapterAdded {
            number: 2,
            words: 10,
            title: "Chapter 2".into()
        }
    );
}

#[test]
fn decoding_reports_unknown_types_newer_versions_missing_steps_and_failing_upcasters() {
    let unknown = StoryEvent::decode("story.deleted", 1, "{}");
    assert!(matches!(unknown, Err(DecodeError::UnknownType(t)) if t == "story.deleted"));
    let newer = StoryEvent::decode("story.published", 3, r#"{"at":1}"#);
    assert!(matches!(
        newer,
        Err(DecodeError::VersionTooNew { found: 3, known: 2 })
    ));
    let v1 = StoryEvent::decode("story.published", 1, "{}").unwrap();
    assert_eq!(v1, StoryEvent::Published { at: 0 });
    // A chain with a missing step does not compile with `#[aggregate]`; by hand it is
    // reported when a payload needs the step.
    let step: recount::aggregate::UpcastFn = |v| Ok(v);
    let no_step = recount::aggregate::decode_upcast::<Value>("{}", 1, 3, &[(2, step)]);
    assert!(matches!(no_step, Err(DecodeError::NoUpcaster(1))));
    let failing = StoryEvent::decode("story.chapter_added", 2, r#"{"words":1}"#);
    assert!(
        matches!(failing, Err(DecodeError::Upcast { from: 2, ref reason }) if reason == "no chapter number")
    );
    let bad_json = StoryEvent::decode("story.renamed", 1, r#"{"name":"x"}"#);
    assert!(matches!(bad_json, Err(DecodeError::Json(_))));
}

/// Found by the `event_decode_upcast` fuzz target: a stored payload `0` at schema version 1
/// reached `chapter_v1_to_v2`, whose `v["words"] = …` panics on a number.
#[test]
fn upcasters_are_never_handed_a_payload_that_is_not_an_object() {
    for stored in ["0", "[1]", r#""x""#, "true", "-1.5"] {
        let got = StoryEvent::decode("story.chapter_added", 1, stored);
        assert!(
            matches!(got, Err(DecodeError::NotAnObject { version: 1 })),
            "{stored}: {got:?}"
        );
    }
    // A step that returns something else than an object stops the chain before the next.
    let to_array: recount::aggregate::UpcastFn = |_| Ok(json!([1]));
    let indexing: recount::aggregate::UpcastFn = |mut v| {
        v["x"] = json!(1);
        Ok(v)
    };
    let got =
        recount::aggregate::decode_upcast::<Value>("{}", 1, 3, &[(1, to_array), (2, indexing)]);
    assert!(
        matches!(got, Err(DecodeError::NotAnObject { version: 2 })),
        "{got:?}"
    );
    // Read from a store, it is a corrupt event naming itself.
    let recorded = recount::RecordedEvent {
        id: uuid::Uuid::nil(),
        stream: recount::StreamId::new("story", "1").unwrap(),
        version: 1,
        cursor: recount::Cursor::from_position(1),
        event_type: "story.chapter_added".into(),
        schema_version: 1,
        payload: "0".into(),
        metadata: "{}".into(),
        recorded_at: chrono::DateTime::UNIX_EPOCH,
    };
    let err = recorded.decode::<StoryEvent>().unwrap_err();
    assert!(matches!(err, recount::Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn serde_attributes_on_parameters_reach_the_payload() {
    let event = StoryEvent::decode("story.tagged", 1, r#"{"tag":"new"}"#).unwrap();
    assert_eq!(
        event,
        StoryEvent::Tagged {
            tag: "new".into(),
            source: None
        }
    );
}

#[test]
fn a_snapshot_round_trips_and_is_tagged_with_its_version() {
    assert_eq!(Story::snapshot_every(), Some(3));
    assert!(
        Story::snapshot_tag().starts_with("v2-"),
        "{}",
        Story::snapshot_tag()
    );
    assert_eq!(Story::snapshot_tag().len(), "v2-".len() + 16);
    let story = Story::replayed(every_variant());
    let json = story.encode_snapshot().unwrap().unwrap();
    assert_eq!(Story::decode_snapshot(&json).unwrap().unwrap(), story);
}

/// Two aggregates alike but for one event body, and a third that differs only in layout and
/// comments: the tag follows the code, not its formatting.
mod tags {
    use recount::aggregate;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    pub(crate) struct Never;

    pub(crate) mod a {
        use super::*;
        #[derive(Debug, Default, Serialize, Deserialize)]
        pub(crate) struct Counter {
            n: u64,
        }
        #[aggregate(category = "counter", error = Never, snapshot_every = 10)]
        impl Counter {
            #[event]
            fn added(&mut self, by: u64) {
                self.n += by;
            }
        }
    }

    pub(crate) mod b {
        use super::*;
        #[derive(Debug, Default, Serialize, Deserialize)]
        pub(crate) struct Counter {
            n: u64,
        }
        #[aggregate(category = "counter", error = Never, snapshot_every = 10)]
        impl Counter {
            #[event]
            fn added(&mut self, by: u64) {
                self.n += 2 * by;
            }
        }
    }

    pub(crate) mod c {
        use super::*;
        #[derive(Debug, Default, Serialize, Deserialize)]
        pub(crate) struct Counter {
            n: u64,
        }
        #[aggregate(category = "counter", error = Never, snapshot_every = 10)]
        impl Counter {
            /// Now documented.
            #[event]
            fn added(&mut self, by: u64) {
                // and commented
                self.n += by;
            }
        }
    }
}

#[test]
fn the_snapshot_tag_changes_when_an_event_body_changes() {
    let (a, b, c) = (
        tags::a::Counter::snapshot_tag(),
        tags::b::Counter::snapshot_tag(),
        tags::c::Counter::snapshot_tag(),
    );
    assert_ne!(a, b);
    assert_eq!(a, c);
}

#[test]
fn given_created_when_adding_chapter_one_then_chapter_added() {
    let state = AggregateTest::<Story>::given([StoryEvent::Created {
        title: "Dune".into(),
        genre: Genre::Fantasy,
        author: "frank".into(),
    }])
    .when(|s| s.add_chapter(1, "Arrakis", 900))
    .then_events([StoryEvent::ChapterAdded {
        number: 1,
        words: 900,
        title: "Arrakis".into(),
    }]);
    assert_eq!(state.chapters.len(), 1);
}

#[test]
fn given_nothing_when_adding_a_chapter_then_rejected() {
    AggregateTest::<Story>::given_no_events()
        .when(|s| s.add_chapter(1, "x", 1))
        .then_error(StoryError::NotCreated);
}

#[test]
fn given_one_chapter_when_adding_chapter_three_then_out_of_order() {
    AggregateTest::<Story>::given(every_variant().into_iter().take(3))
        .when(|s| s.add_chapter(3, "x", 1))
        .then_error(StoryError::ChapterOutOfOrder(3));
}

#[test]
fn given_published_when_publishing_then_already_published() {
    AggregateTest::<Story>::given(every_variant())
        .when(|s| s.publish(7))
        .then_error(StoryError::AlreadyPublished);
}

#[test]
fn given_archived_when_archiving_then_no_events() {
    AggregateTest::<Story>::given(every_variant())
        .when(Story::archive)
        .then_no_events();
}

#[tokio::test]
async fn a_repository_loads_snapshot_plus_tail_equal_to_a_full_replay() {
    let repo = Repository::<Story, _>::new(InMemoryStore::new());
    let ctx = CommandContext::new().with_user("ada");
    repo.execute("s1", &ctx, |s| s.create("Dune", Genre::Fantasy))
        .await
        .unwrap();
    for n in 1..=7 {
        repo.execute("s1", &ctx, |s| s.add_chapter(n, &format!("c{n}"), n * 100))
            .await
            .unwrap();
    }
    repo.execute("s1", &ctx, |s| s.publish(99)).await.unwrap();
    let stream = repo.stream_id("s1").unwrap();
    let snapshot = repo
        .store()
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot was saved");
    assert_eq!(
        (snapshot.version, snapshot.tag.as_str()),
        (9, Story::snapshot_tag())
    );
    assert!(repo.stats().snapshots_saved >= 3);

    let loaded = repo.load("s1").await.unwrap();
    let recorded = repo.store().read_stream(&stream, 1, 100).await.unwrap();
    let events = recorded.iter().map(|r| r.decode::<StoryEvent>().unwrap());
    assert_eq!(loaded.version, 9);
    assert_eq!(loaded.state, Story::replayed(events));
    assert_eq!(loaded.state.published_at, Some(99));
    assert_eq!(loaded.state.chapters.len(), 7);
}

#[tokio::test]
async fn a_stored_version_1_event_loads_through_the_repository() {
    let repo = Repository::<Story, _>::new(InMemoryStore::new());
    let stream = repo.stream_id("old").unwrap();
    let mut created = recount::NewEvent::new(
        "story.created",
        &json!({"title": "Old", "genre": "Mystery", "author": "x"}),
    )
    .unwrap();
    created.schema_version = 1;
    let mut chapter = recount::NewEvent::new("story.chapter_added", &json!({"number": 1})).unwrap();
    chapter.schema_version = 1;
    repo.store()
        .append(
            &stream,
            recount::ExpectedVersion::Any,
            vec![created, chapter],
        )
        .await
        .unwrap();
    let loaded = repo.load("old").await.unwrap();
    assert_eq!(loaded.state.chapters, vec![(1, "Chapter 1".to_owned(), 0)]);
    assert_eq!(loaded.state.genre, Some(Genre::Mystery));
}
