//! `wait_for_append` wakes on `LISTEN/NOTIFY` from any process appending to the store.

mod common;

use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_postgres::PgOptions;
use std::time::Duration;

/// Long enough that a waiter returning means it was woken, not timed out; the outer timeout
/// only keeps a broken build from hanging the suite.
const FOREVER: Duration = Duration::from_secs(3600);
const HANG_GUARD: Duration = Duration::from_secs(60);

#[test]
fn an_append_from_another_store_wakes_a_waiting_follower() {
    common::run(
        "an_append_from_another_store_wakes_a_waiting_follower",
        |db| async move {
            let follower = db.store.clone();
            let writer = common::TestDb::store_on(&db.options, PgOptions::default()).await;
            let s = StreamId::new("wake", "1").unwrap();

            // Events already readable after the cursor: no waiting at all.
            let e = NewEvent::new("wake.up", &serde_json::json!({})).unwrap();
            writer
                .append(&s, ExpectedVersion::NoStream, vec![e])
                .await
                .unwrap();
            tokio::time::timeout(HANG_GUARD, follower.wait_for_append(Cursor::START, FOREVER))
                .await
                .expect("events after the cursor are readable: no wait");
            let end = follower
                .read_all(Cursor::START, &LogFilter::all(), 100)
                .await
                .unwrap()
                .last_seen;

            // The first wait started the store's one listening connection; once it listens, a
            // waiter can only be woken by a notification (or find the event already readable).
            let mut conn = db.connection().await;
            let mut polls = 0;
            loop {
                let listening: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
                if listening == 1 {
                    break;
                }
                polls += 1;
                assert!(polls < 6000, "the store never started listening");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }

            let waiting = {
                let follower = follower.clone();
                tokio::spawn(async move { follower.wait_for_append(end, FOREVER).await })
            };
            tokio::task::yield_now().await;
            let e = NewEvent::new("wake.up", &serde_json::json!({})).unwrap();
            writer
                .append(&s, ExpectedVersion::Exact(1), vec![e])
                .await
                .unwrap();
            tokio::time::timeout(HANG_GUARD, waiting)
                .await
                .expect("the append's NOTIFY woke the waiting follower")
                .unwrap();
            let batch = follower
                .read_all(end, &LogFilter::all(), 100)
                .await
                .unwrap();
            assert_eq!(
                batch.events.len(),
                1,
                "after the wake-up the new event is readable"
            );
            writer.pool().close().await;
        },
    );
}
