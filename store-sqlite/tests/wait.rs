//! `wait_for_append` wakes a follower when this store commits, instead of sleeping out its
//! timeout.

use recount::{Cursor, EventStore, ExpectedVersion, NewEvent, StreamId};
use recount_sqlite::SqliteEventStore;
use std::time::Duration;

/// Far longer than any test run: a wait that ends before it was woken, not timed out.
const FOREVER: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_waiting_for_appends_is_woken_by_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    let s = StreamId::new("wake", "1").unwrap();
    let first = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("wake.e", &serde_json::json!({})).unwrap()],
        )
        .await
        .unwrap();
    // Events after START exist already: no waiting at all.
    store.wait_for_append(Cursor::START, FOREVER).await;

    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_for_append(first.cursor, FOREVER).await }
    });
    tokio::task::yield_now().await;
    let e = NewEvent::new("wake.e", &serde_json::json!({})).unwrap();
    store
        .append(&s, ExpectedVersion::Exact(1), vec![e])
        .await
        .unwrap();
    // The guard fails the test instead of hanging it; it is not a measurement.
    tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the commit woke the follower")
        .unwrap();
}
