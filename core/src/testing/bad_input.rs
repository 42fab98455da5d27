//! The bad-input section of the conformance suite: what every store must refuse, and what the
//! repository must survive, so that no store drifts from the others (store contract, input
//! rules and item 9).
//!
//! Stamped out by [`conformance_tests!`](crate::conformance_tests) with the rest of the suite.

use crate::aggregate::DecodeError;
use crate::{
    Aggregate, CommandContext, Error, Event, EventStore, ExpectedVersion, Metadata, NewEvent,
    Repository, Snapshot, StreamId, MAX_EVENT_TYPE_LEN, MAX_JSON_DEPTH, MAX_SCHEMA_VERSION,
    RESERVED_METADATA_KEYS,
};
use serde_json::value::RawValue;
use uuid::Uuid;

fn fresh(category: &str) -> StreamId {
    StreamId::new(category, &Uuid::now_v7().simple().to_string()).expect("valid stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("tally.added", &serde_json::json!({ "by": n })).expect("object payload")
}

#[track_caller]
fn assert_invalid(result: crate::Result<impl std::fmt::Debug>, field: &str, mentions: &str) {
    match result {
        Err(Error::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "the error names the field ({reason})");
            assert!(
                reason.contains(mentions),
                "the reason `{reason}` says `{mentions}`"
            );
        }
        other => panic!("expected invalid {field} ({mentions}), got {other:?}"),
    }
}

/// Input rules, item 9: a snapshot no stream could have (beyond the largest version, version
/// 0 of a stream with events, beyond the stream's version) is refused as invalid input and
/// changes nothing; one of a deleted stream is refused as deleted.
pub async fn impossible_snapshots_are_refused_and_change_nothing<S: EventStore + Clone>(store: S) {
    let s = fresh("tally");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    let snap = |version: u64| Snapshot {
        stream: s.clone(),
        version,
        tag: "t".to_owned(),
        state: format!(r#"{{"at":{version}}}"#),
    };
    store.save_snapshot(snap(2)).await.unwrap();
    assert_invalid(store.save_snapshot(snap(0)).await, "snapshot version", "0");
    assert_invalid(
        store.save_snapshot(snap(3)).await,
        "snapshot version",
        "beyond",
    );
    assert_invalid(
        store.save_snapshot(snap(u64::MAX)).await,
        "snapshot version",
        "beyond",
    );
    let never_written = Snapshot {
        stream: fresh("tally"),
        ..snap(u64::MAX)
    };
    assert_invalid(
        store.save_snapshot(never_written).await,
        "snapshot version",
        "beyond",
    );
    assert_eq!(
        store.load_snapshot(&s).await.unwrap(),
        Some(snap(2)),
        "a refused snapshot changed nothing"
    );
    store
        .delete_stream(&s, ExpectedVersion::Exact(2))
        .await
        .unwrap();
    match store.save_snapshot(snap(2)).await {
        Err(Error::StreamDeleted { stream }) => assert_eq!(stream, s),
        other => panic!("a deleted stream takes no snapshot, got {other:?}"),
    }
}

/// Item 9, a snapshot is a cache: one that claims more events than the stream holds, or
/// version 0, is ignored and the aggregate replayed, so commands keep working (believing it
/// made every `execute` conflict for ever, or replayed the whole stream onto the snapshot).
pub async fn repository_ignores_snapshots_that_do_not_fit_the_stream<S: EventStore + Clone>(
    store: S,
) {
    let repo = Repository::<Tally, _>::new(store.clone());
    let ctx = CommandContext::new();
    for forged_version in [5, 0] {
        let s = fresh("tally");
        // Saved while the stream has no events (allowed: process managers keep state this
        // way), so it claims versions the stream does not have once events arrive.
        let forged = Snapshot {
            stream: s.clone(),
            version: forged_version,
            tag: Tally::snapshot_tag().to_owned(),
            state: r#"{"total":1000}"#.to_owned(),
        };
        store.save_snapshot(forged).await.unwrap();
        for by in [1, 2] {
            let done = repo
                .execute(s.id(), &ctx, |_| Ok(vec![TallyEvent(by)]))
                .await
                .unwrap_or_else(|e| panic!("execute over a snapshot at {forged_version}: {e}"));
            assert_eq!(done.version, by);
        }
        let loaded = repo.load(s.id()).await.unwrap();
        assert_eq!(
            (loaded.state.total, loaded.version),
            (3, 2),
            "the snapshot at version {forged_version} was ignored and the stream replayed"
        );
    }
}

/// Input rules: a free metadata key named like a typed field (`correlation_id`, …) would
/// make the stored metadata undecodable; every such key is refused, naming it, and nothing
/// of the batch is written.
pub async fn reserved_metadata_keys_are_refused_naming_the_key<S: EventStore + Clone>(store: S) {
    let s = fresh("tally");
    for key in RESERVED_METADATA_KEYS {
        let mut metadata = Metadata::default();
        metadata
            .extra
            .insert((*key).to_owned(), "not the typed value".into());
        let bad = event(2).with_metadata(metadata);
        let result = store
            .append(&s, ExpectedVersion::Any, vec![event(1), bad])
            .await;
        assert_invalid(result, "metadata", &format!("`{key}`"));
    }
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        0,
        "nothing was written"
    );
    let mut fine = Metadata::default();
    fine.extra.insert("tenant".into(), "acme".into());
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![event(1).with_metadata(fine.clone())],
        )
        .await
        .unwrap();
    let read = store.read_stream(&s, 1, 10).await.unwrap();
    assert_eq!(
        read[0].metadata().unwrap(),
        fine,
        "other free keys round-trip"
    );
}

