//! What the in-memory store does beyond the conformance suite: its own limits, its size, and
//! how long `wait_for_append` waits.

use recount::{Error, EventStore, ExpectedVersion, InMemoryStore, Limits, NewEvent, StreamId};
use std::time::{Duration, Instant};

fn event(text: &str) -> NewEvent {
    NewEvent::new("note.written", &serde_json::json!({ "text": text })).unwrap()
}

#[tokio::test]
async fn a_store_with_limits_refuses_what_they_exclude_and_keeps_what_they_allow() {
    let store = InMemoryStore::with_limits(Limits {
        max_payload_bytes: 32,
        ..Limits::default()
    });
    let s = StreamId::new("note", "1").unwrap();
    let big = store
        .append(&s, ExpectedVersion::Any, vec![event(&"x".repeat(40))])
        .await;
    assert!(matches!(big, Err(Error::InvalidInput { .. })), "{big:?}");
    assert!(store.is_empty(), "a refused append writes nothing");
    store
        .append(&s, ExpectedVersion::Any, vec![event("short")])
        .await
        .unwrap();
    // The default limits take the large payload.
    let default = InMemoryStore::new();
    default
        .append(&s, ExpectedVersion::Any, vec![event(&"x".repeat(40))])
        .await
        .unwrap();
}

#[tokio::test]
async fn len_counts_the_global_log_and_is_empty_only_before_the_first_append() {
    let store = InMemoryStore::new();
    assert_eq!((store.len(), store.is_empty()), (0, true));
    let s = StreamId::new("note", "1").unwrap();
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("a"), event("b")])
        .await
        .unwrap();
    assert_eq!((store.len(), store.is_empty()), (2, false));
    let t = StreamId::new("note", "2").unwrap();
    store
        .append(&t, ExpectedVersion::NoStream, vec![event("c")])
        .await
        .unwrap();
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn wait_for_append_returns_at_once_when_the_log_is_past_the_cursor_and_waits_otherwise() {
    let store = InMemoryStore::new();
    let s = StreamId::new("note", "1").unwrap();
    let written = store
        .append(&s, ExpectedVersion::NoStream, vec![event("a")])
        .await
        .unwrap();
    let started = Instant::now();
    store
        .wait_for_append(recount::Cursor::START, Duration::from_secs(5))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "an event is there already"
    );
    let started = Instant::now();
    store
        .wait_for_append(written.cursor, Duration::from_millis(150))
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(140),
        "caught up: waits out the timeout, waited {waited:?}"
    );
    // An append wakes a waiter before its timeout.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            store
                .wait_for_append(written.cursor, Duration::from_secs(10))
                .await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .append(&s, ExpectedVersion::Exact(1), vec![event("b")])
        .await
        .unwrap();
    let woke_after = waiter.await.unwrap();
    assert!(
        woke_after < Duration::from_secs(5),
        "woken by the append after {woke_after:?}"
    );
}