/// Arrays nested `depth` levels deep inside a payload object (the object is one level).
fn nested_payload(depth: usize) -> String {
    format!(
        r#"{{"a":{}1{}}}"#,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

fn raw_event(json: &str) -> NewEvent {
    let raw = RawValue::from_string(json.to_owned()).expect("valid JSON syntax");
    NewEvent::from_raw("tally.added", 1, raw)
}

/// Input rules: JSON that is valid syntax but that Recount cannot read back (nesting past
/// serde_json's recursion limit, a lone UTF-16 surrogate escape, a number beyond `f64`) is
/// refused at append, naming why, in the payload and in the metadata; what reads back at the
/// limit is accepted.
pub async fn payloads_that_would_not_read_back_are_refused_naming_why<S: EventStore + Clone>(
    store: S,
) {
    let s = fresh("tally");
    let refused = [
        (nested_payload(MAX_JSON_DEPTH + 1), "levels"),
        (nested_payload(1000), "1000 levels"),
        (r#"{"a":"\ud800"}"#.to_owned(), "surrogate"),
        (r#"{"a":"x\udfff y"}"#.to_owned(), "surrogate"),
        (r#"{"\ud800":1}"#.to_owned(), "surrogate"),
        (r#"{"a":1e400}"#.to_owned(), "number out of range"),
    ];
    for (json, why) in &refused {
        let result = store
            .append(&s, ExpectedVersion::Any, vec![event(1), raw_event(json)])
            .await;
        assert_invalid(result, "payload", why);
    }
    let deep = serde_json::from_str::<serde_json::Value>(&nested_payload(MAX_JSON_DEPTH))
        .expect("the limit reads back");
    let mut metadata = Metadata::default();
    metadata.extra.insert("deep".into(), deep);
    let result = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![event(1).with_metadata(metadata)],
        )
        .await;
    assert_invalid(result, "metadata", "levels");
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        0,
        "nothing was written"
    );
    let at_limit = nested_payload(MAX_JSON_DEPTH);
    let pair = r#"{"a":"\ud83d\ude00 and \\ud800"}"#;
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![raw_event(&at_limit), raw_event(pair)],
        )
        .await
        .unwrap();
    for e in store.read_stream(&s, 1, 10).await.unwrap() {
        e.payload_as::<serde_json::Value>()
            .unwrap_or_else(|err| panic!("an accepted payload reads back: {err}"));
    }
}

/// Input rules: an event type is an identifier: empty, longer than 200 bytes, or holding
/// whitespace or a control character (a NUL byte, which PostgreSQL cannot store) is refused
/// by every store, and nothing of the batch is written.
pub async fn event_types_with_nul_whitespace_or_control_characters_are_refused<
    S: EventStore + Clone,
>(
    store: S,
) {
    let s = fresh("tally");
    let long = "t".repeat(MAX_EVENT_TYPE_LEN + 1);
    let bad = [
        ("tally\0added", "contains"),
        ("tally.added\0", "contains"),
        ("tally added", "contains"),
        ("tally.added\n", "contains"),
        ("\u{7f}tally", "contains"),
        ("tally\u{a0}added", "contains"),
        ("", "empty"),
        (long.as_str(), "bytes"),
    ];
    for (event_type, why) in bad {
        let e = NewEvent::new(event_type, &serde_json::json!({})).expect("object payload");
        let result = store
            .append(&s, ExpectedVersion::Any, vec![event(1), e])
            .await;
        assert_invalid(result, "event type", why);
    }
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        0,
        "nothing was written"
    );
    let longest = "t".repeat(MAX_EVENT_TYPE_LEN);
    let e = NewEvent::new(longest.as_str(), &serde_json::json!({})).expect("object payload");
    store
        .append(&s, ExpectedVersion::NoStream, vec![e])
        .await
        .unwrap();
    assert_eq!(
        store.read_stream(&s, 1, 1).await.unwrap()[0].event_type,
        longest
    );
}

/// Input rules: a checkpoint name that is empty or holds a control character (a NUL byte) is
/// refused on save and on load by every store, and nothing is stored.
pub async fn checkpoint_names_with_nul_or_control_characters_are_refused<S: EventStore + Clone>(
    store: S,
) {
    let at = crate::Cursor::from_parts(1, 1);
    for name in ["proj\0ection", "proj\u{1}", "\tproj", ""] {
        let why = if name.is_empty() { "empty" } else { "control" };
        assert_invalid(
            store.save_checkpoint(name, None, at).await,
            "checkpoint name",
            why,
        );
        assert_invalid(store.load_checkpoint(name).await, "checkpoint name", why);
    }
    let fine = format!("proj {}", Uuid::now_v7().simple());
    store.save_checkpoint(&fine, None, at).await.unwrap();
    assert_eq!(store.load_checkpoint(&fine).await.unwrap(), Some(at));
}

/// Input rules: a stream id with a NUL byte (or any control character) cannot be built, by
/// any route, so no store is ever handed one.
pub async fn stream_ids_with_nul_cannot_reach_a_store<S: EventStore + Clone>(store: S) {
    assert!(StreamId::new("tally", "a\0b").is_err());
    assert!(StreamId::parse("tally-a\0").is_err());
    assert!(StreamId::parse("tal\0ly-a").is_err());
    assert!("tally-\u{1b}[2J".parse::<StreamId>().is_err());
    assert!(serde_json::from_str::<StreamId>(r#""tally-a\u0000b""#).is_err());
    let s = fresh("tally");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(store.read_stream(&s, 1, 10).await.unwrap()[0].stream, s);
}

/// Input rules: schema versions are 1 ..= `MAX_SCHEMA_VERSION` (PostgreSQL's `integer`) on
/// every store; the largest is kept exactly.
pub async fn schema_versions_have_the_same_bounds_on_every_store<S: EventStore + Clone>(store: S) {
    let s = fresh("tally");
    for (version, why) in [
        (0, "start at 1"),
        (MAX_SCHEMA_VERSION + 1, "limit"),
        (u32::MAX, "limit"),
    ] {
        let result = store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![event(1).with_schema_version(version)],
            )
            .await;
        assert_invalid(result, "schema version", why);
    }
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        0,
        "nothing was written"
    );
    let top = event(1).with_schema_version(MAX_SCHEMA_VERSION);
    store
        .append(&s, ExpectedVersion::NoStream, vec![top])
        .await
        .unwrap();
    let read = store.read_stream(&s, 1, 1).await.unwrap();
    assert_eq!(read[0].schema_version, MAX_SCHEMA_VERSION);
}

/// The aggregate of the repository checks: a running total, snapshots on.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    total: u64,
}

/// `tally.added {"by": n}`.
#[derive(Debug)]
struct TallyEvent(u64);

impl Event for TallyEvent {
    const EVENT_TYPES: &'static [&'static str] = &["tally.added"];

    fn event_type(&self) -> &'static str {
        "tally.added"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(&serde_json::json!({ "by": self.0 }))
    }

    fn decode(event_type: &str, _: u32, payload: &str) -> Result<Self, DecodeError> {
        if event_type != "tally.added" {
            return Err(DecodeError::UnknownType(event_type.to_owned()));
        }
        #[derive(serde::Deserialize)]
        struct Added {
            by: u64,
        }
        Ok(TallyEvent(serde_json::from_str::<Added>(payload)?.by))
    }
}

impl Aggregate for Tally {
    const CATEGORY: &'static str = "tally";
    type Event = TallyEvent;
    type Error = std::convert::Infallible;

    fn apply(&mut self, event: TallyEvent) {
        self.total += event.0;
    }

    fn snapshot_every() -> Option<u64> {
        Some(1000)
    }

    fn snapshot_tag() -> &'static str {
        "tally-v1"
    }

    fn encode_snapshot(&self) -> Option<Result<String, serde_json::Error>> {
        Some(serde_json::to_string(self))
    }

    fn decode_snapshot(state: &str) -> Option<Result<Self, serde_json::Error>> {
        Some(serde_json::from_str(state))
    }
}
